//! The matgrad side of `benches/compare/compare.py`: median wall time of the same workloads
//! the script runs in PyTorch and JAX, printed as JSON (seconds). Criterion benches under
//! `benches/` are the primary measurements; this exists so one script can put all three
//! libraries side by side on one machine.
//!
//! Run: `cargo run --release --example timings [filter]`; add `--features system-alloc` to
//! time it with the system allocator instead of mimalloc.

use matgrad::engine::testing::{real_matrix, symmetric_from_seed, Spectrum};
use matgrad::engine::{Axis, Tape};
use matgrad::spectral::{eigh, logm_sym, svd};
use std::rc::Rc;
use std::time::Instant;

/// mimalloc for this executable (docs/PERFORMANCE.md: the tape's small allocations); the
/// library leaves the allocator to its user. `--features system-alloc` keeps the system's.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // MATGRAD_IN_POOL=1: run every workload on a worker thread of rayon's pool
    // (`par::in_pool`, the recommended way to use several cores; docs/PERFORMANCE.md)
    if std::env::var_os("MATGRAD_IN_POOL").is_some_and(|v| v == "1") {
        matgrad::engine::par::in_pool(run);
    } else {
        run();
    }
}

fn run() {
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
    for n in [4usize, 16, 64, 256, 512] {
        if !want(&format!("eigh_fwd_bwd_{n} eigh_fwd_{n} logm_fwd_bwd_{n}")) {
            continue;
        }
        let a = symmetric_from_seed(&Spectrum::log_spaced(n, 0.5, 10.0).values(), 1);
        let (lbar, ubar) = (real_matrix(n, 1, 2), real_matrix(n, n, 3));
        let reps = if n >= 512 {
            5
        } else if n >= 256 {
            11
        } else {
            101
        };
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
    // thin SVD forward + backward with cotangents on U, S and V (PyTorch/JAX: the same
    // cotangents on U, S and Vh's transpose), and the forward alone
    for (m, n) in [(64usize, 64usize), (256, 256), (512, 256)] {
        let name = format!("svd_fwd_bwd_{m}x{n}");
        if !want(&format!("{name} svd_fwd_{m}x{n}")) {
            continue;
        }
        let k = m.min(n);
        let a = real_matrix(m, n, 11);
        let cts = [
            real_matrix(m, k, 12),
            real_matrix(k, 1, 13),
            real_matrix(n, k, 14),
        ];
        let reps = if m >= 256 { 11 } else { 101 };
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let (u, s, v) = svd(x).unwrap();
                std::hint::black_box(tape.vjp(&[u, s, v], &cts, &[x]).unwrap());
            },
            reps,
        );
        out.push(format!("\"{name}\": {t:e}"));
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                std::hint::black_box(svd(x).unwrap());
            },
            reps,
        );
        out.push(format!("\"svd_fwd_{m}x{n}\": {t:e}"));
    }
    // O2P: logm(FᵀF/m + εI) forward + backward for F 1024×256, and the batched layer on
    // 64 blocks of 64×32 (cotangent: a fixed random matrix)
    if want("o2p_fwd_bwd_1024x256") {
        let f = real_matrix(1024, 256, 21);
        let g = real_matrix(256, 256, 22);
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(f.clone()).unwrap();
                let y = matgrad::layers::o2p(x, 1e-3).unwrap();
                std::hint::black_box(tape.vjp(&[y], std::slice::from_ref(&g), &[x]).unwrap());
            },
            11,
        );
        out.push(format!("\"o2p_fwd_bwd_1024x256\": {t:e}"));
    }
    if want("o2p_batch_fwd_bwd_64x64x32") {
        let f = real_matrix(64 * 64, 32, 23);
        let g = real_matrix(64 * 32, 32, 24);
        let t = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(f.clone()).unwrap();
                let y = matgrad::layers::o2p_batch(x, 64, 1e-3).unwrap();
                std::hint::black_box(tape.vjp(&[y], std::slice::from_ref(&g), &[x]).unwrap());
            },
            31,
        );
        out.push(format!("\"o2p_batch_fwd_bwd_64x64x32\": {t:e}"));
    }
    // A·B·C forward + VJP w.r.t. A, B, C on the tape vs the same six GEMMs in bare faer
    for n in [32usize, 128, 256] {
        if !want(&format!("abc_fwd_vjp_{n} abc_bare_faer_{n}")) {
            continue;
        }
        let (a, b, c, g) = (
            real_matrix(n, n, 31),
            real_matrix(n, n, 32),
            real_matrix(n, n, 33),
            real_matrix(n, n, 34),
        );
        let reps = match n {
            256.. => 31,
            128.. => 101,
            _ => 201,
        };
        // shared leaves (no copy of the inputs per call), as the bare-faer reference
        let (sa, sb, sc) = (Rc::new(a.clone()), Rc::new(b.clone()), Rc::new(c.clone()));
        let t = median_secs(
            || {
                let tape = Tape::new();
                let (x, y, z) = (
                    tape.leaf_shared(Rc::clone(&sa)).unwrap(),
                    tape.leaf_shared(Rc::clone(&sb)).unwrap(),
                    tape.leaf_shared(Rc::clone(&sc)).unwrap(),
                );
                let p = x.matmul(y).unwrap().matmul(z).unwrap();
                std::hint::black_box(
                    tape.vjp(&[p], std::slice::from_ref(&g), &[x, y, z])
                        .unwrap(),
                );
            },
            reps,
        );
        out.push(format!("\"abc_fwd_vjp_{n}\": {t:e}"));
        let (ar, br, cr, gr) = (
            a.as_real().unwrap().clone(),
            b.as_real().unwrap().clone(),
            c.as_real().unwrap().clone(),
            g.as_real().unwrap().clone(),
        );
        // the same per-call parallelism as matgrad's GEMMs
        let mm = |a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>| {
            let mut out = faer::Mat::<f64>::zeros(a.nrows(), b.ncols());
            faer::linalg::matmul::matmul(
                out.as_mut(),
                faer::Accum::Replace,
                a,
                b,
                1.0,
                matgrad::engine::par::gemm_par(a.nrows(), b.ncols(), a.ncols()),
            );
            out
        };
        let t = median_secs(
            || {
                let ab = mm(ar.as_ref(), br.as_ref());
                let p = mm(ab.as_ref(), cr.as_ref());
                let abar = mm(gr.as_ref(), cr.transpose()); // Ḡ Cᵀ = cotangent of AB
                let cbar = mm(ab.transpose(), gr.as_ref());
                let xbar = mm(abar.as_ref(), br.transpose());
                let ybar = mm(ar.transpose(), abar.as_ref());
                std::hint::black_box((p, xbar, ybar, cbar));
            },
            reps,
        );
        out.push(format!("\"abc_bare_faer_{n}\": {t:e}"));
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
    // conv2d, 16 images of 8×32×32, 16 kernels 3×3, padding 1: matgrad's tape (im2col node
    // + faer GEMM, VJP through the engine) vs the same im2col/col2im loops and
    // GEMMs written by hand on faer without a tape (issue 10's "within 1.5×" reference)
    if want("conv2d") {
        let (b, c, h, w, co) = (16usize, 8usize, 32usize, 32usize, 16usize);
        let maps = matgrad::layers::FeatureMaps {
            channels: c,
            batch: b,
            height: h,
            width: w,
        };
        let win = matgrad::layers::Window {
            padding: 1,
            ..matgrad::layers::Window::new(3, 3)
        };
        let (x0, k0) = (real_matrix(c, b * h * w, 7), real_matrix(co, c * 9, 8));
        let g0 = real_matrix(co, b * h * w, 9);
        let fwd = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.constant(x0.clone()).unwrap();
                let k = tape.constant(k0.clone()).unwrap();
                std::hint::black_box(matgrad::layers::conv2d(x, &maps, k, None, &win).unwrap());
            },
            31,
        );
        let fwd_bwd = median_secs(
            || {
                let tape = Tape::new();
                let x = tape.leaf(x0.clone()).unwrap();
                let k = tape.leaf(k0.clone()).unwrap();
                let y = matgrad::layers::conv2d(x, &maps, k, None, &win).unwrap();
                std::hint::black_box(tape.vjp(&[y], std::slice::from_ref(&g0), &[x, k]).unwrap());
            },
            31,
        );
        // by hand: contiguous column-slice loops (index arithmetic, no list) and the same
        // three faer GEMMs, no tape — the best plain version we could write
        let (xr, kr, gr) = (
            x0.as_real().unwrap().clone(),
            k0.as_real().unwrap().clone(),
            g0.as_real().unwrap().clone(),
        );
        let cols = b * h * w;
        // (patch column, kernel offset, input pixel) for every in-image window entry
        let each = |f: &mut dyn FnMut(usize, usize, usize)| {
            for bi in 0..b {
                for oh in 0..h {
                    for ow in 0..w {
                        let col = (bi * h + oh) * w + ow;
                        for ki in 0..3 {
                            let ih = (oh + ki).wrapping_sub(1);
                            if ih >= h {
                                continue;
                            }
                            for kj in 0..3 {
                                let iw = (ow + kj).wrapping_sub(1);
                                if iw < w {
                                    f(col, ki * 3 + kj, bi * h * w + ih * w + iw);
                                }
                            }
                        }
                    }
                }
            }
        };
        let im2col = |x: &faer::Mat<f64>| {
            let mut p = faer::Mat::<f64>::zeros(c * 9, cols);
            each(&mut |col, off, pix| {
                let (s, d) = (x.col_as_slice(pix), p.col_as_slice_mut(col));
                for ci in 0..c {
                    d[ci * 9 + off] = s[ci];
                }
            });
            p
        };
        let hand_fwd = median_secs(
            || {
                let p = im2col(&xr);
                std::hint::black_box(&kr * &p);
            },
            31,
        );
        let hand_fwd_bwd = median_secs(
            || {
                let p = im2col(&xr);
                let y = &kr * &p;
                let kbar = &gr * p.transpose();
                let pbar = kr.transpose() * &gr;
                let mut xbar = faer::Mat::<f64>::zeros(c, cols);
                each(&mut |col, off, pix| {
                    let (s, d) = (pbar.col_as_slice(col), xbar.col_as_slice_mut(pix));
                    for ci in 0..c {
                        d[ci] += s[ci * 9 + off];
                    }
                });
                std::hint::black_box((y, kbar, xbar));
            },
            31,
        );
        out.push(format!("\"conv2d_fwd_16x8x32x32_k16\": {fwd:e}"));
        out.push(format!("\"conv2d_fwd_bwd_16x8x32x32_k16\": {fwd_bwd:e}"));
        out.push(format!("\"conv2d_by_hand_fwd\": {hand_fwd:e}"));
        out.push(format!("\"conv2d_by_hand_fwd_bwd\": {hand_fwd_bwd:e}"));
    }
    println!("{{{}}}", out.join(", "));
}
