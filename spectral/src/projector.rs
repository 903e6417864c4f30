//! `eigh_projector`: the orthogonal projector onto the span of the k smallest (or largest)
//! eigenvectors of a symmetric/Hermitian matrix, `P = U_K U_Kᴴ`.
//!
//! P is the matrix function of the indicator of the kept positions, so its rules are the
//! Daleckii–Krein rules with the indicator's divided differences
//! ([`crate::divided::Indicator`]): `f[λᵢ, λⱼ] = ±1/(λᵢ − λⱼ)` across the cut and 0 inside
//! either block. Hence
//! - tangent: `Ṗ = U (C ∘ Uᴴ Ȧ U) Uᴴ`, `Cᵢⱼ = 1/(λᵢ − λⱼ)` for i kept, j discarded (and
//!   symmetrically), 0 otherwise;
//! - adjoint: `Ā = U (C ∘ Uᴴ sym(P̄) U) Uᴴ`;
//! - second order through the indicator's second divided differences, also cut-only.
//!
//! Ties inside the kept or the discarded block are harmless; only the gap at the cut must
//! exceed `gap_rtol · max|λ|` ([`PROJECTOR_GAP_RTOL`]), otherwise the subspace itself is not
//! defined and the op returns [`SpectralError::Degenerate`]. Derivation:
//! docs/math/eigh_projector.md.

use std::rc::Rc;

use matgrad_engine::Var;

use crate::daleckii_krein::{MatFn, Shared};
use crate::divided::Indicator;
use crate::error::{Result, SpectralError};
use crate::sym_eig::{decompose, reconstruct};

/// Relative gap at the cut below which the projector is reported as undefined.
pub const PROJECTOR_GAP_RTOL: f64 = 1e-10;

/// Which end of the spectrum a projector keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The k smallest eigenvalues.
    Smallest,
    /// The k largest eigenvalues.
    Largest,
}

/// The orthogonal projector onto the k-dimensional eigenspace at one end of the spectrum.
///
/// ```
/// use matgrad_engine::{Tape, testing::symmetric_from_seed};
/// use matgrad_spectral::{eigh_projector, Which};
/// # fn main() -> Result<(), matgrad_spectral::SpectralError> {
/// let tape = Tape::new();
/// // eigenvalues 1, 1, 2: the two lowest are tied, the gap at the cut is 1
/// let a = tape.leaf(symmetric_from_seed(&[1.0, 1.0, 2.0], 4))?;
/// let p = eigh_projector(a, 2, Which::Smallest)?;
/// let y = p.trace()?;                                  // = 2, constant
/// assert!((y.value().scalar_real().unwrap() - 2.0).abs() < 1e-14);
/// let g = tape.grad(y, &[a])?;                         // exactly zero
/// assert!(g[0].max_abs() < 1e-14);
/// # Ok(()) }
/// ```
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// `k` outside `0..=n` (k = 0 gives the zero projector, k = n the identity, both
/// with a zero derivative); not square; not Hermitian; [`SpectralError::Degenerate`] when the
/// gap at the cut is below tolerance.
pub fn eigh_projector(a: Var<'_>, k: usize, which: Which) -> Result<Var<'_>> {
    let op = "eigh_projector";
    let eig = a.with_value(|v| decompose(op, v))?;
    let n = eig.lambda.len();
    if k > n {
        return Err(SpectralError::InvalidArgument {
            op,
            message: format!("k = {k} must be in 0..={n} for a {n}×{n} matrix"),
        });
    }
    let kept: Vec<bool> = (0..n)
        .map(|i| match which {
            Which::Smallest => i < k,
            Which::Largest => i >= n - k,
        })
        .collect();
    if 0 < k && k < n {
        let (lo, hi) = match which {
            Which::Smallest => (k - 1, k),
            Which::Largest => (n - k - 1, n - k),
        };
        let gap = eig.lambda[hi] - eig.lambda[lo];
        let scale = eig
            .lambda
            .iter()
            .fold(f64::MIN_POSITIVE, |m, x| m.max(x.abs()));
        let tol = PROJECTOR_GAP_RTOL * scale;
        if gap <= tol {
            return Err(SpectralError::Degenerate {
                op,
                i: lo,
                j: hi,
                gap,
                tol,
                what: "the projector",
                hint: "the eigenspace is not defined when the cut falls inside a degenerate eigenvalue; choose a k at a gap",
            });
        }
    }
    let out = reconstruct(&eig, |i| f64::from(u8::from(kept[i])));
    let shared = Rc::new(Shared::new(eig, Rc::new(Indicator { kept })));
    a.tape().record1(Rc::new(MatFn { fam: shared }), &[a], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, hermitian_from_seed, symmetric_from_seed};
    use matgrad_engine::{Form, Tape};

    #[test]
    fn forward_is_an_orthogonal_projector_of_rank_k() {
        let t = Tape::new();
        for (n, k) in [(1, 1), (3, 1), (5, 2), (8, 3)] {
            let spec: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let a = t.constant(symmetric_from_seed(&spec, n as u64)).unwrap();
            for which in [Which::Smallest, Which::Largest] {
                let p = eigh_projector(a, k, which).unwrap();
                let pp = p.matmul(p).unwrap();
                assert!(pp.value().rel_diff(&p.value()).unwrap() < 1e-13);
                assert!(
                    (p.trace().unwrap().value().scalar_real().unwrap() - k as f64).abs() < 1e-13
                );
                // A P = P A (an invariant subspace)
                let ap = a.matmul(p).unwrap().value();
                let pa = p.matmul(a).unwrap().value();
                assert!(ap.rel_diff(&pa).unwrap() < 1e-12);
            }
        }
    }

    /// The measured failure of PyTorch and JAX (PAPERS.md): A = Q diag(1, 1, 2) Qᵀ,
    /// projector onto the two lowest eigenvectors. Here the rules pass FD, the dot-product
    /// test and second order for every Q tried.
    #[test]
    fn exact_with_a_tie_inside_the_kept_block() {
        for seed in 0..10u64 {
            let a = symmetric_from_seed(&[1.0, 1.0, 2.0], seed);
            assert_rules(
                "eigh_projector tie kept",
                |_, x| eigh_projector(x[0].sym()?, 2, Which::Smallest),
                std::slice::from_ref(&a),
            );
        }
        let a = symmetric_from_seed(&[1.0, 2.0, 3.0, 3.0, 3.0], 7);
        assert_rules(
            "eigh_projector tie discarded",
            |_, x| eigh_projector(x[0].sym()?, 2, Which::Smallest),
            std::slice::from_ref(&a),
        );
        let h = hermitian_from_seed(&[0.5, 0.5, 2.0, 4.0], 8);
        assert_rules(
            "eigh_projector complex",
            |_, x| eigh_projector(x[0].sym()?, 2, Which::Largest),
            std::slice::from_ref(&h),
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(symmetric_from_seed(&[1.0, 2.0, 2.0], 1)).unwrap();
        match eigh_projector(a, 1, Which::Largest) {
            Err(SpectralError::Degenerate { i: 1, j: 2, .. }) => {}
            other => panic!("expected a degenerate cut, got {other:?}"),
        }
        // k = 0: the zero projector, with a zero gradient
        let zero = eigh_projector(a, 0, Which::Smallest).unwrap();
        assert_eq!(zero.value().max_abs(), 0.0);
        let g = t.grad(zero.trace().unwrap(), &[a]).unwrap();
        assert_eq!(g[0].max_abs(), 0.0);
        assert!(matches!(
            eigh_projector(a, 4, Which::Smallest),
            Err(SpectralError::InvalidArgument { .. })
        ));
        let full = eigh_projector(a, 3, Which::Smallest).unwrap();
        let eye = full
            .matmul_forms(Form::Plain, full, Form::Plain)
            .unwrap()
            .value();
        assert!((eye.as_real().unwrap()[(0, 0)] - 1.0).abs() < 1e-14);
    }
}
