//! Adds matgrad's gradients to the cases written by `docs/results/degeneracy.py` and prints
//! the tables of `docs/degeneracy.md`.
//!
//! Run: `cargo run --release --example degeneracy [docs/results/degeneracy_cases.json]`

use faer::Mat;
use matgrad::engine::{Tape, Value};
use matgrad::spectral::{eigh_projector, logm_sym, Which};
use serde_json::Value as Json;

/// A gradient within this relative error of the 50-digit reference counts as right.
const RIGHT: f64 = 1e-6;

fn mat(j: &Json) -> Mat<f64> {
    let rows: Vec<Vec<f64>> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    Mat::from_fn(rows.len(), rows[0].len(), |i, k| rows[i][k])
}

fn rel_err(g: &Mat<f64>, r: &Mat<f64>) -> f64 {
    let mut nan = false;
    let d = Mat::from_fn(g.nrows(), g.ncols(), |i, j| {
        nan |= g[(i, j)].is_nan();
        g[(i, j)] - r[(i, j)]
    });
    if nan {
        f64::NAN
    } else {
        d.norm_l2() / r.norm_l2()
    }
}

fn matgrad_grad(kind: &str, k: usize, a: &Mat<f64>, gbar: &Mat<f64>) -> Result<Mat<f64>, String> {
    let tape = Tape::new();
    let x = tape
        .leaf(Value::Real(a.clone()))
        .map_err(|e| e.to_string())?;
    let s = x.sym().map_err(|e| e.to_string())?;
    let y = match kind {
        "logm" => logm_sym(s),
        _ => eigh_projector(s, k, Which::Smallest),
    }
    .map_err(|e| e.to_string())?;
    let g = tape
        .vjp(&[y], &[Value::Real(gbar.clone())], &[x])
        .map_err(|e| e.to_string())?;
    Ok(g[0].as_real().unwrap().clone())
}

fn fmt(e: f64) -> String {
    if e.is_nan() {
        "NaN".into()
    } else {
        format!("{e:.1e}")
    }
}

fn verdict(e: f64) -> &'static str {
    if e.is_nan() {
        "nan"
    } else if e <= RIGHT {
        "right"
    } else {
        "wrong"
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/results/degeneracy_cases.json".into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("degeneracy: cannot read {path}: {e}; run docs/results/degeneracy.py first");
            std::process::exit(2);
        }
    };
    let data: Json = serde_json::from_str(&text).expect("valid JSON from degeneracy.py");
    println!("versions: {}\n", data["versions"]);
    let mut group = String::new();
    let mut tally: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    let mut worst_matgrad: f64 = 0.0;
    for c in data["cases"].as_array().unwrap() {
        let (kind, k) = (
            c["kind"].as_str().unwrap(),
            c["k"].as_u64().unwrap() as usize,
        );
        let (a, gbar, r) = (mat(&c["a"]), mat(&c["gbar"]), mat(&c["reference"]));
        let mg = match matgrad_grad(kind, k, &a, &gbar) {
            Ok(g) => rel_err(&g, &r),
            Err(e) => {
                eprintln!("matgrad error on {}: {e}", c["label"]);
                f64::NAN
            }
        };
        let (pt, jx) = (rel_err(&mat(&c["torch"]), &r), rel_err(&mat(&c["jax"]), &r));
        let g = c["group"].as_str().unwrap();
        if g.starts_with("projector") {
            for (lib, e) in [("matgrad", mg), ("PyTorch", pt), ("JAX", jx)] {
                *tally.entry((lib, verdict(e))).or_default() += 1;
            }
            worst_matgrad = worst_matgrad.max(mg);
            continue;
        }
        if g != group {
            println!("\n**{g}** (relative error of the gradient vs the 50-digit reference)\n");
            println!("| case | matgrad | PyTorch (eigh) | JAX (eigh) |\n|---|---|---|---|");
            group = g.to_string();
        }
        println!(
            "| {} | {} | {} | {} |",
            c["label"].as_str().unwrap(),
            fmt(mg),
            fmt(pt),
            fmt(jx)
        );
    }
    println!("\n**projector onto the 2 lowest eigenvectors of Q diag(1, 1, 2) Qᵀ, 20 random Q** (right: relative error ≤ {RIGHT:.0e})\n");
    println!("| library | right | wrong (finite) | NaN |\n|---|---|---|---|");
    for lib in ["matgrad", "PyTorch", "JAX"] {
        let n = |v: &str| tally.get(&(lib, v)).copied().unwrap_or(0);
        println!("| {lib} | {} | {} | {} |", n("right"), n("wrong"), n("nan"));
    }
    println!(
        "\nworst matgrad error on the projector cases: {}",
        fmt(worst_matgrad)
    );
}
