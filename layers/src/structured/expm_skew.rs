//! `expm_skew`: an orthogonal (unitary) matrix as the exponential of the skew part,
//! `Q = exp(B − Bᴴ)`, through [`matgrad_spectral::expm`] (scaling and squaring with Padé;
//! Fréchet derivative by the block-triangular identity — no eigendecomposition, so the
//! repeated eigenvalues of a skew matrix, e.g. all zero at `B = 0`, are harmless).
//!
//! `dQ = L_exp(A, dA)`, `dA = dB − dBᴴ`; at A = 0, `dQ = dA`. Derivation:
//! docs/math/structured.md and general_matrix_functions.md.

use matgrad_engine::{Error, Var};
use matgrad_spectral::expm;

use crate::error::Result;

/// `exp(b − bᴴ)` for a square `b`: orthogonal for real b, unitary for complex b.
///
/// # Errors
/// A non-square input ([`Error::NotSquare`]).
pub fn expm_skew(b: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "expm_skew";
    let (m, n) = b.shape();
    if m != n {
        return Err(Error::NotSquare {
            op: OP,
            shape: (m, n),
        });
    }
    b.sub(b.adjoint()?).and_then(expm).map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{DType, Form, Tape, Value};

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        // B = [[0, 0], [t, 0]]: A = [[0, −t], [t, 0]], exp(A) = rotation by t
        let th: f64 = 1.3;
        let b = t
            .constant(Value::Real(faer::mat![[0.0, 0.0], [th, 0.0]]))
            .unwrap();
        let q = expm_skew(b).unwrap().value();
        let q = q.as_real().unwrap();
        assert!((q[(0, 0)] - th.cos()).abs() < 1e-15 && (q[(1, 0)] - th.sin()).abs() < 1e-15);
        for v in [real_matrix(5, 5, 3), complex_matrix(4, 4, 4)] {
            let q = expm_skew(t.constant(v.clone()).unwrap()).unwrap();
            let qhq = q
                .matmul_forms(Form::Adjoint, q, Form::Plain)
                .unwrap()
                .value();
            assert!(
                qhq.rel_diff(&Value::identity(v.dtype(), v.nrows()))
                    .unwrap()
                    < 1e-13
            );
        }
        // det exp(A) = exp(tr A) = 1 for real skew A
        let q = expm_skew(t.constant(real_matrix(4, 4, 5)).unwrap()).unwrap();
        let det = q.det().unwrap().value().scalar_real().unwrap();
        assert!((det - 1.0).abs() < 1e-13);
    }

    #[test]
    fn rules() {
        assert_rules("expm_skew", |_, x| expm_skew(x[0]), &[real_matrix(4, 4, 6)]);
        assert_rules(
            "expm_skew complex",
            |_, x| expm_skew(x[0]),
            &[complex_matrix(3, 3, 7)],
        );
        assert_rules(
            "expm_skew at 0",
            |_, x| expm_skew(x[0]),
            &[Value::zeros(DType::F64, 3, 3)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let b = t.leaf(real_matrix(3, 2, 1)).unwrap();
        assert!(matches!(
            expm_skew(b),
            Err(Error::NotSquare {
                op: "expm_skew",
                ..
            })
        ));
    }
}
