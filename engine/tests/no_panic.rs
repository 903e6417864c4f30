//! No panic reachable from the public API: every op gets random shapes (matching or not,
//! zero-sized included), both dtypes, values that may be singular, negative or zero, and
//! size parameters up to `usize::MAX` (whose products and sums overflow); NaN and ±∞ are
//! rejected at the tape's door. The property is "returns Ok or Err, never panics", and for
//! the bad-value inputs "returns Err".

use matgrad_engine::{Axis, DType, Result, Tape, Value, Var, C64};
use proptest::prelude::*;

fn value(dtype: DType, m: usize, n: usize, seed: u64, special: u8) -> Value {
    let v = match dtype {
        DType::F64 => matgrad_engine::testing::real_matrix(m, n, seed),
        DType::C64 => matgrad_engine::testing::complex_matrix(m, n, seed),
    };
    match special % 4 {
        0 => v,
        1 => Value::zeros(dtype, m, n),
        2 => Value::identity(dtype, m.min(n)),
        _ => v.axpy(-1.0, &v).unwrap(),
    }
}

const OPS: usize = 52;

fn apply<'t>(k: usize, a: Var<'t>, b: Var<'t>, big: usize) -> Result<Var<'t>> {
    match k % OPS {
        40 => a.reshape(big, 2),
        41 => a.reshape(big, big),
        42 => a.embed((big, big), big, 1),
        43 => a.embed((3, big), 1, big),
        44 => a.broadcast_to(big, big),
        45 => a.diag_embed(big, 1),
        46 => a.slice(0..big, big..big),
        47 => a.adjugate(),
        48 => a.mean(Axis::All),
        49 => a.mean(Axis::Rows),
        50 => a.kron_contract_right(b),
        51 => a.det(),
        0 => a.add(b),
        1 => a.sub(b),
        2 => a.mul(b),
        3 => a.div(b),
        4 => a.matmul(b),
        5 => a.solve(b),
        6 => a.kron(b),
        7 => a.mul_scalar(b),
        8 => a.inv(),
        9 => a.det(),
        10 => a.logdet(),
        11 => a.cholesky(),
        12 => a.logdet_spd(),
        13 => a.trace(),
        14 => a.log(),
        15 => a.sqrt(),
        16 => a.powf(-0.5),
        17 => a.exp(),
        18 => a.relu(),
        19 => a.abs(),
        20 => a.softplus(),
        21 => a.imag(),
        22 => a.real(),
        23 => a.reshape(3, 2),
        24 => a.slice(0..2, 1..3),
        25 => a.embed((2, 2), 1, 1),
        26 => Var::hcat(&[a, b]),
        27 => Var::vcat(&[a, b]),
        28 => a.broadcast_to(3, 3),
        29 => a.diag_embed(2, 3),
        30 => a.tril_scaled(0.5),
        31 => a.add_identity(1.0),
        32 => a.norm(),
        33 => a.inner(b),
        34 => a.sum(Axis::Rows),
        35 => a.kron_contract_left(b),
        36 => a.scale_complex(C64::new(0.0, 1.0)),
        37 => a.sym(),
        38 => a.tanh(),
        _ => a.sigmoid(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ops_never_panic(k in 0usize..OPS, m in 0usize..4, n in 0usize..4, p in 0usize..4, q in 0usize..4,
                       da in any::<bool>(), db in any::<bool>(), sa in any::<u8>(), sb in any::<u8>(), seed in any::<u64>(),
                       big in prop_oneof![Just(usize::MAX), Just(usize::MAX / 2 + 1), Just(1usize << 33), 0usize..5]) {
        let dt = |c: bool| if c { DType::C64 } else { DType::F64 };
        let tape = Tape::new();
        let a = tape.leaf(value(dt(da), m, n, seed, sa)).unwrap();
        let b = tape.leaf(value(dt(db), p, q, seed ^ 1, sb)).unwrap();
        if let Ok(y) = apply(k, a, b, big) {
            // The backward pass on whatever came out must not panic either.
            let (r, c) = y.shape();
            let ybar = value(y.dtype(), r, c, seed ^ 2, 0);
            let _ = tape.vjp(&[y], &[ybar], &[a, b]);
            let _ = tape.jvp(&[a, b], &[value(dt(da), m, n, 3, 0), value(dt(db), p, q, 4, 0)], &[y]);
        }
    }

    #[test]
    fn bad_values_are_rejected(m in 1usize..3, n in 1usize..3, bad in 0u8..3, i in 0usize..9) {
        let tape = Tape::new();
        let x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][bad as usize];
        let v = Value::Real(faer::Mat::from_fn(m, n, |r, c| if r * n + c == i % (m * n) { x } else { 1.0 }));
        prop_assert!(tape.leaf(v.clone()).is_err());
        prop_assert!(tape.constant(v).is_err());
    }

    /// Empty values are valid: they enter the tape, and gradients of empty inputs are empty.
    #[test]
    fn empty_values_are_accepted(m in 0usize..3, zero_rows in any::<bool>()) {
        let tape = Tape::new();
        let (r, c) = if zero_rows { (0, m) } else { (m, 0) };
        let x = tape.leaf(Value::zeros(DType::F64, r, c)).unwrap();
        let y = x.sum(Axis::All).unwrap();
        prop_assert_eq!(y.value().scalar_real(), Some(0.0));
        let g = tape.grad(y, &[x]).unwrap();
        prop_assert_eq!(g[0].shape(), (r, c));
    }
}
