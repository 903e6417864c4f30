//! # matgrad-engine
//!
//! A tape-based reverse- and forward-mode automatic differentiation engine in which
//! matrices are the values: every node holds `faer` matrices of `f64` or `Complex<f64>`,
//! every op has an adjoint (VJP) and a tangent (JVP) rule written with engine ops, so
//! backward passes can be recorded for second order.
//!
//! - [`Tape`], [`Var`], [`Op`]: the arena, handles, and the open op trait.
//! - [`ops`]: the core ops (arithmetic, matmul, structure, elementwise, reductions,
//!   inverse/solve/det, Cholesky, Kronecker).
//! - [`par`]: parallelism chosen per call by size, and the thread cap.
//! - [`check`]: the gradient checker (finite differences, dot-product test, second order).
//! - [`testing`]: generators of matrices with a prescribed spectrum, and proptest strategies.
//!
//! ```
//! use matgrad_engine::{Tape, Value, testing::real_matrix};
//! # fn main() -> Result<(), matgrad_engine::EngineError> {
//! let tape = Tape::new();
//! let x = tape.leaf(real_matrix(3, 3, 1))?;
//! let y = x.matmul(x)?.exp()?.sum(matgrad_engine::Axis::All)?;
//! let g = tape.grad(y, &[x])?;
//! assert_eq!(g[0].shape(), (3, 3));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// `Var::add`, `mul`, … return `Result` (shape and dtype are checked at run time), so they
// cannot be the operator traits' methods; the names are the field's own.
#![allow(clippy::should_implement_trait)]

pub mod cases;
pub mod check;
mod error;
mod functional;
pub mod ops;
pub mod par;
pub mod pool;
pub mod spec;
mod tape;
pub mod testing;
mod value;

pub use check::Domain;
pub use error::{EngineError, Error, Result};
pub use functional::{grad, hessian, hvp, jacobian, jvp, vjp};
pub use ops::cholesky::HERMITIAN_RTOL;
pub use ops::{Axis, Form, Pointwise};
#[doc(hidden)]
pub use tape::Ct;
pub use tape::{same_tape, GradMode, Invariance, InvarianceMode, Op, OpCtx, Tape, Var};
pub use value::{DType, Scalar, Value, C64};
