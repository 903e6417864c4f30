//! `herm_sum`: `Y_b = α (X_b + X_bᴴ)` for each square block of a vertical stack of `batch`
//! n×n blocks (`(batch·n)×n`, the layout of [`crate::Var::bmm_forms`]).
//!
//! The map is real-linear and self-adjoint for the pairing `Re tr(Xᴴ Y)`:
//! `Re tr(Ȳᴴ α(Ẋ + Ẋᴴ)) = Re tr((α(Ȳ + Ȳᴴ))ᴴ Ẋ)`, because `Re tr(ȲᴴẊᴴ) = Re tr(ȲẊ)`. So
//!
//! - forward: `Y_b = α (X_b + X_bᴴ)`, exactly Hermitian (real diagonal);
//! - VJP: `X̄_b = α (Ȳ_b + Ȳ_bᴴ)` (the same op on the cotangent);
//! - JVP: `Ẏ_b = α (Ẋ_b + Ẋ_bᴴ)` (the same op on the tangent).
//!
//! It is the cotangent step of [`crate::Var::gram`] (`F̄ = F · α(C̄ + C̄ᴴ)`, one product
//! where the rules of `FᴴF` as a product take two) and the tangent step of its JVP.
//! Derivation: docs/math/gram.md.

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::tape::{Op, OpCtx, Var};
use crate::value::Scalar;

struct HermSum {
    alpha: f64,
    batch: usize,
}

fn forward<T: Scalar>(x: &Mat<T>, alpha: f64, n: usize) -> Mat<T> {
    // 8×8 tiles: the mirrored reads `X_b[(j, i)]` of a tile touch 8 columns. In a tall
    // stack the columns are `batch·n` entries apart, so a column loop's row of mirrored
    // reads fell into one cache set and missed on every entry (2.7 % of the O2P batch's
    // time, 64 blocks of 32×32, before tiling). Each entry is the same expression.
    const TILE: usize = 8;
    let a = T::from_f64(alpha);
    let mut out = crate::pool::for_overwrite::<T>(x.nrows(), n); // every entry written below
    for b in 0..x.nrows() / n.max(1) {
        let xb = x.as_ref().subrows(b * n, n);
        let mut ob = out.as_mut().subrows_mut(b * n, n);
        for jb in (0..n).step_by(TILE) {
            for ib in (0..n).step_by(TILE) {
                for j in jb..(jb + TILE).min(n) {
                    for i in ib..(ib + TILE).min(n) {
                        ob[(i, j)] = (xb[(i, j)] + xb[(j, i)].cj()) * a;
                    }
                }
            }
        }
    }
    out
}

impl Op for HermSum {
    fn name(&self) -> &'static str {
        "herm_sum"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| g.herm_sum(self.alpha, self.batch))
            .transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]
            .map(|d| d.herm_sum(self.alpha, self.batch))
            .transpose()?])
    }
}

impl<'t> Var<'t> {
    /// `α (X_b + X_bᴴ)` for each of the `batch` square blocks of a vertical stack
    /// (`(batch·n)×n`); with `batch = 1`, `α (X + Xᴴ)`.
    ///
    /// ```
    /// use matgrad_engine::{Tape, Value};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// let x = tape.leaf(Value::Real(faer::mat![[1.0, 2.0], [0.0, 3.0]]))?;
    /// let y = x.herm_sum(0.5, 1)?;                      // (X + Xᵀ)/2
    /// assert_eq!(y.value().as_real(), Some(&faer::mat![[1.0, 1.0], [1.0, 3.0]]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `α` is not finite, `batch` is 0 or does not
    /// divide the rows, or the blocks are not square. Errors name `herm_sum`.
    pub fn herm_sum(self, alpha: f64, batch: usize) -> Result<Var<'t>> {
        const OP: &str = "herm_sum";
        let x = self.rc();
        let (rows, n) = x.shape();
        if !alpha.is_finite() {
            return Err(EngineError::InvalidArgument {
                op: OP,
                message: format!("the factor α must be finite, got {alpha}"),
            });
        }
        if batch == 0 || rows % batch != 0 || rows / batch != n {
            return Err(EngineError::InvalidArgument {
                op: OP,
                message: format!(
                    "{rows}×{n} is not a stack of batch = {batch} square blocks; a stack of k blocks of n×n is (k·n)×n"
                ),
            });
        }
        let out = crate::map_value!(&*x, m => forward(m, alpha, n));
        self.tape()
            .record1(std::rc::Rc::new(HermSum { alpha, batch }), &[self], out)
    }
}

/// `Value`-level check used by the tests: the blocks of `v` are exactly Hermitian.
#[cfg(test)]
pub(crate) fn blocks_exactly_hermitian(v: &crate::Value, n: usize) -> bool {
    fn imp<T: Scalar>(m: &Mat<T>, n: usize) -> bool {
        (0..m.nrows()).all(|r| {
            let (b, i) = (r / n, r % n);
            (0..n).all(|j| m[(r, j)] == m[(b * n + j, i)].cj())
        })
    }
    match v {
        crate::Value::Real(m) => imp(m, n),
        crate::Value::Complex(m) => imp(m, n),
    }
}

#[cfg(test)]
mod tests {
    use super::blocks_exactly_hermitian;
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value, C64};

    /// Closed form, entry by entry, on complex stacks of 2×2, 11×11 and 17×17 blocks.
    #[test]
    fn forward_closed_form() {
        let c = |re, im| C64::new(re, im);
        // n = 2 inside one tile; 11 and 17 cross the 8×8 tiles (a partial last tile)
        for (n, batch) in [(2usize, 2usize), (11, 3), (17, 2)] {
            let t = Tape::new();
            let x = faer::Mat::from_fn(batch * n, n, |i, j| {
                c((i * n + j) as f64 * 0.5 - 3.0, (i + 3 * j) as f64 - 7.0)
            });
            let y = t
                .constant(Value::Complex(x.clone()))
                .unwrap()
                .herm_sum(1.5, batch)
                .unwrap()
                .value();
            let y = y.as_complex().unwrap();
            for b in 0..batch {
                for i in 0..n {
                    for j in 0..n {
                        let want = (x[(n * b + i, j)] + x[(n * b + j, i)].conj()) * 1.5;
                        assert_eq!(y[(n * b + i, j)], want, "n {n} block {b} ({i},{j})");
                    }
                }
            }
            // the diagonal is real: x + conj(x) = 2 Re x
            assert_eq!(y[(n + 1, 1)], c(2.0 * 1.5 * x[(n + 1, 1)].re, 0.0));
            assert!(blocks_exactly_hermitian(&Value::Complex(y.clone()), n));
        }
    }

    #[test]
    fn rules_real_and_complex_single_and_batched() {
        for make in [real_matrix, complex_matrix] {
            assert_rules("herm_sum", |_, x| x[0].herm_sum(-0.7, 1), &[make(3, 3, 1)]);
            assert_rules("herm_sum", |_, x| x[0].herm_sum(2.0, 3), &[make(6, 2, 2)]);
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let x = t.leaf(real_matrix(6, 2, 1)).unwrap();
        for (alpha, batch) in [(1.0, 0), (1.0, 4), (1.0, 2), (f64::NAN, 3)] {
            let e = x.herm_sum(alpha, batch).unwrap_err();
            assert!(
                matches!(e, EngineError::InvalidArgument { op: "herm_sum", .. }),
                "{e}"
            );
        }
    }
}
