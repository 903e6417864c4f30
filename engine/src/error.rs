//! The engine's error type. Every message names the op, the offending shapes or values,
//! and the way out.

use crate::value::DType;

/// Errors from building, differentiating or checking a computation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
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
        "dtype mismatch in {op}: lhs {lhs}, rhs {rhs}; convert the real operand with to_complex"
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
    #[error("{op}: empty matrix of shape {shape:?}; matgrad values have at least one row and one column")]
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
    /// An error raised by an op defined outside the engine (spectral, layers, user ops).
    #[error("{op}: {message}")]
    Op {
        /// The op.
        op: &'static str,
        /// The full message of the underlying error.
        message: String,
    },
}

/// Result alias for engine calls.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
