//! Parameters that outlive a tape: a named, ordered set of values, seeded initialisers, and
//! binding to a tape for one step.
//!
//! ```
//! use matgrad_layers::train::{Init, ParamSet};
//! use matgrad_engine::{Tape, Axis};
//! # fn main() -> Result<(), matgrad_engine::Error> {
//! let mut ps = ParamSet::new(7);                         // seed 7
//! let w = ps.add("w", 3, 2, Init::GlorotUniform)?;
//! let tape = Tape::new();
//! let bound = ps.bind(&tape)?;                           // one leaf per parameter
//! let y = bound.get(w).mul(bound.get(w))?.sum(Axis::All)?;
//! let grads = bound.grad(y)?;                           // aligned with the parameters
//! assert_eq!(grads[w.index()].shape(), (3, 2));
//! # Ok(()) }
//! ```

use faer::Mat;
use matgrad_engine::{Error, Result, Tape, Value, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A handle to one parameter of a [`ParamSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(usize);

impl ParamId {
    /// Its position in the set (and in the gradient list of [`Bound::grad`]).
    pub fn index(self) -> usize {
        self.0
    }
}

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros (biases; low-rank residuals that start at zero).
    Zeros,
    /// A constant.
    Constant(f64),
    /// Gaussian with this standard deviation.
    Normal(f64),
    /// Uniform on ±√(6/(fan_in + fan_out)) (Glorot & Bengio 2010), fan_in = rows.
    GlorotUniform,
    /// Gaussian with standard deviation √(2/fan_in) (He et al. 2015), fan_in = rows.
    HeNormal,
    /// A (semi-)orthogonal matrix times the gain: Q from the QR of a Gaussian matrix, with
    /// the signs of R's diagonal moved into Q (Saxe et al. 2014).
    Orthogonal(f64),
}

impl Init {
    fn make(self, m: usize, n: usize, rng: &mut StdRng) -> Value {
        let gauss = |rng: &mut StdRng, m: usize, n: usize, sd: f64| {
            Mat::from_fn(m, n, |_, _| {
                let z: f64 = StandardNormal.sample(rng);
                sd * z
            })
        };
        Value::Real(match self {
            Init::Zeros => Mat::zeros(m, n),
            Init::Constant(c) => Mat::from_fn(m, n, |_, _| c),
            Init::Normal(sd) => gauss(rng, m, n, sd),
            Init::GlorotUniform => {
                let a = (6.0 / (m + n).max(1) as f64).sqrt();
                Mat::from_fn(m, n, |_, _| rng.random_range(-a..=a))
            }
            Init::HeNormal => gauss(rng, m, n, (2.0 / m.max(1) as f64).sqrt()),
            Init::Orthogonal(gain) => {
                let (tall, wide) = (m.max(n), m.min(n));
                let g = gauss(rng, tall, wide, 1.0);
                let qr = g.qr();
                let mut q = qr.compute_thin_Q();
                let r = qr.thin_R();
                for j in 0..wide {
                    if r[(j, j)] < 0.0 {
                        for i in 0..tall {
                            q[(i, j)] = -q[(i, j)];
                        }
                    }
                }
                if m >= n {
                    Mat::from_fn(m, n, |i, j| gain * q[(i, j)])
                } else {
                    Mat::from_fn(m, n, |i, j| gain * q[(j, i)])
                }
            }
        })
    }
}

/// A named, ordered set of parameters with its own seeded random stream (for
/// initialisation): the same seed and the same sequence of `add` calls give bit-identical
/// values.
#[derive(Clone, Debug)]
pub struct ParamSet {
    names: Vec<String>,
    values: Vec<Value>,
    rng: StdRng,
}

impl ParamSet {
    /// An empty set whose initialisers draw from `seed`.
    pub fn new(seed: u64) -> ParamSet {
        ParamSet {
            names: Vec::new(),
            values: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Adds an `m×n` real parameter initialised by `init`.
    ///
    /// # Errors
    /// A name that is taken.
    pub fn add(&mut self, name: &str, m: usize, n: usize, init: Init) -> Result<ParamId> {
        let v = init.make(m, n, &mut self.rng);
        self.add_value(name, v)
    }

    /// Adds a parameter with a given value.
    ///
    /// # Errors
    /// A name that is taken; a non-finite value.
    pub fn add_value(&mut self, name: &str, value: Value) -> Result<ParamId> {
        if self.names.iter().any(|n| n == name) {
            return Err(Error::InvalidArgument {
                op: "ParamSet::add",
                message: format!("a parameter named {name:?} exists already; names are unique"),
            });
        }
        if !value.is_finite() {
            return Err(Error::NonFinite {
                op: "ParamSet::add",
                place: "in the initial value",
                hint: "initialise with finite numbers",
            });
        }
        self.names.push(name.to_string());
        self.values.push(value);
        Ok(ParamId(self.values.len() - 1))
    }

    /// The id of the parameter called `name`.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// The value of a parameter.
    pub fn get(&self, id: ParamId) -> &Value {
        &self.values[id.0]
    }

    /// Replaces the value of a parameter (same shape and dtype).
    ///
    /// # Errors
    /// A different shape or dtype; a non-finite value.
    pub fn set(&mut self, id: ParamId, value: Value) -> Result<()> {
        let old = &self.values[id.0];
        if old.shape() != value.shape() || old.dtype() != value.dtype() {
            return Err(Error::ShapeMismatch {
                op: "ParamSet::set",
                lhs: old.shape(),
                rhs: value.shape(),
                hint: "a parameter keeps its shape and dtype",
            });
        }
        if !value.is_finite() {
            return Err(Error::NonFinite {
                op: "ParamSet::set",
                place: "in the new value",
                hint: "lower the learning rate or clip the gradients",
            });
        }
        self.values[id.0] = value;
        Ok(())
    }

    /// Names and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(String::as_str).zip(&self.values)
    }

    /// All values, in order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The total number of scalar entries (complex counted once).
    pub fn count(&self) -> usize {
        self.values.iter().map(|v| v.nrows() * v.ncols()).sum()
    }

    /// The set's random stream (for layers that need draws at construction).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// One leaf per parameter on `tape`.
    ///
    /// # Errors
    /// None in practice (values are finite by construction).
    pub fn bind<'t>(&self, tape: &'t Tape) -> Result<Bound<'t>> {
        Ok(Bound {
            vars: self
                .values
                .iter()
                .map(|v| tape.leaf(v.clone()))
                .collect::<Result<_>>()?,
        })
    }

    /// A copy of the parameters bound as constants (for evaluation without gradients).
    ///
    /// # Errors
    /// None in practice.
    pub fn bind_constant<'t>(&self, tape: &'t Tape) -> Result<Bound<'t>> {
        Ok(Bound {
            vars: self
                .values
                .iter()
                .map(|v| tape.constant(v.clone()))
                .collect::<Result<_>>()?,
        })
    }

    pub(crate) fn values_mut(&mut self) -> &mut [Value] {
        &mut self.values
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}

/// A [`ParamSet`] bound to one tape: a `Var` per parameter.
#[derive(Clone, Debug)]
pub struct Bound<'t> {
    vars: Vec<Var<'t>>,
}

impl<'t> Bound<'t> {
    /// The `Var` of a parameter.
    pub fn get(&self, id: ParamId) -> Var<'t> {
        self.vars[id.0]
    }

    /// Every parameter's `Var`, in order.
    pub fn vars(&self) -> &[Var<'t>] {
        &self.vars
    }

    /// The gradient of a real scalar loss with respect to every parameter, in order
    /// (zeros for parameters the loss does not use).
    ///
    /// # Errors
    /// As [`Tape::grad`]; a bound set of constants.
    pub fn grad(&self, loss: Var<'t>) -> Result<Vec<Value>> {
        if self.vars.is_empty() {
            return Ok(Vec::new());
        }
        loss.tape().grad(loss, &self.vars)
    }
}
