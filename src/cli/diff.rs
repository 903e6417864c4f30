//! `matgrad eval | vjp | jvp | hvp`: the stable file contract.
//!
//! - `eval` writes each output of `f(X₁, …)`.
//! - `vjp` writes, for each input in order, the gradient of
//!   `Re Σₖ ⟨Ḡₖ, fₖ(X…)⟩ = Re Σₖ Σ conj(Ḡₖ) ∘ fₖ(X…)` (one cotangent per output; `zero` for an
//!   output the loss does not read); for complex inputs in PyTorch's convention
//!   `∂/∂Re + i ∂/∂Im`.
//! - `jvp` writes, for each output in order, its directional derivative along the tangents.
//! - `hvp` writes, for each input, the directional derivative along the tangents of the
//!   `vjp` gradient: the Hessian-vector product of `Re Σₖ ⟨Ḡₖ, fₖ⟩`.
//!
//! On any failure the command prints one line to stderr, exits with the status of its
//! class (`exit.rs`), and leaves none of the named output files behind (partial results
//! are never written; a file left at an output path by an earlier run is removed, so that
//! it cannot be mistaken for this run's result).

use std::path::{Path, PathBuf};

use matgrad::engine::spec::{OpSpec, Params};
use matgrad::engine::{Tape, Value, Var};

use super::exit::{self, Failure};
use matgrad::npy::{read as read_matrix, write_all_atomic};

/// What to compute.
pub enum Mode {
    /// The outputs.
    Eval,
    /// Reverse mode: one cotangent per output (a path, or `zero`).
    Vjp {
        /// Ḡ per output.
        cotangents: Vec<String>,
    },
    /// Forward mode: one tangent per input.
    Jvp {
        /// Ẋ per input.
        tangents: Vec<PathBuf>,
    },
    /// Second order: cotangents per output, tangents per input.
    Hvp {
        /// Ḡ per output.
        cotangents: Vec<String>,
        /// Ẋ per input.
        tangents: Vec<PathBuf>,
    },
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Eval => "eval",
            Mode::Vjp { .. } => "vjp",
            Mode::Jvp { .. } => "jvp",
            Mode::Hvp { .. } => "hvp",
        }
    }
}

fn read(path: &Path) -> Result<Value, Failure> {
    read_matrix(path).map_err(|e| Failure {
        code: exit::INPUT_FILE,
        message: e.to_string(),
    })
}

fn count(what: &str, want: usize, got: usize, op: &OpSpec) -> Result<(), Failure> {
    if want == got {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "{} needs {want} {what} file(s), got {got}",
            op.name
        )))
    }
}

/// Reads a file that must have `like`'s shape and dtype.
fn read_like(path: &Path, like: &Value, what: &str, owner: &str) -> Result<Value, Failure> {
    let v = read(path)?;
    if v.shape() != like.shape() || v.dtype() != like.dtype() {
        return Err(Failure {
            code: exit::INPUT_FILE,
            message: format!(
                "{}: the {what} must have the {owner}'s shape and dtype, {} {:?}; got {} {:?}",
                path.display(),
                like.dtype(),
                like.shape(),
                v.dtype(),
                v.shape()
            ),
        });
    }
    Ok(v)
}

/// Reads the cotangents (`zero` gives none for that output).
fn cotangents<'t>(
    args: &[String],
    outs: &[Var<'t>],
) -> Result<(Vec<Var<'t>>, Vec<Value>), Failure> {
    let mut sel = Vec::new();
    let mut vals = Vec::new();
    for (a, o) in args.iter().zip(outs) {
        if a == "zero" {
            continue;
        }
        vals.push(read_like(Path::new(a), &o.value(), "cotangent", "output")?);
        sel.push(*o);
    }
    Ok((sel, vals))
}

fn compute(
    mode: &Mode,
    op_name: &str,
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    given: &[String],
) -> Result<Vec<(PathBuf, Value)>, Failure> {
    let reg = matgrad::registry();
    let op = reg
        .lookup(op_name)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let params = Params::parse(op, given).map_err(|e| Failure::usage(e.to_string()))?;
    let n_out = op.output_names().len();
    count("--input", op.inputs.len(), inputs.len(), op)?;
    let want_out = match mode {
        Mode::Eval | Mode::Jvp { .. } => n_out,
        Mode::Vjp { .. } | Mode::Hvp { .. } => op.inputs.len(),
    };
    count("--output", want_out, outputs.len(), op)?;
    for (i, p) in outputs.iter().enumerate() {
        if outputs[..i].contains(p) {
            return Err(Failure::usage(format!(
                "the output path {} is given twice; each output needs its own file",
                p.display()
            )));
        }
    }
    match mode {
        Mode::Vjp { cotangents } => count("--cotangent", n_out, cotangents.len(), op)?,
        Mode::Jvp { tangents } => count("--tangent", op.inputs.len(), tangents.len(), op)?,
        Mode::Hvp {
            cotangents,
            tangents,
        } => {
            count("--cotangent", n_out, cotangents.len(), op)?;
            count("--tangent", op.inputs.len(), tangents.len(), op)?;
        }
        Mode::Eval => {}
    }
    let xs: Vec<Value> = inputs.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    let tape = Tape::new();
    let vars = xs
        .iter()
        .map(|x| tape.leaf(x.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = op.call(&vars, &params)?;
    let results: Vec<Value> = match mode {
        Mode::Eval => outs.iter().map(Var::value).collect(),
        Mode::Vjp { cotangents: c } => {
            let (sel, vals) = cotangents(c, &outs)?;
            if sel.is_empty() {
                xs.iter()
                    .map(|x| Value::zeros(x.dtype(), x.nrows(), x.ncols()))
                    .collect()
            } else {
                tape.vjp(&sel, &vals, &vars)?
            }
        }
        Mode::Jvp { tangents } => {
            let ts: Vec<Value> = tangents
                .iter()
                .zip(&xs)
                .map(|(p, x)| read_like(p, x, "tangent", "input"))
                .collect::<Result<_, _>>()?;
            tape.jvp(&vars, &ts, &outs)?
        }
        Mode::Hvp {
            cotangents: c,
            tangents,
        } => {
            let (sel, vals) = cotangents(c, &outs)?;
            let ts: Vec<Value> = tangents
                .iter()
                .zip(&xs)
                .map(|(p, x)| read_like(p, x, "tangent", "input"))
                .collect::<Result<_, _>>()?;
            if sel.is_empty() {
                xs.iter()
                    .map(|x| Value::zeros(x.dtype(), x.nrows(), x.ncols()))
                    .collect()
            } else {
                let gcs = vals
                    .into_iter()
                    .map(|g| tape.constant(g))
                    .collect::<Result<Vec<_>, _>>()?;
                let grads = tape.vjp_graph(&sel, &gcs, &vars)?;
                let mut s: Option<Var<'_>> = None;
                for (g, t) in grads.iter().zip(ts) {
                    let term = g.dot_real(tape.constant(t)?)?;
                    s = Some(match s {
                        Some(acc) => acc.add(term)?,
                        None => term,
                    });
                }
                match s {
                    Some(s) if s.requires_grad() => tape.grad(s, &vars)?,
                    // the gradient does not depend on the inputs: a zero Hessian
                    _ => xs
                        .iter()
                        .map(|x| Value::zeros(x.dtype(), x.nrows(), x.ncols()))
                        .collect(),
                }
            }
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

/// Runs `eval`, `vjp`, `jvp` or `hvp`; returns the exit code.
pub fn run(
    mode: Mode,
    op: &str,
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    params: &[String],
) -> i32 {
    let cmd = mode.name();
    let result = compute(&mode, op, inputs, outputs, params).and_then(|r| {
        write_all_atomic(&r).map_err(|e| Failure {
            code: exit::OUTPUT_FILE,
            message: e.to_string(),
        })
    });
    match result {
        Ok(()) => exit::OK,
        Err(f) => {
            remove_stale(outputs);
            eprintln!("matgrad {cmd} {op}: error: {}", f.message);
            f.code
        }
    }
}
