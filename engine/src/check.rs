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
//! - **second order**: the Hessian-vector product of `φ` computed two ways — reverse over
//!   reverse (differentiating the recorded backward pass) and forward over reverse (the JVP
//!   of the recorded gradient, which runs the JVP rules of every rule's nodes) — each
//!   against central differences of the gradient, and against each other.
//!
//! Errors are scale-free: a difference divided by the Cauchy–Schwarz bound of the
//! quantities compared, so a check cannot pass merely because the numbers are small. The
//! one floor is rounding: a derivative cannot be resolved below `ε·‖ȳ‖·‖f(X)‖·‖Ẋ‖/‖X‖`
//! (the size of `φ`'s rounding over the scale of X), so a function whose derivative is zero
//! (a projector of full rank) is not failed for returning rounding noise.
//!
//! Inputs with a restricted domain get directions that respect it: [`Domain::Hermitian`]
//! draws Hermitian directions (an op that reads only `sym(A)` has no derivative in the
//! skew directions the checker would otherwise probe).
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

/// The domain of an input, which decides the random directions drawn for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Domain {
    /// Any matrix of the input's shape and dtype.
    #[default]
    General,
    /// Hermitian (symmetric when real) matrices: the op reads `sym(A)`, and the directions
    /// are `sym` of Gaussian matrices.
    Hermitian,
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
    /// The domain of each input (missing entries are [`Domain::General`]).
    pub domains: Vec<Domain>,
}

impl CheckOptions {
    /// The options with every input in `domain`.
    pub fn with_domain(mut self, domain: Domain, inputs: usize) -> Self {
        self.domains = vec![domain; inputs];
        self
    }
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
            domains: Vec::new(),
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
    /// Worst second-order error (either Hessian-vector product against finite differences
    /// of the gradient, or the two against each other), if checked.
    pub second_order_error: Option<f64>,
    /// Worst difference between the reverse-over-reverse and forward-over-reverse
    /// Hessian-vector products (relative), if checked.
    pub hvp_modes_error: Option<f64>,
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
            "vjp-fd {:.2e} (≤ {:.0e}), jvp-fd {:.2e}, dot {:.2e} (≤ {:.0e}), second {} (≤ {:.0e}; rev vs fwd-over-rev {}), step {:.0e}: {}",
            self.vjp_fd_error,
            self.tolerance.fd,
            self.jvp_fd_error,
            self.dot_product_error,
            self.tolerance.dot,
            self.second_order_error.map_or("-".to_string(), |e| format!("{e:.2e}")),
            self.tolerance.second,
            self.hvp_modes_error.map_or("-".to_string(), |e| format!("{e:.1e}")),
            self.fd_step,
            if self.passed { "pass" } else { "FAIL" }
        )
    }
}

/// A random direction for an input of `domain`: Gaussian, or its Hermitian part.
pub fn random_in(domain: Domain, v: &Value, rng: &mut StdRng) -> Value {
    let r = random_like(v, rng);
    match domain {
        Domain::Hermitian if v.nrows() == v.ncols() => r.hermitian_part(),
        _ => r,
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
/// A finite-difference estimate, its step, and a bound on its rounding error
/// (`8ε·max‖g‖/h` over the evaluations it used: a central difference of values known to
/// `ε‖g‖` cannot resolve less).
struct Fd {
    value: Vec<f64>,
    step: f64,
    noise: f64,
    /// The largest central difference seen over the sweep: how much the quantity varies
    /// across the sampled neighbourhood.
    spread: f64,
}

fn richardson<G>(g: G, steps: &[f64], scale: f64) -> std::result::Result<Fd, EngineError>
where
    G: Fn(f64) -> Result<Vec<f64>>,
{
    let last_error = std::cell::RefCell::new(None);
    let eval = |h: f64| -> Option<Vec<f64>> {
        match g(h) {
            Ok(v) => Some(v),
            Err(e) => {
                *last_error.borrow_mut() = Some(e);
                None
            }
        }
    };
    let spread = std::cell::Cell::new(0.0f64);
    let central = |h: f64| -> Option<(Vec<f64>, f64)> {
        let p = eval(h)?;
        let m = eval(-h)?;
        let size = norm(&p).max(norm(&m));
        let d: Vec<f64> = p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        spread.set(spread.get().max(norm(&d)));
        Some((d, size))
    };
    let estimates: Vec<Option<(Vec<f64>, f64)>> = steps
        .iter()
        .map(|&s| {
            let h = s * scale;
            let (d1, s1) = central(h)?;
            let (d2, s2) = central(h / 2.0)?;
            Some((
                d1.iter()
                    .zip(&d2)
                    .map(|(a, b)| (4.0 * b - a) / 3.0)
                    .collect(),
                8.0 * f64::EPSILON * s1.max(s2) / h,
            ))
        })
        .collect();
    let mut best: Option<(f64, usize)> = None;
    for i in 0..estimates.len() {
        let Some((e, _)) = &estimates[i] else {
            continue;
        };
        // Stability: distance to the nearest neighbouring estimate.
        let mut d = f64::INFINITY;
        for j in [i.wrapping_sub(1), i + 1] {
            if let Some(Some((o, _))) = estimates.get(j) {
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
    match best {
        Some((_, i)) => {
            let (value, noise) = estimates[i].clone().unwrap_or_default();
            Ok(Fd {
                value,
                step: steps[i],
                noise,
                spread: spread.get(),
            })
        }
        None => {
            let cause = last_error
                .into_inner()
                .map_or("no step was tried".to_string(), |e| e.to_string());
            Err(EngineError::InvalidArgument {
                op: "check",
                message: format!(
                    "every finite-difference step failed to evaluate; the function errors near this point: {cause}. If the op reads only sym(A), give the input Domain::Hermitian (CheckOptions::domains) so that the directions stay symmetric"
                ),
            })
        }
    }
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
        hvp_modes_error: None,
        second_order_step: None,
        tolerance: opts.tolerance,
        passed: true,
    };
    let domain = |k: usize| opts.domains.get(k).copied().unwrap_or_default();
    for _ in 0..opts.directions.max(1) {
        let tape = Tape::new();
        let xs = inputs
            .iter()
            .map(|x| tape.leaf(x.clone()))
            .collect::<Result<Vec<_>>>()?;
        let y = f(&tape, &xs)?;
        let y_val = y.value();
        let ybar = random_like(&y_val, &mut rng);
        let xdots: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(k, x)| random_in(domain(k), x, &mut rng))
            .collect();
        let xbars = tape.vjp(&[y], std::slice::from_ref(&ybar), &xs)?;
        let ydot = tape.jvp(&xs, &xdots, &[y])?.remove(0);

        let lhs = ybar.real_inner(&ydot)?;
        let mut rhs = 0.0;
        let mut cs_bound = 0.0;
        for (xb, xd) in xbars.iter().zip(&xdots) {
            rhs += xb.real_inner(xd)?;
            cs_bound += xb.norm() * xd.norm();
        }
        // rounding floor: φ = Re⟨Ȳ, f(X)⟩ is known to ≈ ε‖Ȳ‖‖f(X)‖, over the scale of X
        let x_norm = norm(&flatten(inputs)).max(f64::MIN_POSITIVE);
        let xdot_norm = norm(&flatten(&xdots));
        let floor = 16.0 * f64::EPSILON * ybar.norm() * y_val.norm() * xdot_norm / x_norm;
        let dot_err = ratio(
            (lhs - rhs).abs(),
            (ybar.norm() * ydot.norm() + cs_bound).max(floor),
        );

        let dir_scale = xdots
            .iter()
            .map(Value::max_abs)
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let phi = |h: f64| -> Result<Vec<f64>> {
            let out = eval_output(&f, &shifted(inputs, &xdots, h)?)?;
            Ok(vec![ybar.real_inner(&out)?])
        };
        let est = richardson(phi, &opts.steps, x_scale / dir_scale)?;
        let (fd, step, noise) = (est.value[0], est.step, est.noise);
        // a disagreement within the estimate's own rounding error is no evidence, and a
        // derivative below √ε times the variation across the sampled neighbourhood is zero
        // to the precision finite differences reach (a critical point: det at rank n−2)
        let beyond = |d: f64| (d - noise).max(0.0);
        let floor = floor.max(f64::EPSILON.sqrt() * est.spread);
        let vjp_err = ratio(beyond((fd - rhs).abs()), fd.abs().max(cs_bound).max(floor));
        let jvp_err = ratio(
            beyond((fd - lhs).abs()),
            fd.abs().max(ybar.norm() * ydot.norm()).max(floor),
        );
        if vjp_err.max(jvp_err) >= report.vjp_fd_error.max(report.jvp_fd_error) {
            report.fd_step = step;
        }
        report.vjp_fd_error = report.vjp_fd_error.max(vjp_err);
        report.jvp_fd_error = report.jvp_fd_error.max(jvp_err);
        report.dot_product_error = report.dot_product_error.max(dot_err);

        if opts.order == Order::Second {
            let (err, modes, step) =
                second_order(&f, inputs, &ybar, &xdots, &opts.steps, x_scale / dir_scale)?;
            if err >= report.second_order_error.unwrap_or(0.0) {
                report.second_order_step = Some(step);
            }
            report.second_order_error = Some(report.second_order_error.unwrap_or(0.0).max(err));
            report.hvp_modes_error = Some(report.hvp_modes_error.unwrap_or(0.0).max(modes));
        }
    }
    let t = opts.tolerance;
    report.passed = report.vjp_fd_error <= t.fd
        && report.jvp_fd_error <= t.fd
        && report.dot_product_error <= t.dot
        && report.second_order_error.is_none_or(|e| e <= t.second);
    Ok(report)
}

/// Hessian-vector product of `φ(X) = Re⟨Ȳ, f(X)⟩` along `Ẋ`, by reverse over reverse and
/// by forward over reverse, each against central differences of the gradient; returns the
/// worst of the two errors, their mutual difference and the step.
fn second_order<F>(
    f: &F,
    inputs: &[Value],
    ybar: &Value,
    xdots: &[Value],
    steps: &[f64],
    scale: f64,
) -> Result<(f64, f64, f64)>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let hv = flatten(&hvp_of(f, inputs, ybar, xdots)?);
    let hv_fwd = flatten(&hvp_fwd_of(f, inputs, ybar, xdots)?);
    let g0 = flatten(&eval_grad(f, inputs, ybar)?);
    let grad_at = |h: f64| -> Result<Vec<f64>> {
        Ok(flatten(&eval_grad(f, &shifted(inputs, xdots, h)?, ybar)?))
    };
    let est = richardson(grad_at, steps, scale)?;
    let (fd, step) = (est.value, est.step);
    let x_norm = norm(&flatten(inputs)).max(1.0);
    let floor = (norm(&g0) * norm(&flatten(xdots)) / x_norm).max(f64::EPSILON.sqrt() * est.spread);
    let err = |a: &[f64], b: &[f64], noise: f64| -> f64 {
        let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        ratio(
            (norm(&diff) - noise).max(0.0),
            norm(a).max(norm(b)).max(floor),
        )
    };
    let modes = err(&hv, &hv_fwd, 0.0);
    Ok((
        err(&fd, &hv, est.noise)
            .max(err(&fd, &hv_fwd, est.noise))
            .max(modes),
        modes,
        step,
    ))
}

/// Hessian-vector product of `φ(X) = Re⟨Ȳ, f(X)⟩` along `Ẋ` by forward over reverse: the
/// JVP of the recorded gradient. It runs the JVP rules of the nodes that VJP rules record.
///
/// # Errors
/// Errors from `f` or from a rule.
pub fn hvp_fwd_of<F>(f: &F, inputs: &[Value], ybar: &Value, xdots: &[Value]) -> Result<Vec<Value>>
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
    tape.jvp(&xs, xdots, &gs)
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

    /// `y = 2x` with a JVP that can be broken: recorded by a VJP rule, it is reached only by
    /// forward-over-reverse.
    struct Twice {
        jvp_factor: f64,
    }

    impl Op for Twice {
        fn name(&self) -> &'static str {
            "twice"
        }
        fn vjp<'t>(
            &self,
            _: &OpCtx<'_, 't>,
            ct: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            Ok(vec![ct[0].map(|g| g.scale(2.0)).transpose()?])
        }
        fn jvp<'t>(
            &self,
            _: &OpCtx<'_, 't>,
            t: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            Ok(vec![t[0].map(|d| d.scale(self.jvp_factor)).transpose()?])
        }
    }

    /// `y = x²` whose VJP `x̄ = twice(ȳ ∘ x)` records a `Twice` node.
    struct SquareViaTwice {
        jvp_factor: f64,
    }

    impl Op for SquareViaTwice {
        fn name(&self) -> &'static str {
            "square_via_twice"
        }
        fn vjp<'t>(
            &self,
            ctx: &OpCtx<'_, 't>,
            ct: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            let Some(g) = ct[0] else {
                return Ok(vec![None]);
            };
            let gx = g.mul(ctx.input(0))?;
            let v = gx.value();
            let out = gx.with_value(|_| v.axpy(1.0, &v))?;
            let op = Rc::new(Twice {
                jvp_factor: self.jvp_factor,
            });
            Ok(vec![Some(gx.tape().record1(op, &[gx], out)?)])
        }
        fn jvp<'t>(
            &self,
            ctx: &OpCtx<'_, 't>,
            t: &[Option<Var<'t>>],
        ) -> Result<Vec<Option<Var<'t>>>> {
            Ok(vec![t[0]
                .map(|d| d.mul(ctx.input(0))?.scale(2.0))
                .transpose()?])
        }
    }

    /// A JVP rule of a node that only a VJP rule records is exercised only by
    /// forward-over-reverse; a bug there passes every other check.
    #[test]
    fn broken_jvp_of_a_rule_node_fails_forward_over_reverse_only() {
        let run = |jvp_factor: f64| {
            check(
                |_, x| {
                    let v = x[0].value();
                    let r = v.as_real().unwrap();
                    let y = faer::Mat::from_fn(r.nrows(), r.ncols(), |i, j| r[(i, j)] * r[(i, j)]);
                    x[0].tape().record1(
                        Rc::new(SquareViaTwice { jvp_factor }),
                        &[x[0]],
                        crate::Value::Real(y),
                    )
                },
                &[real_matrix(2, 2, 3)],
                &CheckOptions::default(),
            )
            .unwrap()
        };
        let good = run(2.0);
        assert!(good.passed, "{good}");
        let bad = run(2.5);
        assert!(!bad.passed);
        assert!(
            bad.vjp_fd_error < 1e-9 && bad.dot_product_error < 1e-13,
            "{bad}"
        );
        assert!(bad.hvp_modes_error.unwrap() > 0.1, "{bad}");
    }

    /// An op that reads a Hermitian input fails under general directions with an error that
    /// names the cause, and passes with `Domain::Hermitian` (issue 8, item 4).
    #[test]
    fn hermitian_domain_directions() {
        let a = crate::testing::spd_from_seed(3, 10.0, 1);
        let err = check(
            |_, x| x[0].cholesky(),
            std::slice::from_ref(&a),
            &CheckOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not symmetric") && err.contains("Domain::Hermitian"),
            "{err}"
        );
        let opts = CheckOptions::default().with_domain(super::Domain::Hermitian, 1);
        let r = check(|_, x| x[0].cholesky(), &[a], &opts).unwrap();
        assert!(r.passed, "{r}");
    }

    #[test]
    fn non_recordable_vjp_fails_second_order_only() {
        let r = run(1.0, 1.0, true);
        assert!(!r.passed);
        assert!(r.vjp_fd_error < 1e-9 && r.dot_product_error < 1e-13, "{r}");
        assert!(r.second_order_error.unwrap() > 0.1, "{r}");
    }
}
