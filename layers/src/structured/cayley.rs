//! `cayley`: an orthogonal (unitary) matrix from an unconstrained square matrix,
//! `Q = (I − A/2)⁻¹ (I + A/2)` with `A = B − Bᴴ` skew-symmetric (skew-Hermitian).
//!
//! For skew A the eigenvalues are imaginary, so `I − A/2` is always invertible and Q is
//! orthogonal (unitary) with no eigenvalue −1. `cayley(0) = I`, and `Q = exp(A) + O(‖A‖³)`.
//! The map is composed from engine ops (`solve`), so the rules are the engine's:
//! with `N = I − A/2`, `dQ = N⁻¹ (dA/2) (I + Q)` (from `N Q = I + A/2`), `dA = dB − dBᴴ`.
//! Derivation: docs/math/structured.md.

use matgrad_engine::{Error, Value, Var};

use crate::error::Result;

/// The Cayley transform of the skew part of a square `b`: `(I − A/2)⁻¹(I + A/2)`,
/// `A = b − bᴴ`.
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// # fn main() -> Result<(), matgrad_engine::Error> {
/// let tape = Tape::new();
/// let b = tape.leaf(Value::Real(faer::mat![[0.3, -0.2], [0.9, 1.0]]))?;
/// let q = matgrad_layers::cayley(b)?;
/// // QᵀQ = I
/// let qtq = q.transpose()?.matmul(q)?.value();
/// assert!((qtq.as_real().unwrap()[(0, 0)] - 1.0).abs() < 1e-14);
/// # Ok(()) }
/// ```
///
/// # Errors
/// A non-square input ([`Error::NotSquare`]).
pub fn cayley(b: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "cayley";
    let (m, n) = b.shape();
    if m != n {
        return Err(Error::NotSquare {
            op: OP,
            shape: (m, n),
        });
    }
    let inner = || -> Result<Var<'_>> {
        let a = b.sub(b.adjoint()?)?.scale(0.5)?;
        let eye = b.tape().constant(Value::identity(b.dtype(), n))?;
        eye.sub(a)?.solve(eye.add(a)?)
    };
    inner().map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Form, Tape};

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        // 2×2: A = [[0, −2s], [2s, 0]] (B = [[0, 0], [2s, 0]]) is a rotation by 2·atan(s)
        let s: f64 = 0.7;
        let b = t
            .constant(Value::Real(faer::mat![[0.0, 0.0], [2.0 * s, 0.0]]))
            .unwrap();
        let q = cayley(b).unwrap().value();
        let q = q.as_real().unwrap();
        let th = 2.0 * s.atan();
        assert!((q[(0, 0)] - th.cos()).abs() < 1e-15 && (q[(1, 0)] - th.sin()).abs() < 1e-15);
        assert!((q[(0, 1)] + th.sin()).abs() < 1e-15);
        // B = 0 gives I; a symmetric B too (its skew part is 0)
        let sym = t
            .constant(matgrad_engine::testing::symmetric_from_seed(
                &[1.0, 2.0, 3.0],
                2,
            ))
            .unwrap();
        let q = cayley(sym).unwrap().value();
        assert!(
            q.rel_diff(&Value::identity(matgrad_engine::DType::F64, 3))
                .unwrap()
                < 1e-15
        );
        // orthogonal / unitary, real and complex
        for v in [real_matrix(5, 5, 3), complex_matrix(4, 4, 4)] {
            let q = cayley(t.constant(v.clone()).unwrap()).unwrap();
            let qhq = q
                .matmul_forms(Form::Adjoint, q, Form::Plain)
                .unwrap()
                .value();
            let eye = Value::identity(v.dtype(), v.nrows());
            assert!(qhq.rel_diff(&eye).unwrap() < 1e-14);
        }
    }

    #[test]
    fn rules() {
        assert_rules("cayley", |_, x| cayley(x[0]), &[real_matrix(4, 4, 5)]);
        assert_rules(
            "cayley complex",
            |_, x| cayley(x[0]),
            &[complex_matrix(3, 3, 6)],
        );
        // at B = 0 (the identity init), where dQ = dB − dBᵀ
        assert_rules(
            "cayley at 0",
            |_, x| cayley(x[0]),
            &[Value::zeros(matgrad_engine::DType::F64, 3, 3)],
        );
        let t = Tape::new();
        let b = t
            .leaf(Value::zeros(matgrad_engine::DType::F64, 2, 2))
            .unwrap();
        let q = cayley(b).unwrap();
        let db = Value::Real(faer::mat![[0.0, 1.0], [0.0, 0.0]]);
        let dq = t.jvp(&[b], &[db], &[q]).unwrap().remove(0);
        assert_eq!(dq.as_real().unwrap()[(0, 1)], 1.0);
        assert_eq!(dq.as_real().unwrap()[(1, 0)], -1.0);
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let b = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            cayley(b),
            Err(Error::NotSquare { op: "cayley", .. })
        ));
    }
}
