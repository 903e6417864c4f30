//! `spectral_normalize`: `S = M / σ₁(M)` (Miyato et al. 2018, computed exactly through
//! [`matgrad_spectral::svdvals`] rather than by power iteration), so `‖S‖₂ = 1`.
//!
//! With `σ₁ = u₁ᴴ M v₁` (top singular pair), `dσ₁ = Re u₁ᴴ dM v₁`, and
//! `dS = dM/σ₁ − M Re(u₁ᴴ dM v₁)/σ₁²`; adjoint `M̄ = S̄/σ₁ − Re⟨M, S̄⟩/σ₁² · u₁v₁ᴴ`.
//! σ₁ is the largest of the singular values, a maximum: where σ₁ = σ₂ it has a kink (no
//! derivative), and the backward pass of `svdvals` reports it instead of choosing a
//! subgradient. Random (Glorot, Gaussian) initialisations have distinct singular values
//! almost surely; an orthogonal initialisation has them all tied — use it with the
//! orthogonal transforms instead. Derivation: docs/math/structured.md.

use matgrad_engine::{DType, Error, Var};
use matgrad_spectral::svdvals;

use crate::error::Result;

/// `m / σ₁(m)` for any m×n `m` (real or complex).
///
/// # Errors
/// An empty or zero matrix ([`Error::Empty`], [`Error::InvalidArgument`]: σ₁ = 0 has no
/// normalisation); in the backward pass, σ₁ tied with σ₂ ([`Error::Degenerate`] or
/// [`Error::BasisDependent`] from `svdvals`: the maximum is not differentiable there).
pub fn spectral_normalize(m: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "spectral_normalize";
    let (r, c) = m.shape();
    if r == 0 || c == 0 {
        return Err(Error::Empty {
            op: OP,
            shape: (r, c),
        });
    }
    let inner = || -> Result<Var<'_>> {
        let s1 = svdvals(m)?.slice(0..1, 0..1)?;
        let top = s1.value().scalar_real().unwrap_or(0.0);
        if top.is_nan() || top < f64::MIN_POSITIVE {
            return Err(Error::InvalidArgument {
                op: OP,
                message: format!(
                    "the largest singular value of the {r}×{c} input is {top:.3e}: a zero matrix cannot be normalised"
                ),
            });
        }
        let mut inv = s1.powf(-1.0)?;
        if m.dtype() == DType::C64 {
            inv = inv.to_complex()?;
        }
        m.mul_scalar(inv)
    };
    inner().map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::{Axis, Tape, Value};

    #[test]
    fn forward_closed_form() {
        let t = Tape::new();
        let m = t
            .constant(Value::Real(faer::mat![[3.0, 0.0], [0.0, -5.0], [0.0, 0.0]]))
            .unwrap();
        let s = spectral_normalize(m).unwrap().value();
        assert_eq!(s.as_real().unwrap()[(1, 1)], -1.0);
        assert!((s.as_real().unwrap()[(0, 0)] - 0.6).abs() < 1e-15);
        for v in [real_matrix(4, 3, 1), complex_matrix(3, 5, 2)] {
            let s = spectral_normalize(t.constant(v).unwrap()).unwrap();
            let top = svdvals(s).unwrap().value();
            assert!((top.as_real().unwrap()[(0, 0)] - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn rules() {
        assert_rules(
            "spectral_normalize",
            |_, x| spectral_normalize(x[0]),
            &[real_matrix(4, 3, 3)],
        );
        assert_rules(
            "spectral_normalize complex",
            |_, x| spectral_normalize(x[0]),
            &[complex_matrix(3, 3, 4)],
        );
        // the second singular value tied with the third does not matter
        let m = Value::Real(faer::mat![
            [4.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0]
        ]);
        assert_rules(
            "spectral_normalize lower tie",
            |_, x| spectral_normalize(x[0]),
            &[m],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let z = t.leaf(Value::zeros(DType::F64, 2, 2)).unwrap();
        assert!(matches!(
            spectral_normalize(z),
            Err(Error::InvalidArgument { .. })
        ));
        let e = t.leaf(Value::zeros(DType::F64, 0, 2)).unwrap();
        assert!(matches!(spectral_normalize(e), Err(Error::Empty { .. })));
        // σ₁ = σ₂: the maximum has a kink, reported in the backward pass
        let m = t.leaf(Value::identity(DType::F64, 2)).unwrap();
        let y = spectral_normalize(m).unwrap().sum(Axis::All).unwrap();
        let g = t.grad(y, &[m]);
        assert!(
            matches!(
                g,
                Err(Error::Degenerate { .. } | Error::BasisDependent { .. })
            ),
            "{g:?}"
        );
    }
}
