//! The spectral crate's error type.

use matgrad_engine::EngineError;

/// Errors from spectral ops. Every message names the op, the offending values, the
/// tolerance and the way out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpectralError {
    /// An error from the engine (shapes, dtypes, non-finite values, …).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Eigenvalues closer than the tolerance where the requested derivative needs them apart.
    #[error("{op}: values {i} and {j} of the spectrum are degenerate (gap {gap:.3e} ≤ tolerance {tol:.1e}), so the derivative of the vectors is not defined; {hint}")]
    Degenerate {
        /// The op.
        op: &'static str,
        /// Index of the first eigenvalue (ascending order).
        i: usize,
        /// Index of the second eigenvalue.
        j: usize,
        /// |λ_i − λ_j|.
        gap: f64,
        /// The tolerance used.
        tol: f64,
        /// The way out.
        hint: &'static str,
    },
    /// The cotangent depends on the basis chosen inside a degenerate eigenspace.
    #[error("{op}: the cotangent of the eigenvectors depends on the basis chosen inside the degenerate eigenspace of eigenvalues {i} and {j} (basis-dependent part {size:.3e} > tolerance {tol:.1e}); the gradient does not exist. Use a basis-invariant loss (a projector or a matrix function)")]
    BasisDependent {
        /// The op.
        op: &'static str,
        /// First index.
        i: usize,
        /// Second index.
        j: usize,
        /// Relative size of the basis-dependent part.
        size: f64,
        /// Tolerance.
        tol: f64,
    },
    /// A complex loss that depends on the phase of eigen/singular vectors.
    #[error("{op}: the loss depends on the phase of eigenvector {i} (imaginary part of diag(Uᴴ Ū) = {size:.3e} relative > tolerance {tol:.1e}); eigenvectors are defined only up to a phase, so this gradient is not defined. Make the loss invariant to U → U·diag(e^{{iφ}})")]
    PhaseDependent {
        /// The op.
        op: &'static str,
        /// The eigenvector.
        i: usize,
        /// Relative size of the phase-dependent part.
        size: f64,
        /// Tolerance.
        tol: f64,
    },
    /// An input outside the function's domain (non-SPD to logm_sym, …).
    #[error("{op}: eigenvalue {index} = {value:.6e} is outside the domain: {hint}")]
    Domain {
        /// The op.
        op: &'static str,
        /// Index of the eigenvalue (ascending).
        index: usize,
        /// Its value.
        value: f64,
        /// The domain and the way out.
        hint: &'static str,
    },
    /// faer's eigensolver did not converge.
    #[error("{op}: the eigensolver did not converge (faer: {detail}); check the input for extreme scaling")]
    NoConvergence {
        /// The op.
        op: &'static str,
        /// faer's error, formatted with `Debug` (faer 0.24's errors have no `Display`).
        detail: String,
    },
    /// A parameter is invalid.
    #[error("{op}: invalid argument: {message}")]
    InvalidArgument {
        /// The op.
        op: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A derivative the op cannot provide (for example second order without f″).
    #[error("{op}: {message}")]
    Unsupported {
        /// The op.
        op: &'static str,
        /// What and why.
        message: String,
    },
}

impl SpectralError {
    /// The error as an engine error, for use inside `Op` rules.
    pub fn into_engine(self, op: &'static str) -> EngineError {
        match self {
            SpectralError::Engine(e) => e,
            other => EngineError::Op {
                op,
                message: other.to_string(),
            },
        }
    }
}

/// Result alias for spectral calls.
pub type Result<T, E = SpectralError> = std::result::Result<T, E>;
