//! `orthogonal_complement`: an orthonormal basis U₂ (m×(m−k)) of the orthogonal complement
//! of the range of an m×k matrix U₁ with orthonormal columns — the extra columns of a full
//! SVD or eigenbasis.
//!
//! U₂ is defined only up to a rotation `U₂ → U₂R`. Differentiating `U₁ᴴU₂ = 0` and
//! `U₂ᴴU₂ = I`: `dU₂ = −U₁ (dU₁ᴴ U₂) + U₂ Ω` with Ω skew-Hermitian and free (the gauge).
//! - tangent: `U̇₂ = −U₁ (U̇₁ᴴ U₂)` (gauge Ω = 0), with the forward sweep checking that the
//!   consumers are invariant to Ω (rotations and, for complex U₂, phases of its columns);
//! - adjoint: `Ū₁ = −U₂ Ū₂ᴴ U₁`, valid when the loss does not depend on the choice of
//!   basis, i.e. `U₂ᴴŪ₂` is Hermitian (`⟨Ū₂, U₂Ω⟩ = 0` for every skew Ω) — checked; a
//!   basis-dependent cotangent is [`SpectralError::BasisDependent`].
//!
//! Forward: the last m−k columns of Q from faer's QR of U₁. Derivation: docs/math/svd.md.

use std::rc::Rc;

use matgrad_engine::{Form, Op, OpCtx, Result as EResult, Scalar, Value, Var};

use crate::error::{Result, SpectralError};

const OP: &str = "orthogonal_complement";

/// Relative size of the basis-dependent part of a cotangent that is tolerated.
const INVARIANCE_RTOL: f64 = 1e-8;

struct Complement;

impl Op for Complement {
    /// The gauge/tie checks compare against the gross size of summed cotangents.
    fn reads_cotangent_norms(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        OP
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let (u1, u2) = (ctx.input(0), ctx.output(0));
        let x = u2.matmul_forms(Form::Adjoint, g, Form::Plain)?.value();
        let scale = x
            .max_abs()
            .max(g.with_value(Value::norm))
            .max(ctx.cotangent_gross_norm(0).unwrap_or(0.0))
            .max(f64::MIN_POSITIVE);
        let k = x.nrows();
        for j in 0..k {
            for i in 0..j {
                let d = match &x {
                    Value::Real(a) => (a[(i, j)] - a[(j, i)]).abs(),
                    Value::Complex(a) => (a[(i, j)] - a[(j, i)].conj()).norm(),
                };
                if d / scale > INVARIANCE_RTOL {
                    return Err(SpectralError::BasisDependent {
                        op: OP,
                        i,
                        j,
                        size: d / scale,
                        tol: INVARIANCE_RTOL,
                    });
                }
            }
            if let Value::Complex(a) = &x {
                let size = a[(j, j)].im.abs() / scale;
                if size > INVARIANCE_RTOL {
                    return Err(SpectralError::BasisDependent {
                        op: OP,
                        i: j,
                        j,
                        size,
                        tol: INVARIANCE_RTOL,
                    });
                }
            }
        }
        let w = g.matmul_forms(Form::Adjoint, u1, Form::Plain)?; // Ū₂ᴴ U₁
        Ok(vec![Some(u2.matmul(w)?.neg()?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(d) = t[0] else { return Ok(vec![None]) };
        let (u1, u2) = (ctx.input(0), ctx.output(0));
        // the tangent takes the gauge Ω = 0; the consumers must not see Ω (the forward twin
        // of the VJP's check that U₂ᴴŪ₂ is Hermitian)
        let u2v = u2.value();
        let r = u2v.ncols();
        let pairs: Vec<(usize, usize)> = (0..r).flat_map(|j| (0..j).map(move |i| (i, j))).collect();
        let complex = u2v.dtype() == matgrad_engine::DType::C64;
        let mut dirs = crate::degeneracy::rotation_directions(&u2v, &pairs);
        let n_rot = dirs.len();
        dirs.extend(crate::degeneracy::phase_directions(&u2v));
        ctx.require_invariance(matgrad_engine::Invariance {
            directions: dirs.into_iter().map(|d| vec![Some(d)]).collect(),
            mode: matgrad_engine::InvarianceMode::Numeric {
                rtol: INVARIANCE_RTOL,
            },
            error: Box::new(move |q, size| {
                let (i, j) = if q < n_rot {
                    crate::degeneracy::pair_of(q, &pairs, complex)
                } else {
                    (q - n_rot, q - n_rot)
                };
                SpectralError::BasisDependent {
                    op: OP,
                    i,
                    j,
                    size,
                    tol: INVARIANCE_RTOL,
                }
            }),
        });
        let w = d.matmul_forms(Form::Adjoint, u2, Form::Plain)?; // U̇₁ᴴ U₂
        Ok(vec![Some(u1.matmul(w)?.neg()?)])
    }
}

fn complement_of<T: Scalar>(u1: &faer::Mat<T>) -> faer::Mat<T> {
    let (m, k) = u1.shape();
    let q = u1.qr().compute_Q();
    q.as_ref().submatrix(0, k, m, m - k).to_owned()
}

/// An orthonormal basis of the orthogonal complement of the range of `u1` (m×k, k < m,
/// orthonormal columns).
///
/// # Errors
/// `k ≥ m` (no complement), or columns that are not orthonormal (to 1e-10).
pub fn orthogonal_complement(u1: Var<'_>) -> Result<Var<'_>> {
    let (m, k) = u1.shape();
    if k >= m {
        return Err(SpectralError::InvalidArgument {
            op: OP,
            message: format!("a {m}×{k} matrix has no orthogonal complement (needs k < m)"),
        });
    }
    let out = u1.with_value(|v| -> Result<Value> {
        let gram_err = match v {
            Value::Real(a) => (a.transpose() * a - faer::Mat::<f64>::identity(k, k)).norm_l2(),
            Value::Complex(a) => {
                (a.adjoint() * a - faer::Mat::<matgrad_engine::C64>::identity(k, k)).norm_l2()
            }
        };
        if gram_err > 1e-10 * (k as f64).sqrt() {
            return Err(SpectralError::InvalidArgument {
                op: OP,
                message: format!("the columns are not orthonormal (‖UᴴU − I‖ = {gram_err:.2e})"),
            });
        }
        Ok(match v {
            Value::Real(a) => Value::Real(complement_of(a)),
            Value::Complex(a) => Value::Complex(complement_of(a)),
        })
    })?;
    u1.tape().record1(Rc::new(Complement), &[u1], out)
}
