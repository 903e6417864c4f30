//! No panic from the spectral ops on user data: random shapes (square or not), both
//! dtypes, zero-sized shapes, and values that are zero, identity (all eigenvalues tied), rank-deficient,
//! indefinite or asymmetric; forward, VJP and JVP must each return Ok or Err.

use matgrad_engine::testing::{complex_matrix, real_matrix};
use matgrad_engine::{DType, Result, Tape, Value, Var};
use matgrad_spectral as sp;
use proptest::prelude::*;

fn value(dtype: DType, m: usize, n: usize, seed: u64, kind: u8) -> Value {
    let v = match dtype {
        DType::F64 => real_matrix(m, n, seed),
        DType::C64 => complex_matrix(m, n, seed),
    };
    match kind % 5 {
        0 => v,
        1 => Value::zeros(dtype, m, n),
        2 => Value::identity(dtype, m.min(n)),
        3 if m == n => v.hermitian_part(),
        _ => v.axpy(1.0, &v).unwrap(),
    }
}

const OPS: usize = 16;

fn apply(k: usize, a: Var<'_>) -> Result<Var<'_>> {
    match k % OPS {
        0 => sp::logm_sym(a),
        1 => sp::sqrtm_sym(a),
        2 => sp::expm_sym(a),
        3 => sp::powm_sym(a, -0.5),
        4 => sp::eigvalsh(a),
        5 => Ok(sp::eigh(a)?.1),
        6 => sp::eigh_projector(a, a.shape().0.min(1), sp::Which::Largest),
        7 => Ok(sp::svd(a)?.0),
        8 => sp::svdvals(a),
        9 => Ok(sp::svd_full(a)?.2),
        10 => Ok(sp::eig(a)?.1),
        11 => sp::eigvals(a),
        12 => sp::expm(a),
        13 => sp::logm(a),
        14 => sp::sqrtm(a),
        _ => sp::matrix_function_sym_batched(a, 1, sp::SymFn::Exp),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn spectral_ops_never_panic(k in 0usize..OPS, m in 0usize..4, n in 0usize..4, complex in any::<bool>(), kind in any::<u8>(), seed in any::<u64>()) {
        let dtype = if complex { DType::C64 } else { DType::F64 };
        let tape = Tape::new();
        let a = tape.leaf(value(dtype, m, n, seed, kind)).unwrap();
        if let Ok(y) = apply(k, a) {
            let (r, c) = y.shape();
            let _ = tape.vjp(&[y], &[value(y.dtype(), r, c, seed ^ 7, 0)], &[a]);
            let _ = tape.jvp(&[a], &[value(dtype, m, n, seed ^ 9, 0)], &[y]);
        }
    }
}
