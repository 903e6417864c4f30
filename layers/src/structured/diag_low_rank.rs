//! `diag_low_rank`: `S = diag(d) + U Vᴴ` for a column `d` (n×1) and n×r factors `U`, `V` —
//! a structured square matrix with `n(2r + 1)` parameters, applied in `O(nr)` per vector
//! (here formed densely, for composition with the other transforms). Linear in each
//! argument: `dS = diag(ḋ) + dU Vᴴ + U dVᴴ`; `d̄ = diag(S̄)`, `Ū = S̄ V`, `V̄ = S̄ᴴ U`.
//! Composed from engine ops. Derivation: docs/math/structured.md.

use matgrad_engine::{Error, Form, Var};

use crate::error::Result;

/// `diag(d) + u vᴴ` (d: n×1, u and v: n×r).
///
/// # Errors
/// Shapes that do not match ([`Error::ShapeMismatch`]); dtypes that differ.
pub fn diag_low_rank<'t>(d: Var<'t>, u: Var<'t>, v: Var<'t>) -> Result<Var<'t>> {
    const OP: &str = "diag_low_rank";
    let (n, one) = d.shape();
    if one != 1 {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: d.shape(),
            rhs: (n, 1),
            hint: "d is the diagonal as an n×1 column",
        });
    }
    if u.shape() != v.shape() || u.shape().0 != n {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: u.shape(),
            rhs: v.shape(),
            hint: "U and V must both be n×r, with n the length of d",
        });
    }
    d.diag_embed(n, n)?
        .add(u.matmul_forms(Form::Plain, v, Form::Adjoint)?)
        .map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Tape, Value};

    #[test]
    fn forward_closed_form() {
        let t = Tape::new();
        let d = t
            .constant(Value::Real(faer::mat![[1.0], [2.0], [3.0]]))
            .unwrap();
        let u = t
            .constant(Value::Real(faer::mat![[1.0], [0.0], [-1.0]]))
            .unwrap();
        let v = t
            .constant(Value::Real(faer::mat![[2.0], [1.0], [0.0]]))
            .unwrap();
        let s = diag_low_rank(d, u, v).unwrap().value();
        let want = faer::mat![[3.0, 1.0, 0.0], [0.0, 2.0, 0.0], [-2.0, -1.0, 3.0]];
        assert_eq!(s.as_real().unwrap(), &want);
    }

    #[test]
    fn rules() {
        assert_rules(
            "diag_low_rank",
            |_, x| diag_low_rank(x[0], x[1], x[2]),
            &[
                real_matrix(4, 1, 1),
                real_matrix(4, 2, 2),
                real_matrix(4, 2, 3),
            ],
        );
        assert_rules(
            "diag_low_rank complex",
            |_, x| diag_low_rank(x[0], x[1], x[2]),
            &[
                complex_matrix(3, 1, 4),
                complex_matrix(3, 1, 5),
                complex_matrix(3, 1, 6),
            ],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let d = t.leaf(real_matrix(3, 1, 1)).unwrap();
        let u = t.leaf(real_matrix(3, 2, 2)).unwrap();
        let v = t.leaf(real_matrix(3, 1, 3)).unwrap();
        assert!(matches!(
            diag_low_rank(d, u, v),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            diag_low_rank(u, u, u),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
