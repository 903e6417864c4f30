//! CReLU (Shang, Sohn, Almeida, Lee, ICML 2016): `[ReLU(x); ReLU(−x)]` along channels, and
//! the paper's pairing analysis.
//!
//! forward: on the channels × (images·pixels) layout ([`crate::FeatureMaps`]) the channel
//! axis is the row axis, so `crelu(X) = vcat(relu(X), relu(−X))` (2C rows). Built from engine
//! ops: the VJP is `X̄ = 1[X > 0] ∘ Ȳ_top − 1[X < 0] ∘ Ȳ_bottom` and the JVP its transpose, both
//! from `relu`'s rule (subgradient 0 at exactly 0, as PyTorch).
//!
//! Pairing: for unit-normalised filters φ_i (rows of a kernel matrix), `μ_i = min_{j≠i}
//! ⟨φ_i, φ_j⟩`. A value near −1 means the layer has learned the negative of filter i as
//! well — the redundancy CReLU removes by construction. [`pairing`] computes μ;
//! [`gaussian_pairing`] gives the same statistic for i.i.d. Gaussian filters of the same
//! shape, the baseline the paper's histograms compare against.

use matgrad_engine::Var;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;

/// `[ReLU(X); ReLU(−X)]` stacked along rows (channels). Real input.
///
/// # Errors
/// Complex input (ReLU needs an order) — named `relu`.
pub fn crelu(x: Var<'_>) -> Result<Var<'_>> {
    Var::vcat(&[x.relu()?, x.neg()?.relu()?])
}

/// `μ_i = min_{j≠i} ⟨φ̂_i, φ̂_j⟩` for the unit-normalised rows φ̂ of `filters` (zero rows are
/// skipped: they have no direction). Fewer than two usable rows give an empty list.
pub fn pairing(filters: &faer::Mat<f64>) -> Vec<f64> {
    let rows: Vec<Vec<f64>> = (0..filters.nrows())
        .filter_map(|i| {
            let r: Vec<f64> = (0..filters.ncols()).map(|j| filters[(i, j)]).collect();
            let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            (n > 0.0).then(|| r.iter().map(|v| v / n).collect())
        })
        .collect();
    if rows.len() < 2 {
        return Vec::new();
    }
    (0..rows.len())
        .map(|i| {
            (0..rows.len())
                .filter(|&j| j != i)
                .map(|j| {
                    rows[i]
                        .iter()
                        .zip(&rows[j])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// [`pairing`] of `m` i.i.d. standard Gaussian filters of length `n` (seeded): the
/// no-learning baseline.
pub fn gaussian_pairing(m: usize, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let f = faer::Mat::from_fn(m, n, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z
    });
    pairing(&f)
}

/// Counts of `values` in `bins` equal bins over [−1, 1] (values outside are clamped in).
pub fn histogram(values: &[f64], bins: usize) -> Vec<usize> {
    let mut h = vec![0; bins];
    if bins == 0 {
        return h;
    }
    for v in values {
        let t = ((v.clamp(-1.0, 1.0) + 1.0) / 2.0 * bins as f64) as usize;
        h[t.min(bins - 1)] += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, real_matrix};
    use matgrad_engine::{Tape, Value};

    #[test]
    fn crelu_closed_form_and_rules() {
        let t = Tape::new();
        let x = t
            .constant(Value::Real(faer::mat![[1.0, -2.0], [0.5, -0.25]]))
            .unwrap();
        let y = crelu(x).unwrap().value();
        assert_eq!(
            y.as_real().unwrap(),
            &faer::mat![[1.0, 0.0], [0.5, 0.0], [0.0, 2.0], [0.0, 0.25]]
        );
        assert_rules("crelu", |_, v| crelu(v[0]), &[real_matrix(3, 4, 1)]);
        let c = t
            .constant(matgrad_engine::testing::complex_matrix(2, 2, 2))
            .unwrap();
        assert!(crelu(c).is_err());
    }

    #[test]
    fn pairing_finds_negated_filters() {
        // φ₁ = −φ₀ exactly: both have μ = −1; φ₂ is orthogonal to both: μ = 0
        let f = faer::mat![[1.0, 2.0, 0.0], [-2.0, -4.0, 0.0], [0.0, 0.0, 3.0]];
        let mu = pairing(&f);
        assert!((mu[0] + 1.0).abs() < 1e-15 && (mu[1] + 1.0).abs() < 1e-15);
        assert!(mu[2].abs() < 1e-15);
        assert!(pairing(&faer::mat![[1.0, 0.0]]).is_empty());
        // zero rows are skipped
        assert_eq!(
            pairing(&faer::mat![[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]).len(),
            2
        );
    }

    #[test]
    fn gaussian_baseline_is_rarely_paired() {
        // 64 random filters in 64 dimensions: inner products concentrate near 0 (sd 1/8), so
        // the minimum over 63 others is about −0.3 and never near −1
        let mu = gaussian_pairing(64, 64, 7);
        assert_eq!(mu.len(), 64);
        assert!(mu.iter().all(|&m| m > -0.8 && m < 0.0), "{mu:?}");
        let h = histogram(&mu, 10);
        assert_eq!(h.iter().sum::<usize>(), 64);
        assert_eq!(h[0], 0);
    }
}
