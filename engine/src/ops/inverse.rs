//! Inverse-type ops through an LU factorisation with partial pivoting (faer): `inv`,
//! `solve` (`X = A⁻¹B` or `X = A⁻ᴴB`), `det`, and `logdet` (`log|det A|`).
//!
//! - `Y = A⁻¹`: `Ẏ = −Y Ȧ Y`; `Ā = −Yᴴ Ȳ Yᴴ`.
//! - `X = A⁻¹ B`: `Ẋ = A⁻¹(Ḃ − Ȧ X)`; `B̄ = A⁻ᴴ X̄`, `Ā = −B̄ Xᴴ`.
//! - `X = A⁻ᴴ B`: `Ẋ = A⁻ᴴ(Ḃ − Ȧᴴ X)`; `B̄ = A⁻¹ X̄`, `Ā = −X B̄ᴴ`.
//! - `d = det A`: `ḋ = tr(adj(A) Ȧ)`; `Ā = d̄ adj(A)ᴴ` (Jacobi's formula with the adjugate,
//!   which exists at singular A: see `adjugate.rs`).
//! - `ℓ = log|det A|`: `ℓ̇ = Re tr(A⁻¹ Ȧ)`; `Ā = ℓ̄ A⁻ᴴ`.
//!
//! Singularity: a matrix whose smallest LU pivot is below `n·ε` times its largest is
//! reported as [`EngineError::Singular`] by `inv`, `solve` and `logdet`. `det` is a
//! polynomial: its value, gradient (the adjugate) and second derivatives exist and are
//! computed at singular matrices too.
//!
//! Empty (0×0) matrices: `inv` and `solve` give empty results, `det = 1` and `logdet = 0`
//! (the empty product), as in numpy.
//!
//! Residuals: none beyond the handles; the rules re-factor through `inv`/`solve`, which
//! keeps them differentiable (second order). Derivation: docs/math/inverse.md.

use std::rc::Rc;

use faer::linalg::solvers::{DenseSolveCore, PartialPivLu, Solve};
use faer::Mat;

use crate::error::{EngineError, Result};
use crate::map_value;
use crate::ops::{add_opt, same_dtype, square, Form};
use crate::tape::{same_tape, Op, OpCtx, Var};
use crate::value::{DType, Scalar, Value};

/// LU with a singularity check on the pivots.
fn lu_checked<T: Scalar>(op: &'static str, a: &Mat<T>) -> Result<PartialPivLu<T>> {
    let n = a.nrows();
    let lu = a.partial_piv_lu();
    if n == 0 {
        return Ok(lu);
    }
    let u = lu.U();
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for i in 0..n {
        // a zero pivot makes faer's elimination divide 0/0, so later pivots may be NaN
        let p = u[(i, i)].modulus();
        let p = if p.is_finite() { p } else { 0.0 };
        lo = lo.min(p);
        hi = hi.max(p);
    }
    let tol = n as f64 * f64::EPSILON;
    let ratio = if hi == 0.0 { 0.0 } else { lo / hi };
    if ratio <= tol {
        return Err(EngineError::Singular { op, n, ratio, tol });
    }
    Ok(lu)
}

struct Inv;
struct SolveOp {
    form: Form,
}
struct Det;
struct LogDet;

impl Op for Inv {
    fn name(&self) -> &'static str {
        "inv"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let y = ctx.output(0);
        let gy = g.matmul_forms(Form::Plain, y, Form::Adjoint)?;
        Ok(vec![Some(
            y.matmul_forms(Form::Adjoint, gy, Form::Plain)?.neg()?,
        )])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None]);
        };
        let y = ctx.output(0);
        Ok(vec![Some(y.matmul(da)?.matmul(y)?.neg()?)])
    }
}

impl Op for SolveOp {
    fn name(&self) -> &'static str {
        "solve"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (a, x) = (ctx.input(0), ctx.output(0));
        let (w, ga) = match self.form {
            Form::Plain => {
                let w = a.solve_form(Form::Adjoint, g)?;
                let ga = if ctx.needs_grad(0) {
                    Some(w.matmul_forms(Form::Plain, x, Form::Adjoint)?.neg()?)
                } else {
                    None
                };
                (w, ga)
            }
            Form::Adjoint => {
                let w = a.solve_form(Form::Plain, g)?;
                let ga = if ctx.needs_grad(0) {
                    Some(x.matmul_forms(Form::Plain, w, Form::Adjoint)?.neg()?)
                } else {
                    None
                };
                (w, ga)
            }
        };
        Ok(vec![ga, ctx.needs_grad(1).then_some(w)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (a, x) = (ctx.input(0), ctx.output(0));
        let da_x = t[0]
            .map(|da| da.matmul_forms(self.form, x, Form::Plain)?.neg())
            .transpose()?;
        let Some(rhs) = add_opt(t[1], da_x)? else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(a.solve_form(self.form, rhs)?)])
    }
}

impl Op for Det {
    fn name(&self) -> &'static str {
        "det"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let a = ctx.input(0);
        Ok(vec![Some(a.adjugate()?.adjoint()?.mul_scalar(g)?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None]);
        };
        let a = ctx.input(0);
        Ok(vec![Some(a.adjugate()?.matmul(da)?.trace()?)])
    }
}

impl Op for LogDet {
    fn name(&self) -> &'static str {
        "logdet"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let a = ctx.input(0);
        let g = if a.dtype() == DType::C64 {
            g.to_complex()?
        } else {
            g
        };
        Ok(vec![Some(a.inv()?.adjoint()?.mul_scalar(g)?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None]);
        };
        let a = ctx.input(0);
        Ok(vec![Some(a.solve(da)?.trace()?.real()?)])
    }
}

fn inv_mat<T: Scalar>(a: &Mat<T>) -> Result<Mat<T>> {
    Ok(lu_checked("inv", a)?.inverse())
}

fn solve_mat<T: Scalar>(a: &Mat<T>, b: &Mat<T>, form: Form) -> Result<Mat<T>> {
    let lu = lu_checked("solve", a)?;
    let mut x = b.clone();
    match form {
        Form::Plain => lu.solve_in_place(x.as_mut()),
        Form::Adjoint => lu.solve_adjoint_in_place(x.as_mut()),
    }
    Ok(x)
}

/// `det A` by LU; at an exactly singular matrix faer's elimination meets a zero pivot and
/// produces NaN, and the SVD (`det(U)·conj(det V)·Π sᵢ`, no division) gives the value.
fn det_mat<T: Scalar>(a: &Mat<T>) -> Result<T> {
    let d = a.determinant();
    if d.finite() {
        return Ok(d);
    }
    let svd = a.svd().map_err(|e| EngineError::NoConvergence {
        op: "det",
        detail: format!("{e:?}"),
    })?;
    let s = svd.S().column_vector();
    let prod = (0..a.nrows()).fold(1.0, |p, i| p * s[i].re());
    Ok(svd.U().determinant() * svd.V().determinant().cj() * T::from_f64(prod))
}

fn logabsdet<T: Scalar>(a: &Mat<T>) -> Result<f64> {
    let lu = lu_checked("logdet", a)?;
    let u = lu.U();
    Ok((0..a.nrows()).map(|i| u[(i, i)].modulus().ln()).sum())
}

impl<'t> Var<'t> {
    /// Matrix inverse.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::Singular`].
    pub fn inv(self) -> Result<Var<'t>> {
        let a = self.rc();
        square("inv", &a)?;
        let out = match &*a {
            Value::Real(x) => Value::Real(inv_mat(x)?),
            Value::Complex(x) => Value::Complex(inv_mat(x)?),
        };
        self.tape().record1(Rc::new(Inv), &[self], out)
    }

    /// `X = self⁻¹ · b` (`self` square), without forming the inverse.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; row mismatch; dtype mismatch; [`EngineError::Singular`].
    pub fn solve(self, b: Var<'t>) -> Result<Var<'t>> {
        self.solve_form(Form::Plain, b)
    }

    /// `X = op(self)⁻¹ · b` with `op` the identity or the adjoint.
    ///
    /// # Errors
    /// As [`Var::solve`].
    pub fn solve_form(self, form: Form, b: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("solve", &[self, b])?;
        let (a, bv) = (self.rc(), b.rc());
        let n = square("solve", &a)?;
        same_dtype("solve", &a, &bv)?;
        if bv.nrows() != n {
            return Err(EngineError::ShapeMismatch {
                op: "solve",
                lhs: a.shape(),
                rhs: bv.shape(),
                hint: "the right-hand side needs as many rows as the matrix",
            });
        }
        let out = match (&*a, &*bv) {
            (Value::Real(x), Value::Real(y)) => Value::Real(solve_mat(x, y, form)?),
            (Value::Complex(x), Value::Complex(y)) => Value::Complex(solve_mat(x, y, form)?),
            _ => unreachable!("dtypes checked above"),
        };
        tape.record1(Rc::new(SolveOp { form }), &[self, b], out)
    }

    /// Determinant (1×1, same dtype; 1 for a 0×0 matrix). Differentiable everywhere,
    /// singular matrices included: the gradient is the adjugate ([`Var::adjugate`]).
    ///
    /// # Errors
    /// [`EngineError::NotSquare`].
    pub fn det(self) -> Result<Var<'t>> {
        let a = self.rc();
        square("det", &a)?;
        let out = map_value!(&*a, x => { let d = det_mat(x)?; Mat::from_fn(1, 1, |_, _| d) });
        self.tape().record1(Rc::new(Det), &[self], out)
    }

    /// `log|det self|` (a real 1×1 value) for a nonsingular square matrix of either dtype.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::Singular`].
    pub fn logdet(self) -> Result<Var<'t>> {
        let a = self.rc();
        square("logdet", &a)?;
        let v = match &*a {
            Value::Real(x) => logabsdet(x)?,
            Value::Complex(x) => logabsdet(x)?,
        };
        self.tape()
            .record1(Rc::new(LogDet), &[self], Value::scalar(v))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix, spd_from_seed};
    use crate::{EngineError, Tape, Value};

    #[test]
    fn forward_by_reconstruction_and_closed_form() {
        let t = Tape::new();
        for n in [1, 2, 3, 8, 31] {
            let a = t.constant(real_matrix(n, n, n as u64)).unwrap();
            let eye = a.matmul(a.inv().unwrap()).unwrap().value();
            let e = eye.as_real().unwrap();
            let tol = 1e-10 * n as f64;
            for i in 0..n {
                for j in 0..n {
                    assert!(
                        (e[(i, j)] - if i == j { 1.0 } else { 0.0 }).abs() < tol,
                        "n={n}"
                    );
                }
            }
            let b = t.constant(real_matrix(n, 2, 99)).unwrap();
            let r = a.matmul(a.solve(b).unwrap()).unwrap().value();
            assert!(r.rel_diff(&b.value()).unwrap() < tol);
            let d = a.det().unwrap().value().scalar_real().unwrap();
            let ld = a.logdet().unwrap().value().scalar_real().unwrap();
            assert!((d.abs().ln() - ld).abs() < 1e-10);
        }
        let m = t
            .constant(Value::Real(faer::mat![[2.0, 1.0], [7.0, 4.0]]))
            .unwrap();
        assert!((m.det().unwrap().value().scalar_real().unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn rules() {
        for make in [real_matrix, complex_matrix] {
            for n in [1, 2, 4] {
                let a = make(n, n, 61)
                    .axpy(2.0, &Value::identity(make(1, 1, 0).dtype(), n))
                    .unwrap();
                assert_rules("inv", |_, x| x[0].inv(), std::slice::from_ref(&a));
                assert_rules(
                    "solve",
                    |_, x| x[0].solve(x[1]),
                    &[a.clone(), make(n, 3, 62)],
                );
                assert_rules(
                    "solve adjoint",
                    |_, x| x[0].solve_form(crate::Form::Adjoint, x[1]),
                    &[a.clone(), make(n, 2, 63)],
                );
                assert_rules("det", |_, x| x[0].det(), std::slice::from_ref(&a));
                assert_rules("logdet", |_, x| x[0].logdet(), std::slice::from_ref(&a));
            }
        }
        assert_rules(
            "logdet spd",
            |_, x| x[0].logdet(),
            &[spd_from_seed(5, 10.0, 3)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let s = t
            .leaf(Value::Real(faer::mat![[1.0, 2.0], [2.0, 4.0]]))
            .unwrap();
        assert!(matches!(
            s.inv(),
            Err(EngineError::Singular { op: "inv", .. })
        ));
        assert!(matches!(
            s.logdet(),
            Err(EngineError::Singular { op: "logdet", .. })
        ));
        let b = t.leaf(real_matrix(2, 1, 1)).unwrap();
        assert!(matches!(
            s.solve(b),
            Err(EngineError::Singular { op: "solve", .. })
        ));
        // det at a singular matrix: value 0, gradient adj(A)ᵀ = [[4, −2], [−2, 1]] (issue 7,
        // bug 4: it used to refuse with "inv: … singular")
        let d = s.det().unwrap();
        assert_eq!(d.value().scalar_real(), Some(0.0));
        let g = t.grad(d, &[s]).unwrap();
        let want = Value::Real(faer::mat![[4.0, -2.0], [-2.0, 1.0]]);
        assert!(g[0].rel_diff(&want).unwrap() < 1e-15, "{:?}", g[0]);
        let r = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(r.inv(), Err(EngineError::NotSquare { .. })));
        let a = t.leaf(real_matrix(3, 3, 1)).unwrap();
        assert!(matches!(
            a.solve(b),
            Err(EngineError::ShapeMismatch { op: "solve", .. })
        ));
    }
}
