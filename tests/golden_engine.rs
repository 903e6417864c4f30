//! Engine ops against golden values from JAX (float64). The numbers and the script that
//! produced them are in `tests/data/golden_engine.{json,py}`; Python is not needed here.

use matgrad::engine::{Axis, Result, Tape, Value, Var, C64};
use serde_json::Value as Json;

mod common;
use common::decode;

/// Golden values come from a different implementation of the same formulas (LAPACK/XLA vs
/// faer), so agreement is limited by the conditioning of each op times rounding: for the
/// well-conditioned inputs of the script, 1e-12 relative to max(1, max|expected|).
const GOLDEN_RTOL: f64 = 1e-12;

fn apply<'t>(name: &str, x: &[Var<'t>]) -> Result<Var<'t>> {
    let base = if name == "to_complex" {
        name
    } else {
        name.trim_end_matches("_complex")
    };
    match base {
        "add" => x[0].add(x[1]),
        "sub" => x[0].sub(x[1]),
        "scale" if name == "scale" => x[0].scale(-1.5),
        "matmul" => x[0].matmul(x[1]),
        "transpose" => x[0].transpose(),
        "adjoint" => x[0].adjoint(),
        "conj" => x[0].conj(),
        "real" => x[0].real(),
        "imag" => x[0].imag(),
        "mul" => x[0].mul(x[1]),
        "div" => x[0].div(x[1]),
        "exp" => x[0].exp(),
        "log" => x[0].log(),
        "sqrt" => x[0].sqrt(),
        "powf" => x[0].powf(2.5),
        "tanh" => x[0].tanh(),
        "sigmoid" => x[0].sigmoid(),
        "relu" => x[0].relu(),
        "abs" => x[0].abs(),
        "softplus" => x[0].softplus(),
        "sum_rows" => x[0].sum(Axis::Rows),
        "sum_cols" => x[0].sum(Axis::Cols),
        "mean_all" => x[0].mean(Axis::All),
        "trace" => x[0].trace(),
        "norm" => x[0].norm(),
        "inner" => x[0].inner(x[1]),
        "diag" => x[0].diag(),
        "vec" => x[0].vec(),
        "slice" => x[0].slice(1..3, 0..2),
        "hcat" => Var::hcat(&[x[0], x[1]]),
        "vcat" => Var::vcat(&[x[0], x[1]]),
        "add_identity" => x[0].add_identity(2.0),
        "inv" => x[0].inv(),
        "solve" => x[0].solve(x[1]),
        "det" => x[0].det(),
        "logdet" => x[0].logdet(),
        "cholesky_sym" => x[0].sym()?.cholesky(),
        "kron" => x[0].kron(x[1]),
        "neg" => x[0].neg(),
        "add_scalar" => x[0].add_scalar(0.5),
        "mul_scalar" => x[0].mul_scalar(x[1]),
        "scale" if name == "scale_complex" => x[0].scale_complex(C64::new(0.3, -1.2)),
        "to_complex" => x[0].to_complex(),
        "broadcast_row" => x[0].broadcast_to(3, 4),
        "embed" => x[0].embed((4, 5), 1, 2),
        "diag_embed" => x[0].diag_embed(3, 4),
        "tril_scaled" => x[0].tril_scaled(0.5),
        "logdet_spd_sym" => x[0].sym()?.logdet_spd(),
        "o2p" => matgrad::layers::o2p(x[0], 1e-2),
        "ncut_projector" => matgrad::layers::ncut_projector(x[0]),
        other => panic!("golden case {other} has no matgrad counterpart"),
    }
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
        let y = apply(name, &xs).unwrap_or_else(|e| panic!("{name}: {e}"));
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
