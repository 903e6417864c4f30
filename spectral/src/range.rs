//! `range_projector`: the orthogonal projector `Π = Z Z⁺` onto the column space of a tall
//! matrix `Z` (m×k, full column rank), and `W = Z⁺ᴴ = Z (ZᴴZ)⁻¹` — both from a thin QR
//! factorisation `Z = Q R`: `Π = Q Qᴴ`, `W = Q R⁻ᴴ`, so the conditioning is cond(Z), not
//! the cond(Z)² of the Gram-matrix formula `Z (ZᴴZ)⁻¹ Zᴴ`.
//!
//! With `P = I − Π`:
//! - tangent: `Π̇ = P Ż Wᴴ + W Żᴴ P`; `Ẇ = −W Żᴴ W + P Ż Wᴴ W`
//!   (from `dZ⁺ = −Z⁺ dZ Z⁺ + Z⁺ Z⁺ᴴ dZᴴ P` for full column rank, Golub & Pereyra 1973);
//! - adjoint: `Z̄ = P (Π̄ + Π̄ᴴ) W − W W̄ᴴ W + P W̄ Wᴴ W`.
//!
//! The rules are written with engine ops on the two outputs, so second order works.
//! The normalized-cuts layer is `range_projector(D^{-1/2} F)`. Derivation:
//! docs/math/ncut.md.

use std::rc::Rc;

use faer::Mat;
use matgrad_engine::ops::matmul::gemm;
use matgrad_engine::{Form, Op, OpCtx, Result as EResult, Scalar, Value, Var};

use crate::error::{Result, SpectralError};

/// `Z` is treated as rank-deficient when its condition number (largest over smallest
/// singular value, from the k×k factor R) exceeds 1/this: the projector's derivative then
/// amplifies rounding by more than 1e12.
pub const RANGE_RCOND: f64 = 1e-12;

const OP: &str = "range_projector";

struct RangeProjector {
    /// Z is square (and invertible): Π = I exactly and every `(I − Π)` term vanishes.
    square: bool,
}

impl RangeProjector {
    /// `(I − Π) X`, exactly zero for a square Z.
    fn project_out<'t>(&self, pi: Var<'t>, x: Var<'t>) -> EResult<Option<Var<'t>>> {
        if self.square {
            return Ok(None);
        }
        Ok(Some(x.sub(pi.matmul(x)?)?))
    }
}

impl Op for RangeProjector {
    fn name(&self) -> &'static str {
        OP
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let (pi, w) = (ctx.output(0), ctx.output(1));
        let mut acc: Option<Var<'t>> = None;
        let mut add = |x: Var<'t>| -> EResult<()> {
            acc = Some(match acc.take() {
                Some(a) => a.add(x)?,
                None => x,
            });
            Ok(())
        };
        if let Some(pb) = ct[0] {
            // P (Π̄ + Π̄ᴴ) W
            if let Some(x) = self.project_out(pi, pb.add(pb.adjoint()?)?.matmul(w)?)? {
                add(x)?;
            }
        }
        if let Some(wb) = ct[1] {
            // −W W̄ᴴ W + P W̄ Wᴴ W
            add(w
                .matmul(wb.matmul_forms(Form::Adjoint, w, Form::Plain)?)?
                .neg()?)?;
            let whw = w.matmul_forms(Form::Adjoint, w, Form::Plain)?;
            if let Some(x) = self.project_out(pi, wb.matmul(whw)?)? {
                add(x)?;
            }
        }
        if acc.is_none() && ct.iter().any(Option::is_some) {
            let (m, k) = ctx.input(0).shape();
            acc = Some(
                ctx.input(0)
                    .tape()
                    .constant(Value::zeros(pi.dtype(), m, k))?,
            );
        }
        Ok(vec![acc])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(dz) = t[0] else {
            return Ok(vec![None, None]);
        };
        let (pi, w) = (ctx.output(0), ctx.output(1));
        // −W Żᴴ W
        let mut dw = w
            .matmul(dz.matmul_forms(Form::Adjoint, w, Form::Plain)?)?
            .neg()?;
        // P Ż Wᴴ, and its share of Ẇ: P Ż Wᴴ W
        let dpi = match self.project_out(pi, dz)? {
            Some(pz) => {
                let a = pz.matmul_forms(Form::Plain, w, Form::Adjoint)?;
                dw = dw.add(a.matmul(w)?)?;
                a.add(a.adjoint()?)?
            }
            None => {
                let m = pi.shape().0;
                pi.tape().constant(Value::zeros(pi.dtype(), m, m))?
            }
        };
        Ok(vec![Some(dpi), Some(dw)])
    }
}

fn factor<T: Scalar>(z: &Mat<T>) -> Result<(Mat<T>, Mat<T>)> {
    let (m, k) = z.shape();
    if k == 0 {
        return Ok((Mat::zeros(m, m), Mat::zeros(m, 0)));
    }
    let qr = z.qr();
    let q = qr.compute_thin_Q();
    let r = qr.thin_R().to_owned();
    let s = r
        .singular_values()
        .map_err(|e| SpectralError::NoConvergence {
            op: OP,
            detail: format!("{e:?}"),
        })?;
    let (hi, lo) = (s[0], s[k - 1]);
    if lo.is_nan() || lo <= RANGE_RCOND * hi {
        return Err(SpectralError::Degenerate {
            op: OP,
            i: k - 1,
            j: k - 1,
            gap: if hi > 0.0 { lo / hi } else { 0.0 },
            tol: RANGE_RCOND,
            what: "the projector onto the column space (its rank would change)",
            hint: "the columns are linearly dependent to working precision (smallest/largest singular value below the tolerance); remove or regularise dependent columns",
        });
    }
    // W = Q R⁻ᴴ: solve R̄ᴴ-systems row by row, i.e. Wᴴ = R⁻¹ Qᴴ by back substitution
    let qh = q.adjoint().to_owned();
    let mut x = qh;
    faer::linalg::triangular_solve::solve_upper_triangular_in_place(
        r.as_ref(),
        x.as_mut(),
        faer::Par::Seq,
    );
    let w = x.adjoint().to_owned();
    let pi = if m == k {
        Mat::identity(m, m)
    } else {
        let p = gemm(q.as_ref(), Form::Plain, q.as_ref(), Form::Adjoint);
        // (P + Pᴴ)/2 from a copy of Pᴴ and a pass over contiguous columns (twelfth round)
        let ph = matgrad_engine::pool::transposed(p.as_ref(), true);
        matgrad_engine::pool::from_cols(m, m, |j, out| {
            let (x, y) = (p.col_as_slice(j), ph.col_as_slice(j));
            for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
                *o = (a + b) * T::from_f64(0.5);
            }
        })
    };
    Ok((pi, w))
}

/// The orthogonal projector `Π = Z(ZᴴZ)⁻¹Zᴴ` onto the column space of `Z` (m×k, full column
/// rank), and `W = Z⁺ᴴ = Z(ZᴴZ)⁻¹`, computed from a thin QR factorisation (no Gram matrix).
/// Π is invariant to the basis and scaling of the columns of Z.
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// use matgrad_spectral::range_projector;
/// # fn main() -> Result<(), matgrad_spectral::Error> {
/// let tape = Tape::new();
/// let z = tape.leaf(Value::Real(faer::mat![[1.0], [1.0], [0.0]]))?;
/// let (pi, _) = range_projector(z)?;
/// assert!((pi.value().as_real().unwrap()[(0, 1)] - 0.5).abs() < 1e-15);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Fewer rows than columns, or columns dependent to working precision (condition number
/// above `1/RANGE_RCOND`): [`SpectralError::Degenerate`] or
/// [`SpectralError::InvalidArgument`], naming the sizes.
pub fn range_projector(z: Var<'_>) -> Result<(Var<'_>, Var<'_>)> {
    let (m, k) = z.shape();
    if k > m {
        return Err(SpectralError::InvalidArgument {
            op: OP,
            message: format!(
                "a {m}×{k} matrix has more columns than rows, so its columns are dependent and the projector onto them is not of rank {k}; use at most as many columns as rows"
            ),
        });
    }
    let (pi, w) = z.with_value(|v| -> Result<(Value, Value)> {
        Ok(match v {
            Value::Real(x) => {
                let (p, w) = factor(x)?;
                (Value::Real(p), Value::Real(w))
            }
            Value::Complex(x) => {
                let (p, w) = factor(x)?;
                (Value::Complex(p), Value::Complex(w))
            }
        })
    })?;
    let op = RangeProjector { square: m == k };
    let outs = z.tape().record(Rc::new(op), &[z], vec![pi, w])?;
    Ok((outs[0], outs[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Axis, Tape};

    #[test]
    fn forward_matches_the_gram_formula_on_well_conditioned_input() {
        let t = Tape::new();
        for (m, k) in [(1, 1), (3, 1), (5, 2), (8, 3), (31, 4)] {
            for z in [real_matrix(m, k, m as u64), complex_matrix(m, k, k as u64)] {
                let x = t.constant(z).unwrap();
                let (pi, w) = range_projector(x).unwrap();
                let gram = x.matmul_forms(Form::Adjoint, x, Form::Plain).unwrap();
                let want_w = gram.solve(x.adjoint().unwrap()).unwrap().adjoint().unwrap();
                let want_pi = x.matmul_forms(Form::Plain, want_w, Form::Adjoint).unwrap();
                assert!(pi.value().rel_diff(&want_pi.value()).unwrap() < 1e-12);
                assert!(w.value().rel_diff(&want_w.value()).unwrap() < 1e-12);
                // a projector of rank k
                assert!(
                    pi.matmul(pi)
                        .unwrap()
                        .value()
                        .rel_diff(&pi.value())
                        .unwrap()
                        < 1e-13
                );
                let tr = pi
                    .trace()
                    .unwrap()
                    .real()
                    .unwrap()
                    .value()
                    .scalar_real()
                    .unwrap();
                assert!((tr - k as f64).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn rules_both_outputs_real_and_complex() {
        for z in [
            real_matrix(5, 2, 1),
            complex_matrix(4, 3, 2),
            real_matrix(3, 3, 3),
        ] {
            assert_rules(
                "range projector",
                |_, x| Ok(range_projector(x[0])?.0),
                std::slice::from_ref(&z),
            );
            assert_rules(
                "range W",
                |_, x| Ok(range_projector(x[0])?.1),
                std::slice::from_ref(&z),
            );
            assert_rules(
                "both",
                |_, x| {
                    let (p, w) = range_projector(x[0])?;
                    p.abs()?.sum(Axis::All)?.add(w.abs()?.sum(Axis::All)?)
                },
                std::slice::from_ref(&z),
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let wide = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            range_projector(wide),
            Err(SpectralError::InvalidArgument {
                op: "range_projector",
                ..
            })
        ));
        let dep = t
            .leaf(Value::Real(faer::mat![[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]))
            .unwrap();
        assert!(matches!(
            range_projector(dep),
            Err(SpectralError::Degenerate {
                op: "range_projector",
                ..
            })
        ));
    }
}
