//! The gradient checker: verify any function's adjoint and tangent rules numerically.
//!
//! For a function `f(X₁, …, X_k) → Y` built from engine ops (including your own [`Op`]s),
//! [`check`] draws a random cotangent `Ȳ` and random tangents `Ẋᵢ` (seeded) and measures:
//!
//! - **VJP vs finite differences**: the directional derivative of `φ(X) = Re⟨Ȳ, f(X)⟩`
//!   along `Ẋ`, by central differences with Richardson extrapolation over a sweep of steps
//!   (the step whose estimate is most stable wins), against `Σ Re⟨X̄ᵢ, Ẋᵢ⟩` from the VJP;
//! - **JVP vs finite differences**: the same number against `Re⟨Ȳ, Ẏ⟩` from the JVP;
//! - **the dot-product identity** `Re⟨Ȳ, J Ẋ⟩ = Σ Re⟨Jᴴ Ȳ, Ẋ⟩`, which involves no step and
//!   must hold to near machine precision when the two rules are adjoint to each other;
//! - **second order**: the Hessian-vector product of `φ` (reverse-over-reverse through
//!   the recorded backward pass) against central differences of the gradient.
//!
//! Errors are scale-free: a difference divided by the Cauchy–Schwarz bound of the
//! quantities compared, so a check cannot pass merely because the numbers are small.
//!
//! [`Op`]: crate::Op
//!
//! ```
//! use matgrad_engine::{check::{check, CheckOptions}, testing::real_matrix};
//! # fn main() -> Result<(), matgrad_engine::EngineError> {
//! let report = check(|_, x| x[0].matmul(x[0])?.trace(), &[real_matrix(3, 3, 7)], &CheckOptions::default())?;
//! assert!(report.passed, "{report}");
//! # Ok(()) }
//! ```

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{EngineError, Result};
use crate::tape::{Tape, Var};
use crate::value::{DType, Value, C64};

/// Named tolerance presets. Each bound applies to the scale-free error described in the
/// module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// VJP and JVP against finite differences.
    pub fd: f64,
    /// The JVP/VJP dot-product identity.
    pub dot: f64,
    /// Hessian-vector product against finite differences of the gradient.
    pub second: f64,
}

impl Tolerance {
    /// For `f64` rules on well-conditioned inputs: Richardson-extrapolated central
    /// differences reach ≈1e-10 there, so 1e-7 leaves room for conditioning while still
    /// failing any wrong term; the dot product involves no step, so only rounding
    /// (≈ n·ε) separates the two sides; the second-order check differences a gradient,
    /// which costs about three digits more than the first-order one.
    pub const STRICT: Tolerance = Tolerance {
        fd: 1e-7,
        dot: 1e-12,
        second: 1e-6,
    };
    /// For moderately ill-conditioned inputs (condition numbers up to ≈1e4).
    pub const BALANCED: Tolerance = Tolerance {
        fd: 1e-5,
        dot: 1e-10,
        second: 1e-4,
    };
    /// For badly conditioned inputs or near-degenerate spectra.
    pub const PERMISSIVE: Tolerance = Tolerance {
        fd: 1e-3,
        dot: 1e-8,
        second: 1e-2,
    };
}

/// Which orders to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// VJP, JVP and the dot-product identity.
    First,
    /// Also the Hessian-vector product.
    Second,
}

/// Options for [`check`].
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Pass/fail bounds.
    pub tolerance: Tolerance,
    /// Number of random (cotangent, tangent) pairs; the worst error is reported.
    pub directions: usize,
    /// Seed for the random directions.
    pub seed: u64,
    /// Orders to check.
    pub order: Order,
    /// Candidate finite-difference steps, relative to `max(1, max|X|) / max|Ẋ|`.
    pub steps: Vec<f64>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            tolerance: Tolerance::STRICT,
            directions: 2,
            seed: 0x5eed,
            order: Order::Second,
            steps: vec![
                1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6,
            ],
        }
    }
}

/// What [`check`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// Worst VJP-vs-finite-difference error.
    pub vjp_fd_error: f64,
    /// Worst JVP-vs-finite-difference error.
    pub jvp_fd_error: f64,
    /// The finite-difference step used for the worst case (relative, see [`CheckOptions::steps`]).
    pub fd_step: f64,
    /// Worst JVP/VJP dot-product error.
    pub dot_product_error: f64,
    /// Worst second-order error, if checked.
    pub second_order_error: Option<f64>,
    /// The step used for the worst second-order case.
    pub second_order_step: Option<f64>,
    /// Tolerance applied.
    pub tolerance: Tolerance,
    /// True when every error is within tolerance.
    pub passed: bool,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "vjp-fd {:.2e} (≤ {:.0e}), jvp-fd {:.2e}, dot {:.2e} (≤ {:.0e}), second {} (≤ {:.0e}), step {:.0e}: {}",
            self.vjp_fd_error,
            self.tolerance.fd,
            self.jvp_fd_error,
            self.dot_product_error,
            self.tolerance.dot,
            self.second_order_error.map_or("-".to_string(), |e| format!("{e:.2e}")),
            self.tolerance.second,
            self.fd_step,
            if self.passed { "pass" } else { "FAIL" }
        )
    }
}

/// A random value with standard normal entries (both parts for complex).
pub fn random_like(v: &Value, rng: &mut StdRng) -> Value {
    let (m, n) = v.shape();
    random_value(v.dtype(), m, n, rng)
}

/// A random `m×n` value of the given dtype with standard normal entries.
pub fn random_value(dtype: DType, m: usize, n: usize, rng: &mut StdRng) -> Value {
    match dtype {
        DType::F64 => Value::Real(faer::Mat::from_fn(m, n, |_, _| StandardNormal.sample(rng))),
        DType::C64 => Value::Complex(faer::Mat::from_fn(m, n, |_, _| {
            C64::new(StandardNormal.sample(rng), StandardNormal.sample(rng))
        })),
    }
}

fn eval_output<F>(f: &F, xs: &[Value]) -> Result<Value>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let vars = xs
        .iter()
        .map(|x| tape.constant(x.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok(f(&tape, &vars)?.value())
}

fn eval_grad<F>(f: &F, xs: &[Value], ybar: &Value) -> Result<Vec<Value>>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let vars = xs
        .iter()
        .map(|x| tape.leaf(x.clone()))
        .collect::<Result<Vec<_>>>()?;
    let y = f(&tape, &vars)?;
    tape.vjp(&[y], std::slice::from_ref(ybar), &vars)
}

fn shifted(xs: &[Value], dirs: &[Value], h: f64) -> Result<Vec<Value>> {
    xs.iter().zip(dirs).map(|(x, d)| x.axpy(h, d)).collect()
}

/// Central differences with one Richardson step, over a sweep of steps; returns the most
/// stable estimate and its step. `g(h)` evaluates the quantity at `X + hẊ`.
fn richardson<G>(g: G, steps: &[f64], scale: f64) -> Option<(Vec<f64>, f64)>
where
    G: Fn(f64) -> Result<Vec<f64>>,
{
    let central = |h: f64| -> Option<Vec<f64>> {
        let p = g(h).ok()?;
        let m = g(-h).ok()?;
        Some(p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect())
    };
    let estimates: Vec<Option<Vec<f64>>> = steps
        .iter()
        .map(|&s| {
            let h = s * scale;
            let d1 = central(h)?;
            let d2 = central(h / 2.0)?;
            Some(
                d1.iter()
                    .zip(&d2)
                    .map(|(a, b)| (4.0 * b - a) / 3.0)
                    .collect(),
            )
        })
        .collect();
    let mut best: Option<(f64, usize)> = None;
    for i in 0..estimates.len() {
        let Some(e) = &estimates[i] else { continue };
        // Stability: distance to the nearest neighbouring estimate.
        let mut d = f64::INFINITY;
        for j in [i.wrapping_sub(1), i + 1] {
            if let Some(Some(o)) = estimates.get(j) {
                let diff = e
                    .iter()
                    .zip(o)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                d = d.min(diff);
            }
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, i));
        }
    }
    best.map(|(_, i)| (estimates[i].clone().unwrap_or_default(), steps[i]))
}

fn flatten(vs: &[Value]) -> Vec<f64> {
    let mut out = Vec::new();
    for v in vs {
        match v {
            Value::Real(m) => {
                for c in m.col_iter() {
                    out.extend(c.iter().copied());
                }
            }
            Value::Complex(m) => {
                for c in m.col_iter() {
                    for z in c.iter() {
                        out.push(z.re);
                        out.push(z.im);
                    }
                }
            }
        }
    }
    out
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn ratio(num: f64, den: f64) -> f64 {
    if num == 0.0 {
        0.0
    } else if den == 0.0 {
        f64::INFINITY
    } else {
        num / den
    }
}

/// Checks the VJP, JVP and (optionally) second-order rules of `f` at `inputs`.
///
/// `f` receives the tape and one `Var` per input and returns the output (any shape).
///
/// # Errors
/// Errors from `f` at the unperturbed point, or invalid inputs (empty, non-finite). Errors
/// at perturbed points only remove that step from the sweep.
pub fn check<F>(f: F, inputs: &[Value], opts: &CheckOptions) -> Result<CheckReport>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    if inputs.is_empty() {
        return Err(EngineError::InvalidArgument {
            op: "check",
            message: "no inputs to check".into(),
        });
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let x_scale = inputs.iter().map(Value::max_abs).fold(1.0, f64::max);
    let mut report = CheckReport {
        vjp_fd_error: 0.0,
        jvp_fd_error: 0.0,
        fd_step: 0.0,
        dot_product_error: 0.0,
        second_order_error: None,
        second_order_step: None,
        tolerance: opts.tolerance,
        passed: true,
    };
    for _ in 0..opts.directions.max(1) {
        let tape = Tape::new();
        let xs = inputs
            .iter()
            .map(|x| tape.leaf(x.clone()))
            .collect::<Result<Vec<_>>>()?;
        let y = f(&tape, &xs)?;
        let y_val = y.value();
        let ybar = random_like(&y_val, &mut rng);
        let xdots: Vec<Value> = inputs.iter().map(|x| random_like(x, &mut rng)).collect();
        let xbars = tape.vjp(&[y], std::slice::from_ref(&ybar), &xs)?;
        let ydot = tape.jvp(&xs, &xdots, &[y])?.remove(0);

        let lhs = ybar.real_inner(&ydot)?;
        let mut rhs = 0.0;
        let mut cs_bound = 0.0;
        for (xb, xd) in xbars.iter().zip(&xdots) {
            rhs += xb.real_inner(xd)?;
            cs_bound += xb.norm() * xd.norm();
        }
        let dot_err = ratio((lhs - rhs).abs(), ybar.norm() * ydot.norm() + cs_bound);

        let dir_scale = xdots
            .iter()
            .map(Value::max_abs)
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let phi = |h: f64| -> Result<Vec<f64>> {
            let out = eval_output(&f, &shifted(inputs, &xdots, h)?)?;
            Ok(vec![ybar.real_inner(&out)?])
        };
        let (fd, step) = richardson(phi, &opts.steps, x_scale / dir_scale).ok_or_else(|| EngineError::InvalidArgument {
            op: "check",
            message: "every finite-difference step failed to evaluate; the function errors near this point".into(),
        })?;
        let fd = fd[0];
        let vjp_err = ratio((fd - rhs).abs(), fd.abs().max(cs_bound));
        let jvp_err = ratio((fd - lhs).abs(), fd.abs().max(ybar.norm() * ydot.norm()));
        if vjp_err.max(jvp_err) >= report.vjp_fd_error.max(report.jvp_fd_error) {
            report.fd_step = step;
        }
        report.vjp_fd_error = report.vjp_fd_error.max(vjp_err);
        report.jvp_fd_error = report.jvp_fd_error.max(jvp_err);
        report.dot_product_error = report.dot_product_error.max(dot_err);

        if opts.order == Order::Second {
            let (err, step) =
                second_order(&f, inputs, &ybar, &xdots, &opts.steps, x_scale / dir_scale)?;
            if err >= report.second_order_error.unwrap_or(0.0) {
                report.second_order_step = Some(step);
            }
            report.second_order_error = Some(report.second_order_error.unwrap_or(0.0).max(err));
        }
    }
    let t = opts.tolerance;
    report.passed = report.vjp_fd_error <= t.fd
        && report.jvp_fd_error <= t.fd
        && report.dot_product_error <= t.dot
        && report.second_order_error.is_none_or(|e| e <= t.second);
    Ok(report)
}

/// Hessian-vector product of `φ(X) = Re⟨Ȳ, f(X)⟩` along `Ẋ`, by reverse-over-reverse,
/// against central differences of the gradient.
fn second_order<F>(
    f: &F,
    inputs: &[Value],
    ybar: &Value,
    xdots: &[Value],
    steps: &[f64],
    scale: f64,
) -> Result<(f64, f64)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let hv = hvp_of(f, inputs, ybar, xdots)?;
    let hv_flat = flatten(&hv);
    let g0 = flatten(&eval_grad(f, inputs, ybar)?);
    let grad_at = |h: f64| -> Result<Vec<f64>> {
        Ok(flatten(&eval_grad(f, &shifted(inputs, xdots, h)?, ybar)?))
    };
    let (fd, step) =
        richardson(grad_at, steps, scale).ok_or_else(|| EngineError::InvalidArgument {
            op: "check",
            message: "every finite-difference step of the gradient failed to evaluate".into(),
        })?;
    let diff: Vec<f64> = fd.iter().zip(&hv_flat).map(|(a, b)| a - b).collect();
    let x_norm = norm(&flatten(inputs)).max(1.0);
    let floor = norm(&g0) * norm(&flatten(xdots)) / x_norm;
    Ok((
        ratio(norm(&diff), norm(&fd).max(norm(&hv_flat)).max(floor)),
        step,
    ))
}

/// Hessian-vector product of `φ(X) = Re⟨Ȳ, f(X)⟩` along `Ẋ` (reverse-over-reverse).
///
/// # Errors
/// Errors from `f` or from a rule that cannot be recorded.
pub fn hvp_of<F>(f: &F, inputs: &[Value], ybar: &Value, xdots: &[Value]) -> Result<Vec<Value>>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let tape = Tape::new();
    let xs = inputs
        .iter()
        .map(|x| tape.leaf(x.clone()))
        .collect::<Result<Vec<_>>>()?;
    let y = f(&tape, &xs)?;
    let ybar_v = tape.constant(ybar.clone())?;
    let gs = tape.vjp_graph(&[y], &[ybar_v], &xs)?;
    let mut s: Option<Var<'_>> = None;
    for (g, d) in gs.iter().zip(xdots) {
        let term = g.dot_real(tape.constant(d.clone())?)?;
        s = Some(match s {
            Some(acc) => acc.add(term)?,
            None => term,
        });
    }
    let s = s.ok_or_else(|| EngineError::InvalidArgument {
        op: "hvp",
        message: "no inputs".into(),
    })?;
    tape.grad(s, &xs)
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::{check, CheckOptions, Order};
    use crate::testing::real_matrix;
    use crate::{Op, OpCtx, Result, Var};

    /// `y = x²` entrywise with rules that can be broken on purpose.
    struct Square {
        vjp_factor: f64,
        jvp_factor: f64,
        /// Use a constant for x in the VJP, so the rule is right to first order but its
        /// recorded backward pass misses the second derivative.
        detach_in_vjp: bool,
    }

    impl Op for Square {
        fn name(&self) -> &'static str {
            "square"
        }
        fn vjp<'t>(
            &self,
            ctx: &OpCtx<'_, 't>,
            ct: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            let x = if self.detach_in_vjp {
                ctx.input(0).detach()
            } else {
                ctx.input(0)
            };
            Ok(vec![ct[0]
                .map(|g| g.mul(x)?.scale(2.0 * self.vjp_factor))
                .transpose()?])
        }
        fn jvp<'t>(
            &self,
            ctx: &OpCtx<'_, 't>,
            t: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            Ok(vec![t[0]
                .map(|d| d.mul(ctx.input(0))?.scale(2.0 * self.jvp_factor))
                .transpose()?])
        }
    }

    fn square(x: Var<'_>, op: Square) -> Result<Var<'_>> {
        let v = x.value();
        let r = v.as_real().unwrap();
        let y = faer::Mat::from_fn(r.nrows(), r.ncols(), |i, j| r[(i, j)] * r[(i, j)]);
        x.tape().record1(Rc::new(op), &[x], crate::Value::Real(y))
    }

    fn run(vjp_factor: f64, jvp_factor: f64, detach_in_vjp: bool) -> super::CheckReport {
        check(
            |_, x| {
                square(
                    x[0],
                    Square {
                        vjp_factor,
                        jvp_factor,
                        detach_in_vjp,
                    },
                )
            },
            &[real_matrix(2, 3, 1)],
            &CheckOptions {
                order: Order::Second,
                ..CheckOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn correct_rules_pass() {
        let r = run(1.0, 1.0, false);
        assert!(r.passed, "{r}");
        assert!(r.dot_product_error < 1e-14, "{r}");
        assert!(r.vjp_fd_error < 1e-9, "{r}");
    }

    #[test]
    fn wrong_vjp_fails_fd_and_dot() {
        let r = run(1.0 + 1e-5, 1.0, false);
        assert!(!r.passed);
        assert!(r.vjp_fd_error > 1e-6 && r.dot_product_error > 1e-7, "{r}");
        assert!(r.jvp_fd_error < 1e-9, "the JVP is still right: {r}");
    }

    #[test]
    fn wrong_jvp_fails_fd_and_dot() {
        let r = run(1.0, 0.999, false);
        assert!(!r.passed);
        assert!(r.jvp_fd_error > 1e-4 && r.dot_product_error > 1e-5, "{r}");
        assert!(r.vjp_fd_error < 1e-9, "the VJP is still right: {r}");
    }

    #[test]
    fn non_recordable_vjp_fails_second_order_only() {
        let r = run(1.0, 1.0, true);
        assert!(!r.passed);
        assert!(r.vjp_fd_error < 1e-9 && r.dot_product_error < 1e-13, "{r}");
        assert!(r.second_order_error.unwrap() > 0.1, "{r}");
    }
}
