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

/// `X·K` for the gauge generators `K` of a set of columns: for each pair `(i, j)` the real
/// rotation `E_ij − E_ji` (column j gets `x_i`, column i gets `−x_j`) and, for a complex X,
/// the Hermitian-skew `i(E_ij + E_ji)`. These are the directions in which a basis of a
/// degenerate eigen- or singular subspace can turn.
pub(crate) fn rotation_directions(x: &Value, pairs: &[(usize, usize)]) -> Vec<Value> {
    let mut out = Vec::new();
    for &(i, j) in pairs {
        match x {
            Value::Real(m) => out.push(Value::Real(faer::Mat::from_fn(
                m.nrows(),
                m.ncols(),
                |r, c| {
                    if c == j {
                        m[(r, i)]
                    } else if c == i {
                        -m[(r, j)]
                    } else {
                        0.0
                    }
                },
            ))),
            Value::Complex(m) => {
                let zero = matgrad_engine::C64::new(0.0, 0.0);
                let iu = matgrad_engine::C64::new(0.0, 1.0);
                out.push(Value::Complex(faer::Mat::from_fn(
                    m.nrows(),
                    m.ncols(),
                    |r, c| {
                        if c == j {
                            m[(r, i)]
                        } else if c == i {
                            -m[(r, j)]
                        } else {
                            zero
                        }
                    },
                )));
                out.push(Value::Complex(faer::Mat::from_fn(
                    m.nrows(),
                    m.ncols(),
                    |r, c| {
                        if c == j {
                            iu * m[(r, i)]
                        } else if c == i {
                            iu * m[(r, j)]
                        } else {
                            zero
                        }
                    },
                )));
            }
        }
    }
    out
}

/// `X·(i E_kk)` for each column k of a complex X: the phase of column k (empty for real X).
pub(crate) fn phase_directions(x: &Value) -> Vec<Value> {
    match x {
        Value::Real(_) => Vec::new(),
        Value::Complex(m) => (0..m.ncols())
            .map(|k| {
                let iu = matgrad_engine::C64::new(0.0, 1.0);
                Value::Complex(faer::Mat::from_fn(m.nrows(), m.ncols(), |r, c| {
                    if c == k {
                        iu * m[(r, k)]
                    } else {
                        matgrad_engine::C64::new(0.0, 0.0)
                    }
                }))
            })
            .collect(),
    }
}

/// `e_i − e_j` (n×1) for each pair: the directions in which tied sorted values separate.
/// `complex` gives complex columns and adds `i(e_i − e_j)` (for eig's complex eigenvalues).
pub(crate) fn split_directions(n: usize, pairs: &[(usize, usize)], complex: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for &(i, j) in pairs {
        let v = Value::Real(faer::Mat::from_fn(n, 1, |r, _| {
            if r == i {
                1.0
            } else if r == j {
                -1.0
            } else {
                0.0
            }
        }));
        if complex {
            let c = v.to_complex();
            let iu = matgrad_engine::C64::new(0.0, 1.0);
            out.push(Value::Complex(c.clone()));
            out.push(Value::Complex(faer::Mat::from_fn(n, 1, |r, _| {
                iu * c[(r, 0)]
            })));
        } else {
            out.push(v);
        }
    }
    out
}

/// The pair named by direction `k` of [`rotation_directions`] (two directions per pair for
/// complex values).
pub(crate) fn pair_of(k: usize, pairs: &[(usize, usize)], complex: bool) -> (usize, usize) {
    let idx = if complex { k / 2 } else { k };
    pairs.get(idx).copied().unwrap_or((0, 0))
}
