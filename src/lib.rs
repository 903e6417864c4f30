//! # matgrad
//!
//! Matrix calculus for research code: a reverse- and forward-mode autodiff engine whose
//! values are matrices, with exact adjoints for spectral ops and structured layers.
//!
//! This crate re-exports the three workspace crates:
//! - [`engine`]: the tape, core ops, gradient checker and spectrum generators;
//! - [`spectral`]: eigendecompositions, SVD, matrix functions, projectors;
//! - [`layers`]: structured layers built on both.
//!
//! ```
//! use matgrad::engine::{Tape, testing::spd_from_seed};
//! # fn main() -> Result<(), matgrad::engine::EngineError> {
//! let tape = Tape::new();
//! let a = tape.leaf(spd_from_seed(4, 10.0, 1))?;
//! let y = a.logdet()?;
//! let g = tape.grad(y, &[a])?;               // A⁻ᵀ
//! assert_eq!(g[0].shape(), (4, 4));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub use matgrad_engine as engine;
pub use matgrad_engine::Error;

/// Every op of the workspace, registered once ([`engine::spec`]): the engine's core ops,
/// the spectral ops and the layers. The command line, `check`, the golden-value tests and
/// the property tests read this registry; add your own ops to it with
/// [`engine::spec::Registry::register`].
///
/// ```
/// let reg = matgrad::registry();
/// assert!(reg.get("logm_sym").is_some() && reg.get("eigh").is_some());
/// ```
pub fn registry() -> engine::spec::Registry {
    let mut r = engine::spec::Registry::new();
    let all = engine::ops::specs::specs()
        .into_iter()
        .chain(spectral::specs::specs())
        .chain(layers::specs::specs());
    r.extend(all).expect("the workspace's op names are unique");
    r
}

#[doc = include_str!("../docs/guide.md")]
pub mod guide {}

#[doc = include_str!("../README.md")]
mod readme {}
pub use matgrad_layers as layers;
pub use matgrad_spectral as spectral;
