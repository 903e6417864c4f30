//! `householder_product`: an orthogonal (unitary) matrix as a product of k reflectors,
//! `Q = H₁ H₂ ⋯ H_k`, `Hᵢ = I − 2 uᵢuᵢᴴ`, `uᵢ = vᵢ/‖vᵢ‖` for the columns `vᵢ` of an n×k `V`
//! (Tomczak & Welling 2016; Mhammedi et al. 2017). Each reflector is invariant under
//! scaling of `vᵢ`, so its derivative in `vᵢ` is `−2(I − uuᴴ)(dv/‖v‖)uᴴ − 2u(…)ᴴ`:
//! orthogonal to `vᵢ`, of size 1/‖vᵢ‖ — the op refuses a zero column (no reflector).
//! det Q = (−1)^k for real V. Composed from engine ops (`norm`, `matmul`), so the rules are
//! the engine's. Derivation: docs/math/structured.md.

use matgrad_engine::{DType, Error, Form, Value, Var};

use crate::error::Result;

/// `H₁⋯H_k` for the columns of an n×k `v` (k = 0 gives I).
///
/// # Errors
/// A column with `‖vᵢ‖²` zero or subnormal ([`Error::InvalidArgument`], naming the column):
/// the reflector is undefined.
pub fn householder_product(v: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "householder_product";
    let (n, k) = v.shape();
    {
        let val = v.value();
        for i in 0..k {
            let nn2: f64 = match &val {
                Value::Real(m) => (0..n).map(|r| m[(r, i)] * m[(r, i)]).sum(),
                Value::Complex(m) => (0..n).map(|r| m[(r, i)].norm_sqr()).sum(),
            };
            let nn = nn2.sqrt();
            if nn2 < f64::MIN_POSITIVE {
                return Err(Error::InvalidArgument {
                    op: OP,
                    message: format!(
                        "column {i} of V ({n}×{k}) has norm {nn:.3e}: a reflector needs a nonzero vector (initialise V away from 0)"
                    ),
                });
            }
        }
    }
    let inner = || -> Result<Var<'_>> {
        let tape = v.tape();
        let mut q = tape.constant(Value::identity(v.dtype(), n))?;
        for i in 0..k {
            let c = v.slice(0..n, i..i + 1)?;
            let mut inv = c.norm()?.powf(-1.0)?;
            if v.dtype() == DType::C64 {
                inv = inv.to_complex()?;
            }
            let u = c.mul_scalar(inv)?;
            let qu = q.matmul(u)?;
            q = q.sub(qu.matmul_forms(Form::Plain, u, Form::Adjoint)?.scale(2.0)?)?;
        }
        Ok(q)
    };
    inner().map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::Tape;

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        // one reflector maps v to −v and fixes v⊥
        let v = Value::Real(faer::mat![[1.0], [2.0], [2.0]]);
        let q = householder_product(t.constant(v.clone()).unwrap()).unwrap();
        let qv = q.matmul(t.constant(v.clone()).unwrap()).unwrap().value();
        assert!(
            qv.rel_diff(&Value::Real(faer::mat![[-1.0], [-2.0], [-2.0]]))
                .unwrap()
                < 1e-15
        );
        let w = Value::Real(faer::mat![[2.0], [-1.0], [0.0]]);
        let qw = q.matmul(t.constant(w.clone()).unwrap()).unwrap().value();
        assert!(qw.rel_diff(&w).unwrap() < 1e-15);
        // scale invariance, orthogonality, det = (−1)^k
        for k in 1..=4 {
            let v = real_matrix(5, k, k as u64);
            let q = householder_product(t.constant(v.clone()).unwrap()).unwrap();
            let v3 = t.constant(v.clone()).unwrap().scale(3.0).unwrap();
            let q3 = householder_product(v3).unwrap();
            assert!(q.value().rel_diff(&q3.value()).unwrap() < 1e-14);
            let qtq = q
                .matmul_forms(Form::Adjoint, q, Form::Plain)
                .unwrap()
                .value();
            assert!(qtq.rel_diff(&Value::identity(DType::F64, 5)).unwrap() < 1e-14);
            let det = q.det().unwrap().value().scalar_real().unwrap();
            assert!((det - (-1f64).powi(k as i32)).abs() < 1e-13);
        }
        let v = complex_matrix(4, 2, 9);
        let q = householder_product(t.constant(v).unwrap()).unwrap();
        let qhq = q
            .matmul_forms(Form::Adjoint, q, Form::Plain)
            .unwrap()
            .value();
        assert!(qhq.rel_diff(&Value::identity(DType::C64, 4)).unwrap() < 1e-14);
        // k = 0: the identity
        let e = householder_product(t.constant(Value::zeros(DType::F64, 3, 0)).unwrap()).unwrap();
        assert!(e.value().rel_diff(&Value::identity(DType::F64, 3)).unwrap() == 0.0);
    }

    #[test]
    fn rules() {
        assert_rules(
            "householder_product",
            |_, x| householder_product(x[0]),
            &[real_matrix(4, 3, 5)],
        );
        assert_rules(
            "householder_product complex",
            |_, x| householder_product(x[0]),
            &[complex_matrix(3, 2, 6)],
        );
        // the derivative along v itself is zero (scale invariance)
        let t = Tape::new();
        let v0 = real_matrix(4, 1, 7);
        let v = t.leaf(v0.clone()).unwrap();
        let q = householder_product(v).unwrap();
        let dq = t.jvp(&[v], &[v0], &[q]).unwrap().remove(0);
        assert!(dq.max_abs() < 1e-14);
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let v = t
            .leaf(Value::Real(faer::mat![[1.0, 0.0], [1.0, 0.0]]))
            .unwrap();
        let e = householder_product(v).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("column 1"));
    }
}
