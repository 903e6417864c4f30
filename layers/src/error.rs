//! The layers crate's error type.

use matgrad_engine::EngineError;
use matgrad_spectral::SpectralError;

/// Errors from layers: the engine's and spectral crate's errors, and the layers' own.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// From the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// From a spectral op.
    #[error(transparent)]
    Spectral(#[from] SpectralError),
    /// A parameter or input outside what the layer accepts.
    #[error("{op}: {message}")]
    InvalidInput {
        /// The layer.
        op: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

impl LayerError {
    /// As an engine error, for use inside closures that return engine results.
    pub fn into_engine(self, op: &'static str) -> EngineError {
        match self {
            LayerError::Engine(e) => e,
            LayerError::Spectral(e) => e.into_engine(op),
            other => EngineError::Op {
                op,
                message: other.to_string(),
            },
        }
    }
}

/// Result alias for layers.
pub type Result<T, E = LayerError> = std::result::Result<T, E>;
