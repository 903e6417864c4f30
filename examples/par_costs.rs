//! What a parallel region costs, and from which size faer's 2-thread GEMM and eigh beat
//! their sequential versions, from the main thread and from a worker thread of rayon's pool:
//! the measurements behind the thresholds of `matgrad_engine::par` (docs/PERFORMANCE.md,
//! "Where the caller runs"). Run with two threads:
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example par_costs`

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rayon::prelude::*;
use std::time::Instant;

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Median wall time (µs) of a 64-item parallel sum, back to back and after 200 µs of
/// sequential work (by then the workers sleep).
fn region_cost() -> (f64, f64) {
    let v: Vec<u64> = (0..64).collect();
    let region = || {
        let s = Instant::now();
        std::hint::black_box(v.par_iter().map(|x| x * 2).sum::<u64>());
        s.elapsed().as_secs_f64() * 1e6
    };
    let back_to_back: Vec<f64> = (0..2000).map(|_| region()).collect();
    let after_gap: Vec<f64> = (0..500)
        .map(|_| {
            let w = Instant::now();
            while w.elapsed().as_micros() < 200 {}
            region()
        })
        .collect();
    (median(back_to_back), median(after_gap))
}

/// Median time (µs) of an n×n×n product, sequential and on `threads` threads.
fn gemm_times(n: usize, threads: usize) -> (f64, f64) {
    let a = Mat::<f64>::from_fn(n, n, |i, j| ((i * 31 + j * 17) % 23) as f64 - 11.0);
    let b = Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 5) % 13) as f64 - 6.0);
    let reps = (200_000_000 / (n * n * n)).max(5);
    let time = |par: Par| {
        median(
            (0..9)
                .map(|_| {
                    let s = Instant::now();
                    for _ in 0..reps {
                        let mut c = Mat::<f64>::zeros(n, n);
                        matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, par);
                        std::hint::black_box(&c);
                    }
                    s.elapsed().as_secs_f64() / reps as f64 * 1e6
                })
                .collect(),
        )
    };
    (time(Par::Seq), time(Par::rayon(threads)))
}

/// Median time (ms) of faer's eigh (with vectors) of an n×n symmetric matrix, sequential
/// and on `threads` threads.
fn eigh_times(n: usize, threads: usize) -> (f64, f64) {
    let f = Mat::<f64>::from_fn(n, n, |i, j| (((i * 31 + j * 17) % 23) as f64 - 11.0) / 7.0);
    let a = &f + f.transpose();
    let time = |par: Par| {
        use faer::linalg::evd;
        median(
            (0..7)
                .map(|_| {
                    let s = Instant::now();
                    let mut u = Mat::<f64>::zeros(n, n);
                    let mut w = faer::diag::Diag::<f64>::zeros(n);
                    let p: evd::SelfAdjointEvdParams = faer::Auto::<f64>::auto();
                    let scratch = evd::self_adjoint_evd_scratch::<f64>(
                        n,
                        evd::ComputeEigenvectors::Yes,
                        par,
                        p.into(),
                    );
                    let mut mem = faer::dyn_stack::MemBuffer::new(scratch);
                    evd::self_adjoint_evd(
                        a.as_ref(),
                        w.as_mut(),
                        Some(u.as_mut()),
                        par,
                        faer::dyn_stack::MemStack::new(&mut mem),
                        p.into(),
                    )
                    .expect("a symmetric matrix has an eigendecomposition");
                    std::hint::black_box(&u);
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    (time(Par::Seq), time(Par::rayon(threads)))
}

fn report(place: &str) {
    let threads = rayon::current_num_threads();
    let (b2b, gap) = region_cost();
    println!("{place}: a parallel region costs {b2b:.1} µs back to back, {gap:.1} µs after 200 µs of sequential work");
    for n in [96usize, 128, 160, 192, 256] {
        let (seq, par) = gemm_times(n, threads);
        println!("{place}: GEMM {n}³ sequential {seq:.1} µs, {threads} threads {par:.1} µs, speedup {:.2}", seq / par);
    }
    for n in [128usize, 256, 384] {
        let (seq, par) = eigh_times(n, threads);
        println!("{place}: eigh n = {n} sequential {seq:.2} ms, {threads} threads {par:.2} ms, speedup {:.2}", seq / par);
    }
}

fn main() {
    report("main thread");
    matgrad::engine::par::in_pool(|| report("worker thread"));
}
