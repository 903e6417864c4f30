//! Shared by the golden-value tests: decoding the JSON matrices the scripts write, and the
//! registry-dispatched check of a golden file (output, VJP, JVP of each case).

#![allow(dead_code)] // each test binary uses part of this module

use faer::Mat;
use matgrad::engine::spec::Params;
use matgrad::engine::{Result, Tape, Value, Var, C64};
use serde_json::Value as Json;

/// `{"re": [[…]], "im": [[…]]}` (im optional) into a Value.
pub fn decode(j: &Json) -> Value {
    let rows = |k: &str| -> Option<Vec<Vec<f64>>> {
        j.get(k).map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        })
    };
    let re = rows("re").unwrap();
    let (m, n) = (re.len(), re[0].len());
    match rows("im") {
        None => Value::Real(Mat::from_fn(m, n, |i, k| re[i][k])),
        Some(im) => Value::Complex(Mat::from_fn(m, n, |i, k| C64::new(re[i][k], im[i][k]))),
    }
}

/// Applies the registry op a case names, with its parameters: the golden dispatch reads the
/// same registration as the CLI and `check` (no op is listed in the tests).
pub fn apply_registered<'t>(case: &Json, x: &[Var<'t>]) -> Result<Var<'t>> {
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

fn close(what: &str, name: &str, got: &Value, want: &Value, rtol: f64) {
    let e = got
        .rel_diff(want)
        .unwrap_or_else(|e| panic!("{name} {what}: {e}"));
    assert!(
        e <= rtol,
        "{name} {what}: relative difference {e:.3e} > {rtol:.0e}"
    );
}

/// Checks every case of a golden file written by `tests/data/golden_{engine,layers}.py`:
/// the output, the VJP at the stored cotangent and the JVP at the stored tangents, each to
/// `rtol` relative to max(1, max|expected|). Returns the number of cases.
pub fn check_golden_file(json: &str, rtol: f64) -> usize {
    let data: Json = serde_json::from_str(json).unwrap();
    let cases = data["cases"].as_array().unwrap();
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
        let y = apply_registered(case, &xs).unwrap_or_else(|e| panic!("{name}: {e}"));
        close("output", name, &y.value(), &decode(&case["output"]), rtol);
        let ybar = decode(&case["cotangent"]);
        let grads = tape.vjp(&[y], &[ybar], &xs).unwrap();
        for (g, want) in grads.iter().zip(case["vjp"].as_array().unwrap()) {
            close("vjp", name, g, &decode(want), rtol);
        }
        let tangents: Vec<Value> = case["tangents"]
            .as_array()
            .unwrap()
            .iter()
            .map(decode)
            .collect();
        let ydot = tape.jvp(&xs, &tangents, &[y]).unwrap().remove(0);
        close("jvp", name, &ydot, &decode(&case["jvp"]), rtol);
    }
    cases.len()
}
