//! The registration of every layer op (see [`matgrad_engine::spec`]).

use matgrad_engine::check::Tolerance;
use matgrad_engine::spec::{Case, OpSpec};
use matgrad_engine::testing::{positive_matrix, real_matrix};
use matgrad_engine::Value;

use crate::{ncut_projector, o2p};

/// Every layer op.
pub fn specs() -> Vec<OpSpec> {
    vec![
        OpSpec::new("o2p", "F (m×d) ↦ logm_sym(FᴴF/m + eps·I): log-Euclidean second-order pooling")
            .input("F")
            .param("eps", "1e-3", "ridge ε > 0 added to the covariance")
            .apply(|x, p| Ok(vec![o2p(x[0], p.f64("eps")?)?]))
            .cases(|| {
                vec![
                    Case::new("real 20×3", vec![real_matrix(20, 3, 70)]),
                    Case::new(
                        "orthogonal features: all covariance eigenvalues tied",
                        vec![Value::Real(faer::Mat::from_fn(4, 2, |i, j| if i == j { 2.0 } else { 0.0 }))],
                    ),
                    Case::new(
                        "rank-deficient features (d > m): tied zero eigenvalues",
                        vec![real_matrix(2, 4, 71)],
                    )
                    .param("eps", "0.1"),
                    Case::new("complex 6×2", vec![matgrad_engine::testing::complex_matrix(6, 2, 72)]),
                    Case::new("ill-conditioned ε = 1e-6", vec![real_matrix(30, 3, 73)])
                        .param("eps", "1e-6")
                        .tol(Tolerance::BALANCED),
                ]
            }),
        OpSpec::new("ncut_projector", "F (n×d, nonnegative) ↦ Π = Z(ZᵀZ)⁻¹Zᵀ with Z = D^{-1/2}F, D = diag(FFᵀ1), through a QR of Z")
            .input("F")
            .apply(|x, _| Ok(vec![ncut_projector(x[0])?]))
            .cases(|| {
                vec![
                    Case::new("positive 6×2", vec![positive_matrix(6, 2, 0.1, 1.0, 71)]),
                    Case::new("positive 9×3", vec![positive_matrix(9, 3, 0.1, 1.0, 72)]),
                    Case::new("two clusters of near-identical points", vec![Value::Real(faer::mat![
                        [1.0, 0.01],
                        [0.98, 0.02],
                        [0.02, 1.0],
                        [0.01, 0.97],
                        [0.5, 0.5]
                    ])]),
                    Case::new("n = d = 3 (Π = I)", vec![positive_matrix(3, 3, 0.2, 1.0, 73)]),
                ]
            }),
    ]
}
