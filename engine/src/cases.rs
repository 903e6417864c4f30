//! Case generators for the op registry ([`crate::spec`]): inputs chosen where bugs hide —
//! rectangles tall and wide, 1×1 and empty matrices, complex values, ill-conditioned
//! matrices, and for spectral ops negative and indefinite spectra, clusters at 0 and at
//! large magnitude, exact ties and near-ties (1e-4 … 1e-12) away from λ = 1 (at λ ≈ 1,
//! `log λ` is computed almost exactly and hides a missing cancellation guard).
//!
//! Every generator is deterministic (seeded).

use crate::check::Tolerance;
use crate::spec::Case;
use crate::testing::{
    complex_matrix, hermitian_from_seed, positive_matrix, real_matrix, spd_from_seed,
    symmetric_from_seed, Spectrum,
};
use crate::value::{DType, Value};

/// Shapes every general op is checked at: 1×1, a wide and a tall rectangle, a square.
pub const SHAPES: [(usize, usize); 4] = [(1, 1), (2, 5), (5, 2), (4, 4)];

/// Real and complex Gaussian matrices at [`SHAPES`], plus an empty 0×3 matrix.
pub fn general(seed: u64) -> Vec<Case> {
    let mut v = real(seed);
    v.extend(SHAPES.iter().map(|&(m, n)| {
        Case::new(
            format!("complex {m}×{n}"),
            vec![complex_matrix(m, n, seed + 100)],
        )
    }));
    v
}

/// Real Gaussian matrices at [`SHAPES`] (some entries large: ±3σ), plus an empty one.
pub fn real(seed: u64) -> Vec<Case> {
    let mut v: Vec<Case> = SHAPES
        .iter()
        .map(|&(m, n)| Case::new(format!("real {m}×{n}"), vec![real_matrix(m, n, seed)]))
        .collect();
    v.push(Case::new("empty 0×3", vec![Value::zeros(DType::F64, 0, 3)]));
    v
}

/// Entries in `[lo, hi]` (ops with a positive domain), at [`SHAPES`].
pub fn positive(seed: u64, lo: f64, hi: f64) -> Vec<Case> {
    SHAPES
        .iter()
        .map(|&(m, n)| {
            Case::new(
                format!("entries in [{lo}, {hi}], {m}×{n}"),
                vec![positive_matrix(m, n, lo, hi, seed)],
            )
        })
        .collect()
}

/// Pairs of same-shaped matrices, real and complex; the second has entries away from 0
/// (for division).
pub fn pairs(seed: u64) -> Vec<Case> {
    let mut v = Vec::new();
    for &(m, n) in &SHAPES {
        v.push(Case::new(
            format!("real {m}×{n}"),
            vec![
                real_matrix(m, n, seed),
                positive_matrix(m, n, 0.5, 2.0, seed + 1),
            ],
        ));
        v.push(Case::new(
            format!("complex {m}×{n}"),
            vec![
                complex_matrix(m, n, seed + 5),
                away_from_zero(complex_matrix(m, n, seed + 2)),
            ],
        ));
    }
    v.push(Case::new(
        "empty 0×3",
        vec![
            Value::zeros(DType::F64, 0, 3),
            Value::zeros(DType::F64, 0, 3),
        ],
    ));
    v
}

/// `x` with every entry pushed to modulus at least 0.5 (same phase).
fn away_from_zero(x: Value) -> Value {
    match x {
        Value::Real(m) => Value::Real(faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
            let v = m[(i, j)];
            if v.abs() < 0.5 {
                0.5f64.copysign(v) + v
            } else {
                v
            }
        })),
        Value::Complex(m) => Value::Complex(faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
            let z = m[(i, j)];
            if z.norm() < 0.5 {
                z + crate::value::C64::new(0.5, 0.5)
            } else {
                z
            }
        })),
    }
}

/// `A + shift·I` for a Gaussian A: square and (for shift ≈ n) well conditioned.
pub fn shifted(dtype: DType, n: usize, shift: f64, seed: u64) -> Value {
    let a = match dtype {
        DType::F64 => real_matrix(n, n, seed),
        DType::C64 => complex_matrix(n, n, seed),
    };
    a.axpy(shift, &Value::identity(dtype, n))
        .expect("same shape")
}

/// Invertible square matrices: 1×1, 3×3, 8×8 real, 3×3 complex, one with condition number
/// ≈ 1e4 (BALANCED tolerance), and 0×0.
pub fn invertible(seed: u64) -> Vec<Case> {
    let mut v = Vec::new();
    for n in [1, 3, 8] {
        v.push(Case::new(
            format!("real {n}×{n}"),
            vec![shifted(DType::F64, n, n as f64, seed)],
        ));
    }
    v.push(Case::new(
        "complex 3×3",
        vec![shifted(DType::C64, 3, 3.0, seed + 1)],
    ));
    v.push(
        Case::new(
            "nonsymmetric 4×4, cond ≈ 1e4",
            vec![ill_conditioned(4, 1e4, seed + 2)],
        )
        .tol(Tolerance::BALANCED),
    );
    v.push(Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]));
    v
}

/// `Q₁ diag(σ) Q₂ᵀ` with σ log-spaced from 1 to `cond`.
pub fn ill_conditioned(n: usize, cond: f64, seed: u64) -> Value {
    let q1 = crate::testing::orthogonal_from_seed(n, seed);
    let q2 = crate::testing::orthogonal_from_seed(n, seed + 1);
    let s = Spectrum::log_spaced(n, 1.0, cond).values();
    let d = faer::Mat::from_fn(n, n, |i, j| if i == j { s[i] } else { 0.0 });
    Value::Real(&q1 * &d * q2.transpose())
}

/// Symmetric/Hermitian positive definite matrices: 1×1, 3×3, 8×8 (cond 10), 4×4 with
/// condition number 1e4 (BALANCED), complex 3×3, and 0×0.
pub fn spd(seed: u64) -> Vec<Case> {
    let mut v: Vec<Case> = [1, 3, 8]
        .iter()
        .map(|&n| {
            Case::new(
                format!("SPD {n}×{n}, cond 10"),
                vec![spd_from_seed(n, 10.0, seed)],
            )
        })
        .collect();
    v.push(
        Case::new("SPD 4×4, cond 1e4", vec![spd_from_seed(4, 1e4, seed + 1)])
            .tol(Tolerance::BALANCED),
    );
    v.push(Case::new(
        "Hermitian PD 3×3",
        vec![hermitian_from_seed(
            &Spectrum::log_spaced(3, 1.0, 10.0).values(),
            seed + 2,
        )],
    ));
    v.push(Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]));
    v
}

/// Which spectra a Hermitian op accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spectra {
    /// Positive definite (log, sqrt, non-integer powers).
    Positive,
    /// Any real spectrum (exp, integer powers, eigh).
    Any,
}

/// How a Hermitian case's spectrum sits: distinct, with near-ties (distinct, but closer
/// than finite differences of eigenvectors can resolve), or with exact ties (returned by
/// the eigensolver ≈1e-15 apart, within the degeneracy tolerance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gaps {
    /// Well separated.
    Distinct,
    /// Some gap between 1e-12 and 1e-4 relative, above the tie tolerance (1e-10 relative).
    NearTie,
    /// Exact ties.
    Tie,
}

/// A Hermitian case with its spectrum.
#[derive(Clone)]
pub struct HermitianCase {
    /// The case.
    pub case: Case,
    /// The eigenvalues it was built from (ascending).
    pub spectrum: Vec<f64>,
    /// How they are spaced.
    pub gaps: Gaps,
}

impl HermitianCase {
    /// Whether the largest eigenvalue is tied with the next one.
    pub fn top_tied(&self) -> bool {
        let n = self.spectrum.len();
        self.gaps == Gaps::Tie && n >= 2 && {
            let (a, b) = (self.spectrum[n - 2], self.spectrum[n - 1]);
            (b - a).abs() <= 1e-10 * a.abs().max(b.abs()).max(1.0)
        }
    }
}

/// Hermitian matrices with spectra where divided-difference and degeneracy bugs hide.
/// Ties and near-ties sit away from λ = 1.
pub fn hermitian(kind: Spectra, seed: u64) -> Vec<HermitianCase> {
    use Gaps::{Distinct, NearTie, Tie};
    let mut v: Vec<(&str, Vec<f64>, Gaps, Tolerance)> = vec![
        ("1×1", vec![2.5], Distinct, Tolerance::STRICT),
        (
            "distinct, log-spaced 0.5…4",
            Spectrum::log_spaced(4, 0.5, 4.0).values(),
            Distinct,
            Tolerance::STRICT,
        ),
        (
            "tie at 3 (0.3, 3, 3, 7)",
            vec![0.3, 3.0, 3.0, 7.0],
            Tie,
            Tolerance::STRICT,
        ),
        ("all tied at 5 (5·I)", vec![5.0; 3], Tie, Tolerance::STRICT),
        (
            "near tie 1e-4 at 3",
            vec![0.3, 3.0, 3.0 + 1e-4, 7.0],
            NearTie,
            Tolerance::STRICT,
        ),
        (
            "near tie 1e-8 at 3",
            vec![0.3, 3.0, 3.0 + 1e-8, 7.0],
            NearTie,
            Tolerance::STRICT,
        ),
        (
            "tie within tolerance, 1e-12 at 3",
            vec![0.3, 3.0, 3.0 + 1e-12, 7.0],
            Tie,
            Tolerance::STRICT,
        ),
        (
            "cluster 2, 2+1e-3, 2+2e-3, 6",
            vec![2.0, 2.0 + 1e-3, 2.0 + 2e-3, 6.0],
            NearTie,
            Tolerance::STRICT,
        ),
    ];
    match kind {
        Spectra::Positive => {
            v.push((
                "cluster near 0 (1e-3, 1e-3+1e-9, 2e-3, 1)",
                vec![1e-3, 1e-3 + 1e-9, 2e-3, 1.0],
                NearTie,
                Tolerance::BALANCED,
            ));
            v.push((
                "large (1e3, 1e3+1e-4, 3e3)",
                vec![1e3, 1e3 + 1e-4, 3e3],
                NearTie,
                Tolerance::STRICT,
            ));
            v.push((
                "ill-conditioned (1e-4, 1e-2, 1)",
                vec![1e-4, 1e-2, 1.0],
                Distinct,
                Tolerance::BALANCED,
            ));
        }
        Spectra::Any => {
            v.push((
                "negative tie (−3, −3, −3, 1)",
                vec![-3.0, -3.0, -3.0, 1.0],
                Tie,
                Tolerance::STRICT,
            ));
            v.push((
                "indefinite near tie 1e-8 at −2",
                vec![-2.0, -2.0 + 1e-8, 0.5, 1.5],
                NearTie,
                Tolerance::STRICT,
            ));
            v.push((
                "cluster at 0 (±5e-10, 1)",
                vec![-5e-10, 5e-10, 1.0],
                NearTie,
                Tolerance::STRICT,
            ));
            v.push((
                "large magnitude (−20, −20+1e-6, 15)",
                vec![-20.0, -20.0 + 1e-6, 15.0],
                NearTie,
                Tolerance::BALANCED,
            ));
        }
    }
    let mut out: Vec<HermitianCase> = v
        .into_iter()
        .enumerate()
        .map(|(k, (label, spec, gaps, tol))| HermitianCase {
            case: Case::new(label, vec![symmetric_from_seed(&spec, seed + k as u64)]).tol(tol),
            spectrum: spec,
            gaps,
        })
        .collect();
    let t = if kind == Spectra::Positive { 2.0 } else { -1.0 };
    out.push(HermitianCase {
        case: Case::new(
            "complex Hermitian, tie",
            vec![hermitian_from_seed(&[t, t, 4.0], seed + 50)],
        ),
        spectrum: vec![t, t, 4.0],
        gaps: Tie,
    });
    out.push(HermitianCase {
        case: Case::new(
            "complex Hermitian, distinct",
            vec![hermitian_from_seed(&[0.7, 2.0, 3.5], seed + 51)],
        ),
        spectrum: vec![0.7, 2.0, 3.5],
        gaps: Distinct,
    });
    out.push(HermitianCase {
        case: Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]),
        spectrum: Vec::new(),
        gaps: Distinct,
    });
    out
}
