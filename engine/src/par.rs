//! Parallelism chosen per call from the problem size.
//!
//! faer is built with its `rayon` feature, but a parallel region costs microseconds to open,
//! which is the whole budget of a small op (faer's parallel eigensolver made `eigh` at n = 4
//! 3.5× slower). So every call that matgrad makes with an explicit [`Par`] asks here:
//! [`gemm_par`] for a matrix product, [`eigh_par`] for a symmetric/Hermitian
//! eigendecomposition, [`decomposition_par`] for a singular value decomposition. Below the
//! thresholds (measured on the 2-core machine class, see docs/PERFORMANCE.md) the answer is
//! [`Par::Seq`]; above them, rayon with at most [`max_threads`] threads.
//!
//! **Where the caller runs matters.** A parallel region opened from a thread outside
//! rayon's pool (a program's main thread) hands the work to the pool and sleeps until it is
//! done: two thread wake-ups, measured at ≈ 50 µs per region on the machine class once the
//! workers have gone to sleep (10–20 µs back to back). From a worker thread of the pool the
//! caller takes part in the work and only wakes the others: ≈ 7.5 µs (0.1 µs back to back).
//! So the thresholds are higher outside the pool ([`GEMM_PAR_MIN_MACS_OUTSIDE`]) than
//! inside it ([`GEMM_PAR_MIN_MACS`]), and [`in_pool`] runs a computation on a worker
//! thread, which is the fast way to use two or more cores.
//!
//! The first [`crate::Tape`] sets faer's *global* parallelism (used by faer's high-level
//! decompositions that matgrad calls without an explicit `Par`: inverse, solve, Cholesky,
//! QR, general eig) to sequential, because faer's default with rayon is "all cores at every
//! size". A program that wants otherwise can call `faer::set_global_parallelism` after
//! creating its first tape.
//!
//! ```
//! use matgrad_engine::par;
//! par::set_max_threads(1); // everything sequential from here on
//! assert_eq!(par::max_threads(), 1);
//! assert!(matches!(par::gemm_par(512, 512, 512), faer::Par::Seq));
//! par::set_max_threads(0); // back to the default: all of rayon's threads
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

pub use faer::Par;

/// Called from a worker thread of rayon's pool, a matrix product of at least this many
/// multiply-adds (`m·n·k`, here ≈ 102³, ≈ 40 µs sequential) runs in parallel, and so do
/// [`blocks_parallel`] batches of that much work. Measured with 2 threads, faer's
/// parallel GEMM against its sequential one from inside the pool: 0.92–1.0× at 96³,
/// 1.17–1.39× at 128³, 1.6–1.8× at 256³ (≈ 1.0× at every size in a run where the second
/// core was busy).
pub const GEMM_PAR_MIN_MACS: usize = 1 << 20;

/// The same threshold for a caller outside rayon's pool (≈ 161³, ≈ 150 µs sequential),
/// which pays ≈ 50 µs per parallel region: from the main thread faer's parallel GEMM was
/// 0.42–0.60× its sequential one at 96³, 0.65–1.17× at 128³, 0.81–1.31× at 160³,
/// 0.89–1.49× at 192³ and 1.13–1.70× at 256³ over four runs; the low ends are runs where
/// the shared machine's second core was busy (`examples/par_costs.rs` measures both).
pub const GEMM_PAR_MIN_MACS_OUTSIDE: usize = 1 << 22;

// gemm_par and blocks_parallel answer "sequential" below GEMM_PAR_MIN_MACS without asking
// where they run, which is right only while it is the lower threshold
const _: () = assert!(GEMM_PAR_MIN_MACS <= GEMM_PAR_MIN_MACS_OUTSIDE);

/// A singular value decomposition whose smaller side is at least this runs in parallel.
/// On the 2-core machine class faer's parallel SVD (divide and conquer from order 32,
/// called from the main thread) was no faster at 256² and 384² (within ±5 %, either way)
/// and 1.35× slower at 512×256; at 128² it was 1.17× slower. docs/PERFORMANCE.md.
pub const DECOMPOSITION_PAR_MIN_N: usize = 384;

/// A symmetric/Hermitian eigendecomposition of at least this order runs in parallel.
/// faer's eigensolver (divide and conquer from order 64, called from the main thread,
/// 2 threads against 1, two runs): 1.15–1.2× slower at n = 128, 1.15–1.2× faster at 192,
/// 1.05–1.19× at 256, 1.2–1.3× at 320–512. docs/PERFORMANCE.md ("Fifth round").
pub const EIGH_PAR_MIN_N: usize = 192;

static MAX_THREADS: AtomicUsize = AtomicUsize::new(0);
static GLOBAL_SEQ: Once = Once::new();

/// Caps the threads of every parallel call (`0`: rayon's default, all cores; `1`:
/// sequential everywhere). Takes effect for the following calls, on every thread.
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n, Ordering::Relaxed);
}

/// The effective cap: the value of [`set_max_threads`], or rayon's thread count when unset.
pub fn max_threads() -> usize {
    match MAX_THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

fn parallel(big: bool) -> Par {
    let t = max_threads();
    if big && t > 1 {
        Par::rayon(t)
    } else {
        Par::Seq
    }
}

/// True on a worker thread of a rayon pool (inside [`in_pool`], `ThreadPool::install`, or
/// a parallel iterator), where a parallel region is cheap to open.
pub fn on_worker() -> bool {
    rayon::current_thread_index().is_some()
}

/// The work (multiply-adds) from which a parallel region pays, for this thread.
fn min_parallel_macs() -> usize {
    if on_worker() {
        GEMM_PAR_MIN_MACS
    } else {
        GEMM_PAR_MIN_MACS_OUTSIDE
    }
}

/// Runs `f` on a worker thread of rayon's global pool (directly when already on one) and
/// returns its result; the calling thread waits. Everything matgrad runs in parallel inside
/// `f` then opens its parallel regions from the pool, ≈ 7× cheaper than from outside it
/// (see the module doc), and the lower thresholds apply. Build the tape inside `f`: a tape
/// cannot cross threads.
///
/// ```
/// use matgrad_engine::{par, Tape, Value};
/// let total = par::in_pool(|| {
///     assert!(par::on_worker());
///     let tape = Tape::new();
///     let a = tape.leaf(Value::Real(faer::Mat::identity(3, 3))).unwrap();
///     a.matmul(a).unwrap().trace().unwrap().value().scalar_real().unwrap()
/// });
/// assert_eq!(total, 3.0);
/// ```
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if on_worker() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// The parallelism for an `m×k` by `k×n` product.
pub fn gemm_par(m: usize, n: usize, k: usize) -> Par {
    let macs = m.saturating_mul(n).saturating_mul(k);
    // below both thresholds (most products on a tape): no thread-local or pool lookups
    if macs < GEMM_PAR_MIN_MACS {
        return Par::Seq;
    }
    parallel(macs >= min_parallel_macs())
}

/// A parallel product whose output has at most this many entries (128²) is split along
/// its inner dimension when that is long ([`inner_split`]).
pub const SPLIT_INNER_MAX_OUTPUT: usize = 128 * 128;

/// Into how many slices of the inner dimension `k` a product with an `m×n` output and the
/// parallelism `par` is split, each slice's product on its own thread and the partial
/// products summed: 1 (no split) unless `par` is parallel, the output has at most
/// [`SPLIT_INNER_MAX_OUTPUT`] entries and `k ≥ 8·max(m, n)`; at most one slice per thread
/// and per 256 of `k`. faer parallelises a product over the blocks of its output only, so
/// a small output with a long inner dimension ran on one core (a convolution's kernel
/// gradient `Ḡ Pᵀ`, 16×72 by a 16 384-long sum). Measured from the main thread with 2
/// threads, faer's parallel product against two halves of `k` in parallel, in µs:
/// 16×72×16384 721 vs 361, 32×32×16384 644 vs 319, 64×64×4096 588 vs 318, 72×72×4096 750
/// vs 397, 128×128×2048 759 vs 617, 32×256×4096 794 vs 633; where faer's own split pays,
/// as good or better: 512×16×2048 357 vs 375, 256×256×1024 1295 vs 1281 (not split).
pub fn inner_split(m: usize, n: usize, k: usize, par: Par) -> usize {
    let Par::Rayon(threads) = par else {
        return 1;
    };
    if m.saturating_mul(n) > SPLIT_INNER_MAX_OUTPUT || k < m.max(n).saturating_mul(8) {
        return 1;
    }
    threads.get().min(k / 256).max(1)
}

/// The parallelism for a singular value decomposition whose smaller side is `n`.
pub fn decomposition_par(n: usize) -> Par {
    parallel(n >= DECOMPOSITION_PAR_MIN_N)
}

/// The parallelism for a symmetric/Hermitian eigendecomposition of order `n`.
pub fn eigh_par(n: usize) -> Par {
    parallel(n >= EIGH_PAR_MIN_N)
}

/// Whether `batch` independent blocks of `macs_per_block` multiply-adds each should be
/// spread over rayon's threads (each block then runs sequentially): when there are at least
/// two blocks, more than one thread, and as much work in total as a parallel GEMM
/// ([`GEMM_PAR_MIN_MACS`] on a worker thread, [`GEMM_PAR_MIN_MACS_OUTSIDE`] elsewhere).
pub fn blocks_parallel(batch: usize, macs_per_block: usize) -> bool {
    let total = batch.saturating_mul(macs_per_block);
    batch > 1 && total >= GEMM_PAR_MIN_MACS && total >= min_parallel_macs() && max_threads() > 1
}

/// Sets faer's global parallelism to sequential, once per process (see the module doc).
pub(crate) fn init() {
    GLOBAL_SEQ.call_once(|| faer::set_global_parallelism(Par::Seq));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_cap() {
        // the cap is process-wide: this test is the only one in the engine that sets it
        set_max_threads(2);
        // a test thread is outside rayon's pool
        assert!(!on_worker());
        assert!(matches!(gemm_par(4, 4, 4), Par::Seq));
        assert!(matches!(gemm_par(1 << 11, 1 << 11, 1), Par::Rayon(_)));
        assert!(matches!(gemm_par(1 << 11, (1 << 11) - 1, 1), Par::Seq));
        assert!(matches!(gemm_par(128, 128, 128), Par::Seq));
        assert!(matches!(decomposition_par(383), Par::Seq));
        assert!(matches!(decomposition_par(384), Par::Rayon(_)));
        assert!(matches!(eigh_par(191), Par::Seq));
        assert!(matches!(eigh_par(192), Par::Rayon(_)));
        assert!(blocks_parallel(2, GEMM_PAR_MIN_MACS_OUTSIDE / 2));
        assert!(!blocks_parallel(2, GEMM_PAR_MIN_MACS_OUTSIDE / 2 - 1));
        assert!(!blocks_parallel(1, GEMM_PAR_MIN_MACS_OUTSIDE));
        // split along k: small output, long sum, parallel; never when sequential
        let two = Par::rayon(2);
        assert_eq!(inner_split(16, 72, 16384, two), 2);
        assert_eq!(inner_split(128, 128, 1024, two), 2);
        assert_eq!(inner_split(128, 128, 1023, two), 1);
        assert_eq!(inner_split(128, 129, 4096, two), 1);
        assert_eq!(inner_split(2, 2, 300, two), 1);
        assert_eq!(inner_split(2, 2, 512, two), 2);
        assert_eq!(inner_split(2, 2, 512, Par::rayon(8)), 2);
        assert_eq!(inner_split(16, 72, 16384, Par::Seq), 1);
        // on a worker thread the thresholds are lower
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert!(on_worker());
            assert!(matches!(gemm_par(1 << 10, 1 << 10, 1), Par::Rayon(_)));
            assert!(matches!(gemm_par(1 << 10, (1 << 10) - 1, 1), Par::Seq));
            assert!(matches!(gemm_par(128, 128, 128), Par::Rayon(_)));
            assert!(blocks_parallel(2, GEMM_PAR_MIN_MACS / 2));
            assert!(!blocks_parallel(2, GEMM_PAR_MIN_MACS / 2 - 1));
        });
        // in_pool runs on a worker of the global pool and returns the result
        assert_eq!(in_pool(|| (on_worker(), 7)), (true, 7));
        set_max_threads(1);
        assert!(!blocks_parallel(64, GEMM_PAR_MIN_MACS_OUTSIDE));
        assert!(matches!(gemm_par(1024, 1024, 1024), Par::Seq));
        assert!(matches!(decomposition_par(1024), Par::Seq));
        assert!(matches!(eigh_par(1024), Par::Seq));
        set_max_threads(0);
        assert!(max_threads() >= 1);
    }
}
