//! `svd`: thin singular value decomposition `A = U diag(S) Vᴴ` of any m×n matrix (real or
//! complex), k = min(m, n), S descending (k×1 real), U m×k, V n×k; `svdvals`: S only.
//!
//! With `P = Uᴴ Ȧ V`, `Fᵢⱼ = 1/(Sⱼ² − Sᵢ²)` (`Fᵢᵢ = 0`), computed as
//! `F ∘ (X S + S Y) = F⁻ ∘ (X + Y)/2 + F⁺ ∘ (X − Y)/2` with `F⁻ᵢⱼ = 1/(Sⱼ − Sᵢ)`,
//! `F⁺ᵢⱼ = 1/(Sⱼ + Sᵢ)` — at a tie only the `F⁻` part is singular, and the well-defined part
//! keeps the `F⁺` part (dropping it too, as a mask on F would, is wrong for losses such as
//! the polar factor `U Vᴴ`):
//! - tangent: `Ṡ = Re diag(P)`;
//!   `U̇ = U (F ∘ (P S + S Pᴴ) + i·diag(Im Pᵢᵢ / Sᵢ)) + (I − UUᴴ) Ȧ V S⁻¹`;
//!   `V̇ = V (F ∘ (S P + Pᴴ S)) + (I − VVᴴ) Ȧᴴ U S⁻¹`
//!   (gauge: `VᴴV̇` has zero diagonal; the complex phase goes to U);
//! - adjoint (PyTorch's `svd_backward`): with `Jᵤ = UᴴŪ − ŪᴴU`, `Jᵥ = VᴴV̄ − V̄ᴴV`,
//!   `Ā = U (F ∘ (Jᵤ S + S Jᵥ) + diag(S̄) + diag(Im(UᴴŪ)ᵢᵢ i / Sᵢ)) Vᴴ
//!        + (I − UUᴴ) Ū S⁻¹ Vᴴ + U S⁻¹ V̄ᴴ (I − VVᴴ)`.
//!
//! Degeneracy and gauge follow [`crate::DegeneracyPolicy`] as for `eigh`: tied singular
//! values with a cotangent on the vectors are an error by default; the complex phase
//! condition is `Im diag(UᴴŪ + VᴴV̄) = 0`. A zero singular value with a cotangent on the
//! vectors of a non-square matrix (the `S⁻¹` terms) is an error; `svdvals` at a zero
//! singular value returns `U diag(S̄) Vᴴ` (PyTorch's choice; |x| has no derivative at 0).
//!
//! [`svd_full`] completes U and V with [`crate::orthogonal_complement`]: the extra columns
//! span a null space where any orthonormal basis is valid, so a loss may read them only
//! through basis-invariant quantities (projectors); their cotangent is then folded into
//! the thin factors (`Ū₁ −= U₂ Ū₂ᴴ U₁`), and a basis-dependent one is an error.
//! Derivation: docs/math/svd.md.

use std::rc::Rc;

use matgrad_engine::ops::matmul::gemm;
use matgrad_engine::{
    DType, Form, Invariance, InvarianceMode, Op, OpCtx, Result as EResult, Scalar, Value, Var,
};

use crate::degeneracy::{
    block_average, inverse_gaps, like, pair_of, phase_directions, rotation_directions,
    split_directions, tied_pairs,
};
use crate::eigh::{DegeneracyPolicy, EighOptions};
use crate::error::{Result, SpectralError};

const OP: &str = "svd";

struct Svd {
    opts: EighOptions,
    s: Vec<f64>,
    shape: (usize, usize),
    /// Built by `svdvals`: at ties the tangent of S (block averaged) is returned without
    /// singular-vector tangents instead of an error.
    values_only: bool,
}

impl Svd {
    /// The name the user called: `svdvals` builds the same node without the vectors.
    fn op(&self) -> &'static str {
        if self.values_only {
            "svdvals"
        } else {
            OP
        }
    }

    fn tol(&self) -> f64 {
        self.opts.gap_rtol
            * self
                .s
                .first()
                .copied()
                .unwrap_or(0.0)
                .max(f64::MIN_POSITIVE)
    }

    fn pairs_for_vectors(&self) -> EResult<Vec<(usize, usize)>> {
        let pairs = tied_pairs(&self.s, self.tol());
        if let (DegeneracyPolicy::Error, Some(&(i, j))) = (self.opts.policy, pairs.first()) {
            return Err(SpectralError::Degenerate {
                op: self.op(),
                i,
                j,
                gap: (self.s[i] - self.s[j]).abs(),
                tol: self.tol(),
                what: "the singular vectors",
                hint: "use a loss invariant to the basis of the tied singular subspace, or DegeneracyPolicy::WellDefinedPart",
            });
        }
        Ok(pairs)
    }

    fn check_rank(&self) -> EResult<()> {
        let (m, n) = self.shape;
        let k = self.s.len();
        if m != n {
            if let Some(i) = (0..k).find(|&i| self.s[i] <= self.tol()) {
                return Err(SpectralError::Degenerate {
                    op: self.op(),
                    i,
                    j: i,
                    gap: self.s[i],
                    tol: self.tol(),
                    what: "the singular vectors",
                    hint: "a zero singular value of a non-square matrix leaves its singular vectors undefined (the S⁻¹ terms); add a small regulariser or use svdvals",
                });
            }
        }
        Ok(())
    }

    /// `F` from the S Var: `1/(Sⱼ² − Sᵢ²)`, masked or broadened.
    /// `F⁻ᵢⱼ = 1/(sⱼ − sᵢ)` (masked on tied pairs, or broadened) and `F⁺ᵢⱼ = 1/(sⱼ + sᵢ)`,
    /// zero on the diagonal. `1/(sⱼ² − sᵢ²) (Xᵢⱼ sⱼ + sᵢ Yᵢⱼ)` splits into
    /// `F⁻ᵢⱼ (X + Y)ᵢⱼ/2 + F⁺ᵢⱼ (X − Y)ᵢⱼ/2`: only the first part is singular at a tie, and the
    /// well-defined part keeps the second.
    fn gap_factors<'t>(
        &self,
        s: Var<'t>,
        masked: &[(usize, usize)],
    ) -> EResult<(Var<'t>, Var<'t>)> {
        let k = self.s.len();
        let row = s.transpose()?.broadcast_to(k, k)?; // (i, j) ↦ sⱼ
        let col = s.broadcast_to(k, k)?; // (i, j) ↦ sᵢ
        let minus = inverse_gaps(row.sub(col)?, masked, self.opts.policy)?;
        let plus = inverse_gaps(row.add(col)?, &[], DegeneracyPolicy::Error)?;
        Ok((minus, plus))
    }

    /// A tied pair of zero singular values (both vectors undefined even jointly).
    fn check_zero_pair(&self, pairs: &[(usize, usize)]) -> EResult<()> {
        if let Some(&(i, j)) = pairs
            .iter()
            .find(|&&(i, j)| self.s[i] + self.s[j] <= self.tol())
        {
            return Err(SpectralError::Degenerate {
                op: self.op(),
                i,
                j,
                gap: self.s[i] + self.s[j],
                tol: self.tol(),
                what: "the singular vectors of a repeated zero singular value",
                hint: "the matrix is rank-deficient by at least two; add a small regulariser",
            });
        }
        Ok(())
    }

    /// The sorted singular values at a tie: `S̄` must be equal across the tied block.
    fn check_s_bar(&self, sv: &Value, gross: Option<f64>) -> EResult<()> {
        let r = sv.as_real().expect("singular value cotangents are real");
        let scale = sv.norm().max(gross.unwrap_or(0.0)).max(f64::MIN_POSITIVE);
        for (i, j) in tied_pairs(&self.s, self.tol()) {
            if (r[(i, 0)] - r[(j, 0)]).abs() > self.opts.invariance_rtol * scale {
                return Err(SpectralError::Degenerate {
                    op: self.op(),
                    i,
                    j,
                    gap: (self.s[i] - self.s[j]).abs(),
                    tol: self.tol(),
                    what: "the sorted singular values",
                    hint: "sorted singular values are not differentiable at a tie unless the loss weighs tied values equally",
                });
            }
        }
        Ok(())
    }

    /// The checks on the vector cotangents, through `Xᵤ = UᴴŪ` and `Xᵥ = VᴴV̄`: the complex
    /// phase, the invariance to a joint turn of a tied block (well-defined part), a tied
    /// pair of zero singular values.
    fn check_vectors(
        &self,
        xuv: Option<&Value>,
        xvv: Option<&Value>,
        vec_scale: f64,
        pairs: &[(usize, usize)],
    ) -> EResult<()> {
        self.check_phase(xuv, xvv, vec_scale)?;
        if self.opts.policy == DegeneracyPolicy::WellDefinedPart && !pairs.is_empty() {
            // A tied block's singular vectors turn jointly: (U_b, V_b) → (U_b K, V_b K)
            // leaves A unchanged. The loss must be invariant to that joint turn:
            // (Xᵤ − Xᵤᴴ)ᵢⱼ + (Xᵥ − Xᵥᴴ)ᵢⱼ = 0 on every tied pair.
            let scale = [xuv, xvv]
                .iter()
                .flatten()
                .map(|v| v.max_abs())
                .fold(vec_scale.max(f64::MIN_POSITIVE), f64::max);
            let skew = |v: Option<&Value>, i: usize, j: usize| -> matgrad_engine::C64 {
                match v {
                    Some(Value::Real(a)) => matgrad_engine::C64::new(a[(i, j)] - a[(j, i)], 0.0),
                    Some(Value::Complex(a)) => a[(i, j)] - a[(j, i)].conj(),
                    None => matgrad_engine::C64::new(0.0, 0.0),
                }
            };
            for &(i, j) in pairs {
                let size = (skew(xuv, i, j) + skew(xvv, i, j)).norm() / scale;
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
        self.check_zero_pair(pairs)
    }

    /// The first-order adjoint on values when the sweep does not record (no second order
    /// is asked for): the same formula, the same checks and the same four products as the
    /// recorded rule in [`Op::vjp`], with the k×k core assembled in one pass instead of
    /// a dozen elementwise nodes (each an allocation and a finiteness scan).
    fn vjp_fused<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let (u, v) = (ctx.output(0), ctx.output(2));
        let tape = u.tape();
        let (ub, sb, vb) = (ct[0], ct[1], ct[2]);
        let sbv = match sb {
            Some(sb) => {
                let sv = sb.value_rc();
                self.check_s_bar(&sv, ctx.cotangent_gross_norm(1))?;
                Some(sv)
            }
            None => None,
        };
        let (uv, vv) = (u.value_rc(), v.value_rc());
        let (ubv, vbv) = (ub.map(|x| x.value_rc()), vb.map(|x| x.value_rc()));
        let mut pairs = Vec::new();
        let (mut xu, mut xv) = (None, None);
        if ub.is_some() || vb.is_some() {
            pairs = self.pairs_for_vectors()?;
            self.check_rank()?;
            let adj_times = |a: &Value, b: &Value| -> EResult<Value> {
                Ok(match (a, b) {
                    (Value::Real(a), Value::Real(b)) => {
                        Value::Real(gemm(a.as_ref(), Form::Adjoint, b.as_ref(), Form::Plain))
                    }
                    (Value::Complex(a), Value::Complex(b)) => {
                        Value::Complex(gemm(a.as_ref(), Form::Adjoint, b.as_ref(), Form::Plain))
                    }
                    _ => {
                        return Err(matgrad_engine::EngineError::DTypeMismatch {
                            op: self.op(),
                            lhs: a.dtype(),
                            rhs: b.dtype(),
                        })
                    }
                })
            };
            xu = ubv.as_deref().map(|b| adj_times(&uv, b)).transpose()?;
            xv = vbv.as_deref().map(|b| adj_times(&vv, b)).transpose()?;
            // the scale is read only by the complex phase check and at ties under the
            // well-defined part (`check_vectors`); a real input skips the two norms
            let read = uv.dtype() == DType::C64
                || (self.opts.policy == DegeneracyPolicy::WellDefinedPart && !pairs.is_empty());
            let vec_scale = [(&ubv, 0usize), (&vbv, 2usize)]
                .iter()
                .filter(|_| read)
                .filter_map(|(c, k)| {
                    c.as_ref()
                        .map(|c| c.norm().max(ctx.cotangent_gross_norm(*k).unwrap_or(0.0)))
                })
                .fold(0.0, f64::max);
            self.check_vectors(xu.as_ref(), xv.as_ref(), vec_scale, &pairs)?;
        } else if sbv.is_none() {
            return Ok(vec![None]);
        }
        let parts = Fused {
            s: &self.s,
            sb: sbv.as_deref().and_then(Value::as_real),
            broaden: match self.opts.policy {
                DegeneracyPolicy::Broaden(eps) => Some(eps),
                _ => None,
            },
            masked: &pairs,
        };
        let out = match (&*uv, &*vv) {
            (Value::Real(u), Value::Real(v)) => Value::Real(parts.assemble(
                u,
                v,
                ubv.as_deref().and_then(Value::as_real),
                vbv.as_deref().and_then(Value::as_real),
                xu.as_ref().and_then(Value::as_real),
                xv.as_ref().and_then(Value::as_real),
            )),
            (Value::Complex(u), Value::Complex(v)) => Value::Complex(parts.assemble(
                u,
                v,
                ubv.as_deref().and_then(Value::as_complex),
                vbv.as_deref().and_then(Value::as_complex),
                xu.as_ref().and_then(Value::as_complex),
                xv.as_ref().and_then(Value::as_complex),
            )),
            _ => unreachable!("U and V share the input's dtype"),
        };
        // the constant's finiteness scan is the only one
        let out = tape.constant(out).map_err(|err| match err {
            matgrad_engine::EngineError::NonFinite { .. } => {
                matgrad_engine::EngineError::NonFinite {
                    op: self.op(),
                    place: "in the gradient",
                    hint: "the adjoint divides by singular values and their sums: a zero singular value with a cotangent on the vectors has no finite gradient; add a small regulariser",
                }
            }
            err => err,
        })?;
        Ok(vec![Some(out)])
    }

    /// `scale`: the size of the vector cotangents (Frobenius, or gross when summed from
    /// contributions that cancel) — `UᴴŪ` misses the part of Ū outside range(U), so its own
    /// size is no measure.
    fn check_phase(&self, x: Option<&Value>, y: Option<&Value>, scale: f64) -> EResult<()> {
        if [x, y].iter().flatten().all(|v| v.dtype() == DType::F64) {
            // real: no phase freedom (the diagonal's imaginary parts are zero)
            return Ok(());
        }
        let k = self.s.len();
        let diag_im = |v: Option<&Value>, i: usize| {
            v.and_then(|v| v.as_complex()).map_or(0.0, |m| m[(i, i)].im)
        };
        let scale = [x, y]
            .iter()
            .flatten()
            .map(|v| v.max_abs())
            .fold(scale.max(f64::MIN_POSITIVE), f64::max);
        for i in 0..k {
            let size = (diag_im(x, i) + diag_im(y, i)).abs() / scale;
            if size > self.opts.invariance_rtol {
                return Err(SpectralError::PhaseDependent {
                    op: self.op(),
                    i,
                    size,
                    tol: self.opts.invariance_rtol,
                });
            }
        }
        Ok(())
    }
}

/// What the value-only adjoint needs besides the matrices.
struct Fused<'a> {
    s: &'a [f64],
    sb: Option<&'a faer::Mat<f64>>,
    /// `Some(ε)` under [`DegeneracyPolicy::Broaden`]: `F⁻ᵢⱼ = d/(d² + ε)`, `d = sⱼ − sᵢ`.
    broaden: Option<f64>,
    /// Tied pairs whose `F⁻ᵢⱼ = 1/(sⱼ − sᵢ)` is replaced by 0 (not under Broaden).
    masked: &'a [(usize, usize)],
}

/// Columns of the core whose weights (`½F⁻`, `½F⁺`) are computed together, in one
/// vectorised pass ([`Fused::weights`]); `Xᴴ` is read from a copy, column by column.
const TILE: usize = 32;

impl Fused<'_> {
    /// `Ā = U core Vᴴ` plus the off-range terms (see [`Op::vjp`] of `Svd` for each term).
    fn assemble<T: Scalar>(
        &self,
        u: &faer::Mat<T>,
        v: &faer::Mat<T>,
        ub: Option<&faer::Mat<T>>,
        vb: Option<&faer::Mat<T>>,
        xu: Option<&faer::Mat<T>>,
        xv: Option<&faer::Mat<T>>,
    ) -> faer::Mat<T> {
        let (m, k) = u.shape();
        let n = v.nrows();
        let s = self.s;
        let complex = T::DTYPE == DType::C64;
        let left = ub.filter(|_| m > k); // Ū S⁻¹ (m > k)
        let right = vb.filter(|_| n > k); // V̄ S⁻¹ (n > k)
        let zero = T::from_f64(0.0);
        let inv_s: Vec<f64> = s.iter().map(|&x| 1.0 / x).collect();
        // every entry of the core is written below
        let mut core = matgrad_engine::pool::for_overwrite::<T>(k, k);
        if xu.is_none() && xv.is_none() {
            core.fill(zero);
        } else {
            // Xᴴ copied once (`pool::transposed`), so that each column of the core
            // is a branch-free pass over contiguous columns: (Jᵤ)ᵢⱼ = Xᵤᵢⱼ − (Xᵤᴴ)ᵢⱼ; an
            // absent X reads as zeros (x − 0 and x + 0 are exact)
            let zeros = vec![zero; k];
            let (xut, xvt) = (
                xu.map(|x| matgrad_engine::pool::transposed(x.as_ref(), true)),
                xv.map(|x| matgrad_engine::pool::transposed(x.as_ref(), true)),
            );
            fn col_or<'a, T: Scalar>(x: Option<&'a faer::Mat<T>>, j: usize, z: &'a [T]) -> &'a [T] {
                x.map_or(z, |x| x.col_as_slice(j))
            }
            let col = |x, j| col_or(x, j, &zeros);
            let (mut wm, mut wp) = (Vec::new(), Vec::new());
            for jb in (0..k).step_by(TILE) {
                let je = (jb + TILE).min(k);
                self.weights(jb..je, &mut wm, &mut wp);
                for j in jb..je {
                    let (wmj, wpj) = (&wm[(j - jb) * k..][..k], &wp[(j - jb) * k..][..k]);
                    let (u1, u2) = (col(xu, j), col(xut.as_ref(), j));
                    let (v1, v2) = (col(xv, j), col(xvt.as_ref(), j));
                    let out = core.col_as_slice_mut(j);
                    // F⁻ ∘ (Jᵤ + Jᵥ)/2 + F⁺ ∘ (Jᵤ − Jᵥ)/2 (the weights hold the halves)
                    let terms = u1.iter().zip(u2).zip(v1.iter().zip(v2));
                    for ((o, ((&p, &q), (&r, &t))), (&wm, &wp)) in
                        out.iter_mut().zip(terms).zip(wmj.iter().zip(wpj))
                    {
                        let (a, b) = (p - q, r - t);
                        *o = (a + b) * T::from_f64(wm) + (a - b) * T::from_f64(wp);
                    }
                    if left.is_some() {
                        // −Xᵤ S⁻¹
                        let sj = T::from_f64(inv_s[j]);
                        for (o, &x) in out.iter_mut().zip(u1) {
                            *o -= x * sj;
                        }
                    }
                    if right.is_some() {
                        // −S⁻¹ Xᵥᴴ
                        for ((o, &x), &si) in out.iter_mut().zip(v2).zip(&inv_s) {
                            *o -= x * T::from_f64(si);
                        }
                    }
                    if complex && xu.is_some() {
                        // (Jᵤ)ⱼⱼ = 2i Im Xⱼⱼ: i·Im(Xⱼⱼ)/Sⱼ
                        out[j] += (u1[j] - u2[j]) * T::from_f64(0.5 / s[j]);
                    }
                }
            }
        }
        if let Some(sb) = self.sb {
            for i in 0..k {
                core[(i, i)] += T::from_f64(sb[(i, 0)]);
            }
        }
        match (left, right) {
            (Some(ub), _) => {
                let mut l = gemm(u.as_ref(), Form::Plain, core.as_ref(), Form::Plain);
                for j in 0..k {
                    let sj = T::from_f64(inv_s[j]);
                    for i in 0..m {
                        l[(i, j)] += ub[(i, j)] * sj;
                    }
                }
                gemm(l.as_ref(), Form::Plain, v.as_ref(), Form::Adjoint)
            }
            (None, Some(vb)) => {
                let mut r = gemm(core.as_ref(), Form::Plain, v.as_ref(), Form::Adjoint);
                for jb in (0..n).step_by(TILE) {
                    for ib in (0..k).step_by(TILE) {
                        for j in jb..(jb + TILE).min(n) {
                            for i in ib..(ib + TILE).min(k) {
                                r[(i, j)] += vb[(j, i)].cj() * T::from_f64(inv_s[i]);
                            }
                        }
                    }
                }
                gemm(u.as_ref(), Form::Plain, r.as_ref(), Form::Plain)
            }
            (None, None) => gemm(
                gemm(u.as_ref(), Form::Plain, core.as_ref(), Form::Plain).as_ref(),
                Form::Plain,
                v.as_ref(),
                Form::Adjoint,
            ),
        }
    }

    /// `½F⁻ᵢⱼ` into `wm` and `½F⁺ᵢⱼ = ½/(sⱼ + sᵢ)` into `wp` for every row `i` and the
    /// columns `cols`, column after column (`k` entries each); 0 on the diagonal and, for
    /// `F⁻`, at the masked pairs. Contiguous and branch-free, so the divisions vectorise,
    /// under pulp's runtime dispatch (AVX2 when the CPU has it): per-entry scalar
    /// divisions were the part of the SVD backward beyond its GEMMs.
    fn weights(&self, cols: std::ops::Range<usize>, wm: &mut Vec<f64>, wp: &mut Vec<f64>) {
        struct Fill<'a> {
            s: &'a [f64],
            broaden: Option<f64>,
            cols: std::ops::Range<usize>,
            wm: &'a mut [f64],
            wp: &'a mut [f64],
        }
        impl pulp::WithSimd for Fill<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) {
                let (s, k) = (self.s, self.s.len());
                for (jj, j) in self.cols.enumerate() {
                    let sj = s[j];
                    let wmj = &mut self.wm[jj * k..][..k];
                    match self.broaden {
                        Some(eps) => {
                            for (w, &si) in wmj.iter_mut().zip(s) {
                                let d = sj - si;
                                *w = 0.5 * (d / (d * d + eps));
                            }
                        }
                        None => {
                            for (w, &si) in wmj.iter_mut().zip(s) {
                                *w = 0.5 * (1.0 / (sj - si));
                            }
                        }
                    }
                    for (w, &si) in self.wp[jj * k..][..k].iter_mut().zip(s) {
                        *w = 0.5 * (1.0 / (sj + si));
                    }
                }
            }
        }
        let k = self.s.len();
        let c0 = cols.start;
        let len = k * cols.len();
        wm.resize(len, 0.0);
        wp.resize(len, 0.0);
        pulp::Arch::new().dispatch(Fill {
            s: self.s,
            broaden: self.broaden,
            cols: cols.clone(),
            wm: &mut wm[..len],
            wp: &mut wp[..len],
        });
        for j in cols.clone() {
            // the diagonal: 1/0 there is replaced by the rule's 0 (Broaden's is 0 already)
            wm[(j - c0) * k + j] = 0.0;
            wp[(j - c0) * k + j] = 0.0;
        }
        if self.broaden.is_none() {
            for &(i, j) in self.masked {
                if cols.contains(&j) {
                    wm[(j - c0) * k + i] = 0.0;
                }
                if cols.contains(&i) {
                    wm[(i - c0) * k + j] = 0.0;
                }
            }
        }
    }
}

impl Op for Svd {
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
        if !ctx.is_recording() {
            return self.vjp_fused(ctx, ct);
        }
        let (u, s, v) = (ctx.output(0), ctx.output(1), ctx.output(2));
        let (ub, sb, vb) = (ct[0], ct[1], ct[2]);
        let (m, n) = self.shape;
        let k = self.s.len();
        let dtype = u.dtype();
        let mut core: Option<Var<'t>> = None;
        let acc = |x: Var<'t>, core: &mut Option<Var<'t>>| -> EResult<()> {
            *core = Some(match core.take() {
                Some(c) => c.add(x)?,
                None => x,
            });
            Ok(())
        };
        if let Some(sb) = sb {
            self.check_s_bar(&sb.value(), ctx.cotangent_gross_norm(1))?;
            acc(like(sb, dtype)?.diag_embed(k, k)?, &mut core)?;
        }
        let (mut xu_done, mut xv_done) = (None, None);
        if ub.is_some() || vb.is_some() {
            let pairs = self.pairs_for_vectors()?;
            self.check_rank()?;
            let xu = ub
                .map(|ub| u.matmul_forms(Form::Adjoint, ub, Form::Plain))
                .transpose()?;
            let xv = vb
                .map(|vb| v.matmul_forms(Form::Adjoint, vb, Form::Plain))
                .transpose()?;
            let vec_scale = [(ub, 0usize), (vb, 2usize)]
                .iter()
                .filter_map(|(c, k)| {
                    c.map(|c| {
                        c.with_value(Value::norm)
                            .max(ctx.cotangent_gross_norm(*k).unwrap_or(0.0))
                    })
                })
                .fold(0.0, f64::max);
            self.check_vectors(
                xu.map(|x| x.value()).as_ref(),
                xv.map(|x| x.value()).as_ref(),
                vec_scale,
                &pairs,
            )?;
            let (fm, fp) = self.gap_factors(s, &pairs)?;
            let (fm, fp) = (like(fm, dtype)?, like(fp, dtype)?);
            // Jᵤ = Xᵤ − Xᵤᴴ, Jᵥ = Xᵥ − Xᵥᴴ; core += F⁻ ∘ (Jᵤ + Jᵥ)/2 + F⁺ ∘ (Jᵤ − Jᵥ)/2
            let ju = xu.map(|x| x.sub(x.adjoint()?)).transpose()?;
            let jv = xv.map(|x| x.sub(x.adjoint()?)).transpose()?;
            if let (Some(j), true) = (ju, dtype == DType::C64) {
                // i·Im(Xᵢᵢ)/Sᵢ on the diagonal: (J)ᵢᵢ = 2i Im Xᵢᵢ, so J_diag/(2S)
                let d = j.diag()?.div(like(s.scale(2.0)?, dtype)?)?;
                acc(d.diag_embed(k, k)?, &mut core)?;
            }
            let (sum, diff) = match (ju, jv) {
                (Some(a), Some(b)) => (a.add(b)?, a.sub(b)?),
                (Some(a), None) => (a, a),
                (None, Some(b)) => (b, b.neg()?),
                (None, None) => unreachable!("a vector cotangent is present"),
            };
            acc(fm.mul(sum)?.scale(0.5)?, &mut core)?;
            acc(fp.mul(diff)?.scale(0.5)?, &mut core)?;
            (xu_done, xv_done) = (xu, xv);
        }
        let sinv_row = |rows: usize| -> EResult<Var<'t>> {
            like(s.powf(-1.0)?.transpose()?.broadcast_to(rows, k)?, dtype)
        };
        // The off-range terms, folded into the core so that the whole adjoint costs two
        // GEMMs after Uᴴ Ū and Vᴴ V̄ (as PyTorch's svd_backward):
        //   m > k: (I − UUᴴ) Ū S⁻¹ Vᴴ = (Ū S⁻¹ − U (Xᵤ S⁻¹)) Vᴴ,
        //   n > k: U S⁻¹ V̄ᴴ (I − VVᴴ) = U (S⁻¹ V̄ᴴ − (Xᵥ S⁻¹)ᴴ Vᴴ).
        // A thin SVD has k = min(m, n), so at most one of them is present.
        let mut left = None; // Ū S⁻¹ (m > k)
        let mut right = None; // V̄ S⁻¹ (n > k)
        if let (Some(ub), true) = (ub, m > k) {
            let xu = match xu_done {
                Some(x) => x,
                None => u.matmul_forms(Form::Adjoint, ub, Form::Plain)?,
            };
            acc(xu.mul(sinv_row(k)?)?.neg()?, &mut core)?;
            left = Some(ub.mul(sinv_row(m)?)?);
        }
        if let (Some(vb), true) = (vb, n > k) {
            let xv = match xv_done {
                Some(x) => x,
                None => v.matmul_forms(Form::Adjoint, vb, Form::Plain)?,
            };
            acc(xv.mul(sinv_row(k)?)?.adjoint()?.neg()?, &mut core)?;
            right = Some(vb.mul(sinv_row(n)?)?);
        }
        let ga = match (core, left, right) {
            (None, _, _) => None,
            (Some(c), Some(l), _) => Some(u.matmul(c)?.add(l)?.matmul_forms(
                Form::Plain,
                v,
                Form::Adjoint,
            )?),
            (Some(c), None, Some(r)) => Some(
                u.matmul(
                    c.matmul_forms(Form::Plain, v, Form::Adjoint)?
                        .add(r.adjoint()?)?,
                )?,
            ),
            (Some(c), None, None) => {
                Some(u.matmul(c)?.matmul_forms(Form::Plain, v, Form::Adjoint)?)
            }
        };
        Ok(vec![ga])
    }

    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(da) = t[0] else {
            return Ok(vec![None, None, None]);
        };
        let (u, s, v) = (ctx.output(0), ctx.output(1), ctx.output(2));
        let (m, n) = self.shape;
        let k = self.s.len();
        let dtype = u.dtype();
        let p = u.matmul_forms(Form::Adjoint, da, Form::Plain)?.matmul(v)?;
        let mut ds = p.diag()?.real()?;
        let ties = tied_pairs(&self.s, self.tol());
        let op = self.op();
        let rtol = self.opts.invariance_rtol;
        if !ties.is_empty() {
            // as for eigh: the block average, valid for consumers symmetric in the tied
            // values, which the sweep checks along e_i − e_j
            ds = block_average(u.tape(), k, &ties, false)?.matmul(ds)?;
            let (sv, tol, pairs) = (self.s.clone(), self.tol(), ties.clone());
            ctx.require_invariance(Invariance {
                directions: split_directions(k, &ties, false)
                    .into_iter()
                    .map(|d| vec![None, Some(d), None])
                    .collect(),
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |q, _| {
                    let (i, j) = pairs[q];
                    SpectralError::Degenerate {
                        op,
                        i,
                        j,
                        gap: (sv[i] - sv[j]).abs(),
                        tol,
                        what: "the sorted singular values",
                        hint: "the consumer must weigh tied singular values equally (a symmetric function of them, e.g. a sum or a norm)",
                    }
                }),
            });
        }
        // The vectors' tangent is computed for the values-only form too: nothing the user
        // holds reads it, but the recorded gradient does, so forward-over-reverse needs it.
        let (uv, vv) = (u.value(), v.value());
        // Vectors that do not exist here: refuse any use of them, as the VJP refuses any
        // cotangent on them.
        let undefined = self.check_rank().err().or_else(|| {
            (self.opts.policy == DegeneracyPolicy::Error)
                .then(|| self.pairs_for_vectors().err())
                .flatten()
        });
        if let Some(err) = undefined {
            ctx.require_invariance(Invariance {
                directions: vec![vec![Some(uv), None, Some(vv)]],
                mode: InvarianceMode::Structural,
                error: Box::new(move |_, _| err.clone()),
            });
            return Ok(vec![None, Some(ds), None]);
        }
        let pairs = if self.opts.policy == DegeneracyPolicy::WellDefinedPart {
            ties.clone()
        } else {
            Vec::new()
        };
        if !pairs.is_empty() {
            let complex = dtype == DType::C64;
            let named = pairs.clone();
            let joint: Vec<Vec<Option<Value>>> = rotation_directions(&uv, &pairs)
                .into_iter()
                .zip(rotation_directions(&vv, &pairs))
                .map(|(du, dv)| vec![Some(du), None, Some(dv)])
                .collect();
            ctx.require_invariance(Invariance {
                directions: joint,
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |q, size| {
                    let (i, j) = pair_of(q, &named, complex);
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
        let phases: Vec<Vec<Option<Value>>> = phase_directions(&uv)
            .into_iter()
            .zip(phase_directions(&vv))
            .map(|(du, dv)| vec![Some(du), None, Some(dv)])
            .collect();
        if !phases.is_empty() {
            ctx.require_invariance(Invariance {
                directions: phases,
                mode: InvarianceMode::Numeric { rtol },
                error: Box::new(move |i, size| SpectralError::PhaseDependent {
                    op,
                    i,
                    size,
                    tol: rtol,
                }),
            });
        }
        if let Err(err) = self.check_zero_pair(&pairs) {
            ctx.require_invariance(Invariance {
                directions: vec![vec![Some(uv), None, Some(vv)]],
                mode: InvarianceMode::Structural,
                error: Box::new(move |_, _| err.clone()),
            });
            return Ok(vec![None, Some(ds), None]);
        }
        let (fm, fp) = self.gap_factors(s, &pairs)?;
        let (fm, fp) = (like(fm, dtype)?, like(fp, dtype)?);
        let ph = p.adjoint()?;
        // Ω_U = F⁻ ∘ (P + Pᴴ)/2 + F⁺ ∘ (P − Pᴴ)/2, Ω_V = F⁻ ∘ (P + Pᴴ)/2 − F⁺ ∘ (P − Pᴴ)/2
        let herm = fm.mul(p.add(ph)?)?.scale(0.5)?;
        let skew = fp.mul(p.sub(ph)?)?.scale(0.5)?;
        let mut omega_u = herm.add(skew)?;
        let omega_v = herm.sub(skew)?;
        if dtype == DType::C64 {
            // i Im(Pᵢᵢ)/Sᵢ = (P − Pᴴ)ᵢᵢ / (2 Sᵢ)
            let d = p.sub(ph)?.diag()?.div(like(s.scale(2.0)?, dtype)?)?;
            omega_u = omega_u.add(d.diag_embed(k, k)?)?;
        }
        let mut du = u.matmul(omega_u)?;
        let mut dv = v.matmul(omega_v)?;
        let sinv = |rows: usize| -> EResult<Var<'t>> {
            like(s.powf(-1.0)?.transpose()?.broadcast_to(rows, k)?, dtype)
        };
        if m > k {
            let w = da.matmul(v)?.mul(sinv(m)?)?;
            du = du.add(w.sub(u.matmul(u.matmul_forms(Form::Adjoint, w, Form::Plain)?)?)?)?;
        }
        if n > k {
            let w = da
                .matmul_forms(Form::Adjoint, u, Form::Plain)?
                .mul(sinv(n)?)?;
            dv = dv.add(w.sub(v.matmul(v.matmul_forms(Form::Adjoint, w, Form::Plain)?)?)?)?;
        }
        Ok(vec![Some(du), Some(ds), Some(dv)])
    }
}

/// The order below which faer's SVD solves the bidiagonal problem by the QR algorithm
/// instead of divide and conquer (faer's default: 128). Measured in docs/PERFORMANCE.md
/// ("Fifth round"), real, 1 thread, random and log-spaced spectra: with 32 the forward is
/// 3–13 % faster from 64×64 to 512×256, and the singular vectors are more orthogonal. From
/// a smaller side of 384 up, where faer runs in parallel, the difference was within the
/// machine's noise.
pub const SVD_RECURSION_THRESHOLD: usize = 32;

/// faer's thin SVD with the parallelism chosen by size
/// ([`matgrad_engine::par::decomposition_par`] of the smaller side) and divide and conquer
/// from [`SVD_RECURSION_THRESHOLD`] up.
fn thin<T: Scalar>(a: &faer::Mat<T>) -> Result<(faer::Mat<T>, Vec<f64>, faer::Mat<T>)> {
    use faer::linalg::svd::{svd as faer_svd, svd_scratch, ComputeSvdVectors};
    let (m, n) = a.shape();
    let k = m.min(n);
    let par = matgrad_engine::par::decomposition_par(k);
    let mut u = faer::Mat::<T>::zeros(m, k);
    let mut v = faer::Mat::<T>::zeros(n, k);
    let mut s = faer::diag::Diag::<T>::zeros(k);
    let thin = ComputeSvdVectors::Thin;
    let mut params = <faer::linalg::svd::SvdParams as faer::Auto<T>>::auto();
    params.recursion_threshold = SVD_RECURSION_THRESHOLD;
    let scratch = svd_scratch::<T>(m, n, thin, thin, par, params.into());
    matgrad_engine::pool::with_scratch(scratch, |stack| {
        faer_svd(
            a.as_ref(),
            s.as_mut(),
            Some(u.as_mut()),
            Some(v.as_mut()),
            par,
            stack,
            params.into(),
        )
    })
    .map_err(|e| SpectralError::NoConvergence {
        op: OP,
        detail: format!("{e:?}"),
    })?;
    let sv: Vec<f64> = (0..k).map(|i| s.column_vector()[i].re()).collect();
    Ok((u, sv, v))
}

/// Thin SVD `A = U diag(S) Vᴴ` (S descending, k×1 real) with default options.
///
/// # Errors
/// Solver failure. Degeneracy and rank errors come from the backward pass, where they apply.
pub fn svd(a: Var<'_>) -> Result<(Var<'_>, Var<'_>, Var<'_>)> {
    svd_with(a, EighOptions::default())
}

/// [`svd`] with an explicit degeneracy policy and tolerances.
///
/// # Errors
/// As [`svd`]; invalid options.
pub fn svd_with(a: Var<'_>, opts: EighOptions) -> Result<(Var<'_>, Var<'_>, Var<'_>)> {
    svd_impl(a, opts, false)
}

fn svd_impl(
    a: Var<'_>,
    opts: EighOptions,
    values_only: bool,
) -> Result<(Var<'_>, Var<'_>, Var<'_>)> {
    opts.validate(OP)?;
    let (outs, s, shape) = a.with_value(|v| -> Result<_> {
        let shape = v.shape();
        Ok(match v {
            Value::Real(x) => {
                let (u, s, w) = thin(x)?;
                (
                    vec![
                        Value::Real(u),
                        Value::Real(faer::Mat::from_fn(s.len(), 1, |i, _| s[i])),
                        Value::Real(w),
                    ],
                    s,
                    shape,
                )
            }
            Value::Complex(x) => {
                let (u, s, w) = thin(x)?;
                (
                    vec![
                        Value::Complex(u),
                        Value::Real(faer::Mat::from_fn(s.len(), 1, |i, _| s[i])),
                        Value::Complex(w),
                    ],
                    s,
                    shape,
                )
            }
        })
    })?;
    let r = a.tape().record(
        Rc::new(Svd {
            opts,
            s,
            shape,
            values_only,
        }),
        &[a],
        outs,
    )?;
    Ok((r[0], r[1], r[2]))
}

/// Full SVD: `U` m×m and `V` n×n (the thin factors completed by
/// [`crate::orthogonal_complement`]), S as in [`svd`]. The extra columns are defined only
/// up to a rotation, so a loss may depend on them only through a basis-invariant quantity
/// (a projector such as `U₂U₂ᴴ`); other cotangents on them are a
/// [`SpectralError::BasisDependent`] error in the backward pass.
///
/// # Errors
/// As [`svd`].
pub fn svd_full(a: Var<'_>) -> Result<(Var<'_>, Var<'_>, Var<'_>)> {
    let (u1, s, v1) = svd(a)?;
    Ok((complete(u1)?, s, complete(v1)?))
}

/// `[X, complement(X)]` when X has fewer columns than rows.
fn complete(x: Var<'_>) -> Result<Var<'_>> {
    let (r, c) = x.shape();
    if c < r {
        Ok(Var::hcat(&[
            x,
            crate::complement::orthogonal_complement(x)?,
        ])?)
    } else {
        Ok(x)
    }
}

/// Singular values (descending, min(m,n)×1). The gradient `U diag(S̄) Vᴴ` is exact at
/// repeated singular values when the loss weighs them equally.
///
/// # Errors
/// As [`svd`].
pub fn svdvals(a: Var<'_>) -> Result<Var<'_>> {
    // The vectors are internal (only the recorded gradient U diag(S̄) Vᴴ reads them), and
    // that gradient is invariant to the joint turn of a tied block exactly when S̄ weighs
    // the tied values equally — the condition for the values' derivative to exist. So the
    // vectors' tangent is the well-defined part: forward-over-reverse (second order) then
    // works at repeated singular values, and the values' own tie check still refuses a
    // consumer that separates tied values.
    let opts = EighOptions {
        policy: DegeneracyPolicy::WellDefinedPart,
        ..EighOptions::default()
    };
    Ok(svd_impl(a, opts, true)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::check::{check, CheckOptions, Order};
    use matgrad_engine::testing::{
        assert_rules, complex_matrix, rank_deficient_from_seed, real_matrix,
    };
    use matgrad_engine::{Axis, EngineError, Tape};

    /// A loss invariant to the joint sign/phase of (uᵢ, vᵢ): Σ Ḡ ∘ (U diag(w) Vᴴ) for a
    /// fixed weight w (so it depends on U and V separately, not only through A).
    fn reconstruct_weighted<'t>(t: &'t Tape, x: Var<'t>, w: &[f64]) -> EResult<Var<'t>> {
        let (u, s, v) = svd(x)?;
        let k = s.shape().0;
        let wv = t.constant(Value::Real(faer::Mat::from_fn(k, 1, |i, _| w[i])))?;
        let d = like(s.mul(s)?.add(wv)?, u.dtype())?.diag_embed(k, k)?;
        u.matmul(d)?.matmul_forms(Form::Plain, v, Form::Adjoint)
    }

    /// The value-only backward (used when not recording) and the recorded rule agree:
    /// tall, wide and square, real and complex, every subset of cotangents, the
    /// well-defined part at a tie and the broadened policy. A sign, a conjugate or an
    /// off-range term changed in one of the two paths fails here.
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
        let tie = Value::Real(matgrad_engine::testing::orthogonal_from_seed(3, 2));
        let cases = [
            (real_matrix(5, 3, 1), EighOptions::default()),
            (real_matrix(3, 5, 2), EighOptions::default()),
            (real_matrix(4, 4, 3), EighOptions::default()),
            (complex_matrix(5, 3, 4), EighOptions::default()),
            (complex_matrix(3, 5, 5), EighOptions::default()),
            (complex_matrix(3, 3, 6), EighOptions::default()),
            (real_matrix(4, 3, 7), br),
            (tie, wd),
            // past one 32-column tile of the fused core: both off-range paths, complex,
            // Broaden, and a block of 40 tied values spanning two tiles
            (real_matrix(80, 40, 41), EighOptions::default()),
            (real_matrix(45, 70, 42), EighOptions::default()),
            (complex_matrix(70, 36, 43), EighOptions::default()),
            (real_matrix(66, 66, 44), br),
            (
                Value::Real(matgrad_engine::testing::orthogonal_from_seed(40, 5)),
                wd,
            ),
        ];
        for (c, (a, opts)) in cases.into_iter().enumerate() {
            // the all-tied orthogonal inputs
            let tied = c == 7 || c == 12;
            let t = Tape::new();
            let x = t.leaf(a.clone()).unwrap();
            let (u, s, v) = svd_with(x, opts).unwrap();
            let ((m, k), n) = (u.shape(), v.shape().0);
            // Ū = U A + W_U (I − UUᴴ part), V̄ = V B + W_V (off-range part): A real with
            // B = Aᵀ keeps the tied case invariant to the joint turn of (U, V); for complex
            // inputs diag(B) carries −i Im diag(UᴴW_U) so that the phase condition holds.
            let am = real_matrix(k, k, 10 + c as u64);
            let (wu, wv) = if tied {
                (None, None)
            } else {
                (
                    Some(off_range(&t, u, m, 20, a.dtype())),
                    Some(off_range(&t, v, n, 21, a.dtype())),
                )
            };
            let amat = t.constant(like_dtype(am.clone(), a.dtype())).unwrap();
            let mut ub = u.matmul(amat).unwrap();
            if let Some(w) = wu {
                // a part inside range(U) too, so that Xᵤ is not real
                let inner = t
                    .constant(like_dtype(real_matrix(m, k, 22), a.dtype()))
                    .unwrap();
                let inner = match a.dtype() {
                    DType::F64 => inner,
                    DType::C64 => inner
                        .scale_complex(matgrad_engine::C64::new(0.3, 0.8))
                        .unwrap(),
                };
                ub = ub.add(w).unwrap().add(inner).unwrap();
            }
            let xu = u
                .matmul_forms(Form::Adjoint, ub, Form::Plain)
                .unwrap()
                .value();
            let bmat = match xu {
                Value::Real(_) => like_dtype(
                    Value::Real(faer::Mat::from_fn(k, k, |i, j| {
                        am.as_real().unwrap()[(j, i)]
                    })),
                    DType::F64,
                ),
                Value::Complex(ref xc) => Value::Complex(faer::Mat::from_fn(k, k, |i, j| {
                    let r = matgrad_engine::C64::new(am.as_real().unwrap()[(j, i)], 0.0);
                    if i == j {
                        r - matgrad_engine::C64::new(0.0, xc[(i, i)].im)
                    } else {
                        r
                    }
                })),
            };
            let mut vb = v.matmul(t.constant(bmat).unwrap()).unwrap();
            if let Some(w) = wv {
                vb = vb.add(w).unwrap();
            }
            let sb = real_matrix(k, 1, 30);
            let sb = if tied {
                Value::Real(faer::Mat::from_fn(k, 1, |_, _| 0.4)) // tied values weighed equally
            } else {
                sb
            };
            let (ubv, vbv) = (ub.value(), vb.value());
            let subsets: &[&[usize]] = if tied || a.dtype() == DType::C64 {
                &[&[0, 1, 2], &[1]]
            } else {
                &[&[0, 1, 2], &[0], &[1], &[2], &[0, 2]]
            };
            for which in subsets {
                let outs: Vec<Var<'_>> = which.iter().map(|&i| [u, s, v][i]).collect();
                let cots: Vec<Value> = which
                    .iter()
                    .map(|&i| [ubv.clone(), sb.clone(), vbv.clone()][i].clone())
                    .collect();
                let fused = t.vjp(&outs, &cots, &[x]).unwrap().remove(0);
                let cvars: Vec<Var<'_>> =
                    cots.into_iter().map(|c| t.constant(c).unwrap()).collect();
                let recorded = t.vjp_graph(&outs, &cvars, &[x]).unwrap()[0].value();
                assert!(
                    fused.rel_diff(&recorded).unwrap() < 1e-13,
                    "case {c}, cotangents on {which:?}: {}",
                    fused.rel_diff(&recorded).unwrap()
                );
            }
        }
    }

    /// `(I − QQᴴ) W` for a seeded W: a cotangent part outside range(Q).
    fn off_range<'t>(t: &'t Tape, q: Var<'t>, rows: usize, seed: u64, d: DType) -> Var<'t> {
        let k = q.shape().1;
        let w = t
            .constant(like_dtype(real_matrix(rows, k, seed), d))
            .unwrap();
        let inside = q.matmul(q.matmul_forms(Form::Adjoint, w, Form::Plain).unwrap());
        w.sub(inside.unwrap()).unwrap()
    }

    fn like_dtype(v: Value, d: DType) -> Value {
        match d {
            DType::F64 => v,
            DType::C64 => Value::Complex(v.to_complex()),
        }
    }

    #[test]
    fn forward_reconstructs() {
        let t = Tape::new();
        for (m, n) in [(1, 1), (3, 3), (5, 2), (2, 5), (8, 8), (31, 7)] {
            for a in [real_matrix(m, n, 1), complex_matrix(m, n, 2)] {
                let x = t.constant(a.clone()).unwrap();
                let (u, s, v) = svd(x).unwrap();
                let k = m.min(n);
                let r = u
                    .matmul(like(s, u.dtype()).unwrap().diag_embed(k, k).unwrap())
                    .unwrap()
                    .matmul_forms(Form::Plain, v, Form::Adjoint)
                    .unwrap();
                assert!(
                    r.value().rel_diff(&a).unwrap() < 1e-13 * (m.max(n) as f64),
                    "{m}×{n}"
                );
                let sv = s.value();
                let sv = sv.as_real().unwrap();
                for i in 1..k {
                    assert!(sv[(i, 0)] <= sv[(i - 1, 0)]);
                }
            }
        }
    }

    /// From a smaller side of [`SVD_RECURSION_THRESHOLD`] up faer solves the bidiagonal
    /// problem by divide and conquer. At 64×48 and 40×96, real and complex, with an exactly
    /// tied block of 10 singular values, a cluster of width 1e-10 and a zero: the singular
    /// values are the constructed ones, and U, V are orthonormal and reconstruct A.
    #[test]
    fn divide_and_conquer_path_with_ties_and_clusters() {
        // a backward-stable SVD errs by c·max(m, n)·ε·‖A‖; ≤ 96·ε ≈ 2.1e-14, and 1e-13
        // allows c ≈ 4.7 (faer's observed errors: 2e-15 – 6e-15)
        const DC_TOL: f64 = 1e-13;
        const { assert!(SVD_RECURSION_THRESHOLD <= 40) };
        for (m, n) in [(64usize, 48usize), (40, 96)] {
            let k = m.min(n);
            let mut want: Vec<f64> = (0..k).map(|i| 3.0 - 0.05 * i as f64).collect();
            want[4..14].fill(2.0); // an exact tie of 10
            for (j, w) in want[20..25].iter_mut().enumerate() {
                *w = 1.5 + 1e-10 * j as f64; // a cluster
            }
            want[k - 1] = 0.0;
            want.sort_by(|a, b| b.total_cmp(a));
            for dtype in [DType::F64, DType::C64] {
                // A = Q₁[:, :k] diag(σ) Q₂[:, :k]ᴴ with Haar-random orthogonal/unitary Q₁, Q₂
                let (q1, q2) = match dtype {
                    DType::F64 => (
                        Value::Real(matgrad_engine::testing::orthogonal_from_seed(m, 7)),
                        Value::Real(matgrad_engine::testing::orthogonal_from_seed(n, 8)),
                    ),
                    DType::C64 => (
                        Value::Complex(matgrad_engine::testing::unitary_from_seed(m, 7)),
                        Value::Complex(matgrad_engine::testing::unitary_from_seed(n, 8)),
                    ),
                };
                let t = Tape::new();
                let sig = t
                    .constant(Value::Real(faer::Mat::from_fn(k, 1, |i, _| want[i])))
                    .unwrap();
                let sig = like(sig, dtype).unwrap().diag_embed(k, k).unwrap();
                let q1 = t.constant(q1).unwrap().slice(0..m, 0..k).unwrap();
                let q2 = t.constant(q2).unwrap().slice(0..n, 0..k).unwrap();
                let a = q1
                    .matmul(sig)
                    .unwrap()
                    .matmul_forms(Form::Plain, q2, Form::Adjoint)
                    .unwrap();
                let (u, s, v) = svd(a).unwrap();
                let got = s.value();
                let got = got.as_real().unwrap();
                for (i, w) in want.iter().enumerate() {
                    assert!(
                        (got[(i, 0)] - w).abs() <= DC_TOL * want[0],
                        "{m}×{n} {dtype}: σ{i} = {} instead of {w}",
                        got[(i, 0)]
                    );
                }
                let r = u
                    .matmul(like(s, dtype).unwrap().diag_embed(k, k).unwrap())
                    .unwrap()
                    .matmul_forms(Form::Plain, v, Form::Adjoint)
                    .unwrap();
                assert!(r.value().rel_diff(&a.value()).unwrap() < DC_TOL, "{m}×{n}");
                for w in [u, v] {
                    // rel_diff against I is max|WᴴW − I| (I's largest entry is 1)
                    let g = w
                        .matmul_forms(Form::Adjoint, w, Form::Plain)
                        .unwrap()
                        .value();
                    let off = g.rel_diff(&Value::identity(dtype, k)).unwrap();
                    assert!(off < DC_TOL, "{m}×{n} {dtype}: ‖WᴴW − I‖ = {off:e}");
                }
            }
        }
    }

    #[test]
    fn rules_real_and_complex_all_shapes() {
        for (m, n) in [(1, 1), (3, 3), (4, 2), (2, 4)] {
            let w: Vec<f64> = (0..4).map(|i| 0.3 * i as f64 + 0.1).collect();
            for a in [real_matrix(m, n, 3), complex_matrix(m, n, 4)] {
                let w2 = w.clone();
                assert_rules(
                    "svd weighted reconstruction",
                    move |t, x| reconstruct_weighted(t, x[0], &w2),
                    std::slice::from_ref(&a),
                );
                assert_rules("svdvals", |_, x| svdvals(x[0]), std::slice::from_ref(&a));
            }
        }
    }

    #[test]
    fn singular_values_exact_at_ties_for_symmetric_losses() {
        // orthogonal matrix: all singular values equal to 1
        let q = Value::Real(matgrad_engine::testing::orthogonal_from_seed(3, 5));
        let opts = CheckOptions {
            order: Order::First,
            ..CheckOptions::default()
        };
        let r = check(|_, x| svdvals(x[0])?.powf(3.0)?.sum(Axis::All), &[q], &opts).unwrap();
        assert!(r.passed, "{r}");
    }

    #[test]
    fn full_svd_forward_and_invariant_losses() {
        let t = Tape::new();
        for a in [real_matrix(5, 2, 1), complex_matrix(2, 4, 2)] {
            let (m, n) = a.shape();
            let x = t.constant(a.clone()).unwrap();
            let (u, s, v) = svd_full(x).unwrap();
            assert_eq!((u.shape(), v.shape()), ((m, m), (n, n)));
            let uu = u
                .matmul_forms(Form::Adjoint, u, Form::Plain)
                .unwrap()
                .value();
            assert!(uu.rel_diff(&Value::identity(uu.dtype(), m)).unwrap() < 1e-14);
            let k = m.min(n);
            let r = u
                .slice(0..m, 0..k)
                .unwrap()
                .matmul(like(s, u.dtype()).unwrap().diag_embed(k, k).unwrap())
                .unwrap();
            let r = r
                .matmul_forms(Form::Plain, v.slice(0..n, 0..k).unwrap(), Form::Adjoint)
                .unwrap();
            assert!(r.value().rel_diff(&a).unwrap() < 1e-13);
            // a loss through the projector onto the extra columns: ⟨B, U₂U₂ᴴ⟩ + Σ S
            let b = if a.dtype() == DType::F64 {
                real_matrix(m, m, 3)
            } else {
                complex_matrix(m, m, 3)
            };
            if m > k {
                assert_rules(
                    "svd_full complement projector",
                    move |t, x| {
                        let (u, s, _) = svd_full(x[0])?;
                        let u2 = u.slice(0..m, k..m)?;
                        let p = u2.matmul_forms(Form::Plain, u2, Form::Adjoint)?;
                        p.dot_real(t.constant(b.clone())?)?.add(s.sum(Axis::All)?)
                    },
                    std::slice::from_ref(&a),
                );
            }
        }
        // a loss that reads one extra column is basis-dependent
        let x = t.leaf(real_matrix(4, 2, 5)).unwrap();
        let (u, _, _) = svd_full(x).unwrap();
        let y = u
            .slice(0..4, 3..4)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[x]) {
            Err(EngineError::BasisDependent { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    /// Second order of the singular values at a tie: σ₁ below a tie is exact (checked by
    /// the sweep); a symmetric function of the tied values has no second-order rule here
    /// (it needs g'' inside the block) and is refused, never answered wrongly.
    #[test]
    fn svdvals_second_order_at_a_tie_is_exact_or_refused() {
        let q = matgrad_engine::testing::orthogonal_from_seed(3, 4);
        let a = Value::Real(faer::Mat::from_fn(3, 3, |i, j| {
            (0..3)
                .map(|c| q[(i, c)] * [3.0, 1.0, 1.0][c] * q[(j, c)])
                .sum()
        }));
        let dir = real_matrix(3, 3, 5);
        let top = matgrad_engine::hvp(
            |_, x| svdvals(x[0])?.slice(0..1, 0..1),
            std::slice::from_ref(&a),
            std::slice::from_ref(&dir),
        );
        assert!(top.is_ok(), "{top:?}");
        let sym = matgrad_engine::hvp(
            |_, x| svdvals(x[0])?.powf(3.0)?.sum(Axis::All),
            std::slice::from_ref(&a),
            std::slice::from_ref(&dir),
        );
        assert!(
            matches!(sym, Err(EngineError::Degenerate { .. })),
            "{sym:?}"
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        // rank-deficient rectangular: vectors undefined
        let a = t.leaf(rank_deficient_from_seed(4, 3, 2, 1)).unwrap();
        let (u, _, _) = svd(a).unwrap();
        let y = u.abs().unwrap().sum(Axis::All).unwrap();
        assert!(t.grad(y, &[a]).is_err());
        // tie with a basis-dependent loss
        let q = t
            .leaf(Value::Real(matgrad_engine::testing::orthogonal_from_seed(
                3, 2,
            )))
            .unwrap();
        let (u, _, _) = svd(q).unwrap();
        let y = u
            .slice(0..3, 0..1)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[q]) {
            Err(EngineError::Degenerate { op: "svd", .. }) => {}
            other => panic!("{other:?}"),
        }
        // complex phase-dependent loss
        let c = t.leaf(complex_matrix(3, 3, 9)).unwrap();
        let (u, _, _) = svd(c).unwrap();
        let y = u
            .slice(1..2, 0..1)
            .unwrap()
            .real()
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        match t.grad(y, &[c]) {
            Err(EngineError::PhaseDependent { op: "svd", .. }) => {}
            other => panic!("{other:?}"),
        }
        let bad = EighOptions {
            gap_rtol: f64::NAN,
            ..EighOptions::default()
        };
        assert!(matches!(
            svd_with(c, bad),
            Err(SpectralError::InvalidArgument { .. })
        ));
    }
}
