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

/// The number of real coordinates of a value: its entries, twice for complex.
fn real_len(v: &Value) -> usize {
    let (m, n) = v.shape();
    m * n * if v.dtype() == crate::DType::C64 { 2 } else { 1 }
}

/// The value's real coordinates, column-major, complex entries as (re, im) pairs.
fn realify(v: &Value) -> Vec<f64> {
    let (m, n) = v.shape();
    let mut out = Vec::with_capacity(real_len(v));
    match v {
        Value::Real(a) => {
            for j in 0..n {
                for i in 0..m {
                    out.push(a[(i, j)]);
                }
            }
        }
        Value::Complex(a) => {
            for j in 0..n {
                for i in 0..m {
                    out.push(a[(i, j)].re);
                    out.push(a[(i, j)].im);
                }
            }
        }
    }
    out
}

/// The unit direction along real coordinate `k` of a value shaped like `like`.
fn unit(like: &Value, k: usize) -> Value {
    let (m, n) = like.shape();
    match like {
        Value::Real(_) => Value::Real(faer::Mat::from_fn(m, n, |i, j| {
            f64::from(u8::from(i + j * m == k))
        })),
        Value::Complex(_) => {
            let (entry, imag) = (k / 2, k % 2 == 1);
            Value::Complex(faer::Mat::from_fn(m, n, |i, j| {
                if i + j * m == entry {
                    if imag {
                        crate::C64::new(0.0, 1.0)
                    } else {
                        crate::C64::new(1.0, 0.0)
                    }
                } else {
                    crate::C64::new(0.0, 0.0)
                }
            }))
        }
    }
}

/// Dense Jacobian of `f` at `inputs`, one block per input: block `k` is the real
/// `len(y) × len(xₖ)` matrix of `∂ vec(y) / ∂ vec(xₖ)`, where `vec` lists the real
/// coordinates column-major and a complex entry counts as two (real part, then imaginary
/// part). This realified Jacobian is exact for any function — holomorphic or not (`abs`,
/// `conj`, `real`). Computed with forward mode, one sweep per input coordinate, or with
/// reverse mode, one sweep per output coordinate, whichever is fewer. For small problems.
///
/// ```
/// use matgrad_engine::{jacobian, Value};
/// # fn main() -> Result<(), matgrad_engine::Error> {
/// // y = A x for A = [[1, 2], [3, 4]]: ∂y/∂x = A
/// let a = Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]]);
/// let x = Value::Real(faer::mat![[1.0], [-1.0]]);
/// let (_, j) = jacobian(|t, v| t.constant(a.clone())?.matmul(v[0]), &[x])?;
/// assert_eq!(j[0].as_real().unwrap()[(1, 0)], 3.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Errors from `f` or its rules.
pub fn jacobian<F>(f: F, inputs: &[Value]) -> Result<(Value, Vec<Value>)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let yv = y.value();
    let rows = real_len(&yv);
    let cols: Vec<usize> = inputs.iter().map(real_len).collect();
    let total: usize = cols.iter().sum();
    let mut blocks: Vec<faer::Mat<f64>> = cols.iter().map(|&c| faer::Mat::zeros(rows, c)).collect();
    if total <= rows {
        for (k, x) in inputs.iter().enumerate() {
            for c in 0..cols[k] {
                let dirs: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(l, v)| {
                        if l == k {
                            unit(x, c)
                        } else {
                            Value::zeros(v.dtype(), v.nrows(), v.ncols())
                        }
                    })
                    .collect();
                let t = tape.jvp(&xs, &dirs, &[y])?;
                for (r, v) in realify(&t[0]).into_iter().enumerate() {
                    blocks[k][(r, c)] = v;
                }
            }
        }
    } else {
        for r in 0..rows {
            let g = tape.vjp(&[y], &[unit(&yv, r)], &xs)?;
            for (k, gk) in g.iter().enumerate() {
                for (c, v) in realify(gk).into_iter().enumerate() {
                    blocks[k][(r, c)] = v;
                }
            }
        }
    }
    Ok((yv, blocks.into_iter().map(Value::Real).collect()))
}

/// Dense Hessian of a real scalar `f` at `inputs`: `h[k][l]` is the real
/// `len(xₖ) × len(xₗ)` block `∂²f / ∂ vec(xₖ) ∂ vec(xₗ)` in the coordinates of
/// [`jacobian`], by forward over reverse (one forward sweep of the recorded gradient per
/// input coordinate). For small problems.
///
/// ```
/// use matgrad_engine::{hessian, Value};
/// # fn main() -> Result<(), matgrad_engine::Error> {
/// // f(x) = Σ x³ has Hessian diag(6x)
/// let x = Value::Real(faer::mat![[1.0], [2.0]]);
/// let h = hessian(|_, v| v[0].powf(3.0)?.sum(matgrad_engine::Axis::All), &[x])?;
/// assert_eq!(h[0][0].as_real().unwrap()[(1, 1)], 12.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Errors from `f` or its rules; [`crate::EngineError::NotScalar`].
pub fn hessian<F>(f: F, inputs: &[Value]) -> Result<Vec<Vec<Value>>>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = leaves(&tape, inputs)?;
    let y = f(&tape, &xs)?;
    let gs = tape.grad_graph(y, &xs)?;
    let lens: Vec<usize> = inputs.iter().map(real_len).collect();
    let mut h: Vec<Vec<faer::Mat<f64>>> = lens
        .iter()
        .map(|&a| lens.iter().map(|&b| faer::Mat::zeros(a, b)).collect())
        .collect();
    for (l, x) in inputs.iter().enumerate() {
        for c in 0..lens[l] {
            let dirs: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(m, v)| {
                    if m == l {
                        unit(x, c)
                    } else {
                        Value::zeros(v.dtype(), v.nrows(), v.ncols())
                    }
                })
                .collect();
            let t = tape.jvp(&xs, &dirs, &gs)?;
            for (k, tk) in t.iter().enumerate() {
                for (r, v) in realify(tk).into_iter().enumerate() {
                    h[k][l][(r, c)] = v;
                }
            }
        }
    }
    Ok(h.into_iter()
        .map(|row| row.into_iter().map(Value::Real).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{hessian, jacobian};
    use crate::testing::{complex_matrix, real_matrix};
    use crate::{Axis, Value};

    /// The Jacobian's columns are JVPs and its rows VJPs: both routes (and the realified
    /// complex convention) agree with closed forms.
    #[test]
    fn jacobian_closed_forms_real_and_complex() {
        // y = A X B (2×2 from 2×3 X): vec(y) = (Bᵀ ⊗ A) vec(X)
        let a = real_matrix(2, 2, 1);
        let b = real_matrix(3, 2, 2);
        let x = real_matrix(2, 3, 3);
        let (ac, bc) = (a.clone(), b.clone());
        let (_, j) = jacobian(
            move |t, v| {
                t.constant(ac.clone())?
                    .matmul(v[0])?
                    .matmul(t.constant(bc.clone())?)
            },
            std::slice::from_ref(&x),
        )
        .unwrap();
        let (am, bm) = (a.as_real().unwrap(), b.as_real().unwrap());
        let j = j[0].as_real().unwrap();
        assert_eq!(j.shape(), (4, 6));
        for r in 0..4 {
            for c in 0..6 {
                let (i, k) = (r % 2, r / 2);
                let (p, q) = (c % 2, c / 2);
                let want = am[(i, p)] * bm[(q, k)];
                assert!((j[(r, c)] - want).abs() < 1e-14);
            }
        }
        // complex: y = z² (1×1, holomorphic): the realified Jacobian is [[Re 2z, −Im 2z], [Im 2z, Re 2z]]
        let z = complex_matrix(1, 1, 4);
        let zc = z.as_complex().unwrap()[(0, 0)];
        let (_, j) = jacobian(|_, v| v[0].mul(v[0]), std::slice::from_ref(&z)).unwrap();
        let j = j[0].as_real().unwrap();
        let d = zc * 2.0;
        let want = [[d.re, -d.im], [d.im, d.re]];
        for r in 0..2 {
            for c in 0..2 {
                assert!((j[(r, c)] - want[r][c]).abs() < 1e-14);
            }
        }
        // reverse route (more inputs than outputs): y = ‖x‖ with x 1×3
        let x = Value::Real(faer::mat![[3.0, 0.0, 4.0]]);
        let (_, j) = jacobian(|_, v| v[0].norm(), &[x]).unwrap();
        let j = j[0].as_real().unwrap();
        assert!((j[(0, 0)] - 0.6).abs() < 1e-15 && (j[(0, 2)] - 0.8).abs() < 1e-15);
    }

    #[test]
    fn hessian_closed_forms_and_symmetry() {
        // f(A) = log det A: ∂²f/∂Aᵢⱼ∂Aₖₗ = −(A⁻¹)ⱼₖ(A⁻¹)ₗᵢ
        let a = Value::Real(faer::mat![[3.0, 1.0], [0.5, 2.0]]);
        let h = hessian(|_, v| v[0].logdet(), std::slice::from_ref(&a)).unwrap();
        let h = h[0][0].as_real().unwrap();
        let am = a.as_real().unwrap();
        let inv = faer::linalg::solvers::DenseSolveCore::inverse(&am.as_ref().partial_piv_lu());
        for r in 0..4 {
            for c in 0..4 {
                let (i, j) = (r % 2, r / 2);
                let (k, l) = (c % 2, c / 2);
                let want = -inv[(j, k)] * inv[(l, i)];
                assert!((h[(r, c)] - want).abs() < 1e-13, "({r},{c})");
            }
        }
        // two complex inputs: a real loss Re Σ conj(x) ∘ y has a symmetric realified Hessian
        let (x, y) = (complex_matrix(2, 1, 5), complex_matrix(2, 1, 6));
        let h = hessian(|_, v| v[0].dot_real(v[1]), &[x, y]).unwrap();
        let h01 = h[0][1].as_real().unwrap();
        let h10 = h[1][0].as_real().unwrap();
        for r in 0..4 {
            for c in 0..4 {
                assert!((h01[(r, c)] - h10[(c, r)]).abs() < 1e-15);
                assert!((h01[(r, c)] - f64::from(u8::from(r == c))).abs() < 1e-15);
            }
        }
        let _ = Axis::All;
    }
}
