//! Function-style entry points: `grad`, `vjp`, `jvp`, `hvp` of a Rust closure over
//! matrices, each on a fresh tape (JAX's style, for when no tape is at hand).

use crate::error::Result;
use crate::tape::{Tape, Var};
use crate::value::Value;

fn leaves<'t>(tape: &'t Tape, inputs: &[Value]) -> Result<Vec<Var<'t>>> {
    inputs.iter().map(|x| tape.leaf(x.clone())).collect()
}

/// Value and gradient of a real scalar function of several matrices.
///
/// ```
/// use matgrad_engine::{grad, Value};
/// # fn main() -> Result<(), matgrad_engine::EngineError> {
/// let a = Value::Real(faer::mat![[2.0, 0.0], [0.0, 3.0]]);
/// let (y, g) = grad(|_, x| x[0].logdet(), &[a])?;   // d log det A / dA = A⁻ᵀ
/// assert!((y.scalar_real().unwrap() - 6f64.ln()).abs() < 1e-15);
/// assert!((g[0].as_real().unwrap()[(1, 1)] - 1.0 / 3.0).abs() < 1e-15);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Errors from `f`; [`crate::EngineError::NotScalar`] when the output is not real 1×1.
pub fn grad<F>(f: F, inputs: &[Value]) -> Result<(Value, Vec<Value>)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let g = tape.grad(y, &xs)?;
    Ok((y.value(), g))
}

/// Value of `f` and the cotangents `Jᴴ ȳ` of its inputs.
///
/// # Errors
/// Errors from `f`; a cotangent whose shape or dtype differs from the output's.
pub fn vjp<F>(f: F, inputs: &[Value], cotangent: &Value) -> Result<(Value, Vec<Value>)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let g = tape.vjp(&[y], std::slice::from_ref(cotangent), &xs)?;
    Ok((y.value(), g))
}

/// Value of `f` and its directional derivative `J ẋ` along the tangents.
///
/// # Errors
/// Errors from `f`; tangents whose count, shapes or dtypes differ from the inputs'.
pub fn jvp<F>(f: F, inputs: &[Value], tangents: &[Value]) -> Result<(Value, Value)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let t = tape.jvp(&xs, tangents, &[y])?.remove(0);
    Ok((y.value(), t))
}

/// Hessian-vector product `H v` of a real scalar function (reverse over reverse).
///
/// ```
/// use matgrad_engine::{hvp, Value};
/// # fn main() -> Result<(), matgrad_engine::EngineError> {
/// // f(X) = ⟨X, X⟩ has Hessian 2I.
/// let x = Value::Real(faer::mat![[1.0, 2.0]]);
/// let v = Value::Real(faer::mat![[3.0, -1.0]]);
/// let hv = hvp(|_, x| x[0].dot_real(x[0]), &[x], &[v])?;
/// assert_eq!(hv[0].as_real().unwrap()[(0, 0)], 6.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Errors from `f`; [`crate::EngineError::NotScalar`]; mismatched directions.
pub fn hvp<F>(f: F, inputs: &[Value], directions: &[Value]) -> Result<Vec<Value>>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let gs = tape.grad_graph(y, &xs)?;
    if directions.len() != xs.len() {
        return Err(crate::EngineError::InvalidArgument {
            op: "hvp",
            message: format!("{} inputs but {} directions", xs.len(), directions.len()),
        });
    }
    let mut s: Option<Var<'_>> = None;
    for (g, d) in gs.iter().zip(directions) {
        let term = g.dot_real(tape.constant(d.clone())?)?;
        s = Some(match s {
            Some(acc) => acc.add(term)?,
            None => term,
        });
    }
    match s {
        Some(s) => tape.grad(s, &xs),
        None => Ok(vec![]),
    }
}
