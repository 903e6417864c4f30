//! The analytic kernel banks (`gabor_bank`, `log_bank`, `gaussian_derivative_bank`) against
//! JAX (float64): output, VJP and JVP. JAX builds the Gabor cosine with `cos` and the
//! Gaussian derivatives by its own nested autodiff, so neither shares matgrad's route
//! (complex exponential, Hermite recurrence). Data and script: `tests/data/golden_acl.{json,py}`.

mod common;

/// A kernel tap is a product of a few exponentials and a polynomial of O(1) grid coordinates;
/// the two routes differ by rounding only (a few ulps; the second-order parameter gradients
/// pass through ≈ 10 more ops). 1e-13 relative to max(1, max|expected|) still fails on any
/// wrong sign, factor or grid offset.
const GOLDEN_RTOL: f64 = 1e-13;

#[test]
fn analytic_banks_match_jax_float64() {
    let n = common::check_golden_file(include_str!("data/golden_acl.json"), GOLDEN_RTOL);
    assert!(n >= 8, "only {n} cases");
}
