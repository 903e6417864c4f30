//! Layer ops (second-order pooling, the Gaussian normalized cut, the structured transforms) against golden values from JAX (float64), written
//! from the layer definitions. Data and script: `tests/data/golden_layers.{json,py}`.

mod common;

/// As for the engine goldens: LAPACK/XLA vs faer on well-conditioned inputs (the pooled
/// matrices have condition numbers ≤ 1e3, and the log map's derivative is bounded by 1/λ_min
/// ≤ 1e2), so 1e-12 relative to max(1, max|expected|) is rounding plus that conditioning.
const GOLDEN_RTOL: f64 = 1e-12;

#[test]
fn layer_ops_match_jax_float64() {
    let n = common::check_golden_file(include_str!("data/golden_layers.json"), GOLDEN_RTOL);
    assert!(n >= 22, "only {n} cases");
}
