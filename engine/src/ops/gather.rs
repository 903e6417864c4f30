//! `take_rows` and `scatter_rows`: selecting rows by index, and its adjoint.
//!
//! `take_rows(X, idx)`: `Yₖ,: = X_{idx[k]},:` — any indices, repeats allowed.
//! `scatter_rows(Y, idx, m)`: the m-row matrix `X` with `X_{i,:} = Σ_{k: idx[k] = i} Yₖ,:`
//! (zeros elsewhere; repeated indices add).
//!
//! Both are linear and each is the other's adjoint, `⟨take(X), Ȳ⟩ = ⟨X, scatter(Ȳ)⟩`, so:
//! - take: tangent `Ẏ = take(Ẋ)`, adjoint `X̄ = scatter(Ȳ)`;
//! - scatter: tangent `Ẋ = scatter(Ẏ)`, adjoint `Ȳ = take(X̄)`.
//!
//! They express a gather of `k` entries in `O(k)` work where a selection-matrix product
//! costs `O(k·m)` and slices cost a full-size embedding each in the backward pass (the
//! upper-triangle vectorisation of a batch of covariances is one `take_rows`).
//! Derivation: docs/math/gather.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::tape::{Op, OpCtx, Var};
use crate::value::{Scalar, Value};

struct TakeRows {
    idx: Rc<[usize]>,
    rows: usize,
}

struct ScatterRows {
    idx: Rc<[usize]>,
    rows: usize,
}

fn take<T: Scalar>(x: &Mat<T>, idx: &[usize]) -> Mat<T> {
    Mat::from_fn(idx.len(), x.ncols(), |k, j| x[(idx[k], j)])
}

fn scatter<T: Scalar>(y: &Mat<T>, idx: &[usize], rows: usize) -> Mat<T> {
    let mut x = Mat::<T>::zeros(rows, y.ncols());
    for j in 0..y.ncols() {
        for (k, &i) in idx.iter().enumerate() {
            x[(i, j)] += y[(k, j)];
        }
    }
    x
}

impl Op for TakeRows {
    fn name(&self) -> &'static str {
        "take_rows"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| g.scatter_rows(&self.idx, self.rows))
            .transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|g| g.take_rows(&self.idx)).transpose()?])
    }
}

impl Op for ScatterRows {
    fn name(&self) -> &'static str {
        "scatter_rows"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0].map(|g| g.take_rows(&self.idx)).transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]
            .map(|g| g.scatter_rows(&self.idx, self.rows))
            .transpose()?])
    }
}

impl<'t> Var<'t> {
    /// The rows `self[idx[0]], self[idx[1]], …` as a `idx.len() × n` matrix (repeats
    /// allowed). Its adjoint is [`Var::scatter_rows`].
    ///
    /// ```
    /// use matgrad_engine::{Tape, Value};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// let x = tape.leaf(Value::Real(faer::mat![[1.0], [2.0], [3.0]]))?;
    /// let y = x.take_rows(&[2, 0, 2])?;
    /// assert_eq!(y.value().as_real().unwrap()[(0, 0)], 3.0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] for an index outside the rows (naming it).
    pub fn take_rows(self, idx: &[usize]) -> Result<Var<'t>> {
        let a = self.rc();
        let (m, _) = a.shape();
        check("take_rows", idx, m)?;
        let out = match &*a {
            Value::Real(x) => Value::Real(take(x, idx)),
            Value::Complex(x) => Value::Complex(take(x, idx)),
        };
        self.tape().record1(
            Rc::new(TakeRows {
                idx: idx.into(),
                rows: m,
            }),
            &[self],
            out,
        )
    }

    /// The `rows × n` matrix whose row `i` is the sum of the rows `k` of `self` with
    /// `idx[k] = i` (zero where no index points): the adjoint of [`Var::take_rows`].
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `idx.len()` differs from the rows of `self` or
    /// an index is `≥ rows`; an output too large to allocate.
    pub fn scatter_rows(self, idx: &[usize], rows: usize) -> Result<Var<'t>> {
        let a = self.rc();
        let (k, n) = a.shape();
        if idx.len() != k {
            return Err(EngineError::InvalidArgument {
                op: "scatter_rows",
                message: format!(
                    "{} indices for a {k}×{n} matrix: need one per row",
                    idx.len()
                ),
            });
        }
        check("scatter_rows", idx, rows)?;
        crate::ops::entries("scatter_rows", rows, n)?;
        let out = match &*a {
            Value::Real(y) => Value::Real(scatter(y, idx, rows)),
            Value::Complex(y) => Value::Complex(scatter(y, idx, rows)),
        };
        self.tape().record1(
            Rc::new(ScatterRows {
                idx: idx.into(),
                rows,
            }),
            &[self],
            out,
        )
    }
}

fn check(op: &'static str, idx: &[usize], rows: usize) -> Result<()> {
    match idx.iter().position(|&i| i >= rows) {
        Some(k) => Err(EngineError::InvalidArgument {
            op,
            message: format!("index {} (position {k}) is outside the {rows} rows", idx[k]),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value};

    #[test]
    fn forward_closed_form() {
        let t = Tape::new();
        let x = t
            .leaf(Value::Real(faer::mat![
                [1.0, 10.0],
                [2.0, 20.0],
                [3.0, 30.0]
            ]))
            .unwrap();
        let y = x.take_rows(&[2, 0, 2]).unwrap().value();
        assert_eq!(
            y.as_real().unwrap(),
            &faer::mat![[3.0, 30.0], [1.0, 10.0], [3.0, 30.0]]
        );
        // repeated indices add; untouched rows are zero
        let s = t
            .leaf(Value::Real(faer::mat![[1.0], [2.0], [4.0]]))
            .unwrap()
            .scatter_rows(&[3, 0, 3], 5)
            .unwrap()
            .value();
        assert_eq!(
            s.as_real().unwrap(),
            &faer::mat![[2.0], [0.0], [0.0], [5.0], [0.0]]
        );
        assert_eq!(x.take_rows(&[]).unwrap().shape(), (0, 2));
    }

    #[test]
    fn rules_real_and_complex() {
        for make in [real_matrix, complex_matrix] {
            assert_rules(
                "take_rows",
                |_, x| x[0].take_rows(&[3, 0, 3, 1]),
                &[make(4, 3, 1)],
            );
            assert_rules(
                "scatter_rows",
                |_, x| x[0].scatter_rows(&[2, 0, 2], 4),
                &[make(3, 2, 2)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let x = t.leaf(real_matrix(3, 2, 1)).unwrap();
        let e = x.take_rows(&[0, 3]).unwrap_err();
        assert!(
            matches!(
                e,
                EngineError::InvalidArgument {
                    op: "take_rows",
                    ..
                }
            ) && e.to_string().contains("index 3"),
            "{e}"
        );
        assert!(matches!(
            x.scatter_rows(&[0, 1], 4),
            Err(EngineError::InvalidArgument {
                op: "scatter_rows",
                ..
            })
        ));
        assert!(matches!(
            x.scatter_rows(&[0, 1, 9], 4),
            Err(EngineError::InvalidArgument {
                op: "scatter_rows",
                ..
            })
        ));
        assert!(x.scatter_rows(&[0, 1, 2], usize::MAX).is_err());
    }
}
