//! The core ops. Each file holds one op family: the forward function(s), the struct that
//! keeps what the rules need (residuals), the VJP and JVP rules, and the tests, side by
//! side. The math of every rule is in the file's module doc and in `docs/math/`.
//!
//! Conventions shared by every rule:
//! - the pairing of cotangents and tangents is `Re⟨X, Y⟩ = Re tr(Xᴴ Y)`;
//! - the gradient of a real loss with respect to a complex input is
//!   `∂L/∂Re z + i ∂L/∂Im z` (PyTorch's convention), which is what writing every rule
//!   with the adjoint `Xᴴ` produces;
//! - rules are written with engine ops, so they can be recorded for second order.

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::tape::{Tape, Var};
use crate::value::{DType, Scalar, Value};

/// A per-thread shared `Rc<dyn Op>` for an op without per-node state, so that recording
/// it allocates nothing for the op itself.
macro_rules! shared_op {
    ($e:expr) => {{
        thread_local! { static OP: std::rc::Rc<dyn $crate::Op> = std::rc::Rc::new($e); }
        OP.with(|o| o.clone())
    }};
}

pub mod adjugate;
pub mod arith;
pub mod bmm;
pub mod cholesky;
pub mod complex;
pub mod elementwise;
pub mod gather;
pub mod gram;
pub mod herm_sum;
pub mod inverse;
pub mod kron;
pub mod matmul;
pub mod reduce;
pub mod specs;
pub mod structure;

pub use elementwise::Pointwise;
pub use matmul::Form;
pub use reduce::Axis;

/// Entrywise map of one matrix, column by column over contiguous slices (no per-entry
/// index check), into a buffer from this thread's pool when it has one.
pub(crate) fn ew1<T: Scalar>(a: &Mat<T>, f: impl Fn(T) -> T) -> Mat<T> {
    crate::pool::from_cols(a.nrows(), a.ncols(), |j, out| {
        for (o, &x) in out.iter_mut().zip(a.col_as_slice(j)) {
            *o = f(x);
        }
    })
}

/// Entrywise map of two matrices of the same shape (as [`ew1`]).
pub(crate) fn ew2<T: Scalar>(a: &Mat<T>, b: &Mat<T>, f: impl Fn(T, T) -> T) -> Mat<T> {
    // callers check the shapes (a mismatch here is a bug in matgrad, not in user data)
    assert_eq!(a.shape(), b.shape(), "ew2: operands of different shapes");
    crate::pool::from_cols(a.nrows(), a.ncols(), |j, out| {
        let (x, y) = (a.col_as_slice(j), b.col_as_slice(j));
        for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
            *o = f(p, q);
        }
    })
}

/// Entrywise map of three matrices of the same shape (as [`ew1`]).
pub(crate) fn ew3<T: Scalar>(
    a: &Mat<T>,
    b: &Mat<T>,
    c: &Mat<T>,
    f: impl Fn(T, T, T) -> T,
) -> Mat<T> {
    // callers check the shapes (a mismatch here is a bug in matgrad, not in user data)
    assert!(
        a.shape() == b.shape() && a.shape() == c.shape(),
        "ew3: operands of different shapes"
    );
    crate::pool::from_cols(a.nrows(), a.ncols(), |j, out| {
        let (x, y, z) = (a.col_as_slice(j), b.col_as_slice(j), c.col_as_slice(j));
        for (((o, &p), &q), &r) in out.iter_mut().zip(x).zip(y).zip(z) {
            *o = f(p, q, r);
        }
    })
}

/// Errors unless `a` and `b` have the same shape.
pub(crate) fn same_shape(op: &'static str, a: &Value, b: &Value) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: a.shape(),
            rhs: b.shape(),
            hint: "elementwise ops need operands of the same shape; use broadcast_to for row/column vectors",
        });
    }
    Ok(())
}

/// Errors unless `a` and `b` have the same dtype.
pub(crate) fn same_dtype(op: &'static str, a: &Value, b: &Value) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(EngineError::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    Ok(())
}

/// Entries a single value may hold: a complex entry takes 16 bytes and an allocation may
/// not exceed `isize::MAX` bytes, so anything larger is refused before faer would panic.
pub(crate) const MAX_ENTRIES: usize = (isize::MAX as usize) / 16;

/// `m·n` when an `m×n` result can be allocated (checked arithmetic; above 1 GiB a fallible
/// allocation is tried first, because faer unwraps a failed allocation), else an error
/// naming `op`.
pub(crate) fn entries(op: &'static str, m: usize, n: usize) -> Result<usize> {
    let too_big = || EngineError::InvalidArgument {
        op,
        message: format!("a {m}×{n} result does not fit in memory; check the requested shape"),
    };
    let e = match m.checked_mul(n) {
        Some(e) if e <= MAX_ENTRIES => e,
        _ => return Err(too_big()),
    };
    let bytes = e * 16;
    if bytes >= 1 << 30 {
        let mut probe: Vec<u8> = Vec::new();
        probe.try_reserve_exact(bytes).map_err(|_| too_big())?;
    }
    Ok(e)
}

/// `a + b` for sizes, or an error naming `op` on overflow.
pub(crate) fn add_sizes(op: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b)
        .ok_or_else(|| EngineError::InvalidArgument {
            op,
            message: format!("the size {a} + {b} overflows; check the requested shape or offsets"),
        })
}

/// Errors unless `a` is square.
pub(crate) fn square(op: &'static str, a: &Value) -> Result<usize> {
    let (m, n) = a.shape();
    if m != n {
        return Err(EngineError::NotSquare { op, shape: (m, n) });
    }
    Ok(n)
}

/// Errors unless `a` is real.
pub(crate) fn real_only(op: &'static str, a: &Value, hint: &'static str) -> Result<()> {
    if a.dtype() != DType::F64 {
        return Err(EngineError::UnsupportedDType {
            op,
            dtype: a.dtype(),
            hint,
        });
    }
    Ok(())
}

/// `a + b` where `None` is zero.
pub(crate) fn add_opt<'t>(a: Option<Var<'t>>, b: Option<Var<'t>>) -> Result<Option<Var<'t>>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.add(b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

/// `a - b` where `None` is zero.
pub(crate) fn sub_opt<'t>(a: Option<Var<'t>>, b: Option<Var<'t>>) -> Result<Option<Var<'t>>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.sub(b)?),
        (a, None) => a,
        (None, Some(b)) => Some(b.neg()?),
    })
}

/// A constant of the same dtype as `like`, filled by `f(i, j)` (real and imaginary part).
pub(crate) fn constant_like<'t>(
    tape: &'t Tape,
    dtype: DType,
    m: usize,
    n: usize,
    f: impl Fn(usize, usize) -> (f64, f64),
) -> Var<'t> {
    let v = match dtype {
        DType::F64 => Value::Real(Mat::from_fn(m, n, |i, j| f(i, j).0)),
        DType::C64 => Value::Complex(Mat::from_fn(m, n, |i, j| {
            let (re, im) = f(i, j);
            crate::value::C64::new(re, im)
        })),
    };
    tape.constant_unchecked(v)
}
