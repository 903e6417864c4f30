//! `o2p`: second-order pooling with the log-Euclidean map (DeepO2P, Ionescu et al. 2015;
//! O2P, Carreira et al. 2012).
//!
//! forward: `F` (m local features × d) ↦ `L = logm_sym(FᴴF/m + εI)` (d×d).
//! The covariance is one `gram` node (`α = 1/m`, ridge ε; exactly Hermitian). The gradient
//! is the composition of its rule and the Daleckii–Krein rule of `logm_sym`:
//! `Ȳ = U (P ∘ Uᴴ sym(L̄) U) Uᴴ`, `F̄ = (1/m) F (Ȳ + Ȳᴴ) = (2/m) F Ȳ` — exact at repeated
//! eigenvalues of the covariance (where the widely copied K-matrix code zeroes infinities
//! and is silently wrong). Derivation: docs/math/o2p.md.

use matgrad_engine::Var;
use matgrad_spectral::logm_sym;

use crate::error::{LayerError, Result};

/// `logm_sym(FᴴF/m + εI)` for an m×d feature matrix `F` and `ε > 0`.
///
/// ```
/// use matgrad_engine::{Tape, testing::real_matrix};
/// use matgrad_layers::o2p;
/// # fn main() -> Result<(), matgrad_layers::LayerError> {
/// let tape = Tape::new();
/// let f = tape.leaf(real_matrix(50, 4, 1))?;
/// let l = o2p(f, 1e-3)?;                       // 4×4 log-covariance
/// let g = tape.grad(l.trace()?, &[f])?;        // d tr log(C)/dF
/// assert_eq!(g[0].shape(), (50, 4));
/// # Ok(()) }
/// ```
///
/// # Errors
/// `eps` not positive and finite; errors from `logm_sym` (a non-finite covariance).
pub fn o2p(features: Var<'_>, eps: f64) -> Result<Var<'_>> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(LayerError::InvalidArgument {
            op: "o2p",
            message: format!("eps must be positive and finite (it makes the covariance positive definite), got {eps}"),
        });
    }
    let m = features.shape().0 as f64;
    // one node, exactly Hermitian: the eigensolver reads it without a symmetrised copy
    let c = features.gram_blocks(1, 1.0 / m, eps)?;
    logm_sym(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, real_matrix};
    use matgrad_engine::{Tape, Value};

    #[test]
    fn forward_closed_form_on_orthogonal_features() {
        // F = √m·[I; 0]: FᵀF/m = I, so L = log(1 + ε) I
        let t = Tape::new();
        let m = 6;
        let f = Value::Real(faer::Mat::from_fn(m, 3, |i, j| {
            if i == j {
                (m as f64).sqrt()
            } else {
                0.0
            }
        }));
        let l = o2p(t.constant(f).unwrap(), 0.5).unwrap().value();
        let want = Value::Real(faer::Mat::from_fn(3, 3, |i, j| {
            if i == j {
                1.5f64.ln()
            } else {
                0.0
            }
        }));
        assert!(l.rel_diff(&want).unwrap() < 1e-15);
    }

    #[test]
    fn rules_including_repeated_covariance_eigenvalues() {
        assert_rules("o2p", |_, x| o2p(x[0], 1e-2), &[real_matrix(20, 3, 1)]);
        // orthogonal features: covariance with all eigenvalues equal (the K-matrix failure case)
        let f = Value::Real(faer::Mat::from_fn(
            4,
            2,
            |i, j| if i == j { 2.0 } else { 0.0 },
        ));
        assert_rules("o2p at a tie", |_, x| o2p(x[0], 1e-3), &[f]);
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let f = t.leaf(real_matrix(5, 2, 1)).unwrap();
        assert!(matches!(
            o2p(f, 0.0),
            Err(LayerError::InvalidArgument { op: "o2p", .. })
        ));
        assert!(matches!(
            o2p(f, f64::NAN),
            Err(LayerError::InvalidArgument { .. })
        ));
    }
}
