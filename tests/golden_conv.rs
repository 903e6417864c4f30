//! Convolution, pooling, weighted convolution, the tied density and CReLU against PyTorch
//! (float64): `conv2d` (stride, padding, dilation,
//! 1×1), `avg_pool2d`, `max_pool2d` (with padding), `global_avg_pool` — output, VJP and JVP.
//! Data and script: `tests/data/golden_conv.{json,py}`.

mod common;

/// Sums of at most 27 products of O(1) numbers in a different order than PyTorch's: a few
/// ulps of the result's scale; 1e-13 relative to max(1, max|expected|) leaves a margin of ~10
/// over the worst observed difference and still fails on any wrong index or weight.
const GOLDEN_RTOL: f64 = 1e-13;

#[test]
fn conv_ops_match_pytorch_float64() {
    let n = common::check_golden_file(include_str!("data/golden_conv.json"), GOLDEN_RTOL);
    assert!(n >= 13, "only {n} cases");
}
