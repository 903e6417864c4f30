//! Modules that compose: a layer reads its parameters from a [`Bound`] set and maps a batch
//! (rows are samples) to a batch. [`Linear`], [`Activation`] and [`Sequential`] here; the
//! structured layers (second-order pooling, normalized cuts, residual-structured
//! transforms) are modules too.

use matgrad_engine::{Result, Var};

use super::params::{Bound, Init, ParamId, ParamSet};

/// A map from a batch to a batch, with parameters in a [`ParamSet`].
pub trait Module {
    /// The forward pass.
    ///
    /// # Errors
    /// Errors of the underlying ops (shapes, domains).
    fn forward<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>>;
}

/// `X W + 1 bᵀ` for a batch X (n×in): W is in×out, b is 1×out.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// The weight (in×out).
    pub w: ParamId,
    /// The bias (1×out), if any.
    pub b: Option<ParamId>,
}

impl Linear {
    /// Adds `name.w` (initialised by `init`) and, with `bias`, `name.b` (zeros) to `ps`.
    ///
    /// # Errors
    /// Names taken.
    pub fn new(
        ps: &mut ParamSet,
        name: &str,
        inputs: usize,
        outputs: usize,
        init: Init,
        bias: bool,
    ) -> Result<Linear> {
        let w = ps.add(&format!("{name}.w"), inputs, outputs, init)?;
        let b = if bias {
            Some(ps.add(&format!("{name}.b"), 1, outputs, Init::Zeros)?)
        } else {
            None
        };
        Ok(Linear { w, b })
    }
}

impl Module for Linear {
    fn forward<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>> {
        let y = x.matmul(p.get(self.w))?;
        match self.b {
            Some(b) => {
                let (n, m) = y.shape();
                y.add(p.get(b).broadcast_to(n, m)?)
            }
            None => Ok(y),
        }
    }
}

/// An entrywise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// The identity.
    Identity,
    /// tanh.
    Tanh,
    /// max(x, 0).
    Relu,
    /// 1/(1 + e⁻ˣ).
    Sigmoid,
    /// log(1 + eˣ).
    Softplus,
}

impl Module for Activation {
    fn forward<'t>(&self, _: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>> {
        match self {
            Activation::Identity => Ok(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Softplus => x.softplus(),
        }
    }
}

/// Modules applied in order.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Sequential {
        Sequential::default()
    }
    /// Appends a module.
    #[must_use]
    pub fn then(mut self, m: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(m));
        self
    }
    /// Appends a module in place.
    pub fn push(&mut self, m: impl Module + 'static) {
        self.layers.push(Box::new(m));
    }
    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// The output of every module in turn (the input first), for diagnostics.
    ///
    /// # Errors
    /// As [`Module::forward`].
    pub fn trace<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> Result<Vec<Var<'t>>> {
        let mut out = vec![x];
        for l in &self.layers {
            let y = l.forward(p, *out.last().expect("nonempty"))?;
            out.push(y);
        }
        Ok(out)
    }
}

impl Module for Sequential {
    fn forward<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>> {
        let mut y = x;
        for l in &self.layers {
            y = l.forward(p, y)?;
        }
        Ok(y)
    }
}
