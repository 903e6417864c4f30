//! Spectral ops against golden values: 50-digit mpmath central differences (which use none
//! of matgrad's formulas) at repeated and nearly repeated eigenvalues, and JAX float64 on
//! distinct spectra. Data and script: `tests/data/golden_spectral.{json,py}`.

use faer::Mat;
use matgrad::engine::{EngineError, Result, Tape, Value, Var};
use matgrad::spectral::{
    eig, eigh_projector, eigvalsh, expm, expm_sym, logm, logm_sym, powm_sym, sqrtm, sqrtm_sym, svd,
    svdvals, Which,
};
use serde_json::Value as Json;

mod common;
use common::decode;

/// The references are exact to ~1e-30; matgrad's answer carries the eigensolver's backward
/// error (a few n·ε·‖A‖) times the conditioning of f at the spectrum (≤ 10 for these
/// inputs), so 1e-12 relative to max(1, max|expected|) separates rounding from any error
/// in a rule (a wrong term shows up at 1e-2 or more, an unguarded divided difference at
/// a 1e-12 gap at ≈1e-4).
const GOLDEN_RTOL: f64 = 1e-12;

fn apply<'t>(op: &str, params: &Json, raw: bool, a: Var<'t>) -> Result<Var<'t>> {
    let a = if raw { a } else { a.sym()? };
    match op {
        "svdvals" => svdvals(a),
        "eig_weighted" => {
            // Σᵢ Re(λᵢ) Σⱼ cⱼ |Vⱼᵢ|², c = (1, …, n)
            let (l, v) = eig(a)?;
            let n = l.shape().0;
            let c = a
                .tape()
                .constant(Value::Real(Mat::from_fn(n, n, |j, _| (j + 1) as f64)))?;
            let w = v.abs()?;
            let per = w.mul(w)?.mul(c)?.sum(matgrad::engine::Axis::Rows)?; // 1×n
            per.matmul(l.real()?)
        }
        "expm" => expm(a),
        "logm" => logm(a),
        "sqrtm" => sqrtm(a),
        "svd_weighted" => {
            let (u, s, v) = svd(a)?;
            let k = s.shape().0;
            let w = a
                .tape()
                .constant(Value::Real(Mat::from_fn(k, 1, |i, _| 0.1 + 0.3 * i as f64)))?;
            let d = s.mul(s)?.add(w)?;
            let d = if u.dtype() == matgrad::engine::DType::C64 {
                d.to_complex()?
            } else {
                d
            };
            u.matmul(d.diag_embed(k, k)?)?.matmul_forms(
                matgrad::engine::Form::Plain,
                v,
                matgrad::engine::Form::Adjoint,
            )
        }
        "logm_sym" => logm_sym(a),
        "sqrtm_sym" => sqrtm_sym(a),
        "expm_sym" => expm_sym(a),
        "powm_sym" => powm_sym(a, params["p"].as_f64().unwrap()),
        "eigvalsh" => eigvalsh(a),
        "eigh_projector" => {
            let which = if params["which"] == "smallest" {
                Which::Smallest
            } else {
                Which::Largest
            };
            eigh_projector(a, params["k"].as_u64().unwrap() as usize, which)
        }
        other => Err(EngineError::InvalidArgument {
            op: "golden",
            message: format!("unknown op {other}"),
        }),
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
        let raw = case.get("raw_input").is_some();
        let y = apply(case["op"].as_str().unwrap(), &case["params"], raw, a)
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
