//! Residual-structured transforms `W = S(θ) + R`: a structured matrix S — orthogonal by
//! [`cayley`] or [`expm_skew`], a [`householder_product`], [`diag_low_rank`], or
//! [`spectral_normalize`]d — plus a residual R that is low-rank (initialised at zero) or
//! dense and penalised. [`StructuredLinear`] is the layer; [`diagnostics`] has the
//! end-to-end Jacobian spectrum, per-layer gradient norms, ‖R‖/‖S‖ and input sensitivity.
//! Each structured map is an op of its own file (forward, rules through engine ops, tests)
//! and registered in the op spec. Derivations: docs/math/structured.md.

mod cayley;
mod diag_low_rank;
pub mod diagnostics;
mod expm_skew;
mod householder;
mod layer;
mod spectral_normalize;

pub use cayley::cayley;
pub use diag_low_rank::diag_low_rank;
pub use expm_skew::expm_skew;
pub use householder::householder_product;
pub use layer::{Residual, Structure, StructuredLinear};
pub use spectral_normalize::spectral_normalize;
