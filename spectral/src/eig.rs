//! `eig`: eigenvalues and eigenvectors of a general square matrix (real or complex input;
//! complex outputs). `A V = V diag(λ)`, λ sorted by ascending real part and then ascending
//! imaginary part (so entry i of a cotangent λ̄ always meets the i-th eigenvalue in that
//! order; a real matrix's conjugate pair comes as (a − bi, a + bi)), each column of V of unit
//! 2-norm with its first entry of largest modulus real and positive; `eigvals`: λ only.
//!
//! With `P = V⁻¹ Ȧ V`, `Eᵢⱼ = λⱼ − λᵢ`:
//! - tangent: `λ̇ = diag(P)`; `V̇ = V (X − diag(Re(VᴴV X)ᵢᵢ))` with `X = P / E` off the
//!   diagonal and 0 on it (the diagonal correction keeps the columns at unit norm);
//! - adjoint (PyTorch's `linalg_eig_backward`):
//!   `Ā = V⁻ᴴ (diag(λ̄) + (VᴴV̄ − VᴴV diag(Re(VᴴV̄)ᵢᵢ)) / conj(E)) Vᴴ`, off-diagonal division,
//!   and the real part when A is real.
//!
//! Gauge: a loss that depends on the phases of the eigenvectors has `Im(VᴴV̄)ᵢᵢ ≠ 0` and is
//! an error (`PhaseDependent`), as in PyTorch. Repeated eigenvalues follow
//! [`DegeneracyPolicy`] through [`eig_with`]: `Error` (default); `WellDefinedPart`, which
//! checks that the numerator of every tied pair vanishes (the cotangent has no component
//! along a change of basis inside the eigenspace) and drops those 0/0 terms; `Broaden(ε)`.
//! Eigenvalues alone are exact at a tie when the loss weighs the tied values equally.
//! Defective matrices (V singular) are an error from the solve.
//! Derivation: docs/math/eig.md.

use std::rc::Rc;

use faer::Mat;
use matgrad_engine::{
    DType, EngineError, Form, Invariance, InvarianceMode, Op, OpCtx, Result as EResult, Value, Var,
    C64,
};

use crate::degeneracy::{block_average, pair_of, phase_directions, split_directions};
use crate::eigh::{DegeneracyPolicy, EighOptions};
use crate::error::{Result, SpectralError};

const OP: &str = "eig";

/// Relative gap below which two eigenvalues count as repeated.
pub const EIG_GAP_RTOL: f64 = 1e-10;

struct Eig {
    lambda: Vec<C64>,
    real_input: bool,
    values_only: bool,
    opts: EighOptions,
}

impl Eig {
    /// The name the user called: `eigvals` builds the same node without the vectors.
    fn op(&self) -> &'static str {
        if self.values_only {
            "eigvals"
        } else {
            OP
        }
    }

    fn tol(&self) -> f64 {
        self.opts.gap_rtol
            * self
                .lambda
                .iter()
                .fold(f64::MIN_POSITIVE, |m, z| m.max(z.norm()))
    }

    /// Pairs (i < j) of eigenvalues closer than the tolerance.
    fn tied_pairs(&self) -> Vec<(usize, usize)> {
        let n = self.lambda.len();
        let mut pairs = Vec::new();
        for j in 0..n {
            for i in 0..j {
                if (self.lambda[i] - self.lambda[j]).norm() <= self.tol() {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }

    /// The tied pairs to mask, or the error the Error policy asks for.
    fn pairs_for_vectors(&self) -> EResult<Vec<(usize, usize)>> {
        let pairs = self.tied_pairs();
        if let (DegeneracyPolicy::Error, Some(&(i, j))) = (self.opts.policy, pairs.first()) {
            return Err(SpectralError::Degenerate {
                op: self.op(),
                i,
                j,
                gap: (self.lambda[i] - self.lambda[j]).norm(),
                tol: self.tol(),
                what: "the eigenvectors",
                hint: "use a loss of the eigenvalues only, a loss invariant to the basis of the eigenspace with DegeneracyPolicy::WellDefinedPart, or Broaden(ε)",
            });
        }
        Ok(pairs)
    }

    /// λ̄ must weigh tied eigenvalues equally (then the loss sees only the spectral
    /// projector of the eigenspace).
    fn check_lambda_bar(&self, lb: &Var<'_>, gross: Option<f64>) -> EResult<()> {
        let v = lb.value();
        let c = v.as_complex().expect("eigenvalue cotangents are complex");
        let scale = v.norm().max(gross.unwrap_or(0.0)).max(f64::MIN_POSITIVE);
        for (i, j) in self.tied_pairs() {
            if (c[(i, 0)] - c[(j, 0)]).norm() > self.opts.invariance_rtol * scale {
                return Err(SpectralError::Degenerate {
                    op: self.op(),
                    i,
                    j,
                    gap: (self.lambda[i] - self.lambda[j]).norm(),
                    tol: self.tol(),
                    what: "the eigenvalues",
                    hint: "eigenvalues are not differentiable at a tie unless the loss weighs the tied eigenvalues equally",
                });
            }
        }
        Ok(())
    }

    /// `1/(λⱼ − λᵢ)` (or its conjugate) off the diagonal, 0 on it, built from the λ Var
    /// so that the rules stay differentiable (second order).
    fn inv_gaps<'t>(
        &self,
        lam: Var<'t>,
        conj: bool,
        masked: &[(usize, usize)],
    ) -> EResult<Var<'t>> {
        let n = self.lambda.len();
        let tape = lam.tape();
        let d = lam
            .transpose()?
            .broadcast_to(n, n)?
            .sub(lam.broadcast_to(n, n)?)?;
        let r = if let DegeneracyPolicy::Broaden(eps) = self.opts.policy {
            // conj(d) / (|d|² + ε)
            let dc = d.conj()?;
            d.mul(dc)?.add_scalar(eps)?.powf(-1.0)?.mul(dc)?
        } else {
            let mut mask = Mat::<C64>::identity(n, n);
            for &(i, j) in masked {
                mask[(i, j)] = C64::new(1.0, 0.0);
                mask[(j, i)] = C64::new(1.0, 0.0);
            }
            let keep = Mat::from_fn(n, n, |i, j| C64::new(1.0, 0.0) - mask[(i, j)]);
            d.add(tape.constant(Value::Complex(mask))?)?
                .powf(-1.0)?
                .mul(tape.constant(Value::Complex(keep))?)?
        };
        if conj {
            r.conj()
        } else {
            Ok(r)
        }
    }
}

impl Op for Eig {
    /// The gauge/tie checks compare against the gross size of summed cotangents.
    fn reads_cotangent_norms(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        self.op()
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
            let pairs = self.pairs_for_vectors()?;
            let x = v.matmul_forms(Form::Adjoint, vb, Form::Plain)?;
            let xv = x.value();
            let xc = xv.as_complex().expect("complex");
            // V has unit columns, so |Xᵢⱼ| ≤ ‖V̄‖: the cotangent's size (or its gross size
            // when it is the residue of contributions that cancel) is the yardstick
            let scale = xv
                .max_abs()
                .max(vb.with_value(Value::norm))
                .max(ctx.cotangent_gross_norm(1).unwrap_or(0.0))
                .max(f64::MIN_POSITIVE);
            for i in 0..n {
                let size = xc[(i, i)].im.abs() / scale;
                if size > self.opts.invariance_rtol {
                    return Err(SpectralError::PhaseDependent {
                        op: self.op(),
                        i,
                        size,
                        tol: self.opts.invariance_rtol,
                    });
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
            if self.opts.policy == DegeneracyPolicy::WellDefinedPart && !pairs.is_empty() {
                let tv = t.value();
                let tc = tv.as_complex().expect("complex");
                let scale = tv.max_abs().max(scale);
                for &(i, j) in &pairs {
                    let size = tc[(i, j)].norm().max(tc[(j, i)].norm()) / scale;
                    if size > self.opts.invariance_rtol {
                        return Err(SpectralError::BasisDependent {
                            op: self.op(),
                            i,
                            j,
                            size,
                            tol: self.opts.invariance_rtol,
                        });
                    }
                }
            }
            core = Some(t.mul(self.inv_gaps(ctx.output(0), true, &pairs)?)?);
        }
        if let Some(lb) = lb {
            self.check_lambda_bar(&lb, ctx.cotangent_gross_norm(0))?;
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
        let mut dl = p.diag()?;
        let ties = self.tied_pairs();
        let op = self.op();
        let rtol = self.opts.invariance_rtol;
        if !ties.is_empty() {
            dl = block_average(v.tape(), n, &ties, true)?.matmul(dl)?;
            let (lambda, tol, pairs) = (self.lambda.clone(), self.tol(), ties.clone());
            ctx.require_invariance(Invariance {
                directions: split_directions(n, &ties, true)
                    .into_iter()
                    .map(|d| vec![Some(d), None])
                    .collect(),
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |q, _| {
                    let (i, j) = pair_of(q, &pairs, true);
                    SpectralError::Degenerate {
                        op,
                        i,
                        j,
                        gap: (lambda[i] - lambda[j]).norm(),
                        tol,
                        what: "the eigenvalues",
                        hint: "the consumer must weigh tied eigenvalues equally (a symmetric function of them, e.g. a trace)",
                    }
                }),
            });
        }
        // The vectors' tangent is computed for the values-only form too: nothing the user
        // holds reads it, but the recorded gradient does, so forward-over-reverse needs it.
        let vv = v.value();
        if let Err(err) = self.pairs_for_vectors() {
            ctx.require_invariance(Invariance {
                directions: vec![vec![None, Some(vv)]],
                mode: InvarianceMode::Structural,
                error: Box::new(move |_, _| err.clone()),
            });
            return Ok(vec![Some(dl), None]);
        }
        let pairs = if self.opts.policy == DegeneracyPolicy::WellDefinedPart {
            ties
        } else {
            Vec::new()
        };
        if !pairs.is_empty() {
            let (dirs, named) = eigenspace_directions(&vv, &pairs);
            ctx.require_invariance(Invariance {
                directions: dirs.into_iter().map(|d| vec![None, Some(d)]).collect(),
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |q, size| {
                    let (i, j) = named[q];
                    SpectralError::BasisDependent {
                        op,
                        i,
                        j,
                        size,
                        tol: rtol,
                    }
                }),
            });
        }
        ctx.require_invariance(Invariance {
            directions: phase_directions(&vv)
                .into_iter()
                .map(|d| vec![None, Some(d)])
                .collect(),
            mode: InvarianceMode::Numeric { rtol },
            error: Box::new(move |i, size| SpectralError::PhaseDependent {
                op,
                i,
                size,
                tol: rtol,
            }),
        });
        let x = p.mul(self.inv_gaps(ctx.output(0), false, &pairs)?)?;
        let vhvx = v.matmul_forms(Form::Adjoint, v, Form::Plain)?.matmul(x)?;
        let corr = vhvx.diag()?.real()?.to_complex()?.diag_embed(n, n)?;
        let dv = v.matmul(x.sub(corr)?)?;
        Ok(vec![Some(dl), Some(dv)])
    }
}

/// The directions in which unit-norm eigenvectors of a degenerate eigenspace can move
/// without changing A: column c takes `w·v_s − v_c Re(v_cᴴ w v_s)` for each ordered tied pair
/// (s, c) and w ∈ {1, i} (the norm correction keeps the column at unit length). Returns the
/// directions and, for each, the pair it belongs to.
fn eigenspace_directions(v: &Value, pairs: &[(usize, usize)]) -> (Vec<Value>, Vec<(usize, usize)>) {
    let m = v.as_complex().expect("eigenvectors are complex");
    let n = m.nrows();
    let mut dirs = Vec::new();
    let mut named = Vec::new();
    for &(i, j) in pairs {
        for (src, col) in [(i, j), (j, i)] {
            for w in [C64::new(1.0, 0.0), C64::new(0.0, 1.0)] {
                let mut proj = C64::new(0.0, 0.0);
                for r in 0..n {
                    proj += m[(r, col)].conj() * w * m[(r, src)];
                }
                let re = proj.re;
                dirs.push(Value::Complex(Mat::from_fn(n, n, |r, c| {
                    if c == col {
                        w * m[(r, src)] - m[(r, col)] * re
                    } else {
                        C64::new(0.0, 0.0)
                    }
                })));
                named.push((i, j));
            }
        }
    }
    (dirs, named)
}

fn eig_impl(a: Var<'_>, opts: EighOptions, values_only: bool) -> Result<(Var<'_>, Var<'_>)> {
    opts.validate(OP)?;
    let (lam, vecs, real_input) = a.with_value(|v| -> Result<_> {
        let (m, n) = v.shape();
        if m != n {
            return Err(EngineError::NotSquare {
                op: OP,
                shape: (m, n),
            });
        }
        let e = match v {
            Value::Real(x) => x.eigen(),
            Value::Complex(x) => x.eigen(),
        }
        .map_err(|e| SpectralError::NoConvergence {
            op: OP,
            detail: format!("{e:?}"),
        })?;
        let raw: Vec<C64> = (0..n).map(|i| e.S().column_vector()[i]).collect();
        // A documented order (faer's is an artefact of its Schur form): ascending real
        // part, then ascending imaginary part, so a real matrix's conjugate pair comes as
        // (a − bi, a + bi).
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| {
            raw[i]
                .re
                .total_cmp(&raw[j].re)
                .then(raw[i].im.total_cmp(&raw[j].im))
        });
        let lam: Vec<C64> = order.iter().map(|&k| raw[k]).collect();
        // faer does not normalise the eigenvectors; the rules assume unit 2-norm columns.
        // The phase is fixed too: the first entry of largest modulus is real and positive.
        let u = e.U();
        let phases: Vec<C64> = order
            .iter()
            .map(|&k| {
                let norm = (0..n).map(|i| u[(i, k)].norm_sqr()).sum::<f64>().sqrt();
                let big = (0..n).fold(0, |b, i| {
                    if u[(i, k)].norm() > u[(b, k)].norm() {
                        i
                    } else {
                        b
                    }
                });
                let z = u[(big, k)];
                (z.conj() / z.norm()) / norm
            })
            .collect();
        let vecs = Mat::from_fn(n, n, |i, j| u[(i, order[j])] * phases[j]);
        Ok((lam, vecs, v.dtype() == DType::F64))
    })?;
    let n = lam.len();
    let lv = Value::Complex(Mat::from_fn(n, 1, |i, _| lam[i]));
    let outs = a.tape().record(
        Rc::new(Eig {
            lambda: lam,
            real_input,
            values_only,
            opts,
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
    eig_impl(
        a,
        EighOptions {
            gap_rtol: EIG_GAP_RTOL,
            ..EighOptions::default()
        },
        false,
    )
}

/// [`eig`] with an explicit degeneracy policy. `WellDefinedPart` accepts a repeated
/// eigenvalue when the cotangent has no component along the change of basis inside its
/// eigenspace (checked) — e.g. losses of the spectral projector — and `Broaden(ε)` replaces
/// `1/(λⱼ − λᵢ)` by `conj(λⱼ − λᵢ)/(|λⱼ − λᵢ|² + ε)`.
///
/// # Errors
/// As [`eig`]; invalid options.
pub fn eig_with(a: Var<'_>, opts: EighOptions) -> Result<(Var<'_>, Var<'_>)> {
    eig_impl(a, opts, false)
}

/// Eigenvalues (n×1 complex) of a general square matrix; the gradient
/// `V⁻ᴴ diag(λ̄) Vᴴ` needs only a diagonalizable A.
///
/// # Errors
/// As [`eig`].
pub fn eigvals(a: Var<'_>) -> Result<Var<'_>> {
    Ok(eig_impl(
        a,
        EighOptions {
            gap_rtol: EIG_GAP_RTOL,
            ..EighOptions::default()
        },
        true,
    )?
    .0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Axis, Tape};

    /// Issue 7, bug 7: a documented, deterministic order — ascending real part, then
    /// imaginary part — whatever order faer's Schur form produces.
    #[test]
    fn eigenvalues_come_in_the_documented_order() {
        // spectrum {3, −1, ±2i} (a rotation block) in a random basis: A = Q D Q⁻¹
        let d = faer::mat![
            [3.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, -2.0, 0.0],
            [0.0, 2.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, -1.0]
        ];
        let q = real_matrix(4, 4, 11);
        let q = q.as_real().unwrap();
        let qinv = faer::linalg::solvers::DenseSolveCore::inverse(&q.as_ref().partial_piv_lu());
        let a = q * &d * &qinv;
        let t = Tape::new();
        let x = t.leaf(Value::Real(a)).unwrap();
        let (l, v) = eig(x).unwrap();
        let lv = l.value();
        let got = lv.as_complex().unwrap();
        let want = [
            C64::new(-1.0, 0.0),
            C64::new(0.0, -2.0),
            C64::new(0.0, 2.0),
            C64::new(3.0, 0.0),
        ];
        for (i, w) in want.iter().enumerate() {
            assert!(
                (got[(i, 0)] - w).norm() < 1e-12,
                "λ[{i}] = {:?}, want {w:?}",
                got[(i, 0)]
            );
        }
        // A V = V Λ, unit columns, first largest entry real positive
        let vv = v.value();
        let vm = vv.as_complex().unwrap();
        let ac = x.value().to_complex();
        let av = &ac * vm;
        for j in 0..4 {
            let mut norm = 0.0;
            let mut big = 0;
            for i in 0..4 {
                assert!((av[(i, j)] - vm[(i, j)] * got[(j, 0)]).norm() < 1e-11);
                norm += vm[(i, j)].norm_sqr();
                if vm[(i, j)].norm() > vm[(big, j)].norm() {
                    big = i;
                }
            }
            assert!((norm - 1.0).abs() < 1e-14);
            assert!(vm[(big, j)].im.abs() < 1e-15 && vm[(big, j)].re > 0.0);
        }
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
                assert_rules("eigvals", |_, x| eigvals(x[0]), std::slice::from_ref(&a));
                // a phase-invariant loss of the eigenvectors: |V|² weighted
                assert_rules(
                    "eig |V|²",
                    |_, x| {
                        let (l, v) = eig(x[0])?;
                        let w = v.abs()?;
                        w.mul(w)?.sum(Axis::Cols)?.to_complex()?.add(l)
                    },
                    std::slice::from_ref(&a),
                );
            }
        }
    }

    #[test]
    fn policies_at_a_repeated_eigenvalue() {
        // A = S diag(2, 2, 5) S⁻¹ with a non-orthogonal S: a non-normal matrix with a tie
        let sm = Value::Real(faer::mat![
            [1.0, 0.3, 0.2],
            [0.1, 1.0, -0.4],
            [0.5, 0.2, 1.0]
        ]);
        let s = sm.as_real().unwrap().clone();
        let d = faer::mat![[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]];
        let si = {
            use faer::linalg::solvers::DenseSolveCore;
            s.partial_piv_lu().inverse()
        };
        let a = Value::Real(&s * d * si);
        // eigenvalues only, symmetric in the tie: exact
        let opts = matgrad_engine::check::CheckOptions {
            order: matgrad_engine::check::Order::First,
            ..Default::default()
        };
        let r = matgrad_engine::check::check(
            |_, x| eigvals(x[0])?.powf(2.0)?.sum(Axis::All)?.real(),
            std::slice::from_ref(&a),
            &opts,
        )
        .unwrap();
        assert!(r.passed, "{r}");
        // the eigenvector of the simple eigenvalue 5 through its projector-like quantity
        // |v₃|² is basis-invariant: accepted under WellDefinedPart, refused by default
        let wd = EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            gap_rtol: EIG_GAP_RTOL,
            ..EighOptions::default()
        };
        let t = Tape::new();
        let x = t.leaf(a.clone()).unwrap();
        fn loss<'t>((l, v): (Var<'t>, Var<'t>)) -> Var<'t> {
            let lv = l.value();
            let lc = lv.as_complex().unwrap();
            let k = (0..3)
                .max_by(|&i, &j| lc[(i, 0)].re.total_cmp(&lc[(j, 0)].re))
                .unwrap();
            let w = v.slice(0..3, k..k + 1).unwrap().abs().unwrap();
            w.mul(w).unwrap().slice(0..1, 0..1).unwrap()
        }
        assert!(t.grad(loss(eig(x).unwrap()), &[x]).is_err());
        let r = matgrad_engine::check::check(
            |_, x| Ok(loss(eig_with(x[0], wd)?)),
            std::slice::from_ref(&a),
            &opts,
        )
        .unwrap();
        assert!(r.passed, "WellDefinedPart at a tie: {r}");
        let br = EighOptions {
            policy: DegeneracyPolicy::Broaden(1e-6),
            ..EighOptions::default()
        };
        let g = t.grad(loss(eig_with(x, br).unwrap()), &[x]).unwrap();
        assert!(g[0].is_finite());
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let r = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(eig(r), Err(EngineError::NotSquare { .. })));
        let a = t.leaf(complex_matrix(3, 3, 2)).unwrap();
        let (_, v) = eig(a).unwrap();
        // Re of the smallest entry of column 0: depends on the phase (the largest entry is
        // made real and positive by convention, which fixes the value but not a derivative
        // the rules could give)
        let vv = v.value();
        let col = vv.as_complex().unwrap();
        let k = (0..3)
            .min_by(|&i, &j| col[(i, 0)].norm().total_cmp(&col[(j, 0)].norm()))
            .unwrap();
        let y = v
            .slice(k..k + 1, 0..1)
            .unwrap()
            .real()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        assert!(
            matches!(
                t.grad(y, &[a]),
                Err(EngineError::PhaseDependent {
                    op: "eig",
                    i: 0,
                    ..
                })
            ),
            "phase-dependent"
        );
        let i2 = t.leaf(Value::identity(DType::F64, 2)).unwrap();
        let (_, v) = eig(i2).unwrap();
        let w = v.abs().unwrap();
        let y = w.mul(w).unwrap().sum(Axis::All).unwrap();
        assert!(t.grad(y, &[i2]).is_err(), "repeated eigenvalue");
    }
}
