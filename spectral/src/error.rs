//! The spectral crate's errors are the workspace's one error type,
//! [`matgrad_engine::Error`]: the spectral variants ([`Error::Degenerate`],
//! [`Error::BasisDependent`], [`Error::PhaseDependent`], [`Error::SpectrumDomain`],
//! [`Error::NoConvergence`]) live there so that they survive the tape unchanged and `?`
//! needs no adapter between crates.

pub use matgrad_engine::Error;

/// The spectral crate's name for [`matgrad_engine::Error`].
pub type SpectralError = Error;

/// Result alias for spectral calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
