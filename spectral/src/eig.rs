//! `eig`: eigenvalues and eigenvectors of a general square matrix (real or complex input;
//! complex outputs). `A V = V diag(λ)`, λ in faer's order, each column of V of unit
//! 2-norm with an arbitrary phase; `eigvals`: λ only.
//!
//! With `P = V⁻¹ Ȧ V`, `Eᵢⱼ = λⱼ − λᵢ`:
//! - tangent: `λ̇ = diag(P)`; `V̇ = V (X − diag(Re(VᴴV X)ᵢᵢ))` with `X = P / E` off the
//!   diagonal and 0 on it (the diagonal correction keeps the columns at unit norm);
//! - adjoint (PyTorch's `linalg_eig_backward`):
//!   `Ā = V⁻ᴴ (diag(λ̄) + (VᴴV̄ − VᴴV diag(Re(VᴴV̄)ᵢᵢ)) / conj(E)) Vᴴ`, off-diagonal division,
//!   and the real part when A is real.
//!
//! Gauge: a loss that depends on the phases of the eigenvectors has `Im(VᴴV̄)ᵢᵢ ≠ 0` and is
//! an error (`PhaseDependent`), as in PyTorch. Repeated eigenvalues with a cotangent on V,
//! and defective matrices (V singular), are errors: the derivative of the eigenvectors is
//! not defined there (only `DegeneracyPolicy::Error` is implemented for `eig`).
//! Derivation: docs/math/eig.md.

use std::rc::Rc;

use faer::Mat;
use matgrad_engine::{DType, EngineError, Form, Op, OpCtx, Result as EResult, Value, Var, C64};

use crate::error::{Result, SpectralError};

const OP: &str = "eig";

/// Relative gap below which two eigenvalues count as repeated.
pub const EIG_GAP_RTOL: f64 = 1e-10;

struct Eig {
    lambda: Vec<C64>,
    real_input: bool,
    values_only: bool,
}

impl Eig {
    fn tol(&self) -> f64 {
        EIG_GAP_RTOL
            * self
                .lambda
                .iter()
                .fold(f64::MIN_POSITIVE, |m, z| m.max(z.norm()))
    }

    fn check_distinct(&self) -> EResult<()> {
        let n = self.lambda.len();
        for j in 0..n {
            for i in 0..j {
                let gap = (self.lambda[i] - self.lambda[j]).norm();
                if gap <= self.tol() {
                    return Err(SpectralError::Degenerate {
                        op: OP,
                        i,
                        j,
                        gap,
                        tol: self.tol(),
                        hint: "eigenvectors of a repeated eigenvalue of a general matrix have no derivative; use a loss of the eigenvalues only",
                    }
                    .into_engine(OP));
                }
            }
        }
        Ok(())
    }

    /// `1/(λⱼ − λᵢ)` (or its conjugate) off the diagonal, 0 on it, built from the λ Var
    /// so that the rules stay differentiable (second order).
    fn inv_gaps<'t>(&self, lam: Var<'t>, conj: bool) -> EResult<Var<'t>> {
        let n = self.lambda.len();
        let tape = lam.tape();
        let d = lam
            .transpose()?
            .broadcast_to(n, n)?
            .sub(lam.broadcast_to(n, n)?)?;
        let eye = tape.constant(Value::identity(DType::C64, n))?;
        let r = d.add(eye)?.powf(-1.0)?.mul(offdiag_mask(tape, n)?)?;
        if conj {
            r.conj()
        } else {
            Ok(r)
        }
    }
}

fn offdiag_mask<'t>(tape: &'t matgrad_engine::Tape, n: usize) -> EResult<Var<'t>> {
    tape.constant(Value::Complex(Mat::from_fn(n, n, |i, j| {
        if i == j {
            C64::new(0.0, 0.0)
        } else {
            C64::new(1.0, 0.0)
        }
    })))
}

impl Op for Eig {
    fn name(&self) -> &'static str {
        OP
    }

    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let (lb, vb) = (ct[0], ct[1]);
        let v = ctx.output(1);
        let n = self.lambda.len();
        let mut core: Option<Var<'t>> = None;
        if let Some(vb) = vb {
            self.check_distinct()?;
            let x = v.matmul_forms(Form::Adjoint, vb, Form::Plain)?;
            let xv = x.value();
            let xc = xv.as_complex().expect("complex");
            let scale = xv.max_abs().max(f64::MIN_POSITIVE);
            for i in 0..n {
                let size = xc[(i, i)].im.abs() / scale;
                if size > 1e-8 {
                    return Err(SpectralError::PhaseDependent {
                        op: OP,
                        i,
                        size,
                        tol: 1e-8,
                    }
                    .into_engine(OP));
                }
            }
            // VᴴV̄ − VᴴV diag(Re(VᴴV̄)ᵢᵢ)
            let re_diag = x
                .diag()?
                .real()?
                .to_complex()?
                .transpose()?
                .broadcast_to(n, n)?;
            let vhv = v.matmul_forms(Form::Adjoint, v, Form::Plain)?;
            let t = x.sub(vhv.mul(re_diag)?)?;
            core = Some(t.mul(self.inv_gaps(ctx.output(0), true)?)?);
        }
        if let Some(lb) = lb {
            let d = lb.diag_embed(n, n)?;
            core = Some(match core {
                Some(c) => c.add(d)?,
                None => d,
            });
        }
        let Some(core) = core else {
            return Ok(vec![None]);
        };
        // V⁻ᴴ core Vᴴ
        let ga = v.solve_form(
            Form::Adjoint,
            core.matmul_forms(Form::Plain, v, Form::Adjoint)?,
        )?;
        let ga = if self.real_input { ga.real()? } else { ga };
        Ok(vec![Some(ga)])
    }

    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None, None]);
        };
        let v = ctx.output(1);
        let n = self.lambda.len();
        let da = if self.real_input {
            da.to_complex()?
        } else {
            da
        };
        let p = v.solve(da.matmul(v)?)?;
        let dl = p.diag()?;
        if self.values_only {
            return Ok(vec![Some(dl), None]);
        }
        self.check_distinct()?;
        let x = p.mul(self.inv_gaps(ctx.output(0), false)?)?;
        let vhvx = v.matmul_forms(Form::Adjoint, v, Form::Plain)?.matmul(x)?;
        let corr = vhvx.diag()?.real()?.to_complex()?.diag_embed(n, n)?;
        let dv = v.matmul(x.sub(corr)?)?;
        Ok(vec![Some(dl), Some(dv)])
    }
}

fn eig_impl(a: Var<'_>, values_only: bool) -> Result<(Var<'_>, Var<'_>)> {
    let (lam, vecs, real_input) = a.with_value(|v| -> Result<_> {
        let (m, n) = v.shape();
        if m != n {
            return Err(EngineError::NotSquare {
                op: OP,
                shape: (m, n),
            }
            .into());
        }
        let e = match v {
            Value::Real(x) => x.eigen(),
            Value::Complex(x) => x.eigen(),
        }
        .map_err(|e| SpectralError::NoConvergence {
            op: OP,
            detail: format!("{e:?}"),
        })?;
        let lam: Vec<C64> = (0..n).map(|i| e.S().column_vector()[i]).collect();
        // faer does not normalise the eigenvectors; the rules assume unit 2-norm columns.
        let u = e.U();
        let norms: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| u[(i, j)].norm_sqr()).sum::<f64>().sqrt())
            .collect();
        let vecs = Mat::from_fn(n, n, |i, j| u[(i, j)] / norms[j]);
        Ok((lam, vecs, v.dtype() == DType::F64))
    })?;
    let n = lam.len();
    let lv = Value::Complex(Mat::from_fn(n, 1, |i, _| lam[i]));
    let outs = a.tape().record(
        Rc::new(Eig {
            lambda: lam,
            real_input,
            values_only,
        }),
        &[a],
        vec![lv, Value::Complex(vecs)],
    )?;
    Ok((outs[0], outs[1]))
}

/// Eigenvalues (n×1 complex) and unit-norm eigenvectors (n×n complex) of a general square
/// matrix.
///
/// # Errors
/// Not square; solver failure. Repeated eigenvalues, defective matrices and phase-dependent
/// losses are reported by the backward pass.
pub fn eig(a: Var<'_>) -> Result<(Var<'_>, Var<'_>)> {
    eig_impl(a, false)
}

/// Eigenvalues (n×1 complex) of a general square matrix; the gradient
/// `V⁻ᴴ diag(λ̄) Vᴴ` needs only a diagonalizable A.
///
/// # Errors
/// As [`eig`].
pub fn eigvals(a: Var<'_>) -> Result<Var<'_>> {
    Ok(eig_impl(a, true)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Axis, Tape};

    fn e(x: SpectralError) -> EngineError {
        x.into_engine("test")
    }

    #[test]
    fn forward_reconstructs() {
        let t = Tape::new();
        for n in [1, 2, 3, 8, 31] {
            for a in [real_matrix(n, n, n as u64), complex_matrix(n, n, n as u64)] {
                let x = t.constant(a.clone()).unwrap();
                let (l, v) = eig(x).unwrap();
                let av = x.to_complex().unwrap().matmul(v).unwrap().value();
                let vl = v.matmul(l.diag_embed(n, n).unwrap()).unwrap().value();
                assert!(
                    av.rel_diff(&vl).unwrap() < 1e-12 * n as f64,
                    "A V = V Λ, n = {n}"
                );
            }
        }
    }

    #[test]
    fn rules() {
        for n in [1, 2, 3] {
            for a in [
                real_matrix(n, n, 20 + n as u64),
                complex_matrix(n, n, 30 + n as u64),
            ] {
                // eigenvalues: real and imaginary parts
                assert_rules(
                    "eigvals",
                    |_, x| eigvals(x[0]).map_err(e),
                    std::slice::from_ref(&a),
                );
                // a phase-invariant loss of the eigenvectors: |V|² weighted
                assert_rules(
                    "eig |V|²",
                    |_, x| {
                        let (l, v) = eig(x[0]).map_err(e)?;
                        let w = v.abs()?;
                        w.mul(w)?.sum(Axis::Cols)?.to_complex()?.add(l)
                    },
                    std::slice::from_ref(&a),
                );
            }
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let r = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            eig(r),
            Err(SpectralError::Engine(EngineError::NotSquare { .. }))
        ));
        let a = t.leaf(complex_matrix(3, 3, 2)).unwrap();
        let (_, v) = eig(a).unwrap();
        let y = v
            .slice(1..2, 0..1)
            .unwrap()
            .real()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        assert!(t.grad(y, &[a]).is_err(), "phase-dependent");
        let i2 = t.leaf(Value::identity(DType::F64, 2)).unwrap();
        let (_, v) = eig(i2).unwrap();
        let w = v.abs().unwrap();
        let y = w.mul(w).unwrap().sum(Axis::All).unwrap();
        assert!(t.grad(y, &[i2]).is_err(), "repeated eigenvalue");
    }
}
