//! `matmul`: `C = op(A) op(B)` with `op ∈ {X, Xᴴ}`, and `mul_scalar`: `C = s·A` for a 1×1 `s`.
//!
//! Matrix product, plain form `C = AB`:
//! - tangent: `Ċ = Ȧ B + A Ḃ`;
//! - adjoint: `Ā = C̄ Bᴴ`, `B̄ = Aᴴ C̄`.
//!
//! The adjoint forms (needed so that the rules of `AB` are themselves matmuls without
//! materialising `Aᴴ`) follow from `⟨C̄, dC⟩ = Re tr(C̄ᴴ dC)`:
//!
//! | C        | Ā        | B̄        |
//! |----------|----------|----------|
//! | A B      | C̄ Bᴴ     | Aᴴ C̄     |
//! | Aᴴ B     | B C̄ᴴ     | A C̄      |
//! | A Bᴴ     | C̄ B      | C̄ᴴ A     |
//! | Aᴴ Bᴴ    | Bᴴ C̄ᴴ    | C̄ᴴ Aᴴ    |
//!
//! Scalar times matrix `C = s A` (s is 1×1): `Ċ = ṡ A + s Ȧ`; `Ā = s̄* C̄` (conjugate of
//! s), `s̄ = ⟨A, C̄⟩ = Σ conj(A) ∘ C̄`.
//!
//! Residuals: none beyond the input handles (A and B are already on the tape).
//! Derivation: docs/math/matmul.md.

use std::rc::Rc;

use faer::linalg::matmul::matmul_with_conj;
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};

use crate::error::{EngineError, Result};
use crate::ops::{add_opt, ew1, same_dtype};
use crate::tape::{same_tape, Ct, Op, OpCtx, Var};
use crate::value::{Scalar, Value};

/// Whether a matmul operand is used as is or as its adjoint (conjugate transpose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `X`.
    Plain,
    /// `Xᴴ` (the transpose for real matrices).
    Adjoint,
}

impl Form {
    fn dims(self, (m, n): (usize, usize)) -> (usize, usize) {
        match self {
            Form::Plain => (m, n),
            Form::Adjoint => (n, m),
        }
    }
}

/// From this order on, a product known to be Hermitian is computed as its lower triangle
/// only (faer's triangular product) and mirrored; below it the full product is faster
/// (measured on the machine class: the triangular product 1.6× slower at n = 4, even at 16,
/// 0.86× at 64, 0.72× at 128). Used by `gram` and by the spectral congruences.
pub const TRIANGULAR_MIN_N: usize = 16;

/// A bound on the entries of a product of `k`-term inner products whose factors' entries
/// are at most `ba` and `bb` in magnitude (real values; a complex value's bound is `+∞`,
/// or 0 for zeros, where the product's 0 is exact):
/// every partial sum, as computed, is at most `k·ba·bb·(1 + k·2⁻⁵³)` in magnitude, so
/// `2·k·ba·bb` holds with room to spare for any `k` below 2⁵². Infinite (no bound: the
/// output is scanned) when a factor's bound is unknown or the bound overflows.
pub(crate) fn product_bound(k: usize, ba: f64, bb: f64) -> f64 {
    let b = 2.0 * k as f64 * ba * bb;
    if b.is_nan() {
        f64::INFINITY
    } else {
        b
    }
}

/// `op(a) op(b)` with faer's GEMM. Adjoints are views, except a small left adjoint
/// (at most 1024 entries, below faer's small-product threshold), which is copied to the
/// stack first (see `gemm_into`).
///
/// # Panics
/// When the inner dimensions of `op(a)` and `op(b)` differ (faer's assertion); the ops
/// check shapes and return an error before they call it.
pub fn gemm<T: Scalar>(a: MatRef<'_, T>, fa: Form, b: MatRef<'_, T>, fb: Form) -> Mat<T> {
    let m = match fa {
        Form::Plain => a.nrows(),
        Form::Adjoint => a.ncols(),
    };
    let n = match fb {
        Form::Plain => b.ncols(),
        Form::Adjoint => b.nrows(),
    };
    let k = match fa {
        Form::Plain => a.ncols(),
        Form::Adjoint => a.nrows(),
    };
    // `Accum::Replace` writes every entry (zeros when k = 0) without reading the old ones
    // (the test `gemm_never_reads_its_destination`), so a pooled buffer needs no zero-fill
    let mut out = crate::pool::for_overwrite(m, n);
    gemm_into(out.as_mut(), a, fa, b, fb, crate::par::gemm_par(m, n, k));
    out
}

/// `out = op(a) op(b)` with faer's GEMM and the given parallelism (the caller chooses it:
/// [`crate::par::gemm_par`] for one product, [`Par::Seq`] inside a parallel loop). A
/// parallel product with a small output and a long inner dimension is split along it, one
/// slice per thread ([`crate::par::inner_split`]).
///
/// # Panics
/// When the shapes of `out`, `op(a)` and `op(b)` do not agree (faer's assertion).
pub fn gemm_into<T: Scalar>(
    out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    fa: Form,
    b: MatRef<'_, T>,
    fb: Form,
    par: Par,
) {
    // Conjugating a real matrix is the identity; saying so keeps faer on its plain kernels.
    let conj = if T::DTYPE == crate::value::DType::F64 {
        Conj::No
    } else {
        Conj::Yes
    };
    let (b, cb) = match fb {
        Form::Plain => (b, Conj::No),
        Form::Adjoint => (b.transpose(), conj),
    };
    // (the tiers are sized from `a` itself, so mismatched shapes reach faer's assertion)
    let (m, k) = (a.ncols(), a.nrows());
    if fa == Form::Adjoint && m * k != 0 && m * out.ncols() * k <= NANO_GEMM_MACS {
        if m * k <= 16 {
            return adjoint_lhs_on_stack::<T, 16>(out, a, b, cb, par);
        }
        if m * k <= 64 {
            return adjoint_lhs_on_stack::<T, 64>(out, a, b, cb, par);
        }
        if m * k <= 256 {
            return adjoint_lhs_on_stack::<T, 256>(out, a, b, cb, par);
        }
        if m * k <= 512 {
            return adjoint_lhs_on_stack::<T, 512>(out, a, b, cb, par);
        }
        if m * k <= 1024 {
            return adjoint_lhs_on_stack::<T, 1024>(out, a, b, cb, par);
        }
    }
    let (a, ca) = match fa {
        Form::Plain => (a, Conj::No),
        Form::Adjoint => (a.transpose(), conj),
    };
    let parts = crate::par::inner_split(out.nrows(), out.ncols(), a.ncols(), par);
    if parts > 1 && (a.nrows(), a.ncols()) == (out.nrows(), b.nrows()) && b.ncols() == out.ncols() {
        return split_inner(out, a, ca, b, cb, parts);
    }
    matmul_with_conj(out, Accum::Replace, a, ca, b, cb, T::from_f64(1.0), par);
}

/// `out = a b` as `parts` products of slices of the inner dimension, each on its own rayon
/// task, summed in slice order (see [`crate::par::inner_split`] for when and why). The sum
/// of the partial products is a different rounding order from one product's, within the
/// same `γ_k Σ|a||b|` bound.
fn split_inner<T: Scalar>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    ca: Conj,
    b: MatRef<'_, T>,
    cb: Conj,
    parts: usize,
) {
    let (m, n, k) = (out.nrows(), out.ncols(), a.ncols());
    let slice = |i: usize| (i * k / parts, (i + 1) * k / parts);
    // every entry of a partial product is written by its `Accum::Replace`
    let mut partial: Vec<Mat<T>> = (1..parts)
        .map(|_| crate::pool::for_overwrite(m, n))
        .collect();
    rayon::scope(|s| {
        let dsts = std::iter::once(out.as_mut()).chain(partial.iter_mut().map(Mat::as_mut));
        for (i, dst) in dsts.enumerate() {
            let (lo, hi) = slice(i);
            s.spawn(move |_| {
                matmul_with_conj(
                    dst,
                    Accum::Replace,
                    a.subcols(lo, hi - lo),
                    ca,
                    b.subrows(lo, hi - lo),
                    cb,
                    T::from_f64(1.0),
                    Par::Seq,
                );
            });
        }
    });
    for p in &partial {
        for j in 0..n {
            for i in 0..m {
                let s = out[(i, j)] + p[(i, j)];
                out[(i, j)] = s;
            }
        }
    }
}

/// faer hands a product of at most this many multiply-adds (`m·n·k`) to nano-gemm.
const NANO_GEMM_MACS: usize = 16 * 16 * 16;

/// `out = aᴴ b` for a left factor of at most `N` entries: nano-gemm's fast kernels (which
/// faer uses below [`NANO_GEMM_MACS`]) need a column-major left factor, and a transposed
/// one goes through a generic copy loop, ≈ 480 instructions for a 2×2 product against
/// ≈ 60 (callgrind). So the adjoint is copied to a column-major buffer on the stack first.
/// (`N` is sized to the factor, so zeroing the buffer costs little.)
fn adjoint_lhs_on_stack<T: Scalar, const N: usize>(
    out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    cb: Conj,
    par: Par,
) {
    let (m, k) = (a.ncols(), a.nrows());
    let mut buf = [T::from_f64(0.0); N];
    for i in 0..m {
        // column i of `a` (contiguous in a column-major view) is row i of `aᴴ`
        match a.col(i).try_as_col_major() {
            Some(col) => {
                for (x, dst) in col.as_slice().iter().zip(buf[i..].iter_mut().step_by(m)) {
                    *dst = x.cj();
                }
            }
            None => {
                for j in 0..k {
                    buf[j * m + i] = a[(j, i)].cj();
                }
            }
        }
    }
    let lhs = MatRef::from_column_major_slice(&buf[..m * k], m, k);
    matmul_with_conj(
        out,
        Accum::Replace,
        lhs,
        Conj::No,
        b,
        cb,
        T::from_f64(1.0),
        par,
    );
}

/// Makes a square matrix whose lower triangle holds a Hermitian matrix exactly Hermitian:
/// the diagonal keeps its real part and every entry above it becomes the conjugate of its
/// mirror below. Used after faer's lower-triangular products (`gram`, the spectral
/// congruences). Walks 32×32 tiles, so that the strided reads of the lower triangle stay
/// in cache (a plain column loop read a row per column: 2.6 % of an eigh backward at
/// n = 256). A matrix that is not square has its leading square block treated so and the
/// rest left as it is (every use in matgrad passes a square product).
pub fn mirror_lower<T: Scalar>(mut m: MatMut<'_, T>) {
    const TILE: usize = 32;
    let n = m.nrows().min(m.ncols());
    for j in 0..n {
        m[(j, j)] = T::from_f64(m[(j, j)].re());
    }
    for jb in (0..n).step_by(TILE) {
        let je = (jb + TILE).min(n);
        for ib in (0..je).step_by(TILE) {
            for j in jb..je {
                for i in ib..(ib + TILE).min(j) {
                    m[(i, j)] = m[(j, i)].cj();
                }
            }
        }
    }
}

/// `op(a) op(b)` on values, with the bound on its entries that `ba`, `bb` (bounds on
/// `a`'s and `b`'s) prove: the product of [`Var::matmul_forms`] and of [`MatMul`]'s value
/// rule, so the two give the same numbers.
fn product(a: &Value, fa: Form, ba: f64, b: &Value, fb: Form, bb: f64) -> Result<(Value, f64)> {
    same_dtype("matmul", a, b)?;
    let (ar, ac) = fa.dims(a.shape());
    let (br, bc) = fb.dims(b.shape());
    if ac != br {
        return Err(EngineError::ShapeMismatch {
            op: "matmul",
            lhs: (ar, ac),
            rhs: (br, bc),
            hint: "the columns of the left factor must equal the rows of the right factor",
        });
    }
    let out = match (a, b) {
        (Value::Real(x), Value::Real(y)) => Value::Real(gemm(x.as_ref(), fa, y.as_ref(), fb)),
        (Value::Complex(x), Value::Complex(y)) => {
            Value::Complex(gemm(x.as_ref(), fa, y.as_ref(), fb))
        }
        _ => unreachable!("dtypes checked above"),
    };
    Ok((out, product_bound(ac, ba, bb)))
}

struct MatMul {
    fa: Form,
    fb: Form,
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        use Form::{Adjoint as H, Plain as P};
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            Some(match (self.fa, self.fb) {
                (P, P) => g.matmul_forms(P, b, H)?,
                (H, P) => b.matmul_forms(P, g, H)?,
                (P, H) => g.matmul_forms(P, b, P)?,
                (H, H) => b.matmul_forms(H, g, H)?,
            })
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            Some(match (self.fa, self.fb) {
                (P, P) => a.matmul_forms(H, g, P)?,
                (H, P) => a.matmul_forms(P, g, P)?,
                (P, H) => g.matmul_forms(H, a, P)?,
                (H, H) => g.matmul_forms(H, a, H)?,
            })
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    /// The products of [`Op::vjp`] on values, form for form.
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        use Form::{Adjoint as H, Plain as P};
        let Some(g) = &ct[0] else {
            out.extend([None, None]);
            return Ok(true);
        };
        let (a, b) = (ctx.input(0), ctx.input(1));
        let tape = a.tape();
        let (av, bv) = (a.rc(), b.rc());
        let (ab, bb) = (tape.bound(a), tape.bound(b));
        let (gv, gb) = (&*g.value, g.bound);
        let prod = |x: &Value, fx, bx, y: &Value, fy, by| -> Result<Option<Ct>> {
            let (v, bound) = product(x, fx, bx, y, fy, by)?;
            Ok(Some(Ct::new(v, bound)))
        };
        out.push(if ctx.needs_grad(0) {
            match (self.fa, self.fb) {
                (P, P) => prod(gv, P, gb, &bv, H, bb)?,
                (H, P) => prod(&bv, P, bb, gv, H, gb)?,
                (P, H) => prod(gv, P, gb, &bv, P, bb)?,
                (H, H) => prod(&bv, H, bb, gv, H, gb)?,
            }
        } else {
            None
        });
        out.push(if ctx.needs_grad(1) {
            match (self.fa, self.fb) {
                (P, P) => prod(&av, H, ab, gv, P, gb)?,
                (H, P) => prod(&av, P, ab, gv, P, gb)?,
                (P, H) => prod(gv, H, gb, &av, P, ab)?,
                (H, H) => prod(gv, H, gb, &av, H, ab)?,
            }
        } else {
            None
        });
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ta = t[0]
            .map(|da| da.matmul_forms(self.fa, b, self.fb))
            .transpose()?;
        let tb = t[1]
            .map(|db| a.matmul_forms(self.fa, db, self.fb))
            .transpose()?;
        Ok(vec![add_opt(ta, tb)?])
    }
}

struct MulScalar;

impl Op for MulScalar {
    fn name(&self) -> &'static str {
        "mul_scalar"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (s, a) = (ctx.input(0), ctx.input(1));
        let gs = if ctx.needs_grad(0) {
            Some(a.inner(g)?)
        } else {
            None
        };
        let ga = if ctx.needs_grad(1) {
            Some(g.mul_scalar(s.conj()?)?)
        } else {
            None
        };
        Ok(vec![gs, ga])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (s, a) = (ctx.input(0), ctx.input(1));
        let ts = t[0].map(|ds| a.mul_scalar(ds)).transpose()?;
        let ta = t[1].map(|da| da.mul_scalar(s)).transpose()?;
        Ok(vec![add_opt(ts, ta)?])
    }
}

impl<'t> Var<'t> {
    /// Matrix product `self · other`.
    ///
    /// # Errors
    /// Inner dimensions differ; dtypes differ; Vars from different tapes.
    pub fn matmul(self, other: Var<'t>) -> Result<Var<'t>> {
        self.matmul_forms(Form::Plain, other, Form::Plain)
    }

    /// `op(self) · op(other)` where each `op` is the identity or the adjoint; the adjoint
    /// is applied inside the GEMM, without a copy.
    ///
    /// # Errors
    /// Inner dimensions differ; dtypes differ; Vars from different tapes.
    pub fn matmul_forms(self, fa: Form, other: Var<'t>, fb: Form) -> Result<Var<'t>> {
        let tape = same_tape("matmul", &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        let (out, bound) = product(&a, fa, tape.bound(self), &b, fb, tape.bound(other))?;
        let op: Rc<dyn Op> = match (fa, fb) {
            (Form::Plain, Form::Plain) => shared_op!(MatMul {
                fa: Form::Plain,
                fb: Form::Plain
            }),
            (Form::Adjoint, Form::Plain) => shared_op!(MatMul {
                fa: Form::Adjoint,
                fb: Form::Plain
            }),
            (Form::Plain, Form::Adjoint) => shared_op!(MatMul {
                fa: Form::Plain,
                fb: Form::Adjoint
            }),
            (Form::Adjoint, Form::Adjoint) => shared_op!(MatMul {
                fa: Form::Adjoint,
                fb: Form::Adjoint
            }),
        };
        tape.record1_bounded(op, &[self, other], out, bound)
    }

    /// `s · self` where `s` is a 1×1 Var of the same dtype (a learned or computed scalar).
    ///
    /// # Errors
    /// `s` is not 1×1; dtypes differ; Vars from different tapes.
    pub fn mul_scalar(self, s: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("mul_scalar", &[self, s])?;
        let (a, sv) = (self.rc(), s.rc());
        if sv.shape() != (1, 1) {
            return Err(EngineError::ShapeMismatch {
                op: "mul_scalar",
                lhs: sv.shape(),
                rhs: (1, 1),
                hint: "the scalar factor must be 1×1",
            });
        }
        same_dtype("mul_scalar", &sv, &a)?;
        let out = match (&*a, &*sv) {
            (Value::Real(x), Value::Real(c)) => Value::Real(ew1(x, |p| p * c[(0, 0)])),
            (Value::Complex(x), Value::Complex(c)) => Value::Complex(ew1(x, |p| p * c[(0, 0)])),
            _ => unreachable!("dtypes checked above"),
        };
        tape.record1(Rc::new(MulScalar), &[s, self], out)
    }
}

#[cfg(test)]
mod tests {
    use super::Form;
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value};

    /// Every entry above the diagonal is the conjugate of its mirror, the diagonal is real,
    /// and the lower triangle is untouched, for orders around the tile size, real and
    /// complex.
    #[test]
    fn mirror_lower_copies_the_conjugate_of_the_lower_triangle() {
        use super::mirror_lower;
        use faer::Mat;
        fn check<T: crate::Scalar>(make: impl Fn(usize, usize) -> T) {
            for n in [0usize, 1, 2, 31, 32, 33, 70] {
                let lower = Mat::from_fn(n, n, &make);
                let mut m = lower.clone();
                mirror_lower(m.as_mut());
                for j in 0..n {
                    for i in 0..n {
                        let want = match i.cmp(&j) {
                            std::cmp::Ordering::Greater => lower[(i, j)],
                            std::cmp::Ordering::Equal => T::from_f64(lower[(i, i)].re()),
                            std::cmp::Ordering::Less => lower[(j, i)].cj(),
                        };
                        let got = m[(i, j)];
                        assert!(
                            got.re() == want.re() && got.im() == want.im(),
                            "n = {n}, ({i}, {j}): {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
        check(|i, j| (i * 100 + j) as f64 - 0.5);
        check(|i, j| crate::C64::new((i * 100 + j) as f64, -((j * 7 + i) as f64) - 1.0));
        // not square: the leading square block only, no panic
        let full = Mat::from_fn(3, 5, |i, j| (i * 10 + j) as f64);
        let mut m = full.clone();
        mirror_lower(m.as_mut());
        for j in 0..5 {
            for i in 0..3 {
                let want = if j >= 3 || i >= j {
                    full[(i, j)]
                } else {
                    full[(j, i)]
                };
                assert_eq!(m[(i, j)], want, "3×5, ({i}, {j})");
            }
        }
    }

    /// `gemm` takes its output buffer from the pool without zero-filling it, which is
    /// right only if faer's `Accum::Replace` never reads the destination. A destination
    /// full of NaN (0·NaN = NaN would show) gives exactly the product into a fresh zero
    /// matrix, for every kernel faer picks: k = 0, matrix-vector (n = 1), nano-gemm's small
    /// sizes and the blocked kernel, real and complex, plain and adjoint forms, sequential
    /// and parallel.
    #[test]
    fn gemm_never_reads_its_destination() {
        use super::gemm_into;
        use faer::{Mat, Par};
        fn check<T: crate::Scalar>(a: &Mat<T>, fa: Form, b: &Mat<T>, fb: Form, par: Par) {
            let (m, n) = (
                if fa == Form::Plain {
                    a.nrows()
                } else {
                    a.ncols()
                },
                if fb == Form::Plain {
                    b.ncols()
                } else {
                    b.nrows()
                },
            );
            let mut want = Mat::<T>::zeros(m, n);
            gemm_into(want.as_mut(), a.as_ref(), fa, b.as_ref(), fb, par);
            let mut got = Mat::<T>::from_fn(m, n, |_, _| T::from_f64(f64::NAN));
            gemm_into(got.as_mut(), a.as_ref(), fa, b.as_ref(), fb, par);
            for j in 0..n {
                for i in 0..m {
                    let (g, w) = (got[(i, j)], want[(i, j)]);
                    assert!(
                        g.re() == w.re() && g.im() == w.im(),
                        "{m}×{n}, {fa:?}·{fb:?}, {par:?}: entry ({i}, {j}) {g:?} vs {w:?}"
                    );
                }
            }
        }
        let shapes = [
            (3, 0, 2),
            (4, 5, 1),
            (1, 5, 4),
            (2, 2, 2),
            (7, 3, 9),
            (70, 65, 80),
            // split along k under Par::rayon(2) (crate::par::inner_split)
            (4, 1024, 3),
        ];
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            let s = s as u64;
            let (ar, br) = (real_matrix(m, k, s), real_matrix(k, n, s + 10));
            let (ac, bc) = (complex_matrix(m, k, s), complex_matrix(k, n, s + 10));
            let (ar, br) = (ar.as_real().unwrap(), br.as_real().unwrap());
            let (ac, bc) = (ac.as_complex().unwrap(), bc.as_complex().unwrap());
            for par in [Par::Seq, Par::rayon(2)] {
                check(ar, Form::Plain, br, Form::Plain, par);
                check(ac, Form::Plain, bc, Form::Plain, par);
                let (art, bct) = (ar.transpose().to_owned(), bc.adjoint().to_owned());
                check(&art, Form::Adjoint, br, Form::Plain, par);
                check(ac, Form::Plain, &bct, Form::Adjoint, par);
            }
        }
    }

    /// Every pair of forms against the explicit sum `Σ_l op(a)_il op(b)_lj`, real and
    /// complex, at shapes on both sides of each size tier of `gemm_into`: left factors
    /// copied to the stack (at most 16, 64, 256, 512 and 1024 entries, below faer's nano-gemm
    /// threshold of 16³ multiply-adds), left factors too large for that (17×16 and a
    /// product above the threshold), a vector (faer's matrix-vector path) and the empty
    /// cases. The tolerance is the classical bound for a sum of `k` products,
    /// `|error| ≤ γ_k Σ_l |op(a)_il| |op(b)_lj|` with `γ_k ≈ k·ε`, doubled for the complex
    /// product's extra rounding. A dropped conjugate, a swapped index in the stack copy
    /// or a wrong tier size gives an O(1) error.
    #[test]
    fn all_forms_match_explicit_sums_at_every_size_tier() {
        let shapes = [
            (2, 2, 2),
            (4, 4, 1),
            (1, 3, 5),
            (4, 4, 4),
            (5, 3, 2),
            (8, 8, 8),
            (7, 9, 3),
            (12, 12, 12),
            (9, 17, 5),
            (16, 16, 16),
            (17, 16, 15),
            (20, 12, 20),
            // the 512-entry tier: a 64×8 factor (the Gram product of a 64×8 block) and
            // one just above 256 entries; the 1024-entry tier: just above 512 entries and
            // one well inside
            (8, 64, 8),
            (5, 60, 3),
            (9, 57, 7),
            (16, 40, 6),
            (0, 3, 2),
            (3, 0, 2),
        ];
        all_forms_match_explicit_sums(&shapes, None);
    }

    /// A small left adjoint given as a view without contiguous columns (a transposed view)
    /// is copied to the stack entry by entry: the same product as from an owned copy.
    #[test]
    fn a_strided_left_adjoint_is_copied_entry_by_entry() {
        use super::gemm_into;
        use faer::Mat;
        fn check<T: crate::Scalar>(make: impl Fn(usize, usize) -> T) {
            // xᵀ is 12×5: (xᵀ)ᴴ · b with (xᵀ)ᴴ 5×12 (60 entries: the 64-entry tier)
            let x = Mat::from_fn(5, 12, &make);
            let b = Mat::from_fn(12, 3, |i, j| make(j + 7, i));
            let xt = x.transpose().to_owned();
            let (mut got, mut want) = (Mat::<T>::zeros(5, 3), Mat::<T>::zeros(5, 3));
            let seq = faer::Par::Seq;
            gemm_into(
                got.as_mut(),
                x.transpose(),
                Form::Adjoint,
                b.as_ref(),
                Form::Plain,
                seq,
            );
            gemm_into(
                want.as_mut(),
                xt.as_ref(),
                Form::Adjoint,
                b.as_ref(),
                Form::Plain,
                seq,
            );
            assert!(got == want);
        }
        check(|i, j| (i * 10 + j) as f64 - 3.5);
        check(|i, j| crate::C64::new((i * 10 + j) as f64, 1.0 - j as f64));
    }

    /// A product whose inner dimension is split over threads
    /// (`crate::par::inner_split`) equals the explicit sums, in every form, real and
    /// complex, within the same bound as one product; two and three slices, uneven ones
    /// included.
    #[test]
    fn split_inner_products_match_explicit_sums() {
        let two = faer::Par::rayon(2);
        let shapes = [(3, 600, 2), (16, 4096, 9), (1, 1024, 1)];
        for &(m, k, n) in &shapes {
            assert_eq!(crate::par::inner_split(m, n, k, two), 2, "{m}×{k}·{k}×{n}");
        }
        all_forms_match_explicit_sums(&shapes, Some(two));
        let three = faer::Par::rayon(3);
        assert_eq!(crate::par::inner_split(4, 5, 1000, three), 3);
        all_forms_match_explicit_sums(&[(4, 1000, 5)], Some(three));
    }

    /// `gemm` (or `gemm_into` with the given parallelism) against explicit sums for each
    /// `(m, k, n)`, every pair of forms, real and complex: each entry within
    /// `γ_{k+1} Σ_l |a_il b_lj|` (the standard error bound of a dot product, doubled).
    fn all_forms_match_explicit_sums(shapes: &[(usize, usize, usize)], par: Option<faer::Par>) {
        use super::{gemm, gemm_into};
        use faer::{Mat, MatRef};
        fn op<T: crate::Scalar>(x: MatRef<'_, T>, f: Form, i: usize, j: usize) -> T {
            match f {
                Form::Plain => x[(i, j)],
                Form::Adjoint => x[(j, i)].cj(),
            }
        }
        fn check<T: crate::Scalar>(
            a: &Mat<T>,
            fa: Form,
            b: &Mat<T>,
            fb: Form,
            par: Option<faer::Par>,
        ) {
            let got = match par {
                None => gemm(a.as_ref(), fa, b.as_ref(), fb),
                Some(par) => {
                    let m = fa.dims((a.nrows(), a.ncols())).0;
                    let n = fb.dims((b.nrows(), b.ncols())).1;
                    let mut out = Mat::<T>::zeros(m, n);
                    gemm_into(out.as_mut(), a.as_ref(), fa, b.as_ref(), fb, par);
                    out
                }
            };
            let (m, k) = fa.dims((a.nrows(), a.ncols()));
            let n = fb.dims((b.nrows(), b.ncols())).1;
            assert_eq!((got.nrows(), got.ncols()), (m, n), "{fa:?}·{fb:?} shape");
            let gamma = 2.0 * (k as f64 + 1.0) * f64::EPSILON;
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut gross) = (T::from_f64(0.0), 0.0);
                    for l in 0..k {
                        let p = op(a.as_ref(), fa, i, l) * op(b.as_ref(), fb, l, j);
                        want += p;
                        gross += p.modulus();
                    }
                    let err = (got[(i, j)] - want).modulus();
                    assert!(
                        err <= gamma * gross,
                        "{m}×{k}·{k}×{n}, {fa:?}·{fb:?}, ({i}, {j}): {:?} vs {want:?}",
                        got[(i, j)]
                    );
                }
            }
        }
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            let s = 40 + s as u64;
            for fa in [Form::Plain, Form::Adjoint] {
                for fb in [Form::Plain, Form::Adjoint] {
                    let ad = |r, c| if fa == Form::Plain { (r, c) } else { (c, r) };
                    let bd = |r, c| if fb == Form::Plain { (r, c) } else { (c, r) };
                    let ((ar, ac), (br, bc)) = (ad(m, k), bd(k, n));
                    let (x, y) = (real_matrix(ar, ac, s), real_matrix(br, bc, s + 1));
                    check(x.as_real().unwrap(), fa, y.as_real().unwrap(), fb, par);
                    let (x, y) = (complex_matrix(ar, ac, s), complex_matrix(br, bc, s + 1));
                    check(
                        x.as_complex().unwrap(),
                        fa,
                        y.as_complex().unwrap(),
                        fb,
                        par,
                    );
                }
            }
        }
    }

    /// A product whose output buffer comes from the pool holding stale (large, nonzero)
    /// values equals the product computed with an empty pool, bit for bit.
    #[test]
    fn gemm_into_a_stale_pooled_buffer() {
        use super::gemm;
        let (a, b) = (real_matrix(5, 3, 1), real_matrix(3, 4, 2));
        let (a, b) = (a.as_real().unwrap(), b.as_real().unwrap());
        crate::pool::release();
        let want = gemm(a.as_ref(), Form::Plain, b.as_ref(), Form::Plain);
        crate::pool::recycle(std::rc::Rc::new(Value::Real(faer::Mat::from_fn(
            5,
            4,
            |i, j| 1e300 * (1.0 + (i + j) as f64),
        ))));
        let held = crate::pool::held_bytes();
        let got = gemm(a.as_ref(), Form::Plain, b.as_ref(), Form::Plain);
        // the 5×4 buffer left the pool (its empty box stays)
        assert_eq!(
            held - crate::pool::held_bytes(),
            5 * 4 * 8,
            "the stale buffer was taken"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn forward_matches_explicit_sum() {
        let t = Tape::new();
        let (a, b) = (real_matrix(3, 4, 1), real_matrix(4, 2, 2));
        let c = t
            .constant(a.clone())
            .unwrap()
            .matmul(t.constant(b.clone()).unwrap())
            .unwrap()
            .value();
        let (a, b, c) = (
            a.as_real().unwrap().clone(),
            b.as_real().unwrap().clone(),
            c.as_real().unwrap().clone(),
        );
        for i in 0..3 {
            for j in 0..2 {
                let s: f64 = (0..4).map(|k| a[(i, k)] * b[(k, j)]).sum();
                assert!((s - c[(i, j)]).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn adjoint_forms_match_explicit_adjoints() {
        let t = Tape::new();
        let a = t.constant(complex_matrix(3, 4, 1)).unwrap();
        let b = t.constant(complex_matrix(3, 2, 2)).unwrap();
        let direct = a
            .matmul_forms(Form::Adjoint, b, Form::Plain)
            .unwrap()
            .value();
        let explicit = a.adjoint().unwrap().matmul(b).unwrap().value();
        assert!(direct.rel_diff(&explicit).unwrap() < 1e-15);
    }

    #[test]
    fn rules_all_forms_real_and_complex() {
        for make in [real_matrix, complex_matrix] {
            for (m, k, n) in [(1, 1, 1), (2, 3, 4), (5, 2, 3)] {
                assert_rules(
                    "matmul",
                    |_, x| x[0].matmul(x[1]),
                    &[make(m, k, 1), make(k, n, 2)],
                );
                assert_rules(
                    "matmul AᴴB",
                    |_, x| x[0].matmul_forms(Form::Adjoint, x[1], Form::Plain),
                    &[make(k, m, 3), make(k, n, 4)],
                );
                assert_rules(
                    "matmul ABᴴ",
                    |_, x| x[0].matmul_forms(Form::Plain, x[1], Form::Adjoint),
                    &[make(m, k, 5), make(n, k, 6)],
                );
                assert_rules(
                    "matmul AᴴBᴴ",
                    |_, x| x[0].matmul_forms(Form::Adjoint, x[1], Form::Adjoint),
                    &[make(k, m, 7), make(n, k, 8)],
                );
            }
            assert_rules("matmul A·A", |_, x| x[0].matmul(x[0]), &[make(3, 3, 9)]);
            assert_rules(
                "mul_scalar",
                |_, x| x[1].mul_scalar(x[0]),
                &[make(1, 1, 10), make(2, 3, 11)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            a.matmul(a),
            Err(EngineError::ShapeMismatch { op: "matmul", .. })
        ));
        let s = t.leaf(Value::scalar(1.0)).unwrap();
        assert!(matches!(
            s.mul_scalar(a),
            Err(EngineError::ShapeMismatch {
                op: "mul_scalar",
                ..
            })
        ));
        let c = t.leaf(complex_matrix(3, 2, 1)).unwrap();
        assert!(matches!(
            a.matmul(c),
            Err(EngineError::DTypeMismatch { .. })
        ));
    }

    fn max_abs(v: &Value) -> f64 {
        let m = v.as_real().unwrap();
        let mut big = 0.0f64;
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                big = big.max(m[(i, j)].abs());
            }
        }
        big
    }

    /// A product that overflows is refused even though outputs whose factors' bounds prove
    /// them finite are not scanned: three terms of x² with x² in (MAX/3, MAX/2) sum to +∞,
    /// and the bound 2·k·x² overflows, so the output is scanned. A bound without `k`
    /// (2x² < MAX) would let ∞ onto the tape.
    #[test]
    fn overflowing_products_are_refused() {
        let t = Tape::new();
        let x = 8.5e153;
        assert!(2.0 * x * x < f64::MAX && 3.0 * x * x == f64::INFINITY);
        let a = t.leaf(Value::Real(faer::mat![[x, x, x]])).unwrap();
        let b = t.leaf(Value::Real(faer::mat![[x], [x], [x]])).unwrap();
        for (x, y, fx, fy) in [
            (a, b, Form::Plain, Form::Plain),
            (b, b, Form::Adjoint, Form::Plain),
            (a, a, Form::Plain, Form::Adjoint),
        ] {
            assert!(matches!(
                x.matmul_forms(fx, y, fy),
                Err(EngineError::NonFinite { op: "matmul", .. })
            ));
        }
        // one term alone is finite, and its bound (2e308) is not: scanned, accepted
        let one = t.leaf(Value::Real(faer::mat![[1e154]])).unwrap();
        let p = one.matmul(one).unwrap();
        assert_eq!(p.value().as_real().unwrap()[(0, 0)], 1e308);
        assert_eq!(t.bound(p), 1e308);
    }

    /// The bounds the tape keeps hold: after leaves, products in every form (forward and
    /// through a backward sweep), copies (transpose), `detach` and sums, every real value's
    /// entries are at most its bound; the bound of a product of bounded factors is finite
    /// (its output was not scanned), and that of a scanned value is its exact maximum.
    #[test]
    fn kept_bounds_hold() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(4, 3, 1)).unwrap();
        let b = t.leaf(real_matrix(3, 5, 2)).unwrap();
        assert_eq!(t.bound(a), max_abs(&a.value()));
        let c = a.matmul(b).unwrap();
        let k = 3.0;
        assert_eq!(t.bound(c), 2.0 * k * t.bound(a) * t.bound(b));
        let d = c.matmul_forms(Form::Adjoint, a, Form::Plain).unwrap();
        let e = b.matmul_forms(Form::Plain, d, Form::Plain).unwrap();
        let f = a.transpose().unwrap();
        assert_eq!(t.bound(f), t.bound(a));
        let g = e
            .add(d.transpose().unwrap().matmul(d.detach()).unwrap())
            .unwrap();
        let loss = g.sum(crate::Axis::All).unwrap();
        let grads = t.grad_graph(loss, &[a, b]).unwrap();
        for v in [a, b, c, d, e, f, g, grads[0], grads[1]] {
            let (bound, actual) = (t.bound(v), max_abs(&v.value()));
            assert!(bound >= actual, "bound {bound} below max |entry| {actual}");
        }
        for v in [c, d, e] {
            assert!(t.bound(v).is_finite());
        }
        // complex values carry no bound: their products are scanned
        let z = t.leaf(complex_matrix(2, 2, 3)).unwrap();
        assert_eq!(t.bound(z.matmul(z).unwrap()), f64::INFINITY);
    }
}
