//! The one error type of the workspace. Every message names the op the user called, the
//! offending shapes or values, and the way out.
//!
//! `matgrad-spectral` and `matgrad-layers` return this same type (their `SpectralError` and
//! `LayerError` are aliases of it), so `?` works across the crates without adapters, and a
//! variant raised inside a rule during `Tape::grad` reaches the caller unchanged: a caller
//! can match on [`Error::Degenerate`] after a backward pass.

use crate::value::DType;

/// Errors from building, differentiating or checking a computation.
///
/// ```
/// use matgrad_engine::{Error, Tape, Value};
/// let tape = Tape::new();
/// let a = tape.leaf(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]])).unwrap();
/// let b = tape.leaf(Value::Real(faer::mat![[1.0, 2.0, 3.0]])).unwrap();
/// match a.matmul(b) {
///     Err(Error::ShapeMismatch { op: "matmul", lhs: (2, 2), rhs: (1, 3), .. }) => {}
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Operand shapes do not fit the op.
    #[error("shape mismatch in {op}: lhs {lhs:?}, rhs {rhs:?}; {hint}")]
    ShapeMismatch {
        /// The op.
        op: &'static str,
        /// Shape of the first operand.
        lhs: (usize, usize),
        /// Shape of the second operand (or the shape the op expected).
        rhs: (usize, usize),
        /// How to fix it.
        hint: &'static str,
    },
    /// The op needs a square matrix.
    #[error("{op} needs a square matrix, got {shape:?}")]
    NotSquare {
        /// The op.
        op: &'static str,
        /// The shape received.
        shape: (usize, usize),
    },
    /// Operands have different dtypes.
    #[error(
        "dtype mismatch in {op}: lhs {lhs}, rhs {rhs}; make both operands complex (Var::to_complex in Rust, complex128 arrays on the command line)"
    )]
    DTypeMismatch {
        /// The op.
        op: &'static str,
        /// dtype of the first operand.
        lhs: DType,
        /// dtype of the second operand.
        rhs: DType,
    },
    /// The op is not defined for this dtype.
    #[error("{op} is not defined for {dtype} input; {hint}")]
    UnsupportedDType {
        /// The op.
        op: &'static str,
        /// The dtype received.
        dtype: DType,
        /// What to do instead.
        hint: &'static str,
    },
    /// A matrix with zero rows or columns.
    #[error("{op}: empty matrix of shape {shape:?}; this op is not defined for a matrix with no entries")]
    Empty {
        /// The op.
        op: &'static str,
        /// The shape received.
        shape: (usize, usize),
    },
    /// NaN or infinity in an input, or produced by an op from finite inputs.
    #[error("{op}: non-finite value (NaN or inf) {place}; {hint}")]
    NonFinite {
        /// The op.
        op: &'static str,
        /// Where: "in input 0", "in the output", …
        place: &'static str,
        /// Likely cause and fix.
        hint: &'static str,
    },
    /// An input outside the op's domain (log of a non-positive number, …).
    #[error("{op}: input outside the domain at entry ({row}, {col}) = {value}; {hint}")]
    Domain {
        /// The op.
        op: &'static str,
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
        /// The offending entry, formatted.
        value: String,
        /// The domain and the way out.
        hint: &'static str,
    },
    /// A matrix that is singular to working precision.
    #[error("{op}: matrix of size {n}×{n} is singular to working precision (smallest/largest LU pivot = {ratio:.3e} ≤ tolerance {tol:.1e}); regularise it (add εI) or use a least-squares formulation")]
    Singular {
        /// The op.
        op: &'static str,
        /// Matrix size.
        n: usize,
        /// Smallest over largest pivot modulus.
        ratio: f64,
        /// The tolerance used.
        tol: f64,
    },
    /// Cholesky (or an SPD-only op) received a matrix that is not positive definite.
    #[error("{op}: matrix of size {n}×{n} is not positive definite; add εI or check the input is a covariance/Gram matrix")]
    NotPositiveDefinite {
        /// The op.
        op: &'static str,
        /// Matrix size.
        n: usize,
    },
    /// A matrix that must be symmetric/Hermitian is not, beyond the tolerance.
    #[error("{op}: matrix is not symmetric/Hermitian: max |A - Aᴴ| = {asym:.3e} > tolerance {tol:.1e} (relative to max |A|); symmetrize the input with sym(A) = (A + Aᴴ)/2")]
    NotHermitian {
        /// The op.
        op: &'static str,
        /// Measured asymmetry.
        asym: f64,
        /// Tolerance.
        tol: f64,
    },
    /// `grad` needs a real 1×1 output.
    #[error("{op}: the output must be a real 1×1 scalar, got {dtype} of shape {shape:?}; reduce it first (sum, inner product, norm) or use vjp with an explicit cotangent")]
    NotScalar {
        /// The op.
        op: &'static str,
        /// Shape received.
        shape: (usize, usize),
        /// dtype received.
        dtype: DType,
    },
    /// A gradient or tangent was asked for with respect to a value that does not require
    /// one (a constant, a detached value, or a value computed only from constants).
    #[error("{op}: input {index} does not require a gradient (it is a constant, detached, or computed only from constants), so differentiating with respect to it would silently give zeros; create it with Tape::leaf")]
    ConstantInput {
        /// The op (`grad`, `vjp`, `jvp`, …).
        op: &'static str,
        /// Position of the offending input in the list passed.
        index: usize,
    },
    /// Vars from two different tapes were combined.
    #[error("{op}: a Var from another tape was passed in; build every operand on the same Tape")]
    ForeignVar {
        /// The op.
        op: &'static str,
    },
    /// A parameter (index range, exponent, count) is invalid.
    #[error("{op}: invalid argument: {message}")]
    InvalidArgument {
        /// The op.
        op: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The derivative does not exist at this point and no convention applies.
    #[error("{op}: not differentiable here: {message}")]
    NotDifferentiable {
        /// The op.
        op: &'static str,
        /// Where and why.
        message: String,
    },
    /// Values of a spectrum (eigenvalues, singular values) closer than the tolerance where
    /// the requested derivative needs them apart.
    #[error("{op}: values {i} and {j} of the spectrum are degenerate (gap {gap:.3e} ≤ tolerance {tol:.1e}), so the derivative of {what} does not exist here; {hint}")]
    Degenerate {
        /// The op.
        op: &'static str,
        /// Index of the first value (in the op's output order).
        i: usize,
        /// Index of the second value.
        j: usize,
        /// The gap between them.
        gap: f64,
        /// The tolerance used.
        tol: f64,
        /// What has no derivative ("the eigenvectors", "the sorted eigenvalues", …).
        what: &'static str,
        /// The way out.
        hint: &'static str,
    },
    /// The cotangent (or, in forward mode, the downstream computation) depends on the basis
    /// chosen inside a degenerate eigen- or singular subspace.
    #[error("{op}: the result depends on the basis chosen inside the degenerate subspace of values {i} and {j} (basis-dependent part {size:.3e} > tolerance {tol:.1e}), so the derivative does not exist; use a basis-invariant loss (a projector, a matrix function, a symmetric function of the tied values)")]
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
    /// A complex loss that depends on the phase of an eigen- or singular vector.
    #[error("{op}: the result depends on the phase of vector {i} (relative size {size:.3e} > tolerance {tol:.1e}); eigen- and singular vectors are defined only up to a phase, so this derivative does not exist. Make the loss invariant to U → U·diag(e^{{iφ}})")]
    PhaseDependent {
        /// The op.
        op: &'static str,
        /// The vector.
        i: usize,
        /// Relative size of the phase-dependent part.
        size: f64,
        /// Tolerance.
        tol: f64,
    },
    /// An eigenvalue outside a matrix function's domain (non-SPD input to `logm_sym`, …).
    #[error("{op}: eigenvalue {index} = {value:.6e} is outside the domain: {hint}")]
    SpectrumDomain {
        /// The op.
        op: &'static str,
        /// Index of the eigenvalue (ascending).
        index: usize,
        /// Its value.
        value: f64,
        /// The domain and the way out.
        hint: &'static str,
    },
    /// A decomposition did not converge.
    #[error("{op}: the decomposition did not converge (faer: {detail}); check the input for extreme scaling")]
    NoConvergence {
        /// The op.
        op: &'static str,
        /// faer's error, formatted with `Debug` (faer 0.24's errors have no `Display`).
        detail: String,
    },
    /// A derivative the op cannot provide (third order, second order without f″, …).
    #[error("{op}: {message}")]
    Unsupported {
        /// The op.
        op: &'static str,
        /// What and why.
        message: String,
    },
    /// A file could not be read or written, or does not hold what it should (the `.npy`
    /// I/O of the `matgrad` crate).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, and what to do.
        message: String,
    },
    /// An error raised by an op defined outside the engine (spectral, layers, user ops).
    #[error("{op}: {message}")]
    Op {
        /// The op.
        op: &'static str,
        /// The full message of the underlying error.
        message: String,
    },
}

/// The engine's historical name for [`Error`].
pub type EngineError = Error;

impl Error {
    /// The op named in the error.
    pub fn op(&self) -> &'static str {
        match self {
            Error::ShapeMismatch { op, .. }
            | Error::NotSquare { op, .. }
            | Error::DTypeMismatch { op, .. }
            | Error::UnsupportedDType { op, .. }
            | Error::Empty { op, .. }
            | Error::NonFinite { op, .. }
            | Error::Domain { op, .. }
            | Error::Singular { op, .. }
            | Error::NotPositiveDefinite { op, .. }
            | Error::NotHermitian { op, .. }
            | Error::NotScalar { op, .. }
            | Error::ForeignVar { op }
            | Error::ConstantInput { op, .. }
            | Error::InvalidArgument { op, .. }
            | Error::NotDifferentiable { op, .. }
            | Error::Degenerate { op, .. }
            | Error::BasisDependent { op, .. }
            | Error::PhaseDependent { op, .. }
            | Error::SpectrumDomain { op, .. }
            | Error::NoConvergence { op, .. }
            | Error::Unsupported { op, .. }
            | Error::Op { op, .. } => op,
            Error::File { .. } => "file",
        }
    }

    /// The same error reported under `name`: a composite op (a layer built from several
    /// primitives) calls this on the errors of its parts, so that the message names the op
    /// the user called rather than an internal step.
    #[must_use]
    pub fn within(mut self, name: &'static str) -> Error {
        match &mut self {
            Error::ShapeMismatch { op, .. }
            | Error::NotSquare { op, .. }
            | Error::DTypeMismatch { op, .. }
            | Error::UnsupportedDType { op, .. }
            | Error::Empty { op, .. }
            | Error::NonFinite { op, .. }
            | Error::Domain { op, .. }
            | Error::Singular { op, .. }
            | Error::NotPositiveDefinite { op, .. }
            | Error::NotHermitian { op, .. }
            | Error::NotScalar { op, .. }
            | Error::ForeignVar { op }
            | Error::ConstantInput { op, .. }
            | Error::InvalidArgument { op, .. }
            | Error::NotDifferentiable { op, .. }
            | Error::Degenerate { op, .. }
            | Error::BasisDependent { op, .. }
            | Error::PhaseDependent { op, .. }
            | Error::SpectrumDomain { op, .. }
            | Error::NoConvergence { op, .. }
            | Error::Unsupported { op, .. }
            | Error::Op { op, .. } => *op = name,
            Error::File { .. } => {}
        }
        self
    }

    /// True for the errors that say a derivative does not exist at this point because of a
    /// degenerate spectrum or a gauge freedom ([`Error::Degenerate`],
    /// [`Error::BasisDependent`], [`Error::PhaseDependent`]).
    pub fn is_degeneracy(&self) -> bool {
        matches!(
            self,
            Error::Degenerate { .. } | Error::BasisDependent { .. } | Error::PhaseDependent { .. }
        )
    }
}

/// Result alias for engine calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
