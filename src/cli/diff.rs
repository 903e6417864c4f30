//! `matgrad vjp` and `matgrad jvp`: the stable file contract.
//!
//! `vjp` writes, for each input in order, the gradient of `⟨Ḡ, f(X…)⟩ = Re Σ conj(Ḡ) ∘ f(X…)`
//! (for complex inputs in PyTorch's convention, `∂/∂Re + i ∂/∂Im`). `jvp` writes the
//! directional derivative of f at X along the tangents. On any failure the command prints
//! one line to stderr, exits with status 1, and leaves none of the named output files
//! behind (partial results are never written; a file left at an output path by an earlier
//! run is removed, so that it cannot be mistaken for this run's result).

use std::path::{Path, PathBuf};

use matgrad_engine::{Tape, Value};

use super::npy::{read_matrix, write_all_atomic};
use super::registry::{registry, Params};

/// What to compute.
pub enum Mode {
    /// Reverse mode with this cotangent file.
    Vjp {
        /// Ḡ.
        cotangent: PathBuf,
    },
    /// Forward mode with these tangent files.
    Jvp {
        /// Ẋ, one per input.
        tangents: Vec<PathBuf>,
    },
}

fn compute(
    mode: &Mode,
    op_name: &str,
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    given: &[String],
) -> Result<Vec<(PathBuf, Value)>, String> {
    let ops = registry();
    let op = ops.iter().find(|o| o.name == op_name).ok_or_else(|| {
        let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
        format!("unknown op {op_name:?}; known ops: {}", names.join(", "))
    })?;
    let params = Params::parse(op, given).map_err(|e| e.to_string())?;
    if inputs.len() != op.arity {
        return Err(format!(
            "{} takes {} input(s), got {}",
            op.name,
            op.arity,
            inputs.len()
        ));
    }
    let want_out = match mode {
        Mode::Vjp { .. } => op.arity,
        Mode::Jvp { .. } => 1,
    };
    if outputs.len() != want_out {
        return Err(format!(
            "{} needs {want_out} --output file(s), got {}",
            op.name,
            outputs.len()
        ));
    }
    let xs: Vec<Value> = inputs
        .iter()
        .map(|p| read_matrix(p))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let tape = Tape::new();
    let vars = xs
        .iter()
        .map(|x| tape.leaf(x.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let y = (op.apply)(&vars, &params).map_err(|e| e.to_string())?;
    let results = match mode {
        Mode::Vjp { cotangent } => {
            let g = read_matrix(cotangent).map_err(|e| e.to_string())?;
            let (ys, yd) = (y.shape(), y.dtype());
            if g.shape() != ys || g.dtype() != yd {
                return Err(format!(
                    "{}: the cotangent must have the output's shape and dtype, {yd} {ys:?}; got {} {:?}",
                    cotangent.display(),
                    g.dtype(),
                    g.shape()
                ));
            }
            tape.vjp(&[y], &[g], &vars).map_err(|e| e.to_string())?
        }
        Mode::Jvp { tangents } => {
            if tangents.len() != op.arity {
                return Err(format!(
                    "{} needs {} --tangent file(s), got {}",
                    op.name,
                    op.arity,
                    tangents.len()
                ));
            }
            let ts: Vec<Value> = tangents
                .iter()
                .map(|p| read_matrix(p))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            for ((t, x), p) in ts.iter().zip(&xs).zip(tangents) {
                if t.shape() != x.shape() || t.dtype() != x.dtype() {
                    return Err(format!(
                        "{}: a tangent must have its input's shape and dtype, {} {:?}; got {} {:?}",
                        p.display(),
                        x.dtype(),
                        x.shape(),
                        t.dtype(),
                        t.shape()
                    ));
                }
            }
            tape.jvp(&vars, &ts, &[y]).map_err(|e| e.to_string())?
        }
    };
    Ok(outputs.iter().cloned().zip(results).collect())
}

fn remove_stale(outputs: &[PathBuf]) {
    for p in outputs {
        if Path::new(p).is_file() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs `vjp` or `jvp`; returns the exit code.
pub fn run(
    mode: Mode,
    op: &str,
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    params: &[String],
) -> i32 {
    let cmd = match mode {
        Mode::Vjp { .. } => "vjp",
        Mode::Jvp { .. } => "jvp",
    };
    let result = compute(&mode, op, inputs, outputs, params)
        .and_then(|r| write_all_atomic(&r).map_err(|e| e.to_string()));
    match result {
        Ok(()) => 0,
        Err(msg) => {
            remove_stale(outputs);
            eprintln!("matgrad {cmd} {op}: error: {msg}");
            1
        }
    }
}
