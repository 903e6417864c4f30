//! # matgrad-layers
//!
//! Structured layers built on `matgrad-engine` and `matgrad-spectral`. So far:
//! - [`o2p`]: second-order pooling with the log-Euclidean map (DeepO2P);
//! - [`ncut_projector`]: the normalized-cuts projector layer.
//!
//! Analytic convolution kernels, weighted convolution, CReLU and residual-structured
//! transforms are future work (later issues).

#![warn(missing_docs)]

mod error;
mod ncut;
mod o2p;
pub mod specs;
pub mod train;

pub use error::{Error, LayerError, Result};
pub use ncut::ncut_projector;
pub use o2p::o2p;
