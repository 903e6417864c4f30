//! Shared by the ops that expose eigen- or singular vectors: finding tied values, and the
//! masked or broadened reciprocal gap matrix `1/(xⱼ − xᵢ)` that their rules need.

use matgrad_engine::{DType, Result as EResult, Value, Var};

use crate::eigh::DegeneracyPolicy;

/// Pairs `(i, j)`, `i < j`, in the same block of (sorted) values, where consecutive values
/// closer than `tol` are chained into one block.
pub(crate) fn tied_pairs(values: &[f64], tol: f64) -> Vec<(usize, usize)> {
    let n = values.len();
    let mut block = vec![0usize; n];
    for i in 1..n {
        block[i] = if (values[i] - values[i - 1]).abs() <= tol {
            block[i - 1]
        } else {
            i
        };
    }
    let mut pairs = Vec::new();
    for j in 0..n {
        for i in 0..j {
            if block[i] == block[j] {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Entrywise `1/d` with the diagonal and the `masked` pairs set to 0, or, under
/// [`DegeneracyPolicy::Broaden`], `d/(d² + ε)` everywhere. `d` is an n×n real Var of gaps
/// (antisymmetric, zero diagonal), so the result stays differentiable in the values.
pub(crate) fn inverse_gaps<'t>(
    d: Var<'t>,
    masked: &[(usize, usize)],
    policy: DegeneracyPolicy,
) -> EResult<Var<'t>> {
    let n = d.shape().0;
    if let DegeneracyPolicy::Broaden(eps) = policy {
        return d.div(d.mul(d)?.add_scalar(eps)?);
    }
    let mut mask = faer::Mat::<f64>::identity(n, n);
    for &(i, j) in masked {
        mask[(i, j)] = 1.0;
        mask[(j, i)] = 1.0;
    }
    let keep = faer::Mat::from_fn(n, n, |i, j| 1.0 - mask[(i, j)]);
    let tape = d.tape();
    d.add(tape.constant(Value::Real(mask))?)?
        .powf(-1.0)?
        .mul(tape.constant(Value::Real(keep))?)
}

/// The n×n matrix averaging over each block of tied values: applied to a tangent of sorted
/// values it keeps the part every symmetric function of the tied values sees (sorted
/// values are only directionally differentiable at a tie). `complex` gives it complex
/// dtype (for eig).
pub(crate) fn block_average<'t>(
    tape: &'t matgrad_engine::Tape,
    n: usize,
    pairs: &[(usize, usize)],
    complex: bool,
) -> EResult<Var<'t>> {
    let mut same = faer::Mat::<f64>::identity(n, n);
    for &(i, j) in pairs {
        same[(i, j)] = 1.0;
        same[(j, i)] = 1.0;
    }
    let avg = faer::Mat::from_fn(n, n, |i, j| {
        same[(i, j)] / (0..n).map(|c| same[(i, c)]).sum::<f64>()
    });
    let v = Value::Real(avg);
    tape.constant(if complex {
        Value::Complex(v.to_complex())
    } else {
        v
    })
}

/// `x` converted to complex when `dtype` is complex (real scalars such as λ or S meeting
/// complex eigen/singular vectors).
pub(crate) fn like<'t>(x: Var<'t>, dtype: DType) -> EResult<Var<'t>> {
    if dtype == DType::C64 {
        x.to_complex()
    } else {
        Ok(x)
    }
}
