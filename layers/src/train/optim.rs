//! Optimizers on a [`ParamSet`]: SGD with momentum and (coupled) weight decay, Adam with
//! decoupled weight decay (AdamW), and clipping by the global gradient norm. They work on
//! values (no tape), real or complex (a complex parameter's Adam moment uses |g|²).

use matgrad_engine::{Error, Result, Value, C64};

use super::params::ParamSet;

/// Updates a parameter set from its gradients (aligned with the set's order).
pub trait Optimizer {
    /// One step.
    ///
    /// # Errors
    /// Gradients that do not match the parameters; a step that produces a non-finite value.
    fn step(&mut self, ps: &mut ParamSet, grads: &[Value]) -> Result<()>;
}

fn check(ps: &ParamSet, grads: &[Value], op: &'static str) -> Result<()> {
    if ps.len() != grads.len() {
        return Err(Error::InvalidArgument {
            op,
            message: format!("{} parameters but {} gradients", ps.len(), grads.len()),
        });
    }
    for ((name, v), g) in ps.iter().zip(grads) {
        if v.shape() != g.shape() || v.dtype() != g.dtype() {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "the gradient of {name:?} is {} {:?}, the parameter {} {:?}",
                    g.dtype(),
                    g.shape(),
                    v.dtype(),
                    v.shape()
                ),
            });
        }
    }
    Ok(())
}

/// Applies `f(param, grad, state…)` entrywise on complex numbers (reals embedded).
fn zip_map(v: &Value, g: &Value, mut f: impl FnMut(usize, C64, C64) -> C64) -> Value {
    match (v, g) {
        (Value::Real(a), Value::Real(b)) => {
            Value::Real(faer::Mat::from_fn(a.nrows(), a.ncols(), |i, j| {
                f(
                    i + j * a.nrows(),
                    C64::new(a[(i, j)], 0.0),
                    C64::new(b[(i, j)], 0.0),
                )
                .re
            }))
        }
        (Value::Complex(a), Value::Complex(b)) => {
            Value::Complex(faer::Mat::from_fn(a.nrows(), a.ncols(), |i, j| {
                f(i + j * a.nrows(), a[(i, j)], b[(i, j)])
            }))
        }
        _ => v.clone(),
    }
}

/// SGD: `v ← μ v + (g + λ θ)`, `θ ← θ − η v`.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ (0 for plain SGD).
    pub momentum: f64,
    /// Weight decay λ (added to the gradient).
    pub weight_decay: f64,
    velocity: Vec<Vec<C64>>,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Sgd {
        Sgd {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            velocity: Vec::new(),
        }
    }
    /// With momentum.
    #[must_use]
    pub fn momentum(mut self, mu: f64) -> Sgd {
        self.momentum = mu;
        self
    }
    /// With weight decay.
    #[must_use]
    pub fn weight_decay(mut self, wd: f64) -> Sgd {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, ps: &mut ParamSet, grads: &[Value]) -> Result<()> {
        check(ps, grads, "Sgd::step")?;
        if self.velocity.len() != grads.len() {
            self.velocity = grads
                .iter()
                .map(|g| vec![C64::new(0.0, 0.0); g.nrows() * g.ncols()])
                .collect();
        }
        let (lr, mu, wd) = (self.lr, self.momentum, self.weight_decay);
        for (k, g) in grads.iter().enumerate() {
            let vel = &mut self.velocity[k];
            let new = zip_map(&ps.values()[k], g, |e, th, gr| {
                vel[e] = vel[e] * mu + gr + th * wd;
                th - vel[e] * lr
            });
            ps.values_mut()[k] = new;
        }
        finite(ps, "Sgd::step")
    }
}

/// Adam (Kingma & Ba 2015) with decoupled weight decay (Loshchilov & Hutter 2019):
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)|g|²`, `θ ← θ − η(m̂/(√v̂ + ε) + λθ)`.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate η.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    m: Vec<Vec<C64>>,
    v: Vec<Vec<f64>>,
    t: i32,
}

impl Adam {
    /// Adam with learning rate `lr` and the usual β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    pub fn new(lr: f64) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }
    /// With decoupled weight decay.
    #[must_use]
    pub fn weight_decay(mut self, wd: f64) -> Adam {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self, ps: &mut ParamSet, grads: &[Value]) -> Result<()> {
        check(ps, grads, "Adam::step")?;
        if self.m.len() != grads.len() {
            self.m = grads
                .iter()
                .map(|g| vec![C64::new(0.0, 0.0); g.nrows() * g.ncols()])
                .collect();
            self.v = grads
                .iter()
                .map(|g| vec![0.0; g.nrows() * g.ncols()])
                .collect();
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let (lr, eps, wd) = (self.lr, self.eps, self.weight_decay);
        for (k, g) in grads.iter().enumerate() {
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            let new = zip_map(&ps.values()[k], g, |e, th, gr| {
                m[e] = m[e] * b1 + gr * (1.0 - b1);
                v[e] = v[e] * b2 + gr.norm_sqr() * (1.0 - b2);
                let step = (m[e] / c1) / ((v[e] / c2).sqrt() + eps);
                th - (step + th * wd) * lr
            });
            ps.values_mut()[k] = new;
        }
        finite(ps, "Adam::step")
    }
}

fn finite(ps: &ParamSet, op: &'static str) -> Result<()> {
    match ps.iter().find(|(_, v)| !v.is_finite()) {
        Some(_) => Err(Error::NonFinite {
            op,
            place: "in a parameter after the step",
            hint: "lower the learning rate or clip the gradients (clip_grad_norm)",
        }),
        None => Ok(()),
    }
}

/// Scales `grads` so that their global Frobenius norm is at most `max_norm`; returns the
/// norm before clipping.
pub fn clip_grad_norm(grads: &mut [Value], max_norm: f64) -> f64 {
    let norm = grads.iter().map(|g| g.norm().powi(2)).sum::<f64>().sqrt();
    if norm > max_norm && norm > 0.0 {
        let s = max_norm / norm;
        for g in grads.iter_mut() {
            let z = Value::zeros(g.dtype(), g.nrows(), g.ncols());
            *g = z.axpy(s, g).unwrap_or_else(|_| g.clone());
        }
    }
    norm
}
