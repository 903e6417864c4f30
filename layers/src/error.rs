//! The layers crate's errors are the workspace's one error type, [`matgrad_engine::Error`]
//! (see its docs): `?` works across the engine, spectral and layers crates.

pub use matgrad_engine::Error;

/// The layers crate's name for [`matgrad_engine::Error`].
pub type LayerError = Error;

/// Result alias for layers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
