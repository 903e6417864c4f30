//! Criterion benches. Groups are named `<area>/<what>/<n>`; forward and backward are
//! measured separately where it matters. Run: `cargo bench --bench bench_main`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::Mat;
use matgrad::engine::testing::real_matrix;
use matgrad::engine::{Axis, Tape, Value};

/// mimalloc for this executable (docs/PERFORMANCE.md: the tape's small allocations); the
/// library leaves the allocator to its user.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tape overhead: a chain of 100 × (2×2 matmul + add + scale), forward and backward: 300
/// primitive ops, so divide the time by 300 for the cost per op (criterion's throughput
/// line does it).
fn tape_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape/chain_2x2");
    g.throughput(Throughput::Elements(300));
    let x0 = real_matrix(2, 2, 1);
    let w = real_matrix(2, 2, 2)
        .axpy(0.0, &real_matrix(2, 2, 2))
        .unwrap();
    let b = real_matrix(2, 2, 3);
    g.bench_function("forward+backward/100", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let mut x = tape.leaf(x0.clone()).unwrap();
            let w = tape.leaf(w.clone()).unwrap();
            let b = tape.constant(b.clone()).unwrap();
            for _ in 0..100 {
                x = w.matmul(x).unwrap().add(b).unwrap().scale(0.5).unwrap();
            }
            let y = x.sum(Axis::All).unwrap();
            black_box(tape.grad(y, &[w]).unwrap());
        })
    });
    g.bench_function("forward/100", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let mut x = tape.leaf(x0.clone()).unwrap();
            let w = tape.leaf(w.clone()).unwrap();
            let b = tape.constant(b.clone()).unwrap();
            for _ in 0..100 {
                x = w.matmul(x).unwrap().add(b).unwrap().scale(0.5).unwrap();
            }
            black_box(x.sum(Axis::All).unwrap());
        })
    });
    g.finish();
    // a graph of small products, pointwise functions, transposes, reductions and
    // broadcasts, whose backward runs on value rules (docs/PERFORMANCE.md, eighth round):
    // 100 × 4 ops and 3 for the loss
    let mut g = c.benchmark_group("tape/tanh_chain_4x4");
    g.throughput(Throughput::Elements(403));
    let (x4, w4, b4) = (
        real_matrix(4, 4, 1),
        real_matrix(4, 4, 2),
        real_matrix(4, 4, 3),
    );
    g.bench_function("forward+backward/100", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let mut x = tape.leaf(x4.clone()).unwrap();
            let w = tape.leaf(w4.clone()).unwrap();
            let b = tape.constant(b4.clone()).unwrap();
            for _ in 0..100 {
                x = w
                    .transpose()
                    .unwrap()
                    .matmul(x)
                    .unwrap()
                    .add(b)
                    .unwrap()
                    .tanh()
                    .unwrap();
            }
            let y = x
                .sum(Axis::Rows)
                .unwrap()
                .broadcast_to(4, 4)
                .unwrap()
                .sum(Axis::All);
            black_box(tape.grad(y.unwrap(), &[w]).unwrap());
        })
    });
    g.finish();
}

/// A matmul-dominated graph, Y = A B C with a general cotangent Ȳ, forward + VJP through
/// the tape, against the same six GEMMs (2 forward, 4 backward) called on faer directly.
fn matmul_graph(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape_vs_faer/abc");
    for n in [32usize, 128, 256] {
        let (a, b, cm) = (
            real_matrix(n, n, 1),
            real_matrix(n, n, 2),
            real_matrix(n, n, 3),
        );
        let gbar = real_matrix(n, n, 4);
        let gr = gbar.as_real().unwrap().clone();
        g.throughput(Throughput::Elements((n * n) as u64));
        // shared leaves (no copy of the inputs per call), as the bare-faer reference
        let (sa, sb, sc) = (
            std::rc::Rc::new(a.clone()),
            std::rc::Rc::new(b.clone()),
            std::rc::Rc::new(cm.clone()),
        );
        g.bench_with_input(BenchmarkId::new("tape", n), &n, |bench, _| {
            bench.iter(|| {
                let tape = Tape::new();
                let (x, y, z) = (
                    tape.leaf_shared(std::rc::Rc::clone(&sa)).unwrap(),
                    tape.leaf_shared(std::rc::Rc::clone(&sb)).unwrap(),
                    tape.leaf_shared(std::rc::Rc::clone(&sc)).unwrap(),
                );
                let t = x.matmul(y).unwrap().matmul(z).unwrap();
                black_box(
                    tape.vjp(&[t], std::slice::from_ref(&gbar), &[x, y, z])
                        .unwrap(),
                );
            })
        });
        let (ar, br, cr) = (
            a.as_real().unwrap().clone(),
            b.as_real().unwrap().clone(),
            cm.as_real().unwrap().clone(),
        );
        g.bench_with_input(BenchmarkId::new("faer", n), &n, |bench, _| {
            bench.iter(|| {
                // forward: AB, (AB)C; backward: C̄ = (AB)ᵀȲ, (AB)̄ = Ȳ Cᵀ, Ā = (AB)̄ Bᵀ, B̄ = Aᵀ (AB)̄
                let ab = &ar * &br;
                let abc = &ab * &cr;
                let gc: Mat<f64> = ab.transpose() * &gr;
                let gab: Mat<f64> = &gr * cr.transpose();
                let ga = &gab * br.transpose();
                let gb = ar.transpose() * &gab;
                black_box((abc, ga, gb, gc));
            })
        });
    }
    g.finish();
    let _ = Value::scalar(0.0);
}

/// eigh and logm_sym: faer's eigensolver alone, the op's forward, and forward + backward
/// (VJP with random cotangents for both outputs), for n from 4 to 512.
fn spectral(c: &mut Criterion) {
    use matgrad::engine::testing::{symmetric_from_seed, Spectrum};
    use matgrad::spectral::{eigh, logm_sym};
    for n in [4usize, 16, 64, 256, 512] {
        let mut g = c.benchmark_group(format!("eigh/{n}"));
        if n >= 256 {
            g.sample_size(10);
        }
        let a = symmetric_from_seed(&Spectrum::log_spaced(n, 0.5, 10.0).values(), 1);
        let ar = a.as_real().unwrap().clone();
        let (lbar, ubar) = (real_matrix(n, 1, 2), real_matrix(n, n, 3));
        g.bench_function("faer_forward", |b| {
            b.iter(|| black_box(ar.self_adjoint_eigen(faer::Side::Lower).unwrap()))
        });
        g.bench_function("forward", |b| {
            b.iter(|| {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                black_box(eigh(x).unwrap());
            })
        });
        g.bench_function("forward+backward", |b| {
            b.iter(|| {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let (l, u) = eigh(x).unwrap();
                black_box(
                    tape.vjp(&[l, u], &[lbar.clone(), ubar.clone()], &[x])
                        .unwrap(),
                );
            })
        });
        g.bench_function("logm_sym_forward+backward", |b| {
            b.iter(|| {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let y = logm_sym(x).unwrap();
                black_box(tape.vjp(&[y], std::slice::from_ref(&ubar), &[x]).unwrap());
            })
        });
        g.finish();
    }
}

/// Second-order pooling over many regions: logm of 512 SPD 8×8 blocks, forward +
/// backward, as one batched node (rayon) versus one node per block.
fn batched(c: &mut Criterion) {
    use matgrad::engine::testing::spd_from_seed;
    use matgrad::engine::Var;
    use matgrad::spectral::{logm_sym, matrix_function_sym_batched, SymFn};
    let (b, n) = (512usize, 8usize);
    let blocks: Vec<Value> = (0..b as u64).map(|k| spd_from_seed(n, 10.0, k)).collect();
    let gbar = real_matrix(b * n, n, 1);
    let mut g = c.benchmark_group(format!("logm_sym_batched/{b}x{n}"));
    g.sample_size(20);
    g.bench_function("batched_node", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let leaves: Vec<Var> = blocks
                .iter()
                .map(|v| tape.constant(v.clone()).unwrap())
                .collect();
            let x = tape.leaf(Var::vcat(&leaves).unwrap().value()).unwrap();
            let y = matrix_function_sym_batched(x, n, SymFn::Log).unwrap();
            black_box(tape.vjp(&[y], std::slice::from_ref(&gbar), &[x]).unwrap());
        })
    });
    g.bench_function("node_per_block", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let leaves: Vec<Var> = blocks
                .iter()
                .map(|v| tape.leaf(v.clone()).unwrap())
                .collect();
            let ys: Vec<Var> = leaves.iter().map(|&x| logm_sym(x).unwrap()).collect();
            let y = Var::vcat(&ys).unwrap();
            black_box(
                tape.vjp(&[y], std::slice::from_ref(&gbar), &leaves)
                    .unwrap(),
            );
        })
    });
    g.finish();
}

/// Thin SVD: forward, and forward + backward with cotangents on U, S and V (the rows of
/// docs/PERFORMANCE.md).
fn svd(c: &mut Criterion) {
    use matgrad::spectral::svd;
    for (m, n) in [(64usize, 64usize), (256, 256), (512, 256)] {
        let mut g = c.benchmark_group(format!("svd/{m}x{n}"));
        if m >= 256 {
            g.sample_size(10);
        }
        let k = m.min(n);
        let a = real_matrix(m, n, 11);
        let cts = [
            real_matrix(m, k, 12),
            real_matrix(k, 1, 13),
            real_matrix(n, k, 14),
        ];
        g.bench_function("forward", |b| {
            b.iter(|| {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                black_box(svd(x).unwrap());
            })
        });
        g.bench_function("forward+backward", |b| {
            b.iter(|| {
                let tape = Tape::new();
                let x = tape.leaf(a.clone()).unwrap();
                let (u, s, v) = svd(x).unwrap();
                black_box(tape.vjp(&[u, s, v], &cts, &[x]).unwrap());
            })
        });
        g.finish();
    }
}

/// Second-order pooling: `o2p` on one 1024×256 feature matrix and `o2p_batch` on 64
/// blocks of 64×32, forward + backward.
fn o2p(c: &mut Criterion) {
    let mut g = c.benchmark_group("o2p");
    g.sample_size(10);
    let (f, gb) = (real_matrix(1024, 256, 21), real_matrix(256, 256, 22));
    g.bench_function("single_1024x256/forward+backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(f.clone()).unwrap();
            let y = matgrad::layers::o2p(x, 1e-3).unwrap();
            black_box(tape.vjp(&[y], std::slice::from_ref(&gb), &[x]).unwrap());
        })
    });
    let (fb, gbb) = (real_matrix(64 * 64, 32, 23), real_matrix(64 * 32, 32, 24));
    g.bench_function("batch_64x64x32/forward+backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(fb.clone()).unwrap();
            let y = matgrad::layers::o2p_batch(x, 64, 1e-3).unwrap();
            black_box(tape.vjp(&[y], std::slice::from_ref(&gbb), &[x]).unwrap());
        })
    });
    g.finish();
}

/// conv2d: 16 images of 8×32×32, 16 kernels 3×3, padding 1; forward, and forward +
/// backward to the input and the kernels.
fn conv2d(c: &mut Criterion) {
    use matgrad::layers::{conv2d, FeatureMaps, Window};
    let (b, ch, h, w, co) = (16usize, 8usize, 32usize, 32usize, 16usize);
    let maps = FeatureMaps {
        channels: ch,
        batch: b,
        height: h,
        width: w,
    };
    let win = Window {
        padding: 1,
        ..Window::new(3, 3)
    };
    let (x0, k0) = (real_matrix(ch, b * h * w, 7), real_matrix(co, ch * 9, 8));
    let g0 = real_matrix(co, b * h * w, 9);
    let mut g = c.benchmark_group("conv2d/16x8x32x32_k16");
    g.sample_size(20);
    g.bench_function("forward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let x = tape.constant(x0.clone()).unwrap();
            let k = tape.constant(k0.clone()).unwrap();
            black_box(conv2d(x, &maps, k, None, &win).unwrap());
        })
    });
    g.bench_function("forward+backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(x0.clone()).unwrap();
            let k = tape.leaf(k0.clone()).unwrap();
            let y = conv2d(x, &maps, k, None, &win).unwrap();
            black_box(tape.vjp(&[y], std::slice::from_ref(&g0), &[x, k]).unwrap());
        })
    });
    g.finish();
}

#[path = "common/deepo2p.rs"]
mod deepo2p;

/// A DeepO2P training step (issue 9): batch of 64 patches, learned features, log-covariance
/// pooling, linear classifier, cross-entropy; forward + backward to both weight matrices.
fn deepo2p_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("deepo2p_step/64");
    g.sample_size(20);
    for d in [4usize, 8, 32] {
        let step = deepo2p::Step::new(64, d);
        g.bench_with_input(BenchmarkId::new("batched", d), &d, |bench, _| {
            bench.iter(|| black_box(step.run().unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("node_per_patch", d), &d, |bench, _| {
            bench.iter(|| black_box(step.run_per_patch().unwrap()))
        });
    }
    g.finish();
}

/// The finiteness scan every recorded value gets (unless its op proved a bound): one
/// `Value::is_finite` over real and complex matrices from 4×4 (the entry-by-entry path) to
/// 72×16384 (conv2d's patch matrix).
fn finite_scan(c: &mut Criterion) {
    use matgrad::engine::testing::complex_matrix;
    let mut g = c.benchmark_group("finite_scan");
    for (m, n) in [
        (4usize, 4usize),
        (16, 16),
        (32, 32),
        (128, 128),
        (72, 16384),
    ] {
        g.throughput(Throughput::Elements((m * n) as u64));
        let (r, z) = (real_matrix(m, n, 1), complex_matrix(m, n, 2));
        g.bench_with_input(BenchmarkId::new("real", format!("{m}x{n}")), &r, |b, v| {
            b.iter(|| black_box(v.is_finite()))
        });
        g.bench_with_input(
            BenchmarkId::new("complex", format!("{m}x{n}")),
            &z,
            |b, v| b.iter(|| black_box(v.is_finite())),
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    finite_scan,
    tape_overhead,
    matmul_graph,
    spectral,
    svd,
    o2p,
    batched,
    conv2d,
    deepo2p_step
);
criterion_main!(benches);
