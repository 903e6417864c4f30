//! `bmm`: the batched matrix product of stacked blocks, `C_b = op(A_b) op(B_b)` for
//! `b = 0..batch`, with `op ∈ {X, Xᴴ}`.
//!
//! Layout: a batch of `batch` matrices of one shape is stored as their vertical stack, the
//! layout of [`crate::Var::vcat`] and of `matgrad_spectral::matrix_function_sym_batched`:
//! A is `(batch·p)×q` (block b is rows `b·p..(b+1)·p`), B is `(batch·r)×s`, and C is the
//! stack of the `batch` products. One node replaces `batch` matmul nodes plus their slices
//! and concatenation.
//!
//! The rules are those of `matmul` (docs/math/matmul.md), block by block, and are themselves
//! `bmm`s, so every order of differentiation is available:
//!
//! | C_b         | Ā_b          | B̄_b          |
//! |-------------|--------------|--------------|
//! | A_b B_b     | C̄_b B_bᴴ     | A_bᴴ C̄_b     |
//! | A_bᴴ B_b    | B_b C̄_bᴴ     | A_b C̄_b      |
//! | A_b B_bᴴ    | C̄_b B_b      | C̄_bᴴ A_b     |
//! | A_bᴴ B_bᴴ   | B_bᴴ C̄_bᴴ    | C̄_bᴴ A_bᴴ    |
//!
//! tangent: `Ċ_b = op(Ȧ_b) op(B_b) + op(A_b) op(Ḃ_b)`. Derivation: docs/math/bmm.md.

use std::rc::Rc;

use faer::{Mat, Par};

use crate::error::{EngineError, Result};
use crate::ops::matmul::gemm_into;
use crate::ops::{add_opt, same_dtype, Form};
use crate::tape::{same_tape, Op, OpCtx, Var};
use crate::value::{Scalar, Value};

struct Bmm {
    fa: Form,
    fb: Form,
    batch: usize,
}

fn dims(f: Form, (m, n): (usize, usize)) -> (usize, usize) {
    match f {
        Form::Plain => (m, n),
        Form::Adjoint => (n, m),
    }
}

fn forward<T: Scalar>(
    a: &Mat<T>,
    fa: Form,
    b: &Mat<T>,
    fb: Form,
    batch: usize,
    (p, r): (usize, usize),
    (m, n): (usize, usize),
) -> Mat<T> {
    use rayon::prelude::*;
    // Accum::Replace writes every entry of every block
    let mut out = crate::pool::for_overwrite(batch * m, n);
    let k = match fa {
        Form::Plain => a.ncols(),
        Form::Adjoint => p,
    };
    let macs = m * n * k;
    if crate::par::blocks_parallel(batch, macs) {
        // macs > 0, so every block has rows (p, r, m ≥ 1)
        out.as_mut()
            .par_row_chunks_mut(m)
            .zip(a.as_ref().par_row_chunks(p))
            .zip(b.as_ref().par_row_chunks(r))
            .for_each(|((o, ak), bk)| gemm_into(o, ak, fa, bk, fb, Par::Seq));
    } else {
        let par = crate::par::gemm_par(m, n, k);
        for i in 0..batch {
            gemm_into(
                out.as_mut().subrows_mut(i * m, m),
                a.as_ref().subrows(i * p, p),
                fa,
                b.as_ref().subrows(i * r, r),
                fb,
                par,
            );
        }
    }
    out
}

impl Op for Bmm {
    fn name(&self) -> &'static str {
        "bmm"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        use Form::{Adjoint as H, Plain as P};
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (a, b, k) = (ctx.input(0), ctx.input(1), self.batch);
        let ga = if ctx.needs_grad(0) {
            Some(match (self.fa, self.fb) {
                (P, P) => g.bmm_forms(P, b, H, k)?,
                (H, P) => b.bmm_forms(P, g, H, k)?,
                (P, H) => g.bmm_forms(P, b, P, k)?,
                (H, H) => b.bmm_forms(H, g, H, k)?,
            })
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            Some(match (self.fa, self.fb) {
                (P, P) => a.bmm_forms(H, g, P, k)?,
                (H, P) => a.bmm_forms(P, g, P, k)?,
                (P, H) => g.bmm_forms(H, a, P, k)?,
                (H, H) => g.bmm_forms(H, a, H, k)?,
            })
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ta = t[0]
            .map(|da| da.bmm_forms(self.fa, b, self.fb, self.batch))
            .transpose()?;
        let tb = t[1]
            .map(|db| a.bmm_forms(self.fa, db, self.fb, self.batch))
            .transpose()?;
        Ok(vec![add_opt(ta, tb)?])
    }
}

impl<'t> Var<'t> {
    /// The batched product `C_b = op(self_b) · op(other_b)` of `batch` vertically stacked
    /// blocks (see the module docs for the layout): `self` is `(batch·p)×q`, `other` is
    /// `(batch·r)×s`, the result `(batch·m)×n` with `m×n` the shape of one product.
    ///
    /// ```
    /// use matgrad_engine::{Form, Tape, testing::real_matrix};
    /// # fn main() -> Result<(), matgrad_engine::Error> {
    /// let tape = Tape::new();
    /// let f = tape.leaf(real_matrix(3 * 5, 2, 1))?;          // three 5×2 blocks
    /// let grams = f.bmm_forms(Form::Adjoint, f, Form::Plain, 3)?; // three 2×2 FᵦᵀFᵦ
    /// assert_eq!(grams.shape(), (6, 2));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `batch` is 0 or does not divide both row
    /// counts; [`EngineError::ShapeMismatch`] when the blocks' inner dimensions differ;
    /// dtypes differ; Vars from different tapes. Every error names `bmm`.
    pub fn bmm_forms(self, fa: Form, other: Var<'t>, fb: Form, batch: usize) -> Result<Var<'t>> {
        const OP: &str = "bmm";
        let tape = same_tape(OP, &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_dtype(OP, &a, &b)?;
        let ((am, an), (bm, bn)) = (a.shape(), b.shape());
        if batch == 0 || am % batch != 0 || bm % batch != 0 {
            return Err(EngineError::InvalidArgument {
                op: OP,
                message: format!(
                    "batch = {batch} must be positive and divide the rows of both stacks ({am}×{an} and {bm}×{bn}); a stack of k blocks of p×q is (k·p)×q"
                ),
            });
        }
        let (p, r) = (am / batch, bm / batch);
        let (ar, ac) = dims(fa, (p, an));
        let (br, bc) = dims(fb, (r, bn));
        if ac != br {
            return Err(EngineError::ShapeMismatch {
                op: OP,
                lhs: (ar, ac),
                rhs: (br, bc),
                hint: "per block, the columns of the left factor must equal the rows of the right factor",
            });
        }
        let rows = batch
            .checked_mul(ar)
            .ok_or_else(|| EngineError::InvalidArgument {
                op: OP,
                message: format!("{batch} blocks of {ar} rows overflow; check the shapes"),
            })?;
        crate::ops::entries(OP, rows, bc)?;
        let out = match (&*a, &*b) {
            (Value::Real(x), Value::Real(y)) => {
                Value::Real(forward(x, fa, y, fb, batch, (p, r), (ar, bc)))
            }
            (Value::Complex(x), Value::Complex(y)) => {
                Value::Complex(forward(x, fa, y, fb, batch, (p, r), (ar, bc)))
            }
            _ => unreachable!("dtypes checked above"),
        };
        tape.record1(Rc::new(Bmm { fa, fb, batch }), &[self, other], out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Form, Tape, Var};

    /// Forward: equal, block by block, to slicing and `matmul_forms` (whose forward is
    /// tested against explicit sums), for every form, real and complex.
    #[test]
    fn forward_is_the_blockwise_matmul() {
        use Form::{Adjoint as H, Plain as P};
        for make in [real_matrix, complex_matrix] {
            let t = Tape::new();
            let k = 3;
            for (fa, fb, (p, q), (r, s)) in [
                (P, P, (2, 4), (4, 5)),
                (H, P, (4, 2), (4, 5)),
                (P, H, (2, 4), (5, 4)),
                (H, H, (4, 2), (5, 4)),
            ] {
                let a = t.constant(make(k * p, q, 1)).unwrap();
                let b = t.constant(make(k * r, s, 2)).unwrap();
                let c = a.bmm_forms(fa, b, fb, k).unwrap().value();
                let blocks: Vec<Var> = (0..k)
                    .map(|i| {
                        let ai = a.slice(i * p..(i + 1) * p, 0..q).unwrap();
                        let bi = b.slice(i * r..(i + 1) * r, 0..s).unwrap();
                        ai.matmul_forms(fa, bi, fb).unwrap()
                    })
                    .collect();
                let expect = Var::vcat(&blocks).unwrap().value();
                assert!(c.rel_diff(&expect).unwrap() < 1e-15, "{fa:?} {fb:?}");
            }
        }
    }

    /// A batch large enough for the block-parallel path (`par::blocks_parallel`, on a
    /// worker thread when rayon has two threads or more) gives the blockwise products too.
    #[test]
    fn large_batch_is_the_blockwise_matmul() {
        crate::par::in_pool(large_batch_is_the_blockwise_matmul_on_a_worker);
    }

    fn large_batch_is_the_blockwise_matmul_on_a_worker() {
        use Form::{Adjoint as H, Plain as P};
        let t = Tape::new();
        let (k, p) = (96, 24); // 96 · 24³ multiply-adds ≥ GEMM_PAR_MIN_MACS
        for (fa, fb) in [(P, P), (H, P), (P, H)] {
            let a = t.constant(complex_matrix(k * p, p, 3)).unwrap();
            let b = t.constant(complex_matrix(k * p, p, 4)).unwrap();
            let c = a.bmm_forms(fa, b, fb, k).unwrap().value();
            for i in [0, 1, 50, k - 1] {
                let ai = a.slice(i * p..(i + 1) * p, 0..p).unwrap();
                let bi = b.slice(i * p..(i + 1) * p, 0..p).unwrap();
                let want = ai.matmul_forms(fa, bi, fb).unwrap().value();
                let got = t
                    .constant(c.clone())
                    .unwrap()
                    .slice(i * p..(i + 1) * p, 0..p)
                    .unwrap()
                    .value();
                assert!(
                    got.rel_diff(&want).unwrap() < 1e-15,
                    "{fa:?} {fb:?} block {i}"
                );
            }
        }
    }

    #[test]
    fn rules_all_forms_real_and_complex() {
        use Form::{Adjoint as H, Plain as P};
        for make in [real_matrix, complex_matrix] {
            for (fa, fb, (p, q), (r, s)) in [
                (P, P, (2, 3), (3, 2)),
                (H, P, (3, 2), (3, 4)),
                (P, H, (2, 3), (4, 3)),
                (H, H, (3, 2), (1, 3)),
            ] {
                assert_rules(
                    "bmm",
                    |_, x| x[0].bmm_forms(fa, x[1], fb, 2),
                    &[make(2 * p, q, 3), make(2 * r, s, 4)],
                );
            }
            // the Gram of every block, the input used twice (DeepO2P's covariance)
            assert_rules(
                "bmm FᴴF",
                |_, x| x[0].bmm_forms(H, x[0], P, 3),
                &[make(3 * 4, 2, 5)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(6, 2, 1)).unwrap();
        let b = t.leaf(real_matrix(9, 2, 2)).unwrap();
        for (k, bb) in [(0, a), (4, a), (2, b)] {
            let e = a.bmm_forms(Form::Plain, bb, Form::Plain, k).unwrap_err();
            assert!(
                matches!(e, EngineError::InvalidArgument { op: "bmm", .. }),
                "{e}"
            );
        }
        // 3×2 blocks times 3×2 blocks: inner dimensions 2 ≠ 3
        assert!(matches!(
            a.bmm_forms(Form::Plain, a, Form::Plain, 2),
            Err(EngineError::ShapeMismatch { op: "bmm", .. })
        ));
        let c = t.leaf(complex_matrix(6, 2, 3)).unwrap();
        assert!(matches!(
            a.bmm_forms(Form::Adjoint, c, Form::Plain, 2),
            Err(EngineError::DTypeMismatch { .. })
        ));
    }
}
