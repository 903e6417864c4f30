//! Parallelism chosen per call from the problem size.
//!
//! faer is built with its `rayon` feature, but a parallel region costs microseconds to open,
//! which is the whole budget of a small op (faer's parallel eigensolver made `eigh` at n = 4
//! 3.5× slower). So every call that matgrad makes with an explicit [`Par`] asks here:
//! [`gemm_par`] for a matrix product, [`decomposition_par`] for an eigen/singular value
//! decomposition. Below the thresholds (measured on the 2-core machine class, see
//! docs/PERFORMANCE.md) the answer is [`Par::Seq`]; above them, rayon with at most
//! [`max_threads`] threads.
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

/// A matrix product of at least this many multiply-adds (`m·n·k`) runs in parallel: about
/// a 96³ product (≈ 0.2 ms sequential on the machine class).
pub const GEMM_PAR_MIN_MACS: usize = 96 * 96 * 96;

/// An eigen- or singular value decomposition of at least this order runs in parallel. On
/// the 2-core machine class faer's parallel eigh and SVD were *slower* at n = 256 (eigh
/// forward 6.4 vs 5.9 ms, SVD 256² 12.7 vs 10.8 ms) and faster at 512 (eigh forward 24 vs
/// 30 ms); docs/PERFORMANCE.md.
pub const DECOMPOSITION_PAR_MIN_N: usize = 384;

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

/// The parallelism for an `m×k` by `k×n` product.
pub fn gemm_par(m: usize, n: usize, k: usize) -> Par {
    parallel(m.saturating_mul(n).saturating_mul(k) >= GEMM_PAR_MIN_MACS)
}

/// The parallelism for a decomposition of an `n×n` matrix (or the smaller side of a
/// rectangular one).
pub fn decomposition_par(n: usize) -> Par {
    parallel(n >= DECOMPOSITION_PAR_MIN_N)
}

/// Whether `batch` independent blocks of `macs_per_block` multiply-adds each should be
/// spread over rayon's threads (each block then runs sequentially): when there are at least
/// two blocks, more than one thread, and as much work in total as a parallel GEMM
/// ([`GEMM_PAR_MIN_MACS`]).
pub fn blocks_parallel(batch: usize, macs_per_block: usize) -> bool {
    batch > 1 && max_threads() > 1 && batch.saturating_mul(macs_per_block) >= GEMM_PAR_MIN_MACS
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
        assert!(matches!(gemm_par(4, 4, 4), Par::Seq));
        assert!(matches!(gemm_par(96, 96, 96), Par::Rayon(_)));
        assert!(matches!(gemm_par(95, 96, 96), Par::Seq));
        assert!(matches!(decomposition_par(383), Par::Seq));
        assert!(matches!(decomposition_par(384), Par::Rayon(_)));
        assert!(blocks_parallel(2, GEMM_PAR_MIN_MACS / 2));
        assert!(!blocks_parallel(2, GEMM_PAR_MIN_MACS / 2 - 1));
        assert!(!blocks_parallel(1, GEMM_PAR_MIN_MACS));
        set_max_threads(1);
        assert!(!blocks_parallel(64, GEMM_PAR_MIN_MACS));
        assert!(matches!(gemm_par(1024, 1024, 1024), Par::Seq));
        assert!(matches!(decomposition_par(1024), Par::Seq));
        set_max_threads(0);
        assert!(max_threads() >= 1);
    }
}
