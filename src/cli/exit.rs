//! Exit statuses: one per class of failure, so that scripts can tell them apart.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `check`: some op failed a check |
//! | 2 | usage: unknown op or parameter, wrong number of files, the same output path twice |
//! | 3 | an input file cannot be read or is not a finite 2-D float64/complex128 `.npy` |
//! | 4 | the op refused the input: shape, dtype, domain (not SPD, singular, …), overflow |
//! | 5 | the derivative does not exist here: degenerate spectrum, gauge dependence, kink, order not implemented |
//! | 6 | the outputs cannot be written |

use matgrad::Error;

/// Success.
pub const OK: i32 = 0;
/// `check` found a failure.
pub const CHECK_FAILED: i32 = 1;
/// Bad command line.
pub const USAGE: i32 = 2;
/// Unreadable or invalid input file.
pub const INPUT_FILE: i32 = 3;
/// The op refused the input.
pub const REFUSED: i32 = 4;
/// The derivative does not exist at this input.
pub const NOT_DIFFERENTIABLE: i32 = 5;
/// Cannot write the outputs.
pub const OUTPUT_FILE: i32 = 6;

/// The status for a library error.
pub fn of(e: &Error) -> i32 {
    if e.is_degeneracy()
        || matches!(
            e,
            Error::NotDifferentiable { .. } | Error::Unsupported { .. }
        )
    {
        NOT_DIFFERENTIABLE
    } else {
        REFUSED
    }
}

/// A failure with its status and one-line message.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: i32,
    /// The message.
    pub message: String,
}

impl Failure {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: of(&e),
            message: e.to_string(),
        }
    }
}
