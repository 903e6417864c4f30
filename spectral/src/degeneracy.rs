//! Shared by the ops that expose eigen- or singular vectors: finding tied values, and the
//! masked or broadened reciprocal gap matrix `1/(xⱼ − xᵢ)` that their rules need.

use matgrad_engine::{DType, Result as EResult, Value, Var};

use crate::eigh::DegeneracyPolicy;

/// Pairs `(i, j)`, `i < j`, in the same block of (sorted) values, where consecutive values
/// closer than `tol` are chained into one block.
pub(crate) fn tied_pairs(values: &[f64], tol: f64) -> Vec<(usize, usize)> {
    // one pass over the blocks: O(n + pairs), not O(n²) (the common case has no tie, and
    // a backward at n = 256 spent 2 % of its time in the quadratic scan)
    let n = values.len();
    let mut pairs = Vec::new();
    let mut start = 0;
    for end in 1..=n {
        if end < n && (values[end] - values[end - 1]).abs() <= tol {
            continue;
        }
        // values[start..end] is one block; its pairs in the order (j ascending, then i)
        for j in start..end {
            for i in start..j {
                pairs.push((i, j));
            }
        }
        start = end;
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

#[cfg(test)]
mod tests {
    use super::tied_pairs;

    /// The definition, checked pair by pair: `i < j` are tied when every consecutive gap
    /// from `i` to `j` is at most `tol` (so chains of near-ties join one block).
    fn by_definition(values: &[f64], tol: f64) -> Vec<(usize, usize)> {
        let n = values.len();
        let mut pairs = Vec::new();
        for j in 0..n {
            for i in 0..j {
                if (i + 1..=j).all(|k| (values[k] - values[k - 1]).abs() <= tol) {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }

    #[test]
    fn tied_pairs_matches_its_definition() {
        let cases: [(&[f64], f64); 9] = [
            (&[], 0.0),
            (&[1.0], 0.0),
            (&[1.0, 2.0, 3.0], 0.5),
            // a tie at the start, at the end, and a block of three in the middle
            (&[-3.0, -3.0, 0.5, 2.0, 2.0, 2.0, 7.0, 9.0, 9.0], 0.0),
            // a chain: each gap ≤ tol, the ends 2·tol apart, still one block
            (&[1.0, 1.0 + 1e-9, 1.0 + 2e-9, 5.0], 1.5e-9),
            // gaps just above the tolerance split the chain
            (&[1.0, 1.0 + 2e-9, 1.0 + 4e-9], 1.5e-9),
            // all tied
            (&[4.0; 5], 0.0),
            // negative and clustered
            (&[-1e-12, 0.0, 1e-12, 3.0, 3.0 + 1e-13], 1e-12),
            // a NaN gap never ties
            (&[1.0, f64::NAN, 1.0], 1.0),
        ];
        for (values, tol) in cases {
            assert_eq!(
                tied_pairs(values, tol),
                by_definition(values, tol),
                "values {values:?}, tol {tol}"
            );
        }
        // and the expected pairs of the mixed case, spelled out
        assert_eq!(
            tied_pairs(&[-3.0, -3.0, 0.5, 2.0, 2.0, 2.0, 7.0, 9.0, 9.0], 0.0),
            vec![(0, 1), (3, 4), (3, 5), (4, 5), (7, 8)]
        );
    }
}
