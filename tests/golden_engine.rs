//! Engine ops against golden values from JAX (float64). The numbers and the script that
//! produced them are in `tests/data/golden_engine.{json,py}`; Python is not needed here.

mod common;

/// Golden values come from a different implementation of the same formulas (LAPACK/XLA vs
/// faer), so agreement is limited by the conditioning of each op times rounding: for the
/// well-conditioned inputs of the script, 1e-12 relative to max(1, max|expected|).
const GOLDEN_RTOL: f64 = 1e-12;

#[test]
fn engine_ops_match_jax_float64() {
    let n = common::check_golden_file(include_str!("data/golden_engine.json"), GOLDEN_RTOL);
    assert!(n >= 55, "only {n} cases");
}
