//! Reductions: `sum` and `mean` (all entries, over rows, over columns), `trace`, the
//! Frobenius inner product `inner`, its real part `dot_real`, and the Frobenius norm.
//!
//! - `y = Σ X` along an axis: `ẏ = Σ Ẋ`; `X̄ = broadcast(ȳ)` back to the shape of X.
//! - `y = tr X = Σᵢ Xᵢᵢ` (i < min(m, n)): `ẏ = tr Ẋ`; `X̄ = ȳ I_{m×n}` (ones on the diagonal).
//! - `y = ⟨A, B⟩ = Σ conj(A) ∘ B` is built from `conj`, `mul` and `sum` (its rules come from
//!   theirs: `Ā = B ȳ*`, `B̄ = A ȳ`).
//! - `y = ‖X‖_F`: `ẏ = Re⟨X, Ẋ⟩ / y`; `X̄ = ȳ X / y`. At `X = 0` both rules return 0, the
//!   minimum-norm subgradient (PyTorch's convention); the forward value is exact there.
//!
//! Derivation: docs/math/reduce.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::Result;
use crate::map_value;
use crate::tape::{Ct, Op, OpCtx, Var};
use crate::value::{DType, Scalar, Value};

/// Which entries a reduction combines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Every entry: the result is 1×1.
    All,
    /// Down each column, across the rows: an m×n input gives 1×n.
    Rows,
    /// Along each row, across the columns: an m×n input gives m×1.
    Cols,
}

struct Sum {
    shape: (usize, usize),
    axis: Axis,
}
struct Trace {
    shape: (usize, usize),
}
struct Norm;

impl Op for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| g.broadcast_to(self.shape.0, self.shape.1))
            .transpose()?])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // `broadcast_to` by value: every entry is a cotangent entry, same bound
        let (m, n) = self.shape;
        out.push(ct[0].as_ref().map(|g| {
            let (gm, gn) = g.value.shape();
            let at =
                |i: usize, j: usize| (if gm == 1 { 0 } else { i }, if gn == 1 { 0 } else { j });
            Ct::new(
                map_value!(&*g.value, x => crate::pool::from_fn(m, n, |i, j| x[at(i, j)])),
                g.bound,
            )
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|x| x.sum(self.axis)).transpose()?])
    }
}

impl Op for Trace {
    fn name(&self) -> &'static str {
        "trace"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (m, n) = self.shape;
        Ok(vec![ct[0]
            .map(|g| g.broadcast_to(m.min(n), 1)?.diag_embed(m, n))
            .transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|x| x.trace()).transpose()?])
    }
}

impl Norm {
    /// `1/y`, or 0 when `y = 0` (the subgradient convention).
    fn inv_norm<'t>(y: Var<'t>) -> Result<Option<Var<'t>>> {
        if y.value().scalar_real() == Some(0.0) {
            return Ok(None);
        }
        Ok(Some(y.powf(-1.0)?))
    }
}

impl Op for Norm {
    fn name(&self) -> &'static str {
        "norm"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let (x, y) = (ctx.input(0), ctx.output(0));
        let Some(r) = Norm::inv_norm(y)? else {
            return Ok(vec![None]);
        };
        let s = g.mul(r)?;
        let s = if x.dtype() == DType::C64 {
            s.to_complex()?
        } else {
            s
        };
        Ok(vec![Some(x.mul_scalar(s)?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(dx) = t[0] else {
            return Ok(vec![None]);
        };
        let (x, y) = (ctx.input(0), ctx.output(0));
        let Some(r) = Norm::inv_norm(y)? else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(x.dot_real(dx)?.mul(r)?)])
    }
}

pub(crate) fn sum_mat<T: Scalar>(x: &Mat<T>, axis: Axis) -> Mat<T> {
    let (m, n) = x.shape();
    let zero = T::from_f64(0.0);
    match axis {
        Axis::All => {
            let mut s = zero;
            for j in 0..n {
                for i in 0..m {
                    s += x[(i, j)];
                }
            }
            crate::pool::from_fn(1, 1, |_, _| s)
        }
        Axis::Rows => crate::pool::from_fn(1, n, |_, j| (0..m).fold(zero, |s, i| s + x[(i, j)])),
        Axis::Cols => crate::pool::from_fn(m, 1, |i, _| (0..n).fold(zero, |s, j| s + x[(i, j)])),
    }
}

impl<'t> Var<'t> {
    /// Sum along `axis` (see [`Axis`] for the result's shape).
    ///
    /// # Errors
    /// None in practice.
    pub fn sum(self, axis: Axis) -> Result<Var<'t>> {
        let a = self.rc();
        let out = map_value!(&*a, x => sum_mat(x, axis));
        self.tape().record1(
            Rc::new(Sum {
                shape: a.shape(),
                axis,
            }),
            &[self],
            out,
        )
    }

    /// Mean along `axis`.
    ///
    /// # Errors
    /// [`crate::EngineError::Empty`] when the entries averaged over are none (the mean of
    /// nothing is undefined; numpy returns NaN).
    pub fn mean(self, axis: Axis) -> Result<Var<'t>> {
        let (m, n) = self.shape();
        let count = match axis {
            Axis::All => m * n,
            Axis::Rows => m,
            Axis::Cols => n,
        };
        if count == 0 {
            return Err(crate::EngineError::Empty {
                op: "mean",
                shape: (m, n),
            });
        }
        self.sum(axis)?.scale(1.0 / count as f64)
    }

    /// Trace: the sum of the main diagonal, as a 1×1 value. A rectangular m×n matrix has a
    /// diagonal of length min(m, n) (numpy's and PyTorch's `trace`); an empty one gives 0.
    ///
    /// # Errors
    /// None in practice.
    pub fn trace(self) -> Result<Var<'t>> {
        let a = self.rc();
        let shape = a.shape();
        let out = map_value!(&*a, x => {
            let s = (0..shape.0.min(shape.1)).fold(T0::zero_of(x), |s, i| s + x[(i, i)]);
            crate::pool::from_fn(1, 1, |_, _| s)
        });
        self.tape().record1(Rc::new(Trace { shape }), &[self], out)
    }

    /// Frobenius inner product `⟨self, other⟩ = Σ conj(self) ∘ other` (1×1, same dtype).
    ///
    /// # Errors
    /// Shape or dtype mismatch; Vars from different tapes.
    pub fn inner(self, other: Var<'t>) -> Result<Var<'t>> {
        self.conj()?.mul(other)?.sum(Axis::All)
    }

    /// `Re⟨self, other⟩`, a real 1×1 value: the pairing of cotangents with tangents.
    ///
    /// # Errors
    /// Shape or dtype mismatch; Vars from different tapes.
    pub fn dot_real(self, other: Var<'t>) -> Result<Var<'t>> {
        self.inner(other)?.real()
    }

    /// Frobenius norm `‖self‖_F` (a real 1×1 value).
    ///
    /// # Errors
    /// None in practice.
    pub fn norm(self) -> Result<Var<'t>> {
        let a = self.rc();
        let out = Value::scalar(a.norm());
        self.tape().record1(Rc::new(Norm), &[self], out)
    }
}

/// Zero of a matrix's scalar type, for generic folds inside `map_value!`.
trait T0 {
    type S;
    fn zero_of(&self) -> Self::S;
}
impl<T: Scalar> T0 for Mat<T> {
    type S = T;
    fn zero_of(&self) -> T {
        T::from_f64(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Axis;
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value};

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        let a = t
            .constant(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
            .unwrap();
        let get = |v: crate::Var<'_>| v.value().as_real().unwrap().clone();
        assert_eq!(get(a.sum(Axis::All).unwrap())[(0, 0)], 21.0);
        let r = get(a.sum(Axis::Rows).unwrap());
        assert_eq!(
            (r.nrows(), r.ncols(), r[(0, 0)], r[(0, 1)]),
            (1, 2, 9.0, 12.0)
        );
        let c = get(a.sum(Axis::Cols).unwrap());
        assert_eq!((c.nrows(), c.ncols(), c[(2, 0)]), (3, 1, 11.0));
        assert_eq!(get(a.mean(Axis::All).unwrap())[(0, 0)], 3.5);
        assert_eq!(get(a.mean(Axis::Cols).unwrap())[(1, 0)], 3.5);
        assert!((get(a.norm().unwrap())[(0, 0)] - 91f64.sqrt()).abs() < 1e-14);
        assert_eq!(get(a.dot_real(a).unwrap())[(0, 0)], 91.0);
        let sq = t
            .constant(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]]))
            .unwrap();
        assert_eq!(get(sq.trace().unwrap())[(0, 0)], 5.0);
    }

    #[test]
    fn rules() {
        for make in [real_matrix, complex_matrix] {
            for (m, n) in [(1, 1), (2, 3), (4, 1)] {
                let a = make(m, n, 51);
                for axis in [Axis::All, Axis::Rows, Axis::Cols] {
                    assert_rules("sum", move |_, x| x[0].sum(axis), std::slice::from_ref(&a));
                    assert_rules(
                        "mean",
                        move |_, x| x[0].mean(axis),
                        std::slice::from_ref(&a),
                    );
                }
                assert_rules("norm", |_, x| x[0].norm(), std::slice::from_ref(&a));
                assert_rules(
                    "inner",
                    |_, x| x[0].inner(x[1]),
                    &[a.clone(), make(m, n, 52)],
                );
                assert_rules(
                    "dot_real",
                    |_, x| x[0].dot_real(x[1]),
                    &[a.clone(), make(m, n, 53)],
                );
            }
            assert_rules("trace", |_, x| x[0].trace(), &[make(3, 3, 54)]);
        }
    }

    #[test]
    fn norm_at_zero_uses_zero_subgradient() {
        let t = Tape::new();
        let z = t.leaf(Value::zeros(crate::DType::F64, 2, 2)).unwrap();
        let n = z.norm().unwrap();
        let g = t.grad(n, &[z]).unwrap();
        assert_eq!(g[0].max_abs(), 0.0);
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(2, 3, 1)).unwrap();
        // a rectangular trace sums the diagonal (numpy, PyTorch); issue 7, bug 8
        let av = a.value();
        let ar = av.as_real().unwrap();
        assert_eq!(
            a.trace().unwrap().value().scalar_real(),
            Some(ar[(0, 0)] + ar[(1, 1)])
        );
        assert!(matches!(
            t.leaf(Value::zeros(crate::DType::F64, 0, 2))
                .unwrap()
                .mean(Axis::All),
            Err(EngineError::Empty { op: "mean", .. })
        ));
        assert!(matches!(
            a.inner(t.leaf(real_matrix(3, 2, 1)).unwrap()),
            Err(EngineError::ShapeMismatch { .. })
        ));
    }
}
