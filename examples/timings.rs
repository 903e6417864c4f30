//! The matgrad side of `benches/compare/compare.py`: median wall time of the same workloads
//! the script runs in PyTorch and JAX, printed as JSON (seconds). Criterion benches under
//! `benches/` are the primary measurements; this exists so one script can put all three
//! libraries side by side on one machine.
//!
//! Run: `cargo run --release --example timings`

use matgrad::engine::testing::{real_matrix, symmetric_from_seed, Spectrum};
use matgrad::engine::{Axis, Tape};
use matgrad::spectral::{eigh, logm_sym};
use std::time::Instant;

fn median_secs(mut f: impl FnMut(), reps: usize) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

#[path = "../benches/common/deepo2p.rs"]
mod deepo2p;

fn main() {
    // optional filter: only workloads whose name contains the first argument
    let filter = std::env::args().nth(1).unwrap_or_default();
    let want = |name: &str| name.contains(filter.as_str());
    let mut out = Vec::new();
    // 100 × (2×2 matmul + add + scale), forward + backward: 300 primitive ops.
    let (x0, w0, b0) = (
        real_matrix(2, 2, 1),
        real_matrix(2, 2, 2),
        real_matrix(2, 2, 3),
    );
    let t = if !want("chain_2x2_300ops") {
        f64::NAN
    } else {
        median_secs(
            || {
                let tape = Tape::new();
                let mut x = tape.leaf(x0.clone()).unwrap();
                let w = tape.leaf(w0.clone()).unwrap();
                let b = tape.constant(b0.clone()).unwrap();
                for _ in 0..100 {
                    x = w.matmul(x).unwrap().add(b).unwrap().scale(0.5).unwrap();
                }
                let y = x.sum(Axis::All).unwrap();
                std::hint::black_box(tape.grad(y, &[w]).unwrap());
            },
            201,
        )
    };
    if t.is_finite() {
        out.push(format!("\"chain_2x2_300ops\": {t:e}"));
    }
    for n in [4usize, 64, 256] {
        if !want(&format!("eigh_fwd_bwd_{n} eigh_fwd_{n} logm_fwd_bwd_{n}")) {
            continue;
        }
        let a = symmetric_from_seed(&Spectrum::log_spaced(n, 0.5, 10.0).values(), 1);
        let (lbar, ubar) = (real_matrix(n, 1, 2), real_matrix(n, n, 3));
        let reps = if n >= 256 { 11 } else { 101 };
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let (l, u) = eigh(x).unwrap();
                std::hint::black_box(
                    tape.vjp(&[l, u], &[lbar.clone(), ubar.clone()], &[x])
                        .unwrap(),
                );
            },
            reps,
        );
        out.push(format!("\"eigh_fwd_bwd_{n}\": {t:e}"));
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                std::hint::black_box(eigh(x).unwrap());
            },
            reps,
        );
        out.push(format!("\"eigh_fwd_{n}\": {t:e}"));
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let y = logm_sym(x).unwrap();
                std::hint::black_box(tape.vjp(&[y], std::slice::from_ref(&ubar), &[x]).unwrap());
            },
            reps,
        );
        out.push(format!("\"logm_fwd_bwd_{n}\": {t:e}"));
    }
    for d in [4usize, 8, 32] {
        if !want(&format!("deepo2p_step_64x{d}")) {
            continue;
        }
        let step = deepo2p::Step::new(64, d);
        let t = median_secs(
            || {
                std::hint::black_box(step.run().unwrap());
            },
            51,
        );
        out.push(format!("\"deepo2p_step_64x{d}\": {t:e}"));
        let t = median_secs(
            || {
                std::hint::black_box(step.run_per_patch().unwrap());
            },
            51,
        );
        out.push(format!("\"deepo2p_step_per_patch_64x{d}\": {t:e}"));
    }
    println!("{{{}}}", out.join(", "));
}
