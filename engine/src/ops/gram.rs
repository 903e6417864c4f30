//! `gram`: the scaled, ridged Gram matrix of each block of a vertical stack,
//! `C_b = α F_bᴴ F_b + ε I` for the `batch` m×d blocks `F_b` of F (`(batch·m)×d`, the layout
//! of [`crate::Var::bmm_forms`]); the result is the `(batch·d)×d` stack of the `C_b`. With
//! `α = 1/m` and `ε > 0` it is the regularised covariance of second-order pooling (O2P),
//! in one node instead of a product, a scaling and a shift.
//!
//! - forward: the lower triangle of `α F_bᴴ F_b` by faer's triangular product (half the
//!   multiply-adds of a full product), mirrored, `ε` added to the diagonal. The result is
//!   exactly Hermitian (real diagonal), so a symmetric eigensolver downstream reads it
//!   without a symmetrised copy.
//! - VJP: `F̄_b = F_b · α(C̄_b + C̄_bᴴ)`: one product per block, where the rules of the
//!   product `FᴴF` (its input used twice) take two (`F C̄ᴴ` and `F C̄`). A sweep that is not
//!   recorded computes it on values ([`Op::vjp_values`]): block by block, in parallel, with
//!   no `herm_sum` or product node and no finiteness scan (the bound is proved), the same
//!   bits as the recorded rule.
//! - JVP: `Ċ_b = α(F_bᴴ Ḟ_b + Ḟ_bᴴ F_b) = α(X_b + X_bᴴ)` with `X_b = F_bᴴ Ḟ_b`.
//!
//! `ε` is a constant (no gradient). Both rules are engine ops (`bmm`/`matmul` and
//! [`crate::Var::herm_sum`]), so every order of differentiation is available.
//! Blocks run in parallel over rayon's threads when the batch is large
//! ([`crate::par::blocks_parallel`]); one large block uses faer's parallel product
//! ([`crate::par::gemm_par`]). Derivation: docs/math/gram.md.

use std::rc::Rc;

use faer::{Mat, MatMut, MatRef, Par};

use crate::error::{EngineError, Result};
use crate::ops::Form;
use crate::par;
use crate::tape::{Ct, Op, OpCtx, Var};
use crate::value::{Scalar, Value};

struct Gram {
    alpha: f64,
    batch: usize,
}

/// `out = α fᴴ f + ε I` (lower triangle by the triangular product from
/// [`crate::ops::matmul::TRIANGULAR_MIN_N`] columns on, the full product below; then the
/// lower triangle mirrored).
fn block<T: Scalar>(mut out: MatMut<'_, T>, f: MatRef<'_, T>, alpha: f64, ridge: f64, par: Par) {
    use faer::linalg::matmul::triangular::{matmul_with_conj, BlockStructure};
    let d = f.ncols();
    if d < crate::ops::matmul::TRIANGULAR_MIN_N {
        // small blocks: the full product is faster than the triangular one (through
        // `gemm_into`, which copies a small `fᴴ` to the stack for nano-gemm's fast kernels)
        crate::ops::matmul::gemm_into(out.as_mut(), f, Form::Adjoint, f, Form::Plain, par);
        if alpha != 1.0 {
            let a = T::from_f64(alpha);
            for j in 0..d {
                for i in j..d {
                    out[(i, j)] *= a;
                }
            }
        }
    } else {
        matmul_with_conj(
            out.as_mut(),
            BlockStructure::TriangularLower,
            faer::Accum::Replace,
            f.transpose(),
            BlockStructure::Rectangular,
            faer::Conj::Yes,
            f,
            BlockStructure::Rectangular,
            faer::Conj::No,
            T::from_f64(alpha),
            par,
        );
    }
    crate::ops::matmul::mirror_lower(out.as_mut());
    if ridge != 0.0 {
        for j in 0..d {
            out[(j, j)] += T::from_f64(ridge);
        }
    }
}

fn forward<T: Scalar>(f: &Mat<T>, alpha: f64, ridge: f64, batch: usize) -> Mat<T> {
    use rayon::prelude::*;
    let d = f.ncols();
    let m = f.nrows() / batch;
    // every block: its lower triangle by the product, the rest by mirror_lower
    let mut out = crate::pool::for_overwrite::<T>(batch * d, d);
    if d == 0 {
        return out;
    }
    // multiply-adds of one block's lower triangle
    let macs = d * (d + 1) / 2 * m;
    if par::blocks_parallel(batch, macs) {
        out.as_mut()
            .par_row_chunks_mut(d)
            .zip(f.as_ref().par_row_chunks(m.max(1)))
            .for_each(|(o, fb)| block(o, fb, alpha, ridge, Par::Seq));
    } else {
        let p = par::gemm_par(d, d.div_ceil(2), m);
        for k in 0..batch {
            block(
                out.as_mut().subrows_mut(k * d, d),
                f.as_ref().subrows(k * m, m),
                alpha,
                ridge,
                p,
            );
        }
    }
    out
}

/// The first-order rule on values: `F̄_b = F_b · α(C̄_b + C̄_bᴴ)` for every block, each
/// `α(C̄_b + C̄_bᴴ)` formed in a small per-block buffer (the expression of `herm_sum`, entry
/// by entry) and the product written into the block's rows of `F̄`, with the parallelism
/// `bmm` (or, for one block, `matmul`) would choose, so the result has the bits of the
/// node rule [`Op::vjp`] records.
fn vjp_blocks<T: Scalar>(f: &Mat<T>, g: &Mat<T>, alpha: f64, batch: usize) -> Mat<T> {
    use rayon::prelude::*;
    let d = f.ncols();
    let m = f.nrows() / batch;
    let a = T::from_f64(alpha);
    // every entry of every block is written by the products (Accum::Replace)
    let mut out = crate::pool::for_overwrite::<T>(batch * m, d);
    let block = |o: MatMut<'_, T>, fb: MatRef<'_, T>, gb: MatRef<'_, T>, par: Par| {
        // α(G_b + G_bᴴ) from a copy of the block and of its adjoint, over contiguous
        // columns: in the stack the block's columns are `batch·d` entries apart, so
        // transposed reads from there miss the cache (see `herm_sum`'s tiles)
        let gc = crate::pool::copy_view(gb);
        let gh = crate::pool::transposed(gc.as_ref(), true);
        let mut s = crate::pool::for_overwrite::<T>(d, d); // every entry written below
        for j in 0..d {
            let (x, y) = (gc.col_as_slice(j), gh.col_as_slice(j));
            for ((o, &p), &q) in s.col_as_slice_mut(j).iter_mut().zip(x).zip(y) {
                // herm_sum's expression, entry by entry: (G[i, j] + conj G[j, i])·α
                *o = (p + q) * a;
            }
        }
        crate::pool::give(gc);
        crate::pool::give(gh);
        crate::ops::matmul::gemm_into(o, fb, Form::Plain, s.as_ref(), Form::Plain, par);
        crate::pool::give(s);
    };
    if par::blocks_parallel(batch, m * d * d) {
        // (m·d·d > 0, so every block has rows)
        out.as_mut()
            .par_row_chunks_mut(m)
            .zip(f.as_ref().par_row_chunks(m))
            .zip(g.as_ref().par_row_chunks(d))
            .for_each(|((o, fb), gb)| block(o, fb, gb, Par::Seq));
    } else {
        let p = par::gemm_par(m, d, d);
        for k in 0..batch {
            block(
                out.as_mut().subrows_mut(k * m, m),
                f.as_ref().subrows(k * m, m),
                g.as_ref().subrows(k * d, d),
                p,
            );
        }
    }
    out
}

impl Op for Gram {
    fn name(&self) -> &'static str {
        "gram"
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    /// [`vjp_blocks`]: the cotangents of [`Op::vjp`] bit for bit (compared in the tape's
    /// tests), without the `herm_sum` and product nodes, their finiteness scans, or the
    /// stacked `α(C̄ + C̄ᴴ)`; blocks in parallel.
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let g = match &ct[0] {
            Some(g) if ctx.needs_grad(0) => g,
            _ => {
                out.push(None);
                return Ok(true);
            }
        };
        let x = ctx.input(0);
        let f = x.value_rc();
        let fbar = match (&*f, &*g.value) {
            (Value::Real(f), Value::Real(g)) => {
                Value::Real(vjp_blocks(f, g, self.alpha, self.batch))
            }
            (Value::Complex(f), Value::Complex(g)) => {
                Value::Complex(vjp_blocks(f, g, self.alpha, self.batch))
            }
            _ => {
                return Err(EngineError::DTypeMismatch {
                    op: "gram",
                    lhs: f.dtype(),
                    rhs: g.value.dtype(),
                })
            }
        };
        // |α(C̄ᵢⱼ + C̄ⱼᵢ)| ≤ 2|α|·b_C̄·(1 + 2⁻⁵³)² as computed (two roundings), below
        // 2|α|·b_C̄·(1 + 2⁻⁵⁰); each entry of F̄ is a d-term inner product of a row of F with
        // a column of that, so the bound of a product holds (+∞, and the sweep scans F̄,
        // when a bound is unknown, as for complex values)
        let bs = 2.0 * self.alpha.abs() * g.bound * (1.0 + f64::powi(2.0, -50));
        let bound = crate::ops::matmul::product_bound(fbar.ncols(), x.tape().bound(x), bs);
        out.push(Some(Ct::new(fbar, bound)));
        Ok(true)
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let f = ctx.input(0);
        let s = g.herm_sum(self.alpha, self.batch)?;
        Ok(vec![Some(if self.batch == 1 {
            f.matmul(s)?
        } else {
            f.bmm_forms(Form::Plain, s, Form::Plain, self.batch)?
        })])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(df) = t[0] else {
            return Ok(vec![None]);
        };
        let f = ctx.input(0);
        let x = if self.batch == 1 {
            f.matmul_forms(Form::Adjoint, df, Form::Plain)?
        } else {
            f.bmm_forms(Form::Adjoint, df, Form::Plain, self.batch)?
        };
        Ok(vec![Some(x.herm_sum(self.alpha, self.batch)?)])
    }
}

impl<'t> Var<'t> {
    /// The Gram matrix `Fᴴ F` (d×d for an m×d `self`), exactly Hermitian.
    ///
    /// ```
    /// use matgrad_engine::{Tape, Value};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// let f = tape.leaf(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]))?;
    /// let g = f.gram()?;
    /// assert_eq!(g.value().as_real(), Some(&faer::mat![[10.0, 14.0], [14.0, 21.0]]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Var::gram_blocks`].
    pub fn gram(self) -> Result<Var<'t>> {
        self.gram_blocks(1, 1.0, 0.0)
    }

    /// `α F_bᴴ F_b + ε I` for each of the `batch` vertically stacked m×d blocks of `self`
    /// (`(batch·m)×d`), stacked the same way (`(batch·d)×d`). `ε` is a constant.
    ///
    /// ```
    /// use matgrad_engine::{Tape, testing::real_matrix};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// let f = tape.leaf(real_matrix(4 * 10, 3, 1))?;      // 4 blocks of 10 samples × 3
    /// let c = f.gram_blocks(4, 1.0 / 10.0, 1e-3)?;       // 4 covariances, 12×3
    /// assert_eq!(c.shape(), (12, 3));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `batch` is 0 or does not divide the rows, or
    /// `α` or `ε` is not finite. Errors name `gram`.
    pub fn gram_blocks(self, batch: usize, alpha: f64, ridge: f64) -> Result<Var<'t>> {
        const OP: &str = "gram";
        let f = self.rc();
        let (rows, d) = f.shape();
        if batch == 0 || rows % batch != 0 {
            return Err(EngineError::InvalidArgument {
                op: OP,
                message: format!(
                    "batch = {batch} must be positive and divide the {rows} rows of the stack (a stack of k blocks of m×d is (k·m)×d)"
                ),
            });
        }
        if !(alpha.is_finite() && ridge.is_finite()) {
            return Err(EngineError::InvalidArgument {
                op: OP,
                message: format!("the factor α = {alpha} and the ridge ε = {ridge} must be finite"),
            });
        }
        let out_rows = batch
            .checked_mul(d)
            .ok_or_else(|| EngineError::InvalidArgument {
                op: OP,
                message: format!("{batch} blocks of {d}×{d} overflow; check the shapes"),
            })?;
        crate::ops::entries(OP, out_rows, d)?;
        let out = crate::map_value!(&*f, x => forward(x, alpha, ridge, batch));
        self.tape()
            .record1(Rc::new(Gram { alpha, batch }), &[self], out)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::herm_sum::blocks_exactly_hermitian;
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{DType, EngineError, Form, Tape, Value};

    /// The value rule on the parallel path (a worker of rayon's pool, a batch large enough
    /// for `par::blocks_parallel`) gives the node rule's bits, real and complex, and
    /// `F̄_b = F_b · α(C̄_b + C̄_bᴴ)` block by block.
    #[test]
    fn parallel_value_rule_equals_node_rule_and_blockwise_product() {
        crate::par::in_pool(|| {
            let (batch, m, d) = (64, 48, 24);
            assert!(crate::par::blocks_parallel(batch, m * d * d));
            for make in [real_matrix, complex_matrix] {
                let (f, g) = (make(batch * m, d, 5), make(batch * d, d, 6));
                let run = |recorded: bool| -> Value {
                    let t = Tape::new();
                    let x = t.leaf(f.clone()).unwrap();
                    let c = x.gram_blocks(batch, 0.3, 1e-3).unwrap();
                    if recorded {
                        let gc = t.constant(g.clone()).unwrap();
                        t.vjp_graph(&[c], &[gc], &[x]).unwrap()[0].value()
                    } else {
                        t.vjp(&[c], std::slice::from_ref(&g), &[x])
                            .unwrap()
                            .remove(0)
                    }
                };
                let (fast, slow) = (run(false), run(true));
                assert_eq!(fast.rel_diff(&slow).unwrap(), 0.0);
                let t = Tape::new();
                let (fv, gv) = (
                    t.constant(f.clone()).unwrap(),
                    t.constant(g.clone()).unwrap(),
                );
                let got = t.constant(fast).unwrap();
                for k in [0, 1, 37, batch - 1] {
                    let fk = fv.slice(k * m..(k + 1) * m, 0..d).unwrap();
                    let gk = gv.slice(k * d..(k + 1) * d, 0..d).unwrap();
                    let want = fk
                        .matmul(gk.add(gk.adjoint().unwrap()).unwrap().scale(0.3).unwrap())
                        .unwrap();
                    let have = got.slice(k * m..(k + 1) * m, 0..d).unwrap();
                    assert!(
                        have.value().rel_diff(&want.value()).unwrap() < 1e-14,
                        "block {k}"
                    );
                }
            }
        });
    }

    /// A backward whose F̄ overflows is refused, on the value path whose bound skips the
    /// scan: F (1×16, entries a = 1e154) gives a finite C (½·a² = 5e307) and, with the
    /// cotangent's entries 2e153, F̄ = 16·a·(½·2·2e153) = 3.2e308 = ∞. The proved bound
    /// (2·16·a·2·½·2e153·(1 + 2⁻⁵⁰) = ∞) sends F̄ to the scan; a bound without the inner
    /// dimension (2·a·2e153, finite) would have let ∞ through.
    #[test]
    fn an_overflowing_backward_is_refused() {
        for batch in [1, 2] {
            let t = Tape::new();
            let x = t
                .leaf(Value::Real(faer::Mat::from_fn(batch, 16, |_, _| 1e154)))
                .unwrap();
            let c = x.gram_blocks(batch, 0.5, 0.0).unwrap();
            assert!(c.value().is_finite());
            let g = Value::Real(faer::Mat::from_fn(16 * batch, 16, |_, _| 2e153));
            let e = t.vjp(&[c], &[g], &[x]).unwrap_err();
            assert!(matches!(e, EngineError::NonFinite { .. }), "{e}");
        }
    }

    /// Closed form: `F_b = s_b [I; 0]` has `α F_bᴴF_b + εI = (α s_b² + ε) I`.
    #[test]
    fn forward_closed_form_on_orthogonal_blocks() {
        let t = Tape::new();
        let (m, d, batch) = (5, 3, 2);
        let s = [2.0, -0.5];
        let f = faer::Mat::from_fn(batch * m, d, |r, j| if r % m == j { s[r / m] } else { 0.0 });
        let c = t
            .constant(Value::Real(f))
            .unwrap()
            .gram_blocks(batch, 0.25, 0.1)
            .unwrap()
            .value();
        let c = c.as_real().unwrap();
        for b in 0..batch {
            for i in 0..d {
                for j in 0..d {
                    let want = if i == j {
                        0.25 * s[b] * s[b] + 0.1
                    } else {
                        0.0
                    };
                    assert_eq!(c[(b * d + i, j)], want, "block {b} ({i},{j})");
                }
            }
        }
    }

    /// Forward equals `α · bmm(Fᴴ, F) + εI` block by block (bmm's forward is tested
    /// against explicit sums) and is exactly Hermitian; real and complex, tall, wide and
    /// single blocks, and a batch large enough for the block-parallel path.
    #[test]
    fn forward_is_the_scaled_blockwise_product_and_exactly_hermitian() {
        // on a worker thread, where the last case takes the block-parallel path
        crate::par::in_pool(forward_blockwise_on_a_worker);
    }

    fn forward_blockwise_on_a_worker() {
        for make in [real_matrix, complex_matrix] {
            for (batch, m, d) in [(1, 7, 4), (3, 2, 5), (4, 6, 3), (96, 40, 24)] {
                // 96 · 40 · 24² multiply-adds ≥ par::GEMM_PAR_MIN_MACS
                let t = Tape::new();
                let f = t.constant(make(batch * m, d, 7)).unwrap();
                let c = f.gram_blocks(batch, 0.3, -0.2).unwrap().value();
                let ridge =
                    faer::Mat::from_fn(batch * d, d, |i, j| if i % d == j { -0.2 } else { 0.0 });
                let ridge = match f.dtype() {
                    DType::F64 => Value::Real(ridge),
                    DType::C64 => Value::Complex(Value::Real(ridge).to_complex()),
                };
                let want = f
                    .bmm_forms(Form::Adjoint, f, Form::Plain, batch)
                    .unwrap()
                    .scale(0.3)
                    .unwrap()
                    .add(t.constant(ridge).unwrap())
                    .unwrap()
                    .value();
                // both sum the same m products in a different order: a few ulps of the
                // entries' magnitude (≈ m)
                assert!(
                    c.rel_diff(&want).unwrap() < 1e-14,
                    "{batch}×({m}×{d}) {:?}",
                    f.dtype()
                );
                assert!(blocks_exactly_hermitian(&c, d));
            }
        }
    }

    #[test]
    fn rules_real_and_complex_single_and_batched() {
        for make in [real_matrix, complex_matrix] {
            assert_rules("gram", |_, x| x[0].gram(), &[make(4, 3, 1)]);
            assert_rules("gram wide", |_, x| x[0].gram(), &[make(2, 3, 2)]);
            assert_rules(
                "gram_blocks",
                |_, x| x[0].gram_blocks(3, 0.4, 0.5),
                &[make(3 * 4, 2, 3)],
            );
        }
    }

    /// Empty blocks: no samples gives `εI`; no columns gives an empty stack.
    #[test]
    fn empty_blocks() {
        let t = Tape::new();
        let f = t.leaf(Value::zeros(DType::F64, 0, 2)).unwrap();
        let c = f.gram_blocks(1, 1.0, 0.5).unwrap().value();
        assert_eq!(c.as_real(), Some(&faer::mat![[0.5, 0.0], [0.0, 0.5]]));
        let f = t.leaf(Value::zeros(DType::F64, 6, 0)).unwrap();
        assert_eq!(f.gram_blocks(3, 1.0, 0.5).unwrap().shape(), (0, 0));
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let f = t.leaf(real_matrix(6, 2, 1)).unwrap();
        for (batch, alpha, ridge) in [
            (0, 1.0, 0.0),
            (4, 1.0, 0.0),
            (2, f64::INFINITY, 0.0),
            (2, 1.0, f64::NAN),
        ] {
            let e = f.gram_blocks(batch, alpha, ridge).unwrap_err();
            assert!(
                matches!(e, EngineError::InvalidArgument { op: "gram", .. }),
                "{e}"
            );
        }
        // a covariance that overflows is refused, not passed on as ∞ (both product paths:
        // the full one below d = 16 and the triangular one from it on)
        for d in [2, 16] {
            let big = t
                .leaf(Value::Real(faer::Mat::from_fn(4, d, |_, _| 1e200)))
                .unwrap();
            let e = big.gram_blocks(1, 1.0, 0.0).unwrap_err();
            assert!(
                matches!(e, EngineError::NonFinite { op: "gram", .. }),
                "{e}"
            );
        }
    }
}
