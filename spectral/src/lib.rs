//! # matgrad-spectral
//!
//! Spectral ops with exact adjoints, built on `matgrad-engine`:
//! - functions of symmetric/Hermitian matrices by Daleckii–Krein ([`logm_sym`],
//!   [`sqrtm_sym`], [`expm_sym`], [`powm_sym`], [`matrix_function_sym`]): exact at
//!   repeated eigenvalues, second order included;
//! - the spectral projector [`eigh_projector`], whose gradient needs only the gap at the
//!   cut;
//! - [`eigh`] / [`eigvalsh`] with an explicit [`DegeneracyPolicy`].
//!
//! - the thin [`svd`] / [`svdvals`] of any m×n matrix, real or complex, with the same
//!   degeneracy policy.
//!
//! - principal [`expm`], [`logm`], [`sqrtm`] of general square matrices (real and complex)
//!   with Fréchet derivatives by the block-triangular identity.
//!
//! - [`eig`] / [`eigvals`] of general square matrices (complex outputs).
//!
//! - [`matrix_function_sym_batched`]: one node, rayon-parallel over a stack of blocks.

#![warn(missing_docs)]

mod batched;
mod complement;
pub mod daleckii_krein;
mod degeneracy;
pub mod divided;
mod eig;
mod eigh;
mod error;
mod general;
mod matrix_function;
mod projector;
mod range;
pub mod specs;
mod svd;
pub mod sym_eig;

pub use batched::matrix_function_sym_batched;
pub use complement::orthogonal_complement;
pub use divided::{DividedDifferences, Indicator, SymFn};
pub use eig::{eig, eig_with, eigvals, EIG_GAP_RTOL};
pub use eigh::{eigh, eigh_with, eigvalsh, DegeneracyPolicy, EighOptions};
pub use error::{Error, Result, SpectralError};
pub use general::{expm, logm, matrix_function_general, sqrtm, GeneralFn};
pub use matrix_function::{expm_sym, logm_sym, matrix_function_sym, powm_sym, sqrtm_sym};
pub use projector::{eigh_projector, Which};
pub use range::{range_projector, RANGE_RCOND};
pub use svd::{svd, svd_full, svd_with, svdvals};
