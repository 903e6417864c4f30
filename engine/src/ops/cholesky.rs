//! `cholesky`: the lower-triangular factor `L` of a Hermitian positive definite `A = L Lᴴ`.
//!
//! With `Φ(X)` = the lower triangle of `X` with its diagonal halved (self-adjoint):
//! - tangent: `L̇ = L Φ(L⁻¹ sym(Ȧ) L⁻ᴴ)`;
//! - adjoint: `Ā = sym(L⁻ᴴ Φ(Lᴴ L̄) L⁻¹)` (Murray 2016, arXiv 1602.07527; PyTorch's
//!   `cholesky_backward` returns a non-Hermitian representative of the same class).
//!
//! The op reads `sym(A) = (A + Aᴴ)/2` after checking that `A` is Hermitian within
//! [`HERMITIAN_RTOL`]; the `sym` in both rules is the derivative of that projection, which
//! is what makes them adjoint to each other for every (not only Hermitian) direction.
//! Triangular solves go through `solve` (an LU of `L`), which keeps the rules recordable.
//! Derivation: docs/math/cholesky.md.

use std::rc::Rc;

use faer::Side;

use crate::error::{EngineError, Result};
use crate::ops::{square, Form};
use crate::tape::{Op, OpCtx, Var};
use crate::value::Value;

/// Relative tolerance on `max|A − Aᴴ| / max|A|` for ops that need a Hermitian input. Far
/// above the rounding of a computed Gram matrix (≈ n·ε), far below any real asymmetry.
pub const HERMITIAN_RTOL: f64 = 1e-10;

struct Cholesky;

/// `L⁻ᴴ X L⁻¹`, by two solves.
fn congruence_inv<'t>(l: Var<'t>, x: Var<'t>) -> Result<Var<'t>> {
    let y = l.solve_form(Form::Adjoint, x)?; // L⁻ᴴ X
    l.solve_form(Form::Adjoint, y.adjoint()?)?.adjoint() // (L⁻ᴴ (L⁻ᴴ X)ᴴ)ᴴ = L⁻ᴴ X L⁻¹
}

impl Op for Cholesky {
    fn name(&self) -> &'static str {
        "cholesky"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let l = ctx.output(0);
        let p = l
            .matmul_forms(Form::Adjoint, g, Form::Plain)?
            .tril_scaled(0.5)?;
        Ok(vec![Some(congruence_inv(l, p)?.sym()?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None]);
        };
        let l = ctx.output(0);
        let da = da.sym()?;
        // L⁻¹ Ȧ L⁻ᴴ = (L⁻¹ (L⁻¹ Ȧ)ᴴ)ᴴ for Hermitian Ȧ
        let y = l.solve(da)?;
        let m = l.solve(y.adjoint()?)?.adjoint()?;
        Ok(vec![Some(l.matmul(m.tril_scaled(0.5)?)?)])
    }
}

impl<'t> Var<'t> {
    /// Hermitian part `(self + selfᴴ)/2` of a square matrix.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`].
    pub fn sym(self) -> Result<Var<'t>> {
        square("sym", &self.rc())?;
        self.add(self.adjoint()?)?.scale(0.5)
    }

    /// Cholesky factor `L` (lower triangular, positive real diagonal) of a Hermitian
    /// positive definite matrix.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::NotHermitian`] beyond [`HERMITIAN_RTOL`];
    /// [`EngineError::NotPositiveDefinite`].
    pub fn cholesky(self) -> Result<Var<'t>> {
        let a = self.rc();
        let n = square("cholesky", &a)?;
        let asym = a.asymmetry().unwrap_or(0.0);
        if asym > HERMITIAN_RTOL {
            return Err(EngineError::NotHermitian {
                op: "cholesky",
                asym,
                tol: HERMITIAN_RTOL,
            });
        }
        let h = a.hermitian_part();
        let out = match &h {
            Value::Real(x) => Value::Real(
                x.llt(Side::Lower)
                    .map_err(|_| EngineError::NotPositiveDefinite { op: "cholesky", n })?
                    .L()
                    .to_owned(),
            ),
            Value::Complex(x) => Value::Complex(
                x.llt(Side::Lower)
                    .map_err(|_| EngineError::NotPositiveDefinite { op: "cholesky", n })?
                    .L()
                    .to_owned(),
            ),
        };
        self.tape().record1(Rc::new(Cholesky), &[self], out)
    }

    /// `log det A` of a Hermitian positive definite matrix, as `2 Σ log Lᵢᵢ` through
    /// [`Var::cholesky`] (a real 1×1 value).
    ///
    /// # Errors
    /// As [`Var::cholesky`].
    pub fn logdet_spd(self) -> Result<Var<'t>> {
        self.cholesky()?
            .diag()?
            .real()?
            .log()?
            .sum(crate::Axis::All)?
            .scale(2.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, hermitian_from_seed, spd_from_seed, Spectrum};
    use crate::{EngineError, Form, Tape, Value};

    #[test]
    fn forward_by_reconstruction() {
        let t = Tape::new();
        for n in [1, 2, 3, 8, 31] {
            let a = t.constant(spd_from_seed(n, 100.0, n as u64)).unwrap();
            let l = a.cholesky().unwrap();
            let r = l
                .matmul_forms(Form::Plain, l, Form::Adjoint)
                .unwrap()
                .value();
            assert!(r.rel_diff(&a.value()).unwrap() < 1e-12 * n as f64, "n={n}");
            let lv = l.value();
            let lr = lv.as_real().unwrap();
            for i in 0..n {
                assert!(lr[(i, i)] > 0.0);
                for j in i + 1..n {
                    assert_eq!(lr[(i, j)], 0.0);
                }
            }
        }
        let h = t
            .constant(hermitian_from_seed(
                &Spectrum::log_spaced(4, 1.0, 10.0).values(),
                3,
            ))
            .unwrap();
        let l = h.cholesky().unwrap();
        let r = l
            .matmul_forms(Form::Plain, l, Form::Adjoint)
            .unwrap()
            .value();
        assert!(r.rel_diff(&h.value()).unwrap() < 1e-13);
        let ld = h.logdet_spd().unwrap().value().scalar_real().unwrap();
        assert!(
            (ld - 10f64.ln() * 2.0).abs() < 1e-12,
            "product of eigenvalues 1·10^(1/3)·10^(2/3)·10 = 100"
        );
    }

    #[test]
    fn rules() {
        for n in [1, 2, 4] {
            assert_rules(
                "cholesky∘sym",
                |_, x| x[0].sym()?.cholesky(),
                &[spd_from_seed(n, 10.0, 71)],
            );
            let h = hermitian_from_seed(&Spectrum::log_spaced(n, 1.0, 10.0).values(), 72);
            assert_rules("cholesky∘sym complex", |_, x| x[0].sym()?.cholesky(), &[h]);
            assert_rules(
                "logdet_spd∘sym",
                |_, x| x[0].sym()?.logdet_spd(),
                &[spd_from_seed(n, 10.0, 73)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let ns = t
            .leaf(Value::Real(faer::mat![[2.0, 1.0], [0.0, 2.0]]))
            .unwrap();
        assert!(matches!(
            ns.cholesky(),
            Err(EngineError::NotHermitian { op: "cholesky", .. })
        ));
        let ind = t
            .leaf(Value::Real(faer::mat![[1.0, 2.0], [2.0, 1.0]]))
            .unwrap();
        assert!(matches!(
            ind.cholesky(),
            Err(EngineError::NotPositiveDefinite {
                op: "cholesky",
                n: 2
            })
        ));
        assert!(matches!(
            ind.logdet_spd(),
            Err(EngineError::NotPositiveDefinite { .. })
        ));
        let r = t.leaf(Value::Real(faer::mat![[1.0, 2.0]])).unwrap();
        assert!(matches!(r.cholesky(), Err(EngineError::NotSquare { .. })));
    }
}
