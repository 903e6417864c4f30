//! `det` at singular matrices against exact values (issue 7, bug 4): sympy's rational
//! arithmetic for the gradient `adj(A)ᵀ` and the Hessian-vector product at rank n−1, n−2,
//! n−3, the zero matrix and a complex rank-deficient matrix; JAX's float64 gradient for
//! the 4×4 rank-3 case. Data and script: `tests/data/golden_det.{json,py}`.

use matgrad::engine::check::hvp_of;
use matgrad::engine::{Tape, Value};
use serde_json::Value as Json;

mod common;
use common::decode;

/// The references are exact; matgrad goes through an SVD (backward error ≈ n·ε·‖A‖) and
/// products of singular values, so 1e-13 relative to max(1, max|expected|) leaves room for
/// rounding and still fails any wrong term (the old rule refused outright).
const RTOL: f64 = 1e-13;

fn close(got: &Value, want: &Value) -> f64 {
    let d = got.axpy(-1.0, want).unwrap();
    d.max_abs() / want.max_abs().max(1.0)
}

#[test]
fn det_gradient_and_hvp_at_singular_matrices() {
    let data: Json = serde_json::from_str(include_str!("data/golden_det.json")).unwrap();
    for c in data.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let a = decode(&c["a"]);
        let a = if c["grad"].get("im").is_some() || c["a"].get("im").is_some() {
            Value::Complex(a.to_complex())
        } else {
            a
        };
        let want_grad = decode(&c["grad"]);
        let want_grad = if a.dtype() == matgrad::engine::DType::C64 {
            Value::Complex(want_grad.to_complex())
        } else {
            want_grad
        };
        let tape = Tape::new();
        let x = tape.leaf(a.clone()).unwrap();
        let d = x.det().unwrap();
        let one = match d.dtype() {
            matgrad::engine::DType::F64 => Value::scalar(1.0),
            matgrad::engine::DType::C64 => Value::Complex(Value::scalar(1.0).to_complex()),
        };
        let g = tape.vjp(&[d], std::slice::from_ref(&one), &[x]).unwrap();
        let err = close(&g[0], &want_grad);
        assert!(err < RTOL, "{name}: gradient off by {err:e}: {:?}", g[0]);
        if let Some(v) = c.get("v") {
            let v = decode(v);
            let v = if a.dtype() == matgrad::engine::DType::C64 {
                Value::Complex(v.to_complex())
            } else {
                v
            };
            let want = decode(&c["hvp"]);
            let want = if a.dtype() == matgrad::engine::DType::C64 {
                Value::Complex(want.to_complex())
            } else {
                want
            };
            let hv = hvp_of(
                &|_, xs: &[matgrad::engine::Var<'_>]| xs[0].det(),
                std::slice::from_ref(&a),
                &one,
                std::slice::from_ref(&v),
            )
            .unwrap();
            let err = close(&hv[0], &want);
            assert!(err < RTOL, "{name}: HVP off by {err:e}");
            // forward mode: d det[V] = tr(adj(A) V) = Σ conj(grad) ∘ V
            let t = tape.jvp(&[x], std::slice::from_ref(&v), &[d]).unwrap();
            let want_t = {
                let tv = tape.constant(want_grad.clone()).unwrap();
                let vv = tape.constant(v.clone()).unwrap();
                tv.inner(vv).unwrap().value()
            };
            let err = close(&t[0], &want_t);
            assert!(err < RTOL, "{name}: JVP off by {err:e}");
        }
    }
}
