//! Engine ops against golden values from JAX (float64). The numbers and the script that
//! produced them are in `tests/data/golden_engine.{json,py}`; Python is not needed here.

use matgrad::engine::spec::Params;
use matgrad::engine::{Result, Tape, Value, Var};
use serde_json::Value as Json;

mod common;
use common::decode;

/// Golden values come from a different implementation of the same formulas (LAPACK/XLA vs
/// faer), so agreement is limited by the conditioning of each op times rounding: for the
/// well-conditioned inputs of the script, 1e-12 relative to max(1, max|expected|).
const GOLDEN_RTOL: f64 = 1e-12;

/// Applies the registry op a case names, with its parameters: the golden dispatch reads the
/// same registration as the CLI and `check` (no op is listed here).
fn apply<'t>(case: &Json, x: &[Var<'t>]) -> Result<Var<'t>> {
    let reg = matgrad::registry();
    let spec = reg.lookup(case["op"].as_str().unwrap())?;
    let mut params = Params::defaults(spec);
    for (k, v) in case["params"].as_object().unwrap() {
        let v = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        params.set(spec, k, &v)?;
    }
    Ok(spec.call(x, &params)?[0])
}

fn close(what: &str, name: &str, got: &Value, want: &Value) {
    let e = got
        .rel_diff(want)
        .unwrap_or_else(|e| panic!("{name} {what}: {e}"));
    assert!(
        e <= GOLDEN_RTOL,
        "{name} {what}: relative difference {e:.3e} > {GOLDEN_RTOL:.0e}"
    );
}

#[test]
fn engine_ops_match_jax_float64() {
    let data: Json = serde_json::from_str(include_str!("data/golden_engine.json")).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 55);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let inputs: Vec<Value> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(decode)
            .collect();
        let tape = Tape::new();
        let xs: Vec<Var<'_>> = inputs
            .iter()
            .map(|v| tape.leaf(v.clone()).unwrap())
            .collect();
        let y = apply(case, &xs).unwrap_or_else(|e| panic!("{name}: {e}"));
        close("output", name, &y.value(), &decode(&case["output"]));
        let ybar = decode(&case["cotangent"]);
        let grads = tape.vjp(&[y], &[ybar], &xs).unwrap();
        for (g, want) in grads.iter().zip(case["vjp"].as_array().unwrap()) {
            close("vjp", name, g, &decode(want));
        }
        let tangents: Vec<Value> = case["tangents"]
            .as_array()
            .unwrap()
            .iter()
            .map(decode)
            .collect();
        let ydot = tape.jvp(&xs, &tangents, &[y]).unwrap().remove(0);
        close("jvp", name, &ydot, &decode(&case["jvp"]));
    }
}
