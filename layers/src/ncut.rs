//! `ncut_projector`: the normalized-cuts layer of Ionescu et al. (2015).
//!
//! forward: features `F` (n points × d, nonnegative) ↦ affinity `W = FFᵀ`, degrees
//! `D = diag(W1)`, `Z = D^{-1/2} F`, and the projector `Π = Z (ZᵀZ)⁻¹ Zᵀ` onto the span of Z
//! (the leading eigenvectors of `D^{-1/2} W D^{-1/2}`; basis- and sign-invariant), through
//! [`matgrad_spectral::range_projector`]: a thin QR of Z, never the Gram matrix ZᵀZ, so the
//! gradient's accuracy degrades as cond(Z)·ε, not cond(Z)²·ε.
//! The adjoint is `Z̄ = 2 (I − Π) sym(Π̄) Z⁺ᵀ` followed by the engine's rules through
//! `D^{-1/2}`. Derivation: docs/math/ncut.md.

use matgrad_engine::{Form, Value, Var};
use matgrad_spectral::range_projector;

use crate::error::{LayerError, Result};

/// The normalized-cuts projector of an n×d nonnegative feature matrix.
///
/// # Errors
/// A point with zero degree (a zero row of F, or negative features cancelling), or fewer
/// points than features — [`LayerError::InvalidArgument`]; feature columns dependent to
/// working precision — [`LayerError::Degenerate`]. Every error names `ncut_projector`.
pub fn ncut_projector(features: Var<'_>) -> Result<Var<'_>> {
    let op = "ncut_projector";
    let (n, d) = features.shape();
    if d > n {
        return Err(LayerError::InvalidArgument {
            op,
            message: format!(
                "{n} points with {d} features: the normalized-cuts subspace has dimension d, so it needs at least as many points as features (n ≥ d) and linearly independent feature columns"
            ),
        });
    }
    let tape = features.tape();
    let ones = tape.constant(Value::Real(faer::Mat::from_fn(n, 1, |_, _| 1.0)))?;
    // degrees d = F (Fᵀ 1), without forming the n×n affinity
    let deg = features.matmul(features.matmul_forms(Form::Adjoint, ones, Form::Plain)?)?;
    let dv = deg.value();
    let dr = dv.as_real().ok_or_else(|| LayerError::InvalidArgument {
        op,
        message: "features must be real".into(),
    })?;
    if let Some(i) = (0..n).find(|&i| dr[(i, 0)] <= 0.0) {
        return Err(LayerError::InvalidArgument {
            op,
            message: format!(
                "point {i} has degree {:.3e} ≤ 0; features must be nonnegative with no zero row",
                dr[(i, 0)]
            ),
        });
    }
    let z = features.mul(deg.powf(-0.5)?.broadcast_to(n, d)?)?;
    Ok(range_projector(z).map_err(|e| e.within(op))?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, positive_matrix};
    use matgrad_engine::Tape;

    #[test]
    fn forward_is_a_projector_of_rank_d() {
        let t = Tape::new();
        let f = t.constant(positive_matrix(7, 3, 0.1, 1.0, 1)).unwrap();
        let p = ncut_projector(f).unwrap();
        assert!(p.matmul(p).unwrap().value().rel_diff(&p.value()).unwrap() < 1e-13);
        assert!((p.trace().unwrap().value().scalar_real().unwrap() - 3.0).abs() < 1e-12);
        // two clusters of identical points: the projector is block-constant
        let f = Value::Real(faer::mat![[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]);
        let p = ncut_projector(t.constant(f).unwrap()).unwrap().value();
        let p = p.as_real().unwrap();
        assert!((p[(0, 1)] - 0.5).abs() < 1e-15 && p[(0, 2)].abs() < 1e-15);
    }

    #[test]
    fn rules() {
        assert_rules(
            "ncut_projector",
            |_, x| ncut_projector(x[0]),
            &[positive_matrix(6, 2, 0.1, 1.0, 2)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let zero_row = t
            .leaf(Value::Real(faer::mat![[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
            .unwrap();
        assert!(matches!(
            ncut_projector(zero_row),
            Err(LayerError::InvalidArgument { .. })
        ));
        let rank1 = t
            .leaf(Value::Real(faer::mat![[1.0, 1.0], [2.0, 2.0], [1.0, 1.0]]))
            .unwrap();
        assert!(matches!(
            ncut_projector(rank1),
            Err(LayerError::Degenerate {
                op: "ncut_projector",
                ..
            })
        ));
        // fewer points than features: named as such (it used to say "solve: … singular")
        let few = t.leaf(positive_matrix(3, 5, 0.1, 1.0, 4)).unwrap();
        match ncut_projector(few) {
            Err(LayerError::InvalidArgument {
                op: "ncut_projector",
                message,
            }) => {
                assert!(message.contains("3 points with 5 features"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
