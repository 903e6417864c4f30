//! `ncut_gaussian`: normalized cuts on a Gaussian affinity (Shi & Malik 2000; the
//! spectral-clustering relaxation of Ng, Jordan & Weiss 2001), as a differentiable layer.
//!
//! forward: points `F` (n×d, real) ↦ squared distances `Δᵢⱼ = ‖fᵢ − fⱼ‖²`, affinity
//! `Wᵢⱼ = exp(−Δᵢⱼ/σ²)` for `i ≠ j` (the diagonal is 1 with self-loops, 0 without), degrees
//! `dᵢ = Σⱼ Wᵢⱼ`, the normalized affinity `M = D^{-1/2} W D^{-1/2}`, and the output
//! `Π = U_k U_kᵀ`, the orthogonal projector onto the eigenvectors of the k largest
//! eigenvalues of M ([`matgrad_spectral::eigh_projector`]). Π is basis- and sign-invariant,
//! so it has a derivative whenever the gap `λ_k − λ_{k+1}` at the cut is positive — also
//! when eigenvalues inside the kept block are tied (k clusters that are all perfectly
//! separated give k eigenvalues equal to 1), where an eigenvector-based layer has none.
//!
//! Every step before the projector is an engine op (Δ through the Gram matrix, with the
//! diagonal masked so that its exact zero carries no rounding), so VJP, JVP and second
//! order come from the engine's and `eigh_projector`'s rules. Derivation:
//! docs/math/ncut.md.

use matgrad_engine::{Axis, DType, Error, Form, Value, Var};
use matgrad_spectral::{eigh_projector, sym_eig::decompose, Which};

use crate::error::Result;

/// A point whose degree is below this fraction of the largest degree is reported as
/// isolated: its affinities are at rounding level relative to the graph's, so its row of
/// `M` (which divides by `√dᵢ`) would be decided by rounding.
pub const NCUT_DEGREE_RTOL: f64 = 1e-12;

/// The normalized-cuts projector of the Gaussian affinity of n real points (rows of `f`):
/// the projector onto the top-`k` eigenvectors of `D^{-1/2} W D^{-1/2}`,
/// `Wᵢⱼ = exp(−‖fᵢ − fⱼ‖²/σ²)`, with `Wᵢᵢ = 1` when `self_loops`, else 0.
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// # fn main() -> Result<(), matgrad_engine::Error> {
/// let tape = Tape::new();
/// // two well-separated pairs: the top-2 projector is the block projector of the pairs
/// let f = tape.leaf(Value::Real(faer::mat![[0.0], [0.1], [5.0], [5.1]]))?;
/// let p = matgrad_layers::ncut_gaussian(f, 1.0, 2, true)?.value();
/// let p = p.as_real().unwrap();
/// assert!((p[(0, 1)] - 0.5).abs() < 1e-9 && p[(0, 2)].abs() < 1e-9);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Complex points ([`Error::UnsupportedDType`]); no points ([`Error::Empty`]); σ not finite
/// and positive, `k > n`, or an isolated point — degree below [`NCUT_DEGREE_RTOL`] times the
/// largest (only possible without self-loops; increase σ) — [`Error::InvalidArgument`];
/// a gap at the cut below tolerance ([`Error::Degenerate`], with a hint that says whether M
/// has fewer than k nonzero eigenvalues — duplicated points — or k falls inside a cluster of
/// eigenvalues). Every error names `ncut_gaussian`.
pub fn ncut_gaussian(f: Var<'_>, sigma: f64, k: usize, self_loops: bool) -> Result<Var<'_>> {
    const OP: &str = "ncut_gaussian";
    let (n, _) = f.shape();
    if f.dtype() != DType::F64 {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: f.dtype(),
            hint: "the Gaussian affinity is defined here for real features; stack real and imaginary parts as columns",
        });
    }
    if n == 0 {
        return Err(Error::Empty {
            op: OP,
            shape: f.shape(),
        });
    }
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!("sigma must be finite and > 0, got {sigma}"),
        });
    }
    if k > n {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!("k = {k} must be in 0..={n} for {n} points"),
        });
    }
    let m = normalized_affinity(f, sigma, self_loops).map_err(|e| e.within(OP))?;
    match eigh_projector(m, k, Which::Largest) {
        Ok(p) => Ok(p),
        Err(Error::Degenerate { i, j, gap, tol, .. }) => {
            let lambda = m.with_value(|v| decompose(OP, v))?.lambda;
            let scale = lambda.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let nonzero = lambda
                .iter()
                .filter(|x| x.abs() > tol.max(1e-10 * scale))
                .count();
            Err(Error::Degenerate {
                op: OP,
                i,
                j,
                gap,
                tol,
                what: "the normalized-cuts subspace",
                hint: if k > nonzero {
                    "M = D^{-1/2} W D^{-1/2} has fewer than k nonzero eigenvalues (duplicated or near-duplicated points make W rank-deficient); lower k or remove duplicates"
                } else {
                    "k falls inside a cluster of eigenvalues of M; choose k at a gap (fewer or more segments) or change sigma"
                },
            })
        }
        Err(e) => Err(e.within(OP)),
    }
}

/// `M = D^{-1/2} W D^{-1/2}` on the tape (errors are renamed by the caller).
fn normalized_affinity(f: Var<'_>, sigma: f64, self_loops: bool) -> Result<Var<'_>> {
    const OP: &str = "ncut_gaussian";
    let n = f.shape().0;
    let tape = f.tape();
    // Δ = r1ᵀ + 1rᵀ − 2FFᵀ, rᵢ = ‖fᵢ‖²
    let gram = f.matmul_forms(Form::Plain, f, Form::Adjoint)?;
    let rr = f.mul(f)?.sum(Axis::Cols)?.broadcast_to(n, n)?;
    let dist = rr.add(rr.transpose()?)?.sub(gram.scale(2.0)?)?;
    let off = tape.constant(Value::Real(faer::Mat::from_fn(n, n, |i, j| {
        f64::from(u8::from(i != j))
    })))?;
    let mut w = dist.scale(-1.0 / (sigma * sigma))?.exp()?.mul(off)?;
    if self_loops {
        w = w.add_identity(1.0)?;
    }
    let ones = tape.constant(Value::Real(faer::Mat::from_fn(n, 1, |_, _| 1.0)))?;
    let deg = w.matmul(ones)?;
    {
        let dv = deg.value();
        let dr = dv.as_real().expect("real");
        let dmax = (0..n).fold(0.0f64, |m, i| m.max(dr[(i, 0)]));
        if let Some(i) = (0..n).find(|&i| dr[(i, 0)] <= NCUT_DEGREE_RTOL * dmax) {
            return Err(Error::InvalidArgument {
                op: OP,
                message: format!(
                    "point {i} is isolated at sigma = {sigma:e}: degree {:.3e} vs largest {dmax:.3e} (ratio below {NCUT_DEGREE_RTOL:e}); increase sigma, use self-loops, or drop the point",
                    dr[(i, 0)]
                ),
            });
        }
    }
    let s = deg.powf(-0.5)?;
    let ss = s.matmul_forms(Form::Plain, s, Form::Adjoint)?;
    w.mul(ss)?.sym()
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, real_matrix};
    use matgrad_engine::Tape;

    /// The affinity, degrees and M computed entry by entry from the definition.
    fn m_by_definition(f: &faer::Mat<f64>, sigma: f64, self_loops: bool) -> faer::Mat<f64> {
        let n = f.nrows();
        let w = faer::Mat::from_fn(n, n, |i, j| {
            if i == j {
                return if self_loops { 1.0 } else { 0.0 };
            }
            let d2: f64 = (0..f.ncols())
                .map(|c| (f[(i, c)] - f[(j, c)]).powi(2))
                .sum();
            (-d2 / (sigma * sigma)).exp()
        });
        let deg: Vec<f64> = (0..n).map(|i| (0..n).map(|j| w[(i, j)]).sum()).collect();
        faer::Mat::from_fn(n, n, |i, j| w[(i, j)] / (deg[i] * deg[j]).sqrt())
    }

    #[test]
    fn forward_matches_the_definition() {
        let t = Tape::new();
        for self_loops in [true, false] {
            let fv = real_matrix(7, 2, 3);
            let f = fv.as_real().unwrap().clone();
            let p = ncut_gaussian(t.constant(fv).unwrap(), 1.5, 3, self_loops)
                .unwrap()
                .value();
            // the reference projector: eigenvectors of the 3 largest eigenvalues of M
            let m = m_by_definition(&f, 1.5, self_loops);
            let eig = m.self_adjoint_eigen(faer::Side::Lower).unwrap();
            let u = eig.U();
            let want = faer::Mat::from_fn(7, 7, |i, j| (4..7).map(|c| u[(i, c)] * u[(j, c)]).sum());
            assert!(p.rel_diff(&Value::Real(want)).unwrap() < 1e-12);
        }
    }

    /// Three separated clusters: the top three eigenvalues of M are tied at 1 (to ~1e-40)
    /// and Π is block diagonal, each block `vvᵀ/‖v‖²` with `vᵢ = √dᵢ` (the top eigenvector
    /// of a connected component); the rules are exact with the kept block tied.
    #[test]
    fn separated_clusters_give_a_tied_kept_block() {
        let pts = faer::mat![
            [0.0, 0.0],
            [0.5, 0.1],
            [0.2, 0.7],
            [10.0, 0.0],
            [10.4, 0.3],
            [0.0, 10.0],
            [0.3, 10.6],
            [0.9, 10.2]
        ];
        let cluster = [0, 0, 0, 1, 1, 2, 2, 2];
        let t = Tape::new();
        let p = ncut_gaussian(t.constant(Value::Real(pts.clone())).unwrap(), 1.0, 3, true)
            .unwrap()
            .value();
        let p = p.as_real().unwrap();
        let m = m_by_definition(&pts, 1.0, true);
        // degrees from M's construction: dᵢ = Σⱼ Wᵢⱼ within the cluster
        let deg: Vec<f64> = (0..8)
            .map(|i| {
                (0..8)
                    .filter(|&j| cluster[j] == cluster[i])
                    .map(|j| {
                        let d2: f64 = (0..2).map(|c| (pts[(i, c)] - pts[(j, c)]).powi(2)).sum();
                        (-d2).exp()
                    })
                    .sum()
            })
            .collect();
        assert!(m[(0, 3)].abs() < 1e-40);
        for i in 0..8 {
            for j in 0..8 {
                let want = if cluster[i] == cluster[j] {
                    let total: f64 = (0..8)
                        .filter(|&l| cluster[l] == cluster[i])
                        .map(|l| deg[l])
                        .sum();
                    (deg[i] * deg[j]).sqrt() / total
                } else {
                    0.0
                };
                assert!(
                    (p[(i, j)] - want).abs() < 1e-12,
                    "Π[{i},{j}] = {} vs {want}",
                    p[(i, j)]
                );
            }
        }
        assert_rules(
            "ncut_gaussian tied kept block",
            |_, x| ncut_gaussian(x[0], 1.0, 3, true),
            &[Value::Real(pts)],
        );
    }

    #[test]
    fn rules() {
        assert_rules(
            "ncut_gaussian",
            |_, x| ncut_gaussian(x[0], 1.2, 2, true),
            &[real_matrix(6, 3, 4)],
        );
        assert_rules(
            "ncut_gaussian without self-loops",
            |_, x| ncut_gaussian(x[0], 2.0, 3, false),
            &[real_matrix(7, 2, 5)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let f = t.leaf(real_matrix(5, 2, 6)).unwrap();
        assert!(matches!(
            ncut_gaussian(f, 0.0, 2, true),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            ncut_gaussian(f, 1.0, 6, true),
            Err(Error::InvalidArgument { .. })
        ));
        // an isolated point without self-loops
        let far = t
            .leaf(Value::Real(faer::mat![[0.0], [0.1], [0.2], [100.0]]))
            .unwrap();
        let e = ncut_gaussian(far, 1.0, 2, false).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("point 3"));
        // duplicated points: M has rank 2, k = 3 asks for a zero eigenvalue
        let dup = t
            .leaf(Value::Real(faer::mat![[0.0], [0.0], [1.0], [1.0]]))
            .unwrap();
        match ncut_gaussian(dup, 1.0, 3, true) {
            Err(
                e @ Error::Degenerate {
                    op: "ncut_gaussian",
                    ..
                },
            ) => {
                assert!(
                    e.to_string().contains("fewer than k nonzero eigenvalues"),
                    "{e}"
                );
            }
            other => panic!("expected a rank-deficiency error, got {other:?}"),
        }
        // k inside a cluster: three separated points, k = 2 cuts between tied eigenvalues 1
        let three = t
            .leaf(Value::Real(faer::mat![[0.0], [50.0], [100.0]]))
            .unwrap();
        match ncut_gaussian(three, 1.0, 2, true) {
            Err(e @ Error::Degenerate { .. }) => {
                assert!(e.to_string().contains("inside a cluster"), "{e}")
            }
            other => panic!("expected a degenerate cut, got {other:?}"),
        }
        let c = t
            .leaf(matgrad_engine::testing::complex_matrix(3, 1, 1))
            .unwrap();
        assert!(matches!(
            ncut_gaussian(c, 1.0, 1, true),
            Err(Error::UnsupportedDType { .. })
        ));
        let e = t.leaf(Value::zeros(DType::F64, 0, 2)).unwrap();
        assert!(matches!(
            ncut_gaussian(e, 1.0, 0, true),
            Err(Error::Empty { .. })
        ));
    }
}
