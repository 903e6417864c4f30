//! `adjugate`: `adj(A)`, the transposed cofactor matrix, `adj(A) = det(A)·A⁻¹` where A is
//! invertible and a polynomial in the entries of A everywhere — so it and its derivative
//! exist at singular matrices too. It is the gradient of `det` (Jacobi's formula
//! `d det(A) = tr(adj(A) dA)`), which is how `det` stays differentiable at a singular
//! matrix, where PyTorch and JAX also return `adj(A)ᵀ`.
//!
//! forward, from the SVD `A = U S Vᴴ`: `adj(A) = c·V diag(π) Uᴴ` with `c = det(U)·conj(det V)`
//! (|c| = 1) and `πᵢ = Π_{k≠i} s_k` — no division, so rank-deficient A is no special case
//! (rank n−1: a rank-one adjugate; rank ≤ n−2: zero);
//! tangent: `L(E) = c·V N(Uᴴ E V) Uᴴ` with `N(Ẽ)ⱼⱼ = Σ_{i≠j} πᵢⱼ Ẽᵢᵢ`, `N(Ẽ)ᵢⱼ = −πᵢⱼ Ẽᵢⱼ`
//! (i ≠ j) and `πᵢⱼ = Π_{k∉{i,j}} s_k`: the first-order term of `adj(S + tẼ)` for diagonal S,
//! carried back by `adj(U M Vᴴ) = c·V adj(M) Uᴴ`;
//! adjoint: `L*(G) = U N(conj(c)·Vᴴ G U) Vᴴ` (N is self-adjoint for the real pairing).
//!
//! The rules of the derivative node `L` are its own adjoint pair (it is linear in its
//! second input); its derivative with respect to A (the third derivative of det) is not
//! implemented and says so. Derivation: docs/math/inverse.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::ops::matmul::gemm as mm;
use crate::ops::{square, Form};
use crate::tape::{Op, OpCtx, Var};
use crate::value::{Scalar, Value};

/// The SVD pieces every adjugate rule needs.
struct Factors<T: Scalar> {
    u: Mat<T>,
    v: Mat<T>,
    c: T,
    /// `πᵢ = Π_{k≠i} s_k`.
    pi1: Vec<f64>,
    /// `πᵢⱼ = Π_{k∉{i,j}} s_k`, row-major n×n (diagonal unused).
    pi2: Vec<f64>,
}

enum Residual {
    Real(Factors<f64>),
    Complex(Factors<crate::value::C64>),
}

fn products(s: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = s.len();
    // prefix[i] = Π_{k<i} s_k, suffix[i] = Π_{k≥i} s_k
    let mut prefix = vec![1.0; n + 1];
    let mut suffix = vec![1.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] * s[i];
        suffix[n - 1 - i] = suffix[n - i] * s[n - 1 - i];
    }
    let pi1 = (0..n).map(|i| prefix[i] * suffix[i + 1]).collect();
    let mut pi2 = vec![0.0; n * n];
    for i in 0..n {
        let mut mid = 1.0;
        for j in i + 1..n {
            let p = prefix[i] * mid * suffix[j + 1];
            pi2[i * n + j] = p;
            pi2[j * n + i] = p;
            mid *= s[j];
        }
    }
    (pi1, pi2)
}

fn factor<T: Scalar>(a: &Mat<T>) -> Result<Factors<T>> {
    let n = a.nrows();
    let svd = a.svd().map_err(|e| EngineError::NoConvergence {
        op: "adjugate",
        detail: format!("{e:?}"),
    })?;
    let (u, v) = (svd.U().to_owned(), svd.V().to_owned());
    let s: Vec<f64> = (0..n).map(|i| svd.S().column_vector()[i].re()).collect();
    let c = u.determinant() * v.determinant().cj();
    let (pi1, pi2) = products(&s);
    Ok(Factors { u, v, c, pi1, pi2 })
}

impl<T: Scalar> Factors<T> {
    fn value(&self) -> Mat<T> {
        let n = self.u.nrows();
        let vp = Mat::from_fn(n, n, |i, j| {
            self.v[(i, j)] * T::from_f64(self.pi1[j]) * self.c
        });
        mm(vp.as_ref(), Form::Plain, self.u.as_ref(), Form::Adjoint)
    }

    /// `N(X)`: diagonal `Σ_{i≠j} πᵢⱼ Xᵢᵢ`, off-diagonal `−πᵢⱼ Xᵢⱼ`.
    fn n_map(&self, x: &Mat<T>) -> Mat<T> {
        let n = x.nrows();
        Mat::from_fn(n, n, |i, j| {
            if i == j {
                let mut acc = T::from_f64(0.0);
                for k in 0..n {
                    if k != j {
                        acc += x[(k, k)] * T::from_f64(self.pi2[k * n + j]);
                    }
                }
                acc
            } else {
                -(x[(i, j)] * T::from_f64(self.pi2[i * n + j]))
            }
        })
    }

    /// `L(E)` (tangent) or `L*(E)` (adjoint).
    fn derivative(&self, e: &Mat<T>, adjoint: bool) -> Mat<T> {
        let (u, v) = (self.u.as_ref(), self.v.as_ref());
        if adjoint {
            let h = mm(
                mm(v, Form::Adjoint, e.as_ref(), Form::Plain).as_ref(),
                Form::Plain,
                u,
                Form::Plain,
            );
            let h = Mat::from_fn(h.nrows(), h.ncols(), |i, j| h[(i, j)] * self.c.cj());
            let k = self.n_map(&h);
            mm(
                mm(u, Form::Plain, k.as_ref(), Form::Plain).as_ref(),
                Form::Plain,
                v,
                Form::Adjoint,
            )
        } else {
            let et = mm(
                mm(u, Form::Adjoint, e.as_ref(), Form::Plain).as_ref(),
                Form::Plain,
                v,
                Form::Plain,
            );
            let nm = self.n_map(&et);
            let nm = Mat::from_fn(nm.nrows(), nm.ncols(), |i, j| nm[(i, j)] * self.c);
            mm(
                mm(v, Form::Plain, nm.as_ref(), Form::Plain).as_ref(),
                Form::Plain,
                u,
                Form::Adjoint,
            )
        }
    }
}

struct Adjugate {
    res: Rc<Residual>,
}

/// `(A, E) ↦ L(E)` or `L*(E)`: the derivative of the adjugate at A, linear in E.
struct AdjugateDerivative {
    res: Rc<Residual>,
    adjoint: bool,
}

fn derivative<'t>(res: &Rc<Residual>, a: Var<'t>, e: Var<'t>, adjoint: bool) -> Result<Var<'t>> {
    let ev = e.rc();
    let out = match (&**res, &*ev) {
        (Residual::Real(f), Value::Real(x)) => Value::Real(f.derivative(x, adjoint)),
        (Residual::Complex(f), Value::Complex(x)) => Value::Complex(f.derivative(x, adjoint)),
        _ => {
            return Err(EngineError::DTypeMismatch {
                op: "adjugate",
                lhs: a.dtype(),
                rhs: ev.dtype(),
            })
        }
    };
    a.tape().record1(
        Rc::new(AdjugateDerivative {
            res: res.clone(),
            adjoint,
        }),
        &[a, e],
        out,
    )
}

impl Op for Adjugate {
    fn name(&self) -> &'static str {
        "adjugate"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| derivative(&self.res, ctx.input(0), g, true))
            .transpose()?])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]
            .map(|d| derivative(&self.res, ctx.input(0), d, false))
            .transpose()?])
    }
}

fn third_order() -> EngineError {
    EngineError::Unsupported {
        op: "det",
        message: "third-order derivatives of det (the derivative of the adjugate's derivative) are not implemented".into(),
    }
}

impl Op for AdjugateDerivative {
    fn name(&self) -> &'static str {
        "adjugate_derivative"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(h) = ct[0] else {
            return Ok(vec![None, None]);
        };
        if ctx.needs_grad(0) {
            return Err(third_order());
        }
        Ok(vec![
            None,
            Some(derivative(&self.res, ctx.input(0), h, !self.adjoint)?),
        ])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        if t[0].is_some() {
            return Err(third_order());
        }
        Ok(vec![t[1]
            .map(|d| derivative(&self.res, ctx.input(0), d, self.adjoint))
            .transpose()?])
    }
}

impl<'t> Var<'t> {
    /// The adjugate `adj(A)` of a square matrix (`det(A)·A⁻¹` when A is invertible, and
    /// defined — with its derivative — at singular A as well). Computed from the SVD
    /// without any division.
    ///
    /// ```
    /// use matgrad_engine::{Tape, Value};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// // rank one: adj([[1, 2], [2, 4]]) = [[4, −2], [−2, 1]]
    /// let a = tape.leaf(Value::Real(faer::mat![[1.0, 2.0], [2.0, 4.0]]))?;
    /// let adj = a.adjugate()?.value();
    /// assert!((adj.as_real().unwrap()[(0, 1)] + 2.0).abs() < 1e-14);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::NoConvergence`] if the SVD fails.
    pub fn adjugate(self) -> Result<Var<'t>> {
        let a = self.rc();
        square("adjugate", &a)?;
        let (res, out) = match &*a {
            Value::Real(x) => {
                let f = factor(x)?;
                let v = Value::Real(f.value());
                (Residual::Real(f), v)
            }
            Value::Complex(x) => {
                let f = factor(x)?;
                let v = Value::Complex(f.value());
                (Residual::Complex(f), v)
            }
        };
        self.tape()
            .record1(Rc::new(Adjugate { res: Rc::new(res) }), &[self], out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{complex_matrix, rank_deficient_from_seed, real_matrix};
    use crate::{Tape, Value};

    #[test]
    fn forward_matches_det_times_inverse_and_closed_forms() {
        let t = Tape::new();
        for n in [1, 2, 3, 8] {
            for a in [real_matrix(n, n, n as u64), complex_matrix(n, n, n as u64)] {
                let x = t.constant(a).unwrap();
                let want = x.inv().unwrap().mul_scalar(x.det().unwrap()).unwrap();
                let got = x.adjugate().unwrap();
                let d = got.value().rel_diff(&want.value()).unwrap();
                assert!(d < 1e-12 * n as f64, "n={n}: {d:e}");
            }
        }
        // rank n−2: the adjugate vanishes
        let z = t.constant(rank_deficient_from_seed(4, 4, 2, 3)).unwrap();
        assert!(z.adjugate().unwrap().value().max_abs() < 1e-12);
        // 0×0: empty
        let e = t.constant(Value::zeros(crate::DType::F64, 0, 0)).unwrap();
        assert_eq!(e.adjugate().unwrap().shape(), (0, 0));
    }

    /// First order only: the adjugate's own second derivative is det's third.
    #[test]
    fn rules_at_invertible_and_singular_matrices() {
        let opts = crate::check::CheckOptions {
            order: crate::check::Order::First,
            ..crate::check::CheckOptions::default()
        };
        for a in [
            real_matrix(3, 3, 5),
            complex_matrix(3, 3, 6),
            rank_deficient_from_seed(4, 4, 3, 7),
            rank_deficient_from_seed(4, 4, 2, 8),
            rank_deficient_from_seed(3, 3, 1, 9),
        ] {
            let r = crate::check::check(|_, x| x[0].adjugate(), std::slice::from_ref(&a), &opts)
                .unwrap();
            assert!(r.passed, "{r}");
        }
        // and the third order says so
        let err = crate::check::check(
            |_, x| x[0].adjugate(),
            &[real_matrix(2, 2, 1)],
            &crate::check::CheckOptions::default(),
        );
        assert!(
            matches!(err, Err(crate::Error::Unsupported { op: "det", .. })),
            "{err:?}"
        );
    }
}
