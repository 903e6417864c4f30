//! Entrywise ops: the Hadamard product `mul`, the quotient `div`, and the pointwise
//! functions of [`Pointwise`] (exp, log, sqrt, powf, tanh, sigmoid, relu, abs, softplus).
//!
//! - `C = A ∘ B`: `Ċ = Ȧ ∘ B + A ∘ Ḃ`; `Ā = C̄ ∘ conj(B)`, `B̄ = C̄ ∘ conj(A)`.
//! - `C = A ⊘ B`: `Ċ = (Ȧ − C ∘ Ḃ) ⊘ B`; `Ā = C̄ ⊘ conj(B)`, `B̄ = −Ā ∘ conj(C)`.
//! - `y = f(x)` entrywise, `f` holomorphic (exp, log, sqrt, powf, tanh, sigmoid):
//!   `ẏ = f′(x) ∘ ẋ`; `x̄ = ȳ ∘ conj(f′(x))`, with `f′` written through the output where that
//!   is cheaper: exp → y, tanh → 1 − y², sigmoid → y(1 − y), sqrt → 1/(2y).
//! - real-only, piecewise smooth (relu, abs on reals): `f′` is the constant mask
//!   `1[x>0]` or `sign(x)`, 0 at the kink (PyTorch's convention).
//! - softplus `log(1 + eˣ)` (real): `f′ = sigmoid(x)`.
//! - abs of complex `z`: `y = |z|` real; `ẏ = Re(conj(z) ż)/|z|`, `z̄ = ȳ z/|z|`.
//!
//! Kinks: `abs` (real or complex), `relu` and `norm` at 0 all use the zero subgradient
//! (the minimum-norm element of the subdifferential; PyTorch's `sgn(0) = 0`). `sqrt` and
//! `powf` with `p < 1` have an infinite derivative at 0: their rules refuse with
//! [`EngineError::NotDifferentiable`] naming the entry.
//!
//! Overflow: real and complex `sigmoid` use the two-branch form (no exponential of modulus
//! above 1); complex `tanh` returns `±1 + i·4 sin y cos y e^{−2|x|}` beyond |Re z| = 22,
//! where the textbook formula overflows (PyTorch: ±1, gradient 0).
//!
//! Domains: log needs x > 0 (real) or x ≠ 0 (complex); sqrt x ≥ 0 (real); powf with a
//! non-integer exponent x ≥ 0 (real). Outside: [`EngineError::Domain`].
//! Derivation: docs/math/elementwise.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::ops::{add_opt, constant_like, ew1, ew2, real_only, same_dtype, same_shape};
use crate::tape::{same_tape, Ct, Op, OpCtx, Var};
use crate::value::{DType, Scalar, Value, C64};
use crate::{map_value, map_value2};

/// A pointwise function applied entrywise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    /// `eˣ`.
    Exp,
    /// Natural logarithm (principal branch for complex input).
    Log,
    /// Square root (principal branch for complex input).
    Sqrt,
    /// `xᵖ` for a real exponent `p`.
    Powf(f64),
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1/(1 + e⁻ˣ)`.
    Sigmoid,
    /// `max(x, 0)` (real only).
    Relu,
    /// `|x|` (complex input gives a real output).
    Abs,
    /// `log(1 + eˣ)` (real only).
    Softplus,
}

impl Pointwise {
    fn name(self) -> &'static str {
        match self {
            Pointwise::Exp => "exp",
            Pointwise::Log => "log",
            Pointwise::Sqrt => "sqrt",
            Pointwise::Powf(_) => "powf",
            Pointwise::Tanh => "tanh",
            Pointwise::Sigmoid => "sigmoid",
            Pointwise::Relu => "relu",
            Pointwise::Abs => "abs",
            Pointwise::Softplus => "softplus",
        }
    }

    /// Domain check on one entry; `Some(hint)` when outside.
    fn outside<T: Scalar>(self, x: T) -> Option<&'static str> {
        let real = T::DTYPE == DType::F64;
        match self {
            Pointwise::Log if real && x.re() <= 0.0 => Some("log of a real matrix needs positive entries; shift the input or use to_complex for the principal branch"),
            Pointwise::Log if x.re() == 0.0 && x.im() == 0.0 => Some("log(0) is -inf; add a small positive offset"),
            Pointwise::Sqrt if real && x.re() < 0.0 => Some("sqrt of a real matrix needs nonnegative entries; use to_complex for the principal branch"),
            Pointwise::Powf(p) if real && x.re() < 0.0 && p.fract() != 0.0 => Some("a non-integer power of a negative real number is not real; use to_complex"),
            _ => None,
        }
    }

    fn apply<T: Scalar>(self, x: T) -> T {
        match self {
            Pointwise::Exp => x.exp_s(),
            Pointwise::Log => x.ln_s(),
            Pointwise::Sqrt => x.sqrt_s(),
            Pointwise::Powf(p) => x.powf_s(p),
            Pointwise::Tanh => x.tanh_s(),
            Pointwise::Sigmoid => x.sigmoid_s(),
            Pointwise::Relu => T::from_f64(x.re().max(0.0)),
            Pointwise::Abs => T::from_f64(x.modulus()),
            Pointwise::Softplus => {
                let r = x.re();
                T::from_f64(r.max(0.0) + (-r.abs()).exp().ln_1p())
            }
        }
    }
}

struct Unary {
    f: Pointwise,
}

struct Mul;
struct Div;

fn mask<'t>(x: Var<'t>, f: impl Fn(f64) -> f64) -> Var<'t> {
    let v = x.rc();
    let r = v.as_real().expect("masks are built for real inputs only");
    let (m, n) = r.shape();
    constant_like(x.tape(), DType::F64, m, n, |i, j| (f(r[(i, j)]), 0.0))
}

impl Unary {
    /// `f′(x)` as a Var (holomorphic and real-smooth cases); `None` for complex abs.
    fn derivative<'t>(&self, x: Var<'t>, y: Var<'t>) -> Result<Option<Var<'t>>> {
        Ok(Some(match self.f {
            Pointwise::Exp => y,
            Pointwise::Log => x.powf(-1.0)?,
            Pointwise::Sqrt => y.scale(2.0)?.powf(-1.0)?,
            Pointwise::Powf(p) => {
                if p == 0.0 {
                    return Ok(Some(x.scale(0.0)?.detach()));
                }
                x.powf(p - 1.0)?.scale(p)?
            }
            Pointwise::Tanh => y.mul(y)?.neg()?.add_scalar(1.0)?,
            Pointwise::Sigmoid => y.mul(y.neg()?.add_scalar(1.0)?)?,
            Pointwise::Relu => mask(x, |v| if v > 0.0 { 1.0 } else { 0.0 }),
            Pointwise::Abs if x.dtype() == DType::F64 => mask(x, |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }),
            Pointwise::Abs => return Ok(None),
            Pointwise::Softplus => x.sigmoid()?,
        }))
    }

    /// `ḡ ∘ conj(f′(x))` on values (every case but complex abs), with each entry computed
    /// as [`Unary::derivative`] and `vjp` compute it, operation by operation, so that the
    /// detached sweep gives the recorded sweep's numbers bit for bit.
    fn vjp_entries<T: Scalar>(&self, g: &Mat<T>, x: &Mat<T>, y: &Mat<T>) -> Mat<T> {
        let (one, f) = (T::from_f64(1.0), self.f);
        let d = |x: T, y: T| -> T {
            match f {
                Pointwise::Exp => y,
                Pointwise::Log => x.powf_s(-1.0),
                Pointwise::Sqrt => (y * T::from_f64(2.0)).powf_s(-1.0),
                Pointwise::Powf(0.0) => x * T::from_f64(0.0),
                Pointwise::Powf(p) => x.powf_s(p - 1.0) * T::from_f64(p),
                Pointwise::Tanh => -(y * y) + one,
                Pointwise::Sigmoid => y * (-y + one),
                Pointwise::Relu => T::from_f64(if x.re() > 0.0 { 1.0 } else { 0.0 }),
                Pointwise::Abs => T::from_f64(if x.re() > 0.0 {
                    1.0
                } else if x.re() < 0.0 {
                    -1.0
                } else {
                    0.0
                }),
                Pointwise::Softplus => x.sigmoid_s(),
            }
        };
        crate::ops::ew3(g, x, y, |g, x, y| g * d(x, y).cj())
    }

    /// Errors at an entry where the derivative is infinite (sqrt and powf with p < 1 at 0).
    fn infinite_slope_guard(&self, x: Var<'_>) -> Result<()> {
        let singular = match self.f {
            Pointwise::Sqrt => true,
            Pointwise::Powf(p) => p < 1.0 && p != 0.0,
            _ => false,
        };
        if !singular {
            return Ok(());
        }
        let v = x.rc();
        let (m, n) = v.shape();
        for j in 0..n {
            for i in 0..m {
                let zero = match &*v {
                    Value::Real(a) => a[(i, j)] == 0.0,
                    Value::Complex(a) => a[(i, j)].norm() == 0.0,
                };
                if zero {
                    return Err(EngineError::NotDifferentiable {
                        op: self.f.name(),
                        message: format!(
                            "the derivative is infinite at the entry ({i}, {j}) = 0; shift the input away from 0 (e.g. add a small ε)"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// `1/|z|` where `|z| > 0`, and 0 where `z = 0` (the zero subgradient of complex abs),
    /// as a Var so that the rule stays differentiable.
    fn inv_modulus<'t>(y: Var<'t>) -> Result<Var<'t>> {
        let v = y.rc();
        let r = v.as_real().expect("abs output is real");
        if (0..r.ncols()).all(|j| (0..r.nrows()).all(|i| r[(i, j)] != 0.0)) {
            return y.powf(-1.0);
        }
        let (m, n) = r.shape();
        let keep = constant_like(y.tape(), DType::F64, m, n, |i, j| {
            (if r[(i, j)] != 0.0 { 1.0 } else { 0.0 }, 0.0)
        });
        let pad = constant_like(y.tape(), DType::F64, m, n, |i, j| {
            (if r[(i, j)] != 0.0 { 0.0 } else { 1.0 }, 0.0)
        });
        y.add(pad)?.powf(-1.0)?.mul(keep)
    }
}

impl Op for Unary {
    fn name(&self) -> &'static str {
        self.f.name()
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let (x, y) = (ctx.input(0), ctx.output(0));
        self.infinite_slope_guard(x)?;
        match self.derivative(x, y)? {
            Some(d) => Ok(vec![Some(g.mul(d.conj()?)?)]),
            None => {
                // complex abs: z̄ = ȳ z / |z| (0 at z = 0)
                let r = Unary::inv_modulus(y)?;
                Ok(vec![Some(g.mul(r)?.to_complex()?.mul(x)?)])
            }
        }
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let Some(g) = &ct[0] else {
            out.push(None);
            return Ok(true);
        };
        let (x, y) = (ctx.input(0), ctx.output(0));
        self.infinite_slope_guard(x)?;
        let (xv, yv) = (x.value_rc(), y.value_rc());
        let v = match (&*g.value, &*xv, &*yv) {
            (Value::Real(g), Value::Real(x), Value::Real(y)) => {
                Value::Real(self.vjp_entries(g, x, y))
            }
            (Value::Complex(g), Value::Complex(x), Value::Complex(y)) => {
                Value::Complex(self.vjp_entries(g, x, y))
            }
            // complex abs: z̄ = ȳ z / |z| (0 at z = 0), as `vjp` computes it
            (Value::Real(g), Value::Complex(x), Value::Real(y)) => {
                Value::Complex(crate::pool::from_fn(x.nrows(), x.ncols(), |i, j| {
                    let r = if y[(i, j)] != 0.0 {
                        y[(i, j)].powf_s(-1.0)
                    } else {
                        0.0
                    };
                    C64::new(g[(i, j)] * r, 0.0) * x[(i, j)]
                }))
            }
            _ => return Ok(false),
        };
        // no bound is proved: the sweep scans the result
        out.push(Some(Ct::new(v, f64::INFINITY)));
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(dx) = t[0] else {
            return Ok(vec![None]);
        };
        let (x, y) = (ctx.input(0), ctx.output(0));
        self.infinite_slope_guard(x)?;
        match self.derivative(x, y)? {
            Some(d) => Ok(vec![Some(d.mul(dx)?)]),
            None => {
                // complex abs: ẏ = Re(conj(z) ż) / |z| (0 at z = 0)
                let r = Unary::inv_modulus(y)?;
                Ok(vec![Some(x.conj()?.mul(dx)?.real()?.mul(r)?)])
            }
        }
    }
}

impl Op for Mul {
    fn name(&self) -> &'static str {
        "mul"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            Some(g.mul(b.conj()?)?)
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            Some(g.mul(a.conj()?)?)
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let Some(g) = &ct[0] else {
            out.extend([None, None]);
            return Ok(true);
        };
        // Ḡ ∘ conj(other), as the node rule computes it; no bound is proved (the sweep
        // scans the result)
        let times_conj = |other: Var<'_>| -> Result<Option<Ct>> {
            let o = other.value_rc();
            let v = map_value2!(&*g.value, &*o, x, y => ew2(x, y, |p, q| p * q.cj()),
                EngineError::DTypeMismatch { op: "mul", lhs: g.value.dtype(), rhs: o.dtype() });
            Ok(Some(Ct::new(v, f64::INFINITY)))
        };
        let ga = if ctx.needs_grad(0) {
            times_conj(ctx.input(1))?
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            times_conj(ctx.input(0))?
        } else {
            None
        };
        out.extend([ga, gb]);
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ta = t[0].map(|da| da.mul(b)).transpose()?;
        let tb = t[1].map(|db| a.mul(db)).transpose()?;
        Ok(vec![add_opt(ta, tb)?])
    }
}

impl Op for Div {
    fn name(&self) -> &'static str {
        "div"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (b, c) = (ctx.input(1), ctx.output(0));
        let ga = g.div(b.conj()?)?;
        let gb = if ctx.needs_grad(1) {
            Some(ga.mul(c.conj()?)?.neg()?)
        } else {
            None
        };
        Ok(vec![ctx.needs_grad(0).then_some(ga), gb])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let Some(g) = &ct[0] else {
            out.extend([None, None]);
            return Ok(true);
        };
        // Ā = Ḡ ⊘ conj(B), B̄ = −Ā ∘ conj(C), as the node rule computes them; no bound is
        // proved (the sweep scans the results)
        let (b, c) = (ctx.input(1).value_rc(), ctx.output(0).value_rc());
        let mismatch = |lhs: &Value, rhs: &Value| EngineError::DTypeMismatch {
            op: "div",
            lhs: lhs.dtype(),
            rhs: rhs.dtype(),
        };
        let ga = map_value2!(&*g.value, &*b, x, y => ew2(x, y, |p, q| p / q.cj()),
            mismatch(&g.value, &b));
        let gb = if ctx.needs_grad(1) {
            let v = map_value2!(&ga, &*c, x, y => ew2(x, y, |p, q| -(p * q.cj())),
                mismatch(&ga, &c));
            Some(Ct::new(v, f64::INFINITY))
        } else {
            None
        };
        out.extend([ctx.needs_grad(0).then(|| Ct::new(ga, f64::INFINITY)), gb]);
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (b, c) = (ctx.input(1), ctx.output(0));
        let num = match (t[0], t[1]) {
            (None, None) => return Ok(vec![None]),
            (Some(da), None) => da,
            (None, Some(db)) => c.mul(db)?.neg()?,
            (Some(da), Some(db)) => da.sub(c.mul(db)?)?,
        };
        Ok(vec![Some(num.div(b)?)])
    }
}

fn first_outside<T: Scalar>(
    f: Pointwise,
    x: &Mat<T>,
) -> Option<(usize, usize, String, &'static str)> {
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            if let Some(h) = f.outside(x[(i, j)]) {
                return Some((i, j, format!("{:?}", x[(i, j)]), h));
            }
        }
    }
    None
}

impl<'t> Var<'t> {
    /// Applies a pointwise function entrywise.
    ///
    /// # Errors
    /// [`EngineError::Domain`] for entries outside the function's domain;
    /// [`EngineError::UnsupportedDType`] for relu/softplus of complex input;
    /// [`EngineError::NonFinite`] when the result overflows.
    pub fn pointwise(self, f: Pointwise) -> Result<Var<'t>> {
        let a = self.rc();
        let op = f.name();
        if matches!(f, Pointwise::Relu | Pointwise::Softplus) {
            real_only(
                op,
                &a,
                "it has no complex extension; apply it to real() and imag() separately",
            )?;
        }
        if let Pointwise::Powf(p) = f {
            if !p.is_finite() {
                return Err(EngineError::InvalidArgument {
                    op,
                    message: format!("the exponent must be finite, got {p}"),
                });
            }
        }
        let bad = match &*a {
            Value::Real(x) => first_outside(f, x),
            Value::Complex(x) => first_outside(f, x),
        };
        if let Some((row, col, value, hint)) = bad {
            return Err(EngineError::Domain {
                op,
                row,
                col,
                value,
                hint,
            });
        }
        let out = match (&*a, f) {
            (Value::Complex(x), Pointwise::Abs) => {
                Value::Real(Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)].norm()))
            }
            (v, f) => map_value!(v, x => ew1(x, |p| f.apply(p))),
        };
        self.tape().record1(Rc::new(Unary { f }), &[self], out)
    }

    /// `eˣ` entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn exp(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Exp)
    }
    /// Natural log entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn log(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Log)
    }
    /// Square root entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn sqrt(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Sqrt)
    }
    /// `xᵖ` entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn powf(self, p: f64) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Powf(p))
    }
    /// tanh entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn tanh(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Tanh)
    }
    /// Logistic sigmoid entrywise.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn sigmoid(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Sigmoid)
    }
    /// `max(x, 0)` entrywise (real only).
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn relu(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Relu)
    }
    /// `|x|` entrywise (complex input gives a real result).
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn abs(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Abs)
    }
    /// `log(1 + eˣ)` entrywise (real only), computed without overflow.
    ///
    /// # Errors
    /// See [`Var::pointwise`].
    pub fn softplus(self) -> Result<Var<'t>> {
        self.pointwise(Pointwise::Softplus)
    }

    /// Hadamard (entrywise) product.
    ///
    /// # Errors
    /// Shape or dtype mismatch; Vars from different tapes.
    pub fn mul(self, other: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("mul", &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_shape("mul", &a, &b)?;
        let out = map_value2!(&*a, &*b, x, y => ew2(x, y, |p, q| p * q),
            EngineError::DTypeMismatch { op: "mul", lhs: a.dtype(), rhs: b.dtype() });
        tape.record1(shared_op!(Mul), &[self, other], out)
    }

    /// Entrywise quotient `self ⊘ other`.
    ///
    /// # Errors
    /// Shape or dtype mismatch; [`EngineError::Domain`] where `other` has a zero entry.
    pub fn div(self, other: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("div", &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_shape("div", &a, &b)?;
        same_dtype("div", &a, &b)?;
        let zero = match &*b {
            Value::Real(y) => first_zero(y),
            Value::Complex(y) => first_zero(y),
        };
        if let Some((row, col)) = zero {
            return Err(EngineError::Domain {
                op: "div",
                row,
                col,
                value: "0".into(),
                hint: "the divisor has a zero entry; add a small offset or mask it",
            });
        }
        let out = map_value2!(&*a, &*b, x, y => ew2(x, y, |p, q| p / q),
            EngineError::DTypeMismatch { op: "div", lhs: a.dtype(), rhs: b.dtype() });
        tape.record1(shared_op!(Div), &[self, other], out)
    }
}

fn first_zero<T: Scalar>(y: &Mat<T>) -> Option<(usize, usize)> {
    for j in 0..y.ncols() {
        for i in 0..y.nrows() {
            if y[(i, j)].re() == 0.0 && y[(i, j)].im() == 0.0 {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Pointwise;
    use crate::testing::{assert_rules, complex_matrix, positive_matrix, real_matrix};
    use crate::{EngineError, Tape, Value, Var};

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        let x = t
            .constant(Value::Real(faer::mat![[-1.0, 0.0, 2.0]]))
            .unwrap();
        let get = |v: crate::Var<'_>| v.value().as_real().unwrap().clone();
        assert_eq!(get(x.relu().unwrap())[(0, 0)], 0.0);
        assert_eq!(get(x.abs().unwrap())[(0, 0)], 1.0);
        assert!((get(x.exp().unwrap())[(0, 2)] - 2f64.exp()).abs() < 1e-15);
        assert!((get(x.softplus().unwrap())[(0, 2)] - (1.0 + 2f64.exp()).ln()).abs() < 1e-15);
        assert!((get(x.sigmoid().unwrap())[(0, 0)] - 1.0 / (1.0 + 1f64.exp())).abs() < 1e-16);
        assert!((get(x.tanh().unwrap())[(0, 2)] - 2f64.tanh()).abs() < 1e-16);
        let big = t.constant(Value::Real(faer::mat![[800.0]])).unwrap();
        assert_eq!(get(big.softplus().unwrap())[(0, 0)], 800.0);
        assert!(matches!(
            big.exp(),
            Err(EngineError::NonFinite { op: "exp", .. })
        ));
    }

    #[test]
    fn rules_real() {
        for (m, n) in [(1, 1), (2, 3)] {
            let a = real_matrix(m, n, 31);
            let p = positive_matrix(m, n, 0.5, 2.0, 32);
            assert_rules("exp", |_, x| x[0].exp(), std::slice::from_ref(&a));
            assert_rules("tanh", |_, x| x[0].tanh(), std::slice::from_ref(&a));
            assert_rules("sigmoid", |_, x| x[0].sigmoid(), std::slice::from_ref(&a));
            assert_rules("softplus", |_, x| x[0].softplus(), std::slice::from_ref(&a));
            assert_rules("relu", |_, x| x[0].relu(), std::slice::from_ref(&a));
            assert_rules("abs", |_, x| x[0].abs(), std::slice::from_ref(&a));
            assert_rules("log", |_, x| x[0].log(), std::slice::from_ref(&p));
            assert_rules("sqrt", |_, x| x[0].sqrt(), std::slice::from_ref(&p));
            assert_rules("powf 2.5", |_, x| x[0].powf(2.5), std::slice::from_ref(&p));
            assert_rules(
                "powf -1.5",
                |_, x| x[0].powf(-1.5),
                std::slice::from_ref(&p),
            );
            assert_rules(
                "powf 3 (negative base)",
                |_, x| x[0].powf(3.0),
                std::slice::from_ref(&a),
            );
            assert_rules("mul", |_, x| x[0].mul(x[1]), &[a.clone(), p.clone()]);
            assert_rules("div", |_, x| x[0].div(x[1]), &[a.clone(), p.clone()]);
            assert_rules("mul self", |_, x| x[0].mul(x[0]), std::slice::from_ref(&a));
        }
    }

    #[test]
    fn rules_complex() {
        for (m, n) in [(1, 1), (2, 3)] {
            let a = complex_matrix(m, n, 41);
            let b = complex_matrix(m, n, 42);
            assert_rules("exp", |_, x| x[0].exp(), std::slice::from_ref(&a));
            assert_rules("log", |_, x| x[0].log(), std::slice::from_ref(&a));
            assert_rules("sqrt", |_, x| x[0].sqrt(), std::slice::from_ref(&a));
            assert_rules("powf", |_, x| x[0].powf(1.7), std::slice::from_ref(&a));
            assert_rules("tanh", |_, x| x[0].tanh(), &[a.scale_for_test(0.3)]);
            assert_rules("sigmoid", |_, x| x[0].sigmoid(), &[a.scale_for_test(0.3)]);
            assert_rules("abs", |_, x| x[0].abs(), std::slice::from_ref(&a));
            assert_rules("mul", |_, x| x[0].mul(x[1]), &[a.clone(), b.clone()]);
            assert_rules("div", |_, x| x[0].div(x[1]), &[a.clone(), b.clone()]);
        }
    }

    trait ScaleForTest {
        fn scale_for_test(&self, c: f64) -> Value;
    }
    impl ScaleForTest for Value {
        fn scale_for_test(&self, c: f64) -> Value {
            Value::zeros(self.dtype(), self.nrows(), self.ncols())
                .axpy(c, self)
                .unwrap()
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let x = t.leaf(Value::Real(faer::mat![[1.0, -1.0]])).unwrap();
        assert!(matches!(
            x.log(),
            Err(EngineError::Domain {
                op: "log",
                row: 0,
                col: 1,
                ..
            })
        ));
        assert!(matches!(
            x.sqrt(),
            Err(EngineError::Domain { op: "sqrt", .. })
        ));
        assert!(matches!(
            x.powf(0.5),
            Err(EngineError::Domain { op: "powf", .. })
        ));
        assert!(matches!(
            x.powf(f64::NAN),
            Err(EngineError::InvalidArgument { op: "powf", .. })
        ));
        let z = t.leaf(complex_matrix(1, 2, 1)).unwrap();
        assert!(matches!(
            z.relu(),
            Err(EngineError::UnsupportedDType { op: "relu", .. })
        ));
        assert!(matches!(
            z.softplus(),
            Err(EngineError::UnsupportedDType { .. })
        ));
        let zero = t.leaf(Value::Real(faer::mat![[1.0, 0.0]])).unwrap();
        assert!(matches!(
            x.div(zero),
            Err(EngineError::Domain { op: "div", .. })
        ));
        // sqrt at 0: the value exists, the derivative does not — and the error names sqrt
        // (it used to surface from the powf inside the rule), in reverse and forward mode.
        let s = zero.sqrt().unwrap();
        let y = s.sum(crate::Axis::All).unwrap();
        assert!(matches!(
            t.grad(y, &[zero]),
            Err(EngineError::NotDifferentiable { op: "sqrt", .. })
        ));
        let dz = Value::Real(faer::mat![[1.0, 1.0]]);
        assert!(matches!(
            t.jvp(&[zero], &[dz], &[y]),
            Err(EngineError::NotDifferentiable { op: "sqrt", .. })
        ));
        let p = zero.powf(0.5).unwrap().sum(crate::Axis::All).unwrap();
        assert!(matches!(
            t.grad(p, &[zero]),
            Err(EngineError::NotDifferentiable { op: "powf", .. })
        ));
        let _ = Pointwise::Exp;
    }

    /// Kinks: abs at 0 has the zero subgradient for real and complex input alike (issue 7,
    /// bug 8: complex abs used to refuse while real abs, relu and norm returned 0).
    #[test]
    fn zero_subgradient_at_kinks_real_and_complex() {
        let t = Tape::new();
        let z = t
            .leaf(Value::Complex(faer::mat![[
                crate::C64::new(0.0, 0.0),
                crate::C64::new(3.0, -4.0)
            ]]))
            .unwrap();
        let y = z.abs().unwrap().sum(crate::Axis::All).unwrap();
        let g = t.grad(y, &[z]).unwrap();
        let g = g[0].as_complex().unwrap();
        assert_eq!(g[(0, 0)], crate::C64::new(0.0, 0.0));
        assert!((g[(0, 1)] - crate::C64::new(0.6, -0.8)).norm() < 1e-15);
        let dz = Value::Complex(faer::mat![[
            crate::C64::new(1.0, 2.0),
            crate::C64::new(1.0, 0.0)
        ]]);
        let yd = t.jvp(&[z], &[dz], &[y]).unwrap()[0].scalar_real().unwrap();
        assert!(
            (yd - 0.6).abs() < 1e-15,
            "only the nonzero entry moves |z|: {yd}"
        );
        let x = t.leaf(Value::Real(faer::mat![[0.0, -2.0]])).unwrap();
        for f in [Var::abs, Var::relu] {
            let y = f(x).unwrap().sum(crate::Axis::All).unwrap();
            assert_eq!(t.grad(y, &[x]).unwrap()[0].as_real().unwrap()[(0, 0)], 0.0);
        }
        // second order through the masked rule: |z|² = z z̄ has Hessian 2I away from 0
        assert_rules(
            "abs² complex",
            |_, x| x[0].abs()?.mul(x[0].abs()?)?.sum(crate::Axis::All),
            &[complex_matrix(2, 2, 9)],
        );
    }

    /// Overflow-safe complex tanh and sigmoid (issue 7, bug 8): PyTorch gives ±1 and a zero
    /// gradient for tanh at |Re z| > 355, and 0 / 1 for sigmoid far out.
    #[test]
    fn complex_tanh_and_sigmoid_do_not_overflow() {
        let t = Tape::new();
        let c = crate::C64::new;
        let z = t
            .leaf(Value::Complex(faer::mat![[
                c(400.0, 0.3),
                c(-1e4, 2.0),
                c(30.0, -1.0)
            ]]))
            .unwrap();
        let th = z.tanh().unwrap().value();
        let th = th.as_complex().unwrap();
        assert_eq!(th[(0, 0)], c(1.0, 0.0));
        assert_eq!(th[(0, 1)], c(-1.0, -0.0));
        // at Re z = 30 the formula's imaginary part: 4 sin y cos y e^{−60}
        let want = 4.0 * (-1f64).sin() * (-1f64).cos() * (-60f64).exp();
        assert!((th[(0, 2)].im - want).abs() < 1e-15 * want.abs());
        let y = z
            .tanh()
            .unwrap()
            .abs()
            .unwrap()
            .sum(crate::Axis::All)
            .unwrap();
        let g = t.grad(y, &[z]).unwrap();
        assert!(g[0].max_abs() < 1e-20, "tanh is flat out there");
        let s = t
            .leaf(Value::Complex(faer::mat![[
                c(-800.0, 1.0),
                c(800.0, 1.0),
                c(0.5, 0.25)
            ]]))
            .unwrap();
        let sv = s.sigmoid().unwrap().value();
        let sv = sv.as_complex().unwrap();
        assert_eq!(sv[(0, 0)].norm(), 0.0);
        assert_eq!(sv[(0, 1)], c(1.0, 0.0));
        let direct = c(1.0, 0.0) / (c(1.0, 0.0) + (-c(0.5, 0.25)).exp());
        assert!((sv[(0, 2)] - direct).norm() < 1e-16);
        // moderate arguments keep the rules
        assert_rules(
            "tanh complex",
            |_, x| x[0].tanh(),
            &[complex_matrix(2, 2, 4)],
        );
        assert_rules(
            "sigmoid complex",
            |_, x| x[0].sigmoid(),
            &[complex_matrix(2, 2, 5)],
        );
    }
}
