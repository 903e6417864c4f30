//! The training infrastructure: initialisers, optimizers against hand-computed steps,
//! losses against closed forms, reproducibility, checkpoints.

use matgrad_engine::{Axis, Error, Tape, Value, C64};
use matgrad_layers::train::{
    checkpoint, clip_grad_norm, loss, select_rows, Activation, Adam, Batches, Init, Linear, Module,
    Optimizer, ParamSet, Sequential, Sgd,
};

#[test]
fn initialisers_have_their_statistics() {
    let mut ps = ParamSet::new(3);
    let g = ps.add("g", 200, 100, Init::GlorotUniform).unwrap();
    let h = ps.add("h", 400, 50, Init::HeNormal).unwrap();
    let q = ps.add("q", 6, 4, Init::Orthogonal(2.0)).unwrap();
    let w = ps.add("w", 3, 5, Init::Orthogonal(1.0)).unwrap();
    let bound = (6.0f64 / 300.0).sqrt();
    assert!(ps.get(g).max_abs() <= bound);
    let hv = ps.get(h).as_real().unwrap().clone();
    let var: f64 = hv
        .col_iter()
        .flat_map(|c| c.iter().map(|x| x * x).collect::<Vec<_>>())
        .sum::<f64>()
        / 20000.0;
    assert!(
        (var - 2.0 / 400.0).abs() < 0.1 * 2.0 / 400.0,
        "He variance {var}"
    );
    // Qᵀ Q = 4 I (gain 2), W Wᵀ = I for a wide orthogonal init
    let qm = ps.get(q).as_real().unwrap();
    let qtq = qm.transpose() * qm;
    let wm = ps.get(w).as_real().unwrap();
    let wwt = wm * wm.transpose();
    for i in 0..4 {
        for j in 0..4 {
            assert!((qtq[(i, j)] - if i == j { 4.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            assert!((wwt[(i, j)] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
    assert!(matches!(
        ps.add("g", 1, 1, Init::Zeros),
        Err(Error::InvalidArgument { .. })
    ));
}

/// SGD with momentum and weight decay, and Adam, against steps computed by hand on a 1×1
/// parameter (real) and a complex one.
#[test]
fn optimizer_steps_match_hand_computation() {
    let mut ps = ParamSet::new(0);
    ps.add_value("t", Value::scalar(1.0)).unwrap();
    let mut sgd = Sgd::new(0.1).momentum(0.9).weight_decay(0.01);
    // v₁ = g + λθ = 2 + 0.01 = 2.01, θ₁ = 1 − 0.201 = 0.799
    sgd.step(&mut ps, &[Value::scalar(2.0)]).unwrap();
    assert!((ps.values()[0].scalar_real().unwrap() - 0.799).abs() < 1e-15);
    // v₂ = 0.9·2.01 + 2 + 0.00799 = 3.81699, θ₂ = 0.799 − 0.381699
    sgd.step(&mut ps, &[Value::scalar(2.0)]).unwrap();
    assert!((ps.values()[0].scalar_real().unwrap() - (0.799 - 0.381699)).abs() < 1e-14);
    // Adam's first step moves each entry by lr·g/(|g| + ε) ≈ lr·sign(g), for complex g too
    let mut ps = ParamSet::new(0);
    ps.add_value("z", Value::Complex(faer::mat![[C64::new(1.0, 1.0)]]))
        .unwrap();
    let mut adam = Adam::new(0.01);
    let g = C64::new(3.0, -4.0);
    adam.step(&mut ps, &[Value::Complex(faer::mat![[g]])])
        .unwrap();
    let z = ps.values()[0].as_complex().unwrap()[(0, 0)];
    let want = C64::new(1.0, 1.0) - g / (5.0 + 1e-8) * 0.01;
    assert!((z - want).norm() < 1e-15, "{z} vs {want}");
    // mismatched gradients are an error
    assert!(adam.step(&mut ps, &[Value::scalar(1.0)]).is_err());
}

#[test]
fn clipping_scales_to_the_global_norm() {
    let mut g = vec![
        Value::Real(faer::mat![[3.0]]),
        Value::Real(faer::mat![[4.0, 0.0]]),
    ];
    let n = clip_grad_norm(&mut g, 1.0);
    assert_eq!(n, 5.0);
    assert!((g[0].scalar_real().unwrap() - 0.6).abs() < 1e-15);
    assert!((g[1].as_real().unwrap()[(0, 0)] - 0.8).abs() < 1e-15);
    let n = clip_grad_norm(&mut g, 10.0);
    assert!((n - 1.0).abs() < 1e-15);
}

/// Softmax cross-entropy: value against log-sum-exp computed by hand, gradient
/// (softmax − onehot)/n, and no overflow at logits of 1e3.
#[test]
fn softmax_cross_entropy_closed_form() {
    let z = Value::Real(faer::mat![[1.0, 2.0, 0.5], [1000.0, -1000.0, 999.0]]);
    let labels = [1, 2];
    let tape = Tape::new();
    let x = tape.leaf(z.clone()).unwrap();
    let l = loss::softmax_cross_entropy(x, &labels).unwrap();
    let zr = z.as_real().unwrap();
    let lse = |i: usize| {
        let m = (0..3).map(|j| zr[(i, j)]).fold(f64::NEG_INFINITY, f64::max);
        m + (0..3).map(|j| (zr[(i, j)] - m).exp()).sum::<f64>().ln()
    };
    let want = ((lse(0) - 2.0) + (lse(1) - 999.0)) / 2.0;
    assert!((l.value().scalar_real().unwrap() - want).abs() < 1e-13);
    let g = tape.grad(l, &[x]).unwrap();
    let gr = g[0].as_real().unwrap();
    for i in 0..2 {
        for j in 0..3 {
            let p = (zr[(i, j)] - lse(i)).exp();
            let want = (p - f64::from(u8::from(labels[i] == j))) / 2.0;
            assert!((gr[(i, j)] - want).abs() < 1e-14);
        }
    }
    assert!(loss::softmax_cross_entropy(x, &[3, 0]).is_err());
    assert!(loss::softmax_cross_entropy(x, &[0]).is_err());
    assert_eq!(loss::accuracy(&z, &[1, 0]), 1.0);
}

fn train_once(seed: u64) -> Vec<Value> {
    let mut ps = ParamSet::new(seed);
    let net = Sequential::new()
        .then(Linear::new(&mut ps, "l1", 4, 8, Init::HeNormal, true).unwrap())
        .then(Activation::Tanh)
        .then(Linear::new(&mut ps, "l2", 8, 3, Init::GlorotUniform, true).unwrap());
    let x = matgrad_engine::testing::real_matrix(32, 4, seed);
    let labels: Vec<usize> = (0..32).map(|i| i % 3).collect();
    let mut opt = Adam::new(0.01).weight_decay(1e-4);
    let mut batches = Batches::new(32, 8, seed).unwrap();
    for _ in 0..5 {
        for b in batches.epoch() {
            let tape = Tape::new();
            let p = ps.bind(&tape).unwrap();
            let xb = tape.constant(select_rows(&x, &b).unwrap()).unwrap();
            let yb: Vec<usize> = b.iter().map(|&i| labels[i]).collect();
            let l = loss::softmax_cross_entropy(net.forward(&p, xb).unwrap(), &yb).unwrap();
            let mut g = p.grad(l).unwrap();
            clip_grad_norm(&mut g, 5.0);
            opt.step(&mut ps, &g).unwrap();
        }
    }
    ps.values().to_vec()
}

/// Same seed ⇒ bit-identical parameters after training; another seed ⇒ different ones.
#[test]
fn same_seed_gives_bit_identical_training() {
    let (a, b, c) = (train_once(11), train_once(11), train_once(12));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.rel_diff(y).unwrap(), 0.0);
    }
    assert!(a[0].rel_diff(&c[0]).unwrap() > 1e-3);
}

#[test]
fn batches_cover_every_sample_once_per_epoch() {
    let mut b = Batches::new(10, 3, 5).unwrap();
    let e = b.epoch();
    assert_eq!(e.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
    let mut all: Vec<usize> = e.concat();
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert!(Batches::new(10, 0, 1).is_err());
    assert!(select_rows(&Value::scalar(1.0), &[1]).is_err());
}

#[test]
fn checkpoints_round_trip_and_refuse_mismatches() {
    let dir = tempfile_dir();
    let path = dir.join("ps.safetensors");
    let mut ps = ParamSet::new(4);
    ps.add("b.w", 3, 2, Init::HeNormal).unwrap();
    ps.add("a.w", 1, 4, Init::Normal(1.0)).unwrap();
    ps.add_value(
        "z",
        Value::Complex(faer::mat![[C64::new(1.5, -2.0), C64::new(0.0, 3.0)]]),
    )
    .unwrap();
    checkpoint::save(&ps, &path).unwrap();
    let back = checkpoint::load(&path).unwrap();
    let names: Vec<&str> = back.iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["b.w", "a.w", "z"], "order kept");
    for (x, y) in ps.values().iter().zip(back.values()) {
        assert_eq!(x.rel_diff(y).unwrap(), 0.0);
    }
    let mut other = ParamSet::new(9);
    other.add("b.w", 3, 2, Init::Zeros).unwrap();
    other.add("a.w", 1, 4, Init::Zeros).unwrap();
    other.add("z", 1, 2, Init::Zeros).unwrap(); // real where the file has complex
    assert!(matches!(
        checkpoint::load_into(&mut other, &path),
        Err(Error::File { .. })
    ));
    let mut same = ps.clone();
    same.set(
        same.id("a.w").unwrap(),
        Value::zeros(matgrad_engine::DType::F64, 1, 4),
    )
    .unwrap();
    checkpoint::load_into(&mut same, &path).unwrap();
    assert_eq!(same.values()[1].rel_diff(&ps.values()[1]).unwrap(), 0.0);
    std::fs::write(dir.join("bad.safetensors"), b"not a checkpoint").unwrap();
    assert!(matches!(
        checkpoint::load(dir.join("bad.safetensors")),
        Err(Error::File { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Axis::All;
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "matgrad-train-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file written by Python's `safetensors.numpy` (tests/data/checkpoint_from_python.py)
/// loads, with the complex `[m, n, 2]` layout; a file written here is read by Python the
/// same way (checked when the script was run; see its docstring).
#[test]
fn reads_a_checkpoint_written_by_python() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/from_python.safetensors");
    let ps = checkpoint::load(path).unwrap();
    let w = ps.get(ps.id("layer.w").unwrap()).as_real().unwrap().clone();
    assert_eq!((w.nrows(), w.ncols(), w[(2, 1)]), (3, 2, 1.25));
    let z = ps
        .get(ps.id("layer.z").unwrap())
        .as_complex()
        .unwrap()
        .clone();
    assert_eq!(z[(0, 0)], C64::new(1.5, -2.0));
    assert_eq!(z[(0, 1)], C64::new(0.0, 3.0));
    if let Ok(out) = std::env::var("MATGRAD_WRITE_CHECKPOINT") {
        checkpoint::save(&ps, out).unwrap();
    }
}
