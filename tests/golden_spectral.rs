//! Spectral ops against golden values: 50-digit mpmath central differences (which use none
//! of matgrad's formulas) at repeated and nearly repeated eigenvalues, and JAX float64 on
//! distinct spectra. Data and script: `tests/data/golden_spectral.{json,py}`.

use matgrad::engine::spec::Params;
use matgrad::engine::{Result, Tape, Value, Var};
use serde_json::Value as Json;

mod common;
use common::decode;

/// The references are exact to ~1e-30; matgrad's answer carries the eigensolver's backward
/// error (a few n·ε·‖A‖) times the conditioning of f at the spectrum (≤ 10 for these
/// inputs), so 1e-12 relative to max(1, max|expected|) separates rounding from any error
/// in a rule (a wrong term shows up at 1e-2 or more, an unguarded divided difference at
/// a 1e-12 gap at ≈1e-4).
const GOLDEN_RTOL: f64 = 1e-12;

/// Applies the registry op a case names, through the registry: `op` is a registered op,
/// or `<op>_<probe>` for a probe loss of a multi-output op (`svd_weighted`, `eig_weighted`).
/// Ops on Hermitian matrices read sym(X) themselves.
fn apply<'t>(op: &str, params: &Json, a: Var<'t>) -> Result<Var<'t>> {
    let reg = matgrad::registry();
    let (spec, probe) = match reg.get(op) {
        Some(s) => (s, None),
        None => {
            let (base, probe) = op.split_at(op.find('_').unwrap_or(op.len()));
            let spec = reg.lookup(base)?;
            let p = spec
                .probes
                .iter()
                .find(|p| p.name == &probe[1..])
                .unwrap_or_else(|| panic!("{op}: no probe {probe} on {base}"));
            (spec, Some(p))
        }
    };
    let mut ps = Params::defaults(spec);
    for (k, v) in params.as_object().unwrap() {
        let v = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        ps.set(spec, k, &v)?;
    }
    let outs = spec.call(&[a], &ps)?;
    match probe {
        Some(p) => (p.loss)(&outs),
        None => Ok(outs[0]),
    }
}

fn close(what: &str, name: &str, got: &Value, want: &Value) {
    let e = got.rel_diff(want).unwrap();
    assert!(
        e <= GOLDEN_RTOL,
        "{name} {what}: relative difference {e:.3e} > {GOLDEN_RTOL:.0e}"
    );
}

#[test]
fn spectral_ops_match_high_precision_and_jax() {
    let data: Json = serde_json::from_str(include_str!("data/golden_spectral.json")).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let tape = Tape::new();
        let a = tape.leaf(decode(&case["input"])).unwrap();
        let y = apply(case["op"].as_str().unwrap(), &case["params"], a)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(out) = case.get("output") {
            close("output", name, &y.value(), &decode(out));
        }
        let g = tape
            .vjp(&[y], &[decode(&case["cotangent"])], &[a])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        close("vjp", name, &g[0], &decode(&case["vjp"]));
        if let Some(t) = case.get("tangent") {
            let yd = tape.jvp(&[a], &[decode(t)], &[y]).unwrap().remove(0);
            close("jvp", name, &yd, &decode(&case["jvp"]));
        }
    }
}
