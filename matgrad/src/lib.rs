//! # matgrad
//!
//! Matrix calculus for research code: a reverse- and forward-mode autodiff engine whose
//! values are matrices, with exact adjoints for spectral ops and structured layers.
//!
//! Start with the [`prelude`]: every op is a method on [`Var`](engine::Var) — the engine's
//! (`a.matmul(b)?`, `a.cholesky()?`), the spectral ones (`a.eigh()?`, `a.logm_sym()?`) and
//! the layers (`f.o2p(1e-3)?`) — and one error type, [`Error`], flows through `?`
//! everywhere, including out of `tape.grad`, where a degenerate spectrum is reported as
//! [`Error::Degenerate`] and not as a string.
//!
//! ```
//! use matgrad::prelude::*;
//! use matgrad::engine::testing::spd_from_seed;
//! # fn main() -> Result<()> {
//! let tape = Tape::new();
//! let a = tape.leaf(spd_from_seed(4, 10.0, 1))?;
//! let y = a.logm_sym()?.trace()?;            // tr log A = log det A
//! let g = tape.grad(y, &[a])?;               // A⁻¹
//! assert_eq!(g[0].shape(), (4, 4));
//! # Ok(()) }
//! ```
//!
//! The crate re-exports the three workspace crates ([`engine`]: the tape, core ops,
//! gradient checker, op registry and generators; [`spectral`]: eigendecompositions, SVD,
//! matrix functions, projectors; [`layers`]: structured layers), and `faer` and
//! `num_complex` so that you need not pin them. Dense Jacobians and Hessians are in
//! [`functional`]; `.npy` I/O of values is [`npy`] (feature `npy`); the proptest strategies of
//! `engine::testing` need the feature `proptest`. The library has no command-line
//! dependencies: the `matgrad` binary is the separate `matgrad-cli` package.

#![warn(missing_docs)]

pub use faer;
pub use matgrad_engine as engine;
pub use matgrad_engine::{Error, Result};
pub use matgrad_layers as layers;
pub use matgrad_spectral as spectral;
pub use num_complex;

pub mod functional;
#[cfg(feature = "npy")]
pub mod npy;
pub mod prelude;

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
    // the names are distinct by construction (a test checks it); a duplicate would be
    // dropped rather than panic
    for s in all {
        let _ = r.register(s);
    }
    r
}

#[doc = include_str!("../../docs/guide.md")]
pub mod guide {}

#[doc = include_str!("../../README.md")]
mod readme {}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_names_are_unique() {
        let n = crate::engine::ops::specs::specs().len()
            + crate::spectral::specs::specs().len()
            + crate::layers::specs::specs().len();
        assert_eq!(crate::registry().len(), n);
    }
}
