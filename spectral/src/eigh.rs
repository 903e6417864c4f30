//! `eigh`: eigenvalues (ascending, n×1 real) and eigenvectors of a symmetric/Hermitian
//! matrix; `eigvalsh`: eigenvalues only.
//!
//! With `sym(A) = U diag(λ) Uᴴ`, `Ẽ = Uᴴ sym(Ȧ) U` and `Fᵢⱼ = 1/(λⱼ − λᵢ)`, `Fᵢᵢ = 0`:
//! - tangent: `λ̇ = Re diag(Ẽ)`, `U̇ = U (F ∘ Ẽ)` (gauge: `Uᴴ U̇` has zero diagonal);
//! - adjoint: `Ā = U (diag(λ̄) + F ∘ skew(Uᴴ Ū)) Uᴴ` with `skew(X) = (X − Xᴴ)/2` (F is
//!   antisymmetric, so this is the Hermitian part of `U(diag(λ̄) + F ∘ UᴴŪ)Uᴴ`).
//!
//! Sign: `F` is built from `λⱼ − λᵢ`; a regression test below checks the eigenvector term
//! against finite differences with a loss that reads only U (the released MATLAB code of
//! Ionescu et al. appears to carry the opposite sign).
//!
//! Degeneracy. When |λᵢ − λⱼ| ≤ `gap_rtol·max|λ|`:
//! - eigenvalues alone (`Ū = 0`): the gradient exists when `λ̄` is equal across each tied
//!   block (the loss then sees only the block's trace), and is `U diag(λ̄) Uᴴ`, exact.
//!   Otherwise [`SpectralError::Degenerate`]: sorted eigenvalues are not differentiable at
//!   a tie.
//! - eigenvectors: by [`DegeneracyPolicy`]. `Error` (default) refuses; `WellDefinedPart`
//!   checks that `skew(UᴴŪ)` vanishes on the tied pairs (the loss is invariant to the
//!   basis inside the block) and then drops those terms, which is exact for such losses;
//!   `Broaden(ε)` replaces `F` by `(λⱼ − λᵢ)/((λⱼ − λᵢ)² + ε)` everywhere (Lorentzian
//!   broadening: finite and smooth, biased by O(ε/gap²) even at well-separated pairs).
//! - complex phase gauge: a loss that depends on the phases of the eigenvectors has
//!   `Im diag(UᴴŪ) ≠ 0`; it gets [`SpectralError::PhaseDependent`] (as PyTorch raises).
//!
//! The rules are written with engine ops on λ and U (`F` is computed from λ by engine
//! ops), so second order works away from ties. Derivation: docs/math/eigh.md.

use std::rc::Rc;

use matgrad_engine::ops::matmul::gemm;
use matgrad_engine::{
    DType, EngineError, Form, Invariance, InvarianceMode, Op, OpCtx, Result as EResult, Scalar,
    Value, Var,
};

use crate::degeneracy::{
    block_average, inverse_gaps, like, pair_of, phase_directions, rotation_directions,
    split_directions, tied_pairs,
};
use crate::error::{Result, SpectralError};
use crate::sym_eig::decompose;

/// What to do with eigenvector cotangents at (near-)repeated eigenvalues.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DegeneracyPolicy {
    /// Refuse with an error naming the eigenvalues, the gap and the tolerance.
    Error,
    /// Accept when the cotangent is invariant to the basis inside each degenerate block
    /// (checked), and return the well-defined gradient; error otherwise.
    WellDefinedPart,
    /// Lorentzian broadening with this ε (in units of eigenvalue²): biased, never fails.
    Broaden(f64),
}

/// Options of [`eigh_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EighOptions {
    /// Degeneracy policy (default [`DegeneracyPolicy::Error`]).
    pub policy: DegeneracyPolicy,
    /// Two eigenvalues are tied when `|λᵢ − λⱼ| ≤ gap_rtol · max|λ|` (default 1e-10).
    pub gap_rtol: f64,
    /// A basis- or phase-dependent part of the cotangent is ignored below
    /// `invariance_rtol · max|UᴴŪ|` (default 1e-8: cotangents computed in floating point
    /// from an invariant loss carry ≈ n·ε·‖Ū‖ of such a part).
    pub invariance_rtol: f64,
}

impl EighOptions {
    /// Checks that the tolerances are finite and nonnegative and ε (if any) positive.
    ///
    /// # Errors
    /// [`SpectralError::InvalidArgument`] naming `op`.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let bad = |x: f64| !(x.is_finite() && x >= 0.0);
        if bad(self.gap_rtol)
            || bad(self.invariance_rtol)
            || matches!(self.policy, DegeneracyPolicy::Broaden(e) if bad(e) || e == 0.0)
        {
            return Err(SpectralError::InvalidArgument {
                op,
                message: format!(
                    "tolerances and ε must be finite and nonnegative (ε > 0), got {self:?}"
                ),
            });
        }
        Ok(())
    }
}

impl Default for EighOptions {
    fn default() -> Self {
        EighOptions {
            policy: DegeneracyPolicy::Error,
            gap_rtol: 1e-10,
            invariance_rtol: 1e-8,
        }
    }
}

struct Eigh {
    opts: EighOptions,
    lambda: Vec<f64>,
    /// Built by `eigvalsh`: the caller never sees U, so at ties the tangent of λ (block
    /// averaged) is returned without an eigenvector tangent instead of an error.
    values_only: bool,
}

const OP: &str = "eigh";

impl Eigh {
    /// The name the user called: `eigvalsh` builds the same node without the vectors.
    fn op(&self) -> &'static str {
        if self.values_only {
            "eigvalsh"
        } else {
            OP
        }
    }
}

impl Eigh {
    fn tol(&self) -> f64 {
        self.opts.gap_rtol
            * self
                .lambda
                .iter()
                .fold(f64::MIN_POSITIVE, |m, x| m.max(x.abs()))
    }

    /// Tied pairs (i < j), grouping consecutive eigenvalues within tolerance into blocks.
    fn tied_pairs(&self) -> Vec<(usize, usize)> {
        tied_pairs(&self.lambda, self.tol())
    }

    fn degenerate(
        &self,
        i: usize,
        j: usize,
        what: &'static str,
        hint: &'static str,
    ) -> EngineError {
        SpectralError::Degenerate {
            op: self.op(),
            i,
            j,
            gap: self.lambda[j] - self.lambda[i],
            tol: self.tol(),
            what,
            hint,
        }
    }

    /// `F` (n×n, real) from the λ Var, with the tied pairs and the diagonal masked out
    /// (or broadened).
    fn loewner<'t>(&self, lam: Var<'t>, masked: &[(usize, usize)]) -> EResult<Var<'t>> {
        let n = self.lambda.len();
        let d = lam
            .transpose()?
            .broadcast_to(n, n)?
            .sub(lam.broadcast_to(n, n)?)?; // λⱼ − λᵢ
        inverse_gaps(d, masked, self.opts.policy)
    }

    /// Checks λ̄ is constant on each tied block. `gross`: the cotangent's gross size when it
    /// is a sum of contributions (see `OpCtx::cotangent_gross_norm`).
    fn check_lambda_bar(
        &self,
        v: &Value,
        pairs: &[(usize, usize)],
        gross: Option<f64>,
    ) -> EResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let r = v.as_real().expect("eigenvalue cotangents are real");
        let scale = v.norm().max(gross.unwrap_or(0.0)).max(f64::MIN_POSITIVE);
        for &(i, j) in pairs {
            if (r[(i, 0)] - r[(j, 0)]).abs() > self.opts.invariance_rtol * scale {
                return Err(self.degenerate(i, j, "the sorted eigenvalues", "the loss must weigh tied eigenvalues equally (a symmetric function of them, e.g. a trace or a matrix function)"));
            }
        }
        Ok(())
    }

    /// Checks for a basis-dependent (tied pairs) or phase-dependent (complex diagonal) part
    /// in X = UᴴŪ, relative to the size of Ū (`ub_norm()`, or its gross size when it is a
    /// sum of contributions that cancel). A real X with no pair to check has no such part:
    /// then nothing is computed.
    fn check_invariance(
        &self,
        x: &Value,
        ub_norm: impl FnOnce() -> f64,
        pairs: &[(usize, usize)],
        check_pairs: bool,
    ) -> EResult<()> {
        if matches!(x, Value::Real(_)) && (pairs.is_empty() || !check_pairs) {
            return Ok(());
        }
        let scale = x.max_abs().max(ub_norm()).max(f64::MIN_POSITIVE);
        let tol = self.opts.invariance_rtol;
        if let Value::Complex(m) = x {
            for i in 0..m.nrows() {
                let size = m[(i, i)].im.abs() / scale;
                if size > tol {
                    return Err(SpectralError::PhaseDependent {
                        op: self.op(),
                        i,
                        size,
                        tol,
                    });
                }
            }
        }
        if check_pairs {
            for &(i, j) in pairs {
                let s = match x {
                    Value::Real(m) => (m[(i, j)] - m[(j, i)]).abs(),
                    Value::Complex(m) => (m[(i, j)] - m[(j, i)].conj()).norm(),
                };
                if 0.5 * s / scale > tol {
                    return Err(SpectralError::BasisDependent {
                        op: self.op(),
                        i,
                        j,
                        size: 0.5 * s / scale,
                        tol,
                    });
                }
            }
        }
        Ok(())
    }

    fn pairs_for_vectors(&self) -> EResult<Vec<(usize, usize)>> {
        let pairs = self.tied_pairs();
        match (self.opts.policy, pairs.first()) {
            (DegeneracyPolicy::Error, Some(&(i, j))) => Err(self.degenerate(
                i,
                j,
                "the eigenvectors",
                "use a basis-invariant loss (eigh_projector, a matrix function) or DegeneracyPolicy::WellDefinedPart",
            )),
            _ => Ok(pairs),
        }
    }
}

impl Eigh {
    /// The same adjoint as the recorded rule, computed on values in one pass plus three
    /// GEMMs (the recorded rule needs ≈ 10 elementwise nodes to stay differentiable).
    /// Used when the backward pass is not recorded.
    /// The fused, value-only adjoint (a sweep that is not recorded): [`assemble`] on the
    /// values of the cotangents, after the same checks as the recorded rule.
    fn vjp_fused_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        lam_bar: Option<&Value>,
        u_bar: Option<&Value>,
    ) -> EResult<Option<Value>> {
        if let Some(lb) = lam_bar {
            self.check_lambda_bar(lb, &self.tied_pairs(), ctx.cotangent_gross_norm(0))?;
        }
        let uv = ctx.output(1).value_rc();
        let x_and_pairs = match u_bar {
            Some(ubv) => {
                let pairs = self.pairs_for_vectors()?;
                let x = match (&*uv, ubv) {
                    (Value::Real(a), Value::Real(b)) => {
                        Value::Real(gemm(a.as_ref(), Form::Adjoint, b.as_ref(), Form::Plain))
                    }
                    (Value::Complex(a), Value::Complex(b)) => {
                        Value::Complex(gemm(a.as_ref(), Form::Adjoint, b.as_ref(), Form::Plain))
                    }
                    _ => {
                        return Err(EngineError::DTypeMismatch {
                            op: self.op(),
                            lhs: uv.dtype(),
                            rhs: ubv.dtype(),
                        })
                    }
                };
                let ub_norm = || ubv.norm().max(ctx.cotangent_gross_norm(1).unwrap_or(0.0));
                self.check_invariance(
                    &x,
                    ub_norm,
                    &pairs,
                    self.opts.policy == DegeneracyPolicy::WellDefinedPart,
                )?;
                Some((x, pairs))
            }
            None => None,
        };
        if lam_bar.is_none() && x_and_pairs.is_none() {
            return Ok(None);
        }
        let masked: &[(usize, usize)] = match &x_and_pairs {
            Some((_, pairs)) => pairs,
            None => &[],
        };
        let lb = lam_bar.and_then(|v| v.as_real());
        let (lambda, policy) = (&self.lambda[..], self.opts.policy);
        let out = match &*uv {
            Value::Real(um) => Value::Real(assemble(
                um,
                lb,
                x_and_pairs.as_ref().and_then(|(x, _)| x.as_real()),
                lambda,
                policy,
                masked,
            )),
            Value::Complex(um) => Value::Complex(assemble(
                um,
                lb,
                x_and_pairs.as_ref().and_then(|(x, _)| x.as_complex()),
                lambda,
                policy,
                masked,
            )),
        };
        // UᴴŪ is a temporary: its buffer goes back to the pool
        match x_and_pairs {
            Some((Value::Real(x), _)) => matgrad_engine::pool::give(x),
            Some((Value::Complex(x), _)) => matgrad_engine::pool::give(x),
            None => {}
        }
        Ok(Some(out))
    }
}

/// `U W Uᴴ` with `W = diag(λ̄) + F ∘ ½(X − Xᴴ)`, `X = UᴴŪ`, `F_ij = 1/(λ_j − λ_i)` (0 on
/// the diagonal and the `masked` tied pairs) or `(λ_j − λ_i)/((λ_j − λ_i)² + ε)` under
/// [`DegeneracyPolicy::Broaden`]: the fused value-only adjoint of [`Eigh`].
///
/// `W` is filled in 32×32 tiles, so that the reads of `Xᴴ` (a row of `X` per column of `W`)
/// stay in cache, with the weight of each entry computed in a loop of its own kind (no
/// branch per entry); the diagonal and the masked pairs are then overwritten. Each entry is
/// the same expression as in the recorded rule, and `W` is exactly Hermitian (`F` is
/// exactly antisymmetric: `−d` is exact).
fn assemble<T: Scalar>(
    u: &faer::Mat<T>,
    lb: Option<&faer::Mat<f64>>,
    x: Option<&faer::Mat<T>>,
    lambda: &[f64],
    policy: DegeneracyPolicy,
    masked: &[(usize, usize)],
) -> faer::Mat<T> {
    fn fill<T: Scalar>(
        w: &mut faer::Mat<T>,
        x: &faer::Mat<T>,
        lambda: &[f64],
        f: impl Fn(f64) -> f64,
    ) {
        const TILE: usize = 32;
        let n = x.nrows();
        for jb in (0..n).step_by(TILE) {
            let je = (jb + TILE).min(n);
            // the weights of these columns: contiguous and branch-free, so the divisions
            // vectorise, under pulp's runtime dispatch (AVX2 when the CPU has it; the
            // baseline target has two lanes). A scalar division per entry took 17 % of an
            // eigh backward at n = 256.
            struct Weights<'a, T, F> {
                w: &'a mut faer::Mat<T>,
                lambda: &'a [f64],
                cols: std::ops::Range<usize>,
                f: &'a F,
            }
            impl<T: Scalar, F: Fn(f64) -> f64> pulp::WithSimd for Weights<'_, T, F> {
                type Output = ();
                #[inline(always)]
                fn with_simd<S: pulp::Simd>(self, _: S) {
                    for j in self.cols {
                        let lj = self.lambda[j];
                        for (wi, &li) in self.w.col_as_slice_mut(j).iter_mut().zip(self.lambda) {
                            *wi = T::from_f64(0.5 * (self.f)(lj - li));
                        }
                    }
                }
            }
            pulp::Arch::new().dispatch(Weights {
                w,
                lambda,
                cols: jb..je,
                f: &f,
            });
            // times ½(X − Xᴴ), tile by tile so that the rows of X read for Xᴴ stay in cache
            for ib in (0..n).step_by(TILE) {
                let ie = (ib + TILE).min(n);
                for j in jb..je {
                    let xj = &x.col_as_slice(j)[ib..ie];
                    let wj = &mut w.col_as_slice_mut(j)[ib..ie];
                    for ((wi, &xij), i) in wj.iter_mut().zip(xj).zip(ib..ie) {
                        *wi = (xij - x[(j, i)].cj()) * *wi;
                    }
                }
            }
        }
    }
    let n = u.nrows();
    let zero = T::from_f64(0.0);
    let mut w = matgrad_engine::pool::zeros::<T>(n, n);
    if let Some(x) = x {
        match policy {
            DegeneracyPolicy::Broaden(eps) => fill(&mut w, x, lambda, |d| d / (d * d + eps)),
            _ => {
                fill(&mut w, x, lambda, |d| 1.0 / d);
                // a tie's 1/0 (and 0·∞) is replaced by the rule's 0
                for &(i, j) in masked {
                    w[(i, j)] = zero;
                    w[(j, i)] = zero;
                }
            }
        }
    }
    for i in 0..n {
        w[(i, i)] = lb.map_or(zero, |lb| T::from_f64(lb[(i, 0)]));
    }
    let uw = gemm(u.as_ref(), Form::Plain, w.as_ref(), Form::Plain);
    matgrad_engine::pool::give(w);
    let out = crate::sym_eig::hermitian_product(uw.as_ref(), u.as_ref());
    matgrad_engine::pool::give(uw);
    out
}

impl Op for Eigh {
    /// The gauge/tie checks compare against the gross size of summed cotangents.
    fn reads_cotangent_norms(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        self.op()
    }

    fn has_values_rule(&self) -> bool {
        true
    }
    /// The fused rule on values: what `vjp` computes when it is not recorded.
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<matgrad_engine::Ct>],
        out: &mut Vec<Option<matgrad_engine::Ct>>,
    ) -> EResult<bool> {
        let (lb, ub) = (ct[0].as_ref(), ct[1].as_ref());
        let v = self.vjp_fused_values(ctx, lb.map(|c| &*c.value), ub.map(|c| &*c.value))?;
        // no bound is proved: the sweep scans the result
        out.push(v.map(|v| matgrad_engine::Ct::new(v, f64::INFINITY)));
        Ok(true)
    }

    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        // a sweep that is not recorded calls `vjp_values` (the fused rule) instead
        let (lam, u) = (ctx.output(0), ctx.output(1));
        let n = self.lambda.len();
        let dtype = u.dtype();
        let mut w: Option<Var<'t>> = None;
        if let Some(lb) = ct[0] {
            self.check_lambda_bar(
                &lb.value_rc(),
                &self.tied_pairs(),
                ctx.cotangent_gross_norm(0),
            )?;
            w = Some(like(lb, dtype)?.diag_embed(n, n)?);
        }
        if let Some(ub) = ct[1] {
            let pairs = self.pairs_for_vectors()?;
            let x = u.matmul_forms(Form::Adjoint, ub, Form::Plain)?;
            let well_defined = self.opts.policy == DegeneracyPolicy::WellDefinedPart;
            let ub_norm = || {
                ub.with_value(Value::norm)
                    .max(ctx.cotangent_gross_norm(1).unwrap_or(0.0))
            };
            x.with_value(|xv| self.check_invariance(xv, ub_norm, &pairs, well_defined))?;
            let skew = x.sub(x.adjoint()?)?.scale(0.5)?;
            let f = like(self.loewner(lam, &pairs)?, dtype)?;
            let term = f.mul(skew)?;
            w = Some(match w {
                Some(w) => w.add(term)?,
                None => term,
            });
        }
        let Some(w) = w else { return Ok(vec![None]) };
        Ok(vec![Some(u.matmul(w)?.matmul_forms(
            Form::Plain,
            u,
            Form::Adjoint,
        )?)])
    }

    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None, None]);
        };
        let (lam, u) = (ctx.output(0), ctx.output(1));
        let n = self.lambda.len();
        let ties = self.tied_pairs();
        let e = u
            .matmul_forms(Form::Adjoint, da.sym()?, Form::Plain)?
            .matmul(u)?;
        // λ̇ = Re diag(Ẽ). At a tie the sorted eigenvalues are not differentiable: the block
        // average is what every symmetric function of the tied values sees (and does not
        // depend on the basis of the block); the consumers must be symmetric in them, which
        // the sweep checks along e_i − e_j — the forward twin of the VJP's check that λ̄ is
        // equal across the block.
        let mut dlam = e.diag()?.real()?;
        if !ties.is_empty() {
            dlam = block_average(lam.tape(), n, &ties, false)?.matmul(dlam)?;
            let (lambda, tol, pairs) = (self.lambda.clone(), self.tol(), ties.clone());
            let op = self.op();
            ctx.require_invariance(Invariance {
                directions: split_directions(n, &ties, false)
                    .into_iter()
                    .map(|d| vec![Some(d), None])
                    .collect(),
                mode: InvarianceMode::Numeric {
                    rtol: self.opts.invariance_rtol,
                },
                error: Box::new(move |k, _| {
                    let (i, j) = pairs[k];
                    SpectralError::Degenerate {
                        op,
                        i,
                        j,
                        gap: lambda[j] - lambda[i],
                        tol,
                        what: "the sorted eigenvalues",
                        hint: "the consumer must weigh tied eigenvalues equally (a symmetric function of them, e.g. a trace or a matrix function)",
                    }
                }),
            });
        }
        // The vectors' tangent is computed for the values-only form too: nothing the user
        // holds reads it, but the recorded gradient does, so forward-over-reverse needs it.
        let uv = u.value();
        if let (DegeneracyPolicy::Error, Some(&(i, j))) = (self.opts.policy, ties.first()) {
            // as the VJP refuses any eigenvector cotangent here, forward mode refuses any
            // use of the eigenvectors
            let err = if self.values_only {
                self.degenerate(
                    i,
                    j,
                    "the eigenvalues to second order (it involves the eigenvectors)",
                    "second derivatives of eigenvalues do not exist at a tie; use a matrix function (matrix_function_sym) of A instead",
                )
            } else {
                self.degenerate(
                    i,
                    j,
                    "the eigenvectors",
                    "use a basis-invariant loss (eigh_projector, a matrix function) or DegeneracyPolicy::WellDefinedPart",
                )
            };
            ctx.require_invariance(Invariance {
                directions: vec![vec![None, Some(uv)]],
                mode: InvarianceMode::Structural,
                error: Box::new(move |_, _| err.clone()),
            });
            return Ok(vec![Some(dlam), None]);
        }
        let rtol = self.opts.invariance_rtol;
        if self.opts.policy == DegeneracyPolicy::WellDefinedPart && !ties.is_empty() {
            let complex = uv.dtype() == DType::C64;
            let pairs = ties.clone();
            ctx.require_invariance(Invariance {
                directions: rotation_directions(&uv, &ties)
                    .into_iter()
                    .map(|d| vec![None, Some(d)])
                    .collect(),
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |k, size| {
                    let (i, j) = pair_of(k, &pairs, complex);
                    SpectralError::BasisDependent {
                        op: OP,
                        i,
                        j,
                        size,
                        tol: rtol,
                    }
                }),
            });
        }
        let phases = phase_directions(&uv);
        if !phases.is_empty() {
            ctx.require_invariance(Invariance {
                directions: phases.into_iter().map(|d| vec![None, Some(d)]).collect(),
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |i, size| SpectralError::PhaseDependent {
                    op: OP,
                    i,
                    size,
                    tol: rtol,
                }),
            });
        }
        let masked = if self.opts.policy == DegeneracyPolicy::WellDefinedPart {
            ties
        } else {
            Vec::new()
        };
        let f = like(self.loewner(lam, &masked)?, u.dtype())?;
        let du = u.matmul(f.mul(e)?)?;
        Ok(vec![Some(dlam), Some(du)])
    }
}

/// Eigenvalues (ascending, n×1 real) and eigenvectors (columns of U, A's dtype) of a
/// symmetric/Hermitian matrix, with the default [`EighOptions`].
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// Not square; not Hermitian (beyond `HERMITIAN_RTOL`); eigensolver failure. Degeneracy
/// errors come from the backward pass, where they apply.
pub fn eigh(a: Var<'_>) -> Result<(Var<'_>, Var<'_>)> {
    eigh_with(a, EighOptions::default())
}

/// [`eigh`] with explicit options (degeneracy policy and tolerances).
///
/// ```
/// use matgrad_engine::{Tape, testing::symmetric_from_seed, Axis};
/// use matgrad_spectral::{eigh_with, EighOptions, DegeneracyPolicy};
/// # fn main() -> Result<(), matgrad_spectral::SpectralError> {
/// let tape = Tape::new();
/// let a = tape.leaf(symmetric_from_seed(&[1.0, 1.0, 3.0], 2))?;
/// let opts = EighOptions { policy: DegeneracyPolicy::WellDefinedPart, ..EighOptions::default() };
/// let (_, u) = eigh_with(a, opts)?;
/// // ‖U₃‖-weighted loss that only sees the non-degenerate eigenvector's outer product
/// let u3 = u.slice(0..3, 2..3)?;
/// let y = u3.matmul_forms(matgrad_engine::Form::Plain, u3, matgrad_engine::Form::Adjoint)?.trace()?;
/// let g = tape.grad(y, &[a])?;              // well defined despite the tie
/// assert!(g[0].max_abs() < 1e-12);          // ‖u₃‖² = 1 is constant
/// # Ok(()) }
/// ```
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`eigh`]; a non-finite or negative tolerance or ε.
pub fn eigh_with(a: Var<'_>, opts: EighOptions) -> Result<(Var<'_>, Var<'_>)> {
    eigh_impl(a, opts, false)
}

fn eigh_impl(a: Var<'_>, opts: EighOptions, values_only: bool) -> Result<(Var<'_>, Var<'_>)> {
    opts.validate(OP)?;
    let eig = a.with_value(|v| decompose(OP, v))?;
    let n = eig.lambda.len();
    let lam = Value::Real(faer::Mat::from_fn(n, 1, |i, _| eig.lambda[i]));
    let outs = a.tape().record(
        Rc::new(Eigh {
            opts,
            lambda: eig.lambda,
            values_only,
        }),
        &[a],
        vec![lam, eig.u],
    )?;
    Ok((outs[0], outs[1]))
}

/// Eigenvalues (ascending, n×1 real) of a symmetric/Hermitian matrix. The gradient
/// `U diag(λ̄) Uᴴ` is exact at ties when the loss weighs tied eigenvalues equally.
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`eigh`].
pub fn eigvalsh(a: Var<'_>) -> Result<Var<'_>> {
    Ok(eigh_impl(a, EighOptions::default(), true)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::check::{check, CheckOptions, Order};
    use matgrad_engine::testing::{
        assert_rules, hermitian_from_seed, real_matrix, symmetric_from_seed, Spectrum,
    };
    use matgrad_engine::{Axis, DType, Tape};

    #[test]
    fn forward_reconstructs() {
        let t = Tape::new();
        for n in [1, 2, 3, 8, 31] {
            let a = t
                .constant(symmetric_from_seed(
                    &Spectrum::log_spaced(n, 0.1, 10.0).values(),
                    n as u64,
                ))
                .unwrap();
            let (lam, u) = eigh(a).unwrap();
            let r = u
                .matmul(lam.diag_embed(n, n).unwrap())
                .unwrap()
                .matmul_forms(Form::Plain, u, Form::Adjoint)
                .unwrap();
            assert!(r.value().rel_diff(&a.value()).unwrap() < 1e-13 * n as f64);
            let l = lam.value();
            let l = l.as_real().unwrap();
            for i in 1..n {
                assert!(l[(i, 0)] >= l[(i - 1, 0)], "ascending");
            }
        }
        let h = t
            .constant(hermitian_from_seed(&[1.0, 2.0, 5.0], 1))
            .unwrap();
        let lam = eigvalsh(h).unwrap().value();
        let want = Value::Real(faer::mat![[1.0], [2.0], [5.0]]);
        assert!(lam.rel_diff(&want).unwrap() < 1e-14);
    }

    /// From order [`crate::sym_eig::EIGH_RECURSION_THRESHOLD`] up faer solves the
    /// tridiagonal problem by divide and conquer, whose deflation is where ties and
    /// clusters matter. At n = 64 and 100, real and complex, with an exactly tied block of
    /// 12, a cluster of width 1e-10 and negative values: the eigenvalues are the constructed
    /// ones, and U is orthonormal and reconstructs A.
    #[test]
    fn divide_and_conquer_path_with_ties_and_clusters() {
        // a backward-stable solver errs by c·n·ε·‖A‖; n ≤ 100 gives n·ε ≈ 2.2e-14, and 1e-13
        // allows c ≈ 4.5 (faer's observed errors: 2e-15 – 8e-15)
        const DC_TOL: f64 = 1e-13;
        const { assert!(crate::sym_eig::EIGH_RECURSION_THRESHOLD <= 64) };
        for n in [64usize, 100] {
            let mut want: Vec<f64> = (0..n).map(|i| -3.0 + 0.07 * i as f64).collect();
            want[5..17].fill(0.5); // an exact tie of 12
            for (k, w) in want[30..36].iter_mut().enumerate() {
                *w = 2.0 + 1e-10 * k as f64; // a cluster
            }
            want.sort_by(f64::total_cmp);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (seed, a) in [
                (0, symmetric_from_seed(&want, n as u64)),
                (1, hermitian_from_seed(&want, n as u64 + 1)),
            ] {
                let t = Tape::new();
                let x = t.constant(a.clone()).unwrap();
                let (lam, u) = eigh(x).unwrap();
                let got = lam.value();
                let got = got.as_real().unwrap();
                for (i, w) in want.iter().enumerate() {
                    assert!(
                        (got[(i, 0)] - w).abs() <= DC_TOL * scale,
                        "n = {n}, dtype {seed}: λ{i} = {} instead of {w}",
                        got[(i, 0)]
                    );
                }
                let d = lam.diag_embed(n, n).unwrap();
                let d = match u.dtype() {
                    DType::F64 => d,
                    DType::C64 => d.to_complex().unwrap(),
                };
                let r = u
                    .matmul(d)
                    .unwrap()
                    .matmul_forms(Form::Plain, u, Form::Adjoint)
                    .unwrap();
                assert!(r.value().rel_diff(&a).unwrap() < DC_TOL, "n = {n}");
                let g = u
                    .matmul_forms(Form::Adjoint, u, Form::Plain)
                    .unwrap()
                    .value();
                // rel_diff against I is max|UᴴU − I| (I's largest entry is 1)
                let off = g.rel_diff(&Value::identity(u.dtype(), n)).unwrap();
                assert!(off < DC_TOL, "n = {n}, dtype {seed}: ‖UᴴU − I‖ = {off:e}");
            }
        }
    }

    fn top_projector_loss<'t>(t: &'t Tape, x: &[Var<'t>], b: &Value) -> EResult<Var<'t>> {
        let (_, u) = eigh(x[0].sym()?)?;
        let u0 = u.slice(0..3, 0..1)?;
        let p = u0.matmul_forms(Form::Plain, u0, Form::Adjoint)?;
        p.dot_real(t.constant(b.clone())?)
    }

    /// A loss of the eigenvectors only, f(A) = Σ Ḡ ∘ (U diag(s)) with a sign-fixing step
    /// (each column scaled so that its largest entry is positive) would be needed for a
    /// sign-invariant check; instead use ⟨B, u₀ u₀ᵀ⟩, invariant to the sign of u₀ and
    /// dependent only on the eigenvector term. A sign error in F flips its gradient.
    #[test]
    fn eigenvector_term_has_the_right_sign() {
        let a = symmetric_from_seed(&[1.0, 2.0, 4.0], 3);
        let b = real_matrix(3, 3, 4);
        let (y, g) = matgrad_engine::grad(
            |t, x| top_projector_loss(t, x, &b),
            std::slice::from_ref(&a),
        )
        .unwrap();
        // central difference along a fixed symmetric direction
        let d = symmetric_from_seed(&[0.3, -0.2, 0.5], 5);
        let h = 1e-6;
        let at = |s: f64| {
            matgrad_engine::grad(
                |t, x| top_projector_loss(t, x, &b),
                &[a.axpy(s, &d).unwrap()],
            )
            .unwrap()
            .0
            .scalar_real()
            .unwrap()
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        let an = g[0].real_inner(&d).unwrap();
        assert!(
            (fd - an).abs() < 1e-7 * fd.abs().max(1.0),
            "fd {fd} vs rule {an} (value {y:?})"
        );
        assert!(
            an.abs() > 1e-3,
            "the test direction must exercise the eigenvector term"
        );
    }

    #[test]
    fn rules_distinct_spectra() {
        for (n, seed) in [(1usize, 1u64), (2, 2), (4, 3)] {
            let a = symmetric_from_seed(&Spectrum::log_spaced(n, 0.5, 4.0).values(), seed);
            assert_rules(
                "eigh values",
                |_, x| Ok(eigh(x[0].sym()?)?.0),
                std::slice::from_ref(&a),
            );
            assert_rules(
                "eigh vectors·diag",
                |_, x| {
                    let (l, u) = eigh(x[0].sym()?)?;
                    // U diag(λ²) Uᴴ is sign-invariant: exercises both outputs
                    let n = l.shape().0;
                    u.matmul(l.mul(l)?.diag_embed(n, n)?)?.matmul_forms(
                        Form::Plain,
                        u,
                        Form::Adjoint,
                    )
                },
                std::slice::from_ref(&a),
            );
        }
        let h = hermitian_from_seed(&[0.5, 1.5, 3.0], 4);
        assert_rules(
            "eigh complex, phase-invariant loss",
            |_, x| {
                let (l, u) = eigh(x[0].sym()?)?;
                let w = u.abs()?; // |Uᵢⱼ| is phase-invariant
                w.mul(w)?.sum(Axis::Rows)?.add(l.transpose()?)
            },
            &[h],
        );
    }

    #[test]
    fn eigenvalues_are_exact_at_ties_for_symmetric_losses() {
        for spec in [vec![1.0; 4], vec![1.0, 1.0, 2.0, 2.0]] {
            let a = symmetric_from_seed(&spec, 6);
            // Σ λ³: weighs tied eigenvalues equally. First order only: second derivatives of
            // eigenvalues do not exist at a tie (and the rule says so, see below).
            let opts = CheckOptions {
                order: Order::First,
                ..CheckOptions::default()
            };
            let r = check(
                |_, x| eigvalsh(x[0].sym()?)?.powf(3.0)?.sum(Axis::All),
                std::slice::from_ref(&a),
                &opts,
            )
            .unwrap();
            assert!(r.passed, "{r}");
            let second = check(
                |_, x| eigvalsh(x[0].sym()?)?.powf(3.0)?.sum(Axis::All),
                std::slice::from_ref(&a),
                &CheckOptions::default(),
            );
            assert!(second.is_err(), "second order at a tie must be refused");
        }
    }

    #[test]
    fn policies_at_ties() {
        let t = Tape::new();
        let av = symmetric_from_seed(&[1.0, 1.0, 3.0], 9);
        let a = t.leaf(av.clone()).unwrap();
        // a basis-dependent loss: the first column of U
        let (_, u) = eigh(a).unwrap();
        let y = u
            .slice(0..3, 0..1)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[a]) {
            Err(EngineError::Degenerate {
                op: "eigh",
                i: 0,
                j: 1,
                what: "the eigenvectors",
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let wd = EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        };
        let (_, u) = eigh_with(a, wd).unwrap();
        let y = u
            .slice(0..3, 0..1)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[a]) {
            Err(EngineError::BasisDependent {
                op: "eigh",
                i: 0,
                j: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let b = real_matrix(3, 3, 10);
        // A loss invariant to the basis of the tied block and symmetric in the tied
        // eigenvalues: ⟨B, u₂u₂ᵀ⟩ + Σλ (u₂ is the non-degenerate eigenvector, gap 2).
        let opts = CheckOptions {
            order: Order::First,
            ..CheckOptions::default()
        };
        let r = check(
            |t, x| {
                let (l, u) = eigh_with(x[0].sym()?, wd)?;
                let u2 = u.slice(0..3, 2..3)?;
                let p = u2.matmul_forms(Form::Plain, u2, Form::Adjoint)?;
                p.dot_real(t.constant(b.clone())?)?.add(l.sum(Axis::All)?)
            },
            std::slice::from_ref(&av),
            &opts,
        )
        .unwrap();
        assert!(r.passed, "{r}");
        // The same loss under the default policy is refused (it reads U at a tie).
        let (_, u) = eigh(a).unwrap();
        let u2 = u.slice(0..3, 2..3).unwrap();
        let y = u2
            .matmul_forms(Form::Plain, u2, Form::Adjoint)
            .unwrap()
            .trace()
            .unwrap();
        assert!(t.grad(y, &[a]).is_err());
        // broadening never fails
        let br = EighOptions {
            policy: DegeneracyPolicy::Broaden(1e-6),
            ..EighOptions::default()
        };
        let (_, u) = eigh_with(a, br).unwrap();
        let y = u
            .slice(0..3, 0..1)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        assert!(t.grad(y, &[a]).unwrap()[0].is_finite());
        // unequal eigenvalue cotangents across a tie
        let lam = eigvalsh(a).unwrap();
        let w = t
            .constant(Value::Real(faer::mat![[1.0], [2.0], [3.0]]))
            .unwrap();
        let y = lam.dot_real(w).unwrap();
        assert!(t.grad(y, &[a]).is_err());
    }

    /// Contributions to Ū that cancel (0.1 G + 0.2 G − 0.3 G: zero in exact arithmetic, a
    /// rounding residue in floating point) at a tie: the residue is basis-dependent
    /// relative to its own size, but negligible relative to the contributions, which is
    /// what the check must compare with (`Op::reads_cotangent_norms` on eigh). Without the
    /// gross size the well-defined part refuses this loss.
    #[test]
    fn cancelling_cotangent_contributions_are_not_basis_dependent() {
        let wd = EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        };
        for mode in [false, true] {
            let t = Tape::new();
            let x = t.leaf(symmetric_from_seed(&[1.0, 1.0, 3.0], 5)).unwrap();
            let (_, u) = eigh_with(x, wd).unwrap();
            let g = t.constant(real_matrix(3, 3, 6)).unwrap();
            let part = |c: f64| u.mul(g).unwrap().sum(Axis::All).unwrap().scale(c).unwrap();
            let y = part(0.1).add(part(0.2)).unwrap().sub(part(0.3)).unwrap();
            let gx = if mode {
                t.grad_graph(y, &[x]).map(|g| g[0].value())
            } else {
                t.grad(y, &[x]).map(|mut g| g.remove(0))
            };
            let gx = gx.unwrap_or_else(|e| panic!("recorded = {mode}: {e}"));
            assert!(gx.max_abs() < 1e-14, "recorded = {mode}: {}", gx.max_abs());
        }
    }

    /// The value-only backward (used when not recording) and the recorded rule agree.
    #[test]
    fn fused_and_recorded_rules_agree() {
        let wd = EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        };
        let br = EighOptions {
            policy: DegeneracyPolicy::Broaden(1e-3),
            ..EighOptions::default()
        };
        let cases = [
            (
                symmetric_from_seed(&[0.5, 1.0, 2.0, 4.0], 1),
                EighOptions::default(),
            ),
            (
                hermitian_from_seed(&[0.5, 1.0, 2.0], 2),
                EighOptions::default(),
            ),
            (symmetric_from_seed(&[1.0, 2.0, 3.0], 3), br),
            (symmetric_from_seed(&[1.0, 1.0, 3.0], 4), wd),
        ];
        for (k, (a, opts)) in cases.into_iter().enumerate() {
            let t = Tape::new();
            let x = t.leaf(a.clone()).unwrap();
            let (l, u) = eigh_with(x, opts).unwrap();
            let n = a.shape().0;
            let lbar = Value::Real(faer::Mat::from_fn(n, 1, |i, _| {
                if k == 3 && i < 2 {
                    0.7
                } else {
                    i as f64 - 0.5
                }
            }));
            // an eigenvector cotangent invariant to the basis of the tied block in case 3
            let ubar = if k == 3 {
                let uv = u.value();
                let ur = uv.as_real().unwrap();
                Value::Real(faer::Mat::from_fn(n, n, |i, j| {
                    if j == 2 {
                        ur[(i, 2)] + 0.3 * ur[(i, 0)]
                    } else {
                        0.0
                    }
                }))
            } else {
                match u.dtype() {
                    DType::F64 => real_matrix(n, n, 7),
                    DType::C64 => {
                        // phase-invariant: Ū = U·diag(real) + i·0 keeps Im diag(UᴴŪ) = 0
                        let uv = u.value();
                        let uc = uv.as_complex().unwrap();
                        Value::Complex(faer::Mat::from_fn(n, n, |i, j| {
                            uc[(i, j)] * (j as f64 + 1.0)
                        }))
                    }
                }
            };
            let fused = t.vjp(&[l, u], &[lbar.clone(), ubar.clone()], &[x]).unwrap();
            let (lb, ub) = (t.constant(lbar).unwrap(), t.constant(ubar).unwrap());
            let recorded = t.vjp_graph(&[l, u], &[lb, ub], &[x]).unwrap()[0].value();
            assert!(fused[0].rel_diff(&recorded).unwrap() < 1e-13, "case {k}");
        }
    }

    /// The fused rule fills `W` in 32×32 tiles with vectorised weights: at orders past one
    /// tile (partial last tiles, ties and masked pairs in a later tile, complex, Broaden
    /// across an exact tie) it must still agree with the recorded rule.
    #[test]
    fn fused_and_recorded_rules_agree_across_tiles() {
        let spectrum = |n: usize, ties: &[usize]| -> Vec<f64> {
            let mut v: Vec<f64> = (0..n).map(|i| -2.0 + 0.07 * i as f64).collect();
            for &i in ties {
                v[i + 1] = v[i];
            }
            v
        };
        let wd = EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        };
        let br = EighOptions {
            policy: DegeneracyPolicy::Broaden(1e-4),
            ..EighOptions::default()
        };
        let cases: [(usize, &[usize], u64, EighOptions); 4] = [
            (70, &[], 21, EighOptions::default()),
            (40, &[], 22, EighOptions::default()),
            (75, &[3, 40], 23, wd),
            (66, &[33], 24, br),
        ];
        for (k, (n, tied, seed, opts)) in cases.into_iter().enumerate() {
            let a = if k == 1 {
                hermitian_from_seed(&spectrum(n, tied), seed)
            } else {
                symmetric_from_seed(&spectrum(n, tied), seed)
            };
            let t = Tape::new();
            let x = t.leaf(a).unwrap();
            let (l, u) = eigh_with(x, opts).unwrap();
            let ties: Vec<(usize, usize)> = tied.iter().map(|&i| (i, i + 1)).collect();
            // λ̄ equal across each tied block, Ū = U·M with M symmetric on the tied pairs
            // (so the loss does not depend on the basis of a tied block)
            let lbar = Value::Real(faer::Mat::from_fn(n, 1, |i, _| {
                let i = if ties.iter().any(|&(_, j)| j == i) {
                    i - 1
                } else {
                    i
                };
                (i as f64 * 0.37).sin()
            }));
            let m = faer::Mat::from_fn(n, n, |i, j| {
                let (i, j) = if ties.contains(&(j, i)) {
                    (j, i)
                } else {
                    (i, j)
                };
                ((i * 31 + j * 17) as f64 * 0.11).cos()
            });
            let ubar = match &u.value() {
                Value::Real(ur) => Value::Real(ur * &m),
                // Ū = U·M with M complex off the diagonal (so that UᴴŪ = M reaches the
                // conjugates in ½(X − Xᴴ)) and real on it (phase-invariant: Im diag = 0)
                Value::Complex(uc) => {
                    let mc = faer::Mat::from_fn(n, n, |i, j| {
                        let im = if i == j { 0.0 } else { 0.4 * m[(j, i)] - 0.1 };
                        matgrad_engine::C64::new(m[(i, j)], im)
                    });
                    Value::Complex(uc * &mc)
                }
            };
            let fused = t.vjp(&[l, u], &[lbar.clone(), ubar.clone()], &[x]).unwrap();
            let (lb, ub) = (t.constant(lbar).unwrap(), t.constant(ubar).unwrap());
            let recorded = t.vjp_graph(&[l, u], &[lb, ub], &[x]).unwrap()[0].value();
            let diff = fused[0].rel_diff(&recorded).unwrap();
            assert!(
                diff < 1e-13,
                "case {k} (n = {n}): relative difference {diff:e}"
            );
        }
    }

    #[test]
    fn phase_dependent_complex_loss_is_an_error() {
        let t = Tape::new();
        let a = t.leaf(hermitian_from_seed(&[1.0, 2.0, 3.0], 11)).unwrap();
        let (_, u) = eigh(a).unwrap();
        let y = u
            .slice(1..2, 0..1)
            .unwrap()
            .real()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[a]) {
            Err(EngineError::PhaseDependent {
                op: "eigh", i: 0, ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let r = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(eigh(r), Err(EngineError::NotSquare { .. })));
        let ns = t.leaf(real_matrix(3, 3, 1)).unwrap();
        assert!(matches!(eigh(ns), Err(EngineError::NotHermitian { .. })));
        let a = t.leaf(symmetric_from_seed(&[1.0, 2.0], 1)).unwrap();
        let bad = EighOptions {
            policy: DegeneracyPolicy::Broaden(-1.0),
            ..EighOptions::default()
        };
        assert!(matches!(
            eigh_with(a, bad),
            Err(SpectralError::InvalidArgument { .. })
        ));
    }
}
