//! Training in the library: parameters that live across tapes ([`ParamSet`], seeded
//! initialisers), modules that compose ([`Linear`], [`Activation`], [`Sequential`]),
//! losses, optimizers (SGD with momentum, Adam/AdamW, gradient clipping), minibatches and
//! safetensors checkpoints. The same seed gives bit-identical numbers.
//!
//! ```
//! use matgrad_layers::train::{loss, Activation, Adam, Init, Linear, Optimizer, ParamSet, Sequential};
//! use matgrad_engine::{Tape, Value};
//! # fn main() -> Result<(), matgrad_engine::Error> {
//! // fit y = x₁ − 2x₂ with a linear layer
//! let x = Value::Real(faer::mat![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]]);
//! let y = Value::Real(faer::mat![[1.0], [-2.0], [-1.0], [4.0]]);
//! let mut ps = ParamSet::new(0);
//! let net = Sequential::new().then(Linear::new(&mut ps, "fc", 2, 1, Init::GlorotUniform, true)?);
//! let mut opt = Adam::new(0.1);
//! for _ in 0..300 {
//!     let tape = Tape::new();
//!     let p = ps.bind(&tape)?;
//!     let pred = matgrad_layers::train::Module::forward(&net, &p, tape.constant(x.clone())?)?;
//!     let l = loss::mse(pred, tape.constant(y.clone())?)?;
//!     let g = p.grad(l)?;
//!     opt.step(&mut ps, &g)?;
//! }
//! let w = ps.values()[0].as_real().unwrap();
//! assert!((w[(0, 0)] - 1.0).abs() < 1e-3 && (w[(1, 0)] + 2.0).abs() < 1e-3);
//! # let _ = Activation::Tanh;
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod data;
pub mod loss;
mod module;
mod optim;
mod params;

pub use data::{select_rows, Batches};
pub use module::{Activation, Linear, Module, Sequential};
pub use optim::{clip_grad_norm, Adam, Optimizer, Sgd};
pub use params::{Bound, Init, ParamId, ParamSet};
