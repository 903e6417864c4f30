//! Matrix generators for tests and property tests, with control of the spectrum.
//!
//! Deterministic constructors (`*_from_seed`, [`real_matrix`], …) build one matrix from a
//! seed; the proptest strategies (`general`, `spd`, `symmetric_with_spectrum`, …, with the
//! crate feature `proptest`) wrap them so that `proptest!` can draw many. Spectra are prescribed exactly: a
//! symmetric matrix is `Q diag(λ) Qᵀ` with a Haar-random orthogonal `Q`, so ties are exact
//! up to the rounding of the product (≈ n·ε·max|λ|).
//!
//! ```
//! use matgrad_engine::testing::{Spectrum, symmetric_from_seed};
//! let a = symmetric_from_seed(&Spectrum::ties(4, 2).values(), 7);   // eigenvalues 1,1,2,2
//! assert_eq!(a.shape(), (4, 4));
//! ```

use faer::Mat;
#[cfg(feature = "proptest")]
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::check::{check, CheckOptions, Tolerance};
use crate::error::Result;
use crate::tape::{Tape, Var};
use crate::value::{Value, C64};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An `m×n` real matrix with standard normal entries, from a seed.
pub fn real_matrix(m: usize, n: usize, seed: u64) -> Value {
    let mut r = rng(seed);
    Value::Real(Mat::from_fn(m, n, |_, _| StandardNormal.sample(&mut r)))
}

/// An `m×n` complex matrix with standard normal real and imaginary parts, from a seed.
pub fn complex_matrix(m: usize, n: usize, seed: u64) -> Value {
    let mut r = rng(seed);
    Value::Complex(Mat::from_fn(m, n, |_, _| {
        C64::new(StandardNormal.sample(&mut r), StandardNormal.sample(&mut r))
    }))
}

/// An `m×n` real matrix with entries uniform in `[lo, hi]`, from a seed (for ops with a
/// restricted domain: log, sqrt, powf).
pub fn positive_matrix(m: usize, n: usize, lo: f64, hi: f64, seed: u64) -> Value {
    let mut r = rng(seed);
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    Value::Real(Mat::from_fn(m, n, |_, _| {
        let t: f64 = rand::Rng::random(&mut r);
        lo + (hi - lo) * t
    }))
}

/// A Haar-random orthogonal `n×n` matrix, from a seed (QR of a Gaussian matrix with the
/// signs of `R`'s diagonal moved into `Q`).
pub fn orthogonal_from_seed(n: usize, seed: u64) -> Mat<f64> {
    let g = real_matrix(n, n, seed);
    let g = g.as_real().expect("real");
    let qr = g.qr();
    let mut q = qr.compute_Q();
    let r = qr.R();
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            for i in 0..n {
                q[(i, j)] = -q[(i, j)];
            }
        }
    }
    q
}

/// A Haar-random unitary `n×n` matrix, from a seed.
pub fn unitary_from_seed(n: usize, seed: u64) -> Mat<C64> {
    let g = complex_matrix(n, n, seed);
    let g = g.as_complex().expect("complex");
    let qr = g.qr();
    let mut q = qr.compute_Q();
    let r = qr.R();
    for j in 0..n {
        let d = r[(j, j)];
        let ph = if d.norm() > 0.0 {
            d / d.norm()
        } else {
            C64::new(1.0, 0.0)
        };
        for i in 0..n {
            q[(i, j)] *= ph;
        }
    }
    q
}

/// `Q diag(λ) Qᵀ` with a Haar-random orthogonal `Q`.
pub fn symmetric_from_seed(eigenvalues: &[f64], seed: u64) -> Value {
    let n = eigenvalues.len();
    let q = orthogonal_from_seed(n, seed);
    let d = Mat::from_fn(n, n, |i, j| if i == j { eigenvalues[i] } else { 0.0 });
    let a = &q * &d * q.transpose();
    // Exact symmetry (the product is symmetric only up to rounding).
    Value::Real(Mat::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)])))
}

/// `U diag(λ) Uᴴ` with a Haar-random unitary `U`.
pub fn hermitian_from_seed(eigenvalues: &[f64], seed: u64) -> Value {
    let n = eigenvalues.len();
    let u = unitary_from_seed(n, seed);
    let d = Mat::from_fn(n, n, |i, j| {
        if i == j {
            C64::new(eigenvalues[i], 0.0)
        } else {
            C64::new(0.0, 0.0)
        }
    });
    let a = &u * &d * u.adjoint();
    Value::Complex(Mat::from_fn(n, n, |i, j| {
        0.5 * (a[(i, j)] + a[(j, i)].conj())
    }))
}

/// A symmetric positive definite matrix with eigenvalues log-spaced from 1 to `cond`.
pub fn spd_from_seed(n: usize, cond: f64, seed: u64) -> Value {
    symmetric_from_seed(&Spectrum::log_spaced(n, 1.0, cond).values(), seed)
}

/// An `m×n` real matrix of rank `r` (product of Gaussian `m×r` and `r×n` factors).
pub fn rank_deficient_from_seed(m: usize, n: usize, r: usize, seed: u64) -> Value {
    let a = real_matrix(m, r, seed);
    let b = real_matrix(r, n, seed.wrapping_add(1));
    Value::Real(a.as_real().expect("real") * b.as_real().expect("real"))
}

/// A prescribed spectrum (ascending).
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum(Vec<f64>);

impl Spectrum {
    /// Exactly these values (sorted ascending).
    pub fn exact(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Spectrum(values)
    }
    /// `n` values in groups of `multiplicity` exact ties: 1,…,1, 2,…,2, ….
    pub fn ties(n: usize, multiplicity: usize) -> Self {
        let m = multiplicity.max(1);
        Spectrum((0..n).map(|i| (i / m + 1) as f64).collect())
    }
    /// `n` values in clusters of `size` whose members are `width` apart, clusters 1 apart.
    pub fn clusters(n: usize, size: usize, width: f64) -> Self {
        let s = size.max(1);
        Spectrum::exact(
            (0..n)
                .map(|i| (i / s + 1) as f64 + (i % s) as f64 * width)
                .collect(),
        )
    }
    /// 1, 2, …, n with eigenvalues `k` and `k+1` moved to within `gap` of each other.
    pub fn near_tie(n: usize, k: usize, gap: f64) -> Self {
        let mut v: Vec<f64> = (0..n).map(|i| (i + 1) as f64).collect();
        if k + 1 < n {
            v[k + 1] = v[k] + gap;
            for (i, x) in v.iter_mut().enumerate().skip(k + 2) {
                *x = (i + 1) as f64 + gap;
            }
        }
        Spectrum::exact(v)
    }
    /// `n` values log-spaced from `lo` to `hi` (condition number `hi/lo`).
    pub fn log_spaced(n: usize, lo: f64, hi: f64) -> Self {
        if n == 1 {
            return Spectrum(vec![lo]);
        }
        let (a, b) = (lo.ln(), hi.ln());
        Spectrum(
            (0..n)
                .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp())
                .collect(),
        )
    }
    /// The values, ascending.
    pub fn values(&self) -> Vec<f64> {
        self.0.clone()
    }
}

/// Strategy: a real `m×n` Gaussian matrix.
#[cfg(feature = "proptest")]
pub fn general(m: usize, n: usize) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| real_matrix(m, n, s))
}

/// Strategy: a complex `m×n` Gaussian matrix.
#[cfg(feature = "proptest")]
pub fn general_complex(m: usize, n: usize) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| complex_matrix(m, n, s))
}

/// Strategy: an `n×n` SPD matrix with condition number exactly `cond`.
#[cfg(feature = "proptest")]
pub fn spd(n: usize, cond: f64) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| spd_from_seed(n, cond, s))
}

/// Strategy: a real symmetric matrix with the given spectrum, random eigenvectors.
#[cfg(feature = "proptest")]
pub fn symmetric_with_spectrum(spectrum: Spectrum) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| symmetric_from_seed(&spectrum.values(), s))
}

/// Strategy: a complex Hermitian matrix with the given spectrum, random eigenvectors.
#[cfg(feature = "proptest")]
pub fn hermitian_with_spectrum(spectrum: Spectrum) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| hermitian_from_seed(&spectrum.values(), s))
}

/// Strategy: a Haar-random orthogonal `n×n` matrix.
#[cfg(feature = "proptest")]
pub fn orthogonal(n: usize) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| Value::Real(orthogonal_from_seed(n, s)))
}

/// Strategy: a Haar-random unitary `n×n` matrix.
#[cfg(feature = "proptest")]
pub fn unitary(n: usize) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| Value::Complex(unitary_from_seed(n, s)))
}

/// Strategy: an `m×n` matrix of rank `r`.
#[cfg(feature = "proptest")]
pub fn rank_deficient(m: usize, n: usize, r: usize) -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(move |s| rank_deficient_from_seed(m, n, r, s))
}

/// Runs [`check`] with [`Tolerance::STRICT`] and second order, and panics with the report
/// when a check fails. For tests.
///
/// # Panics
/// When `f` errors at `inputs` or any check fails.
pub fn assert_rules<F>(name: &str, f: F, inputs: &[Value])
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    assert_rules_with(name, f, inputs, Tolerance::STRICT);
}

/// [`assert_rules`] with an explicit tolerance preset.
///
/// # Panics
/// When `f` errors at `inputs` or any check fails.
pub fn assert_rules_with<F>(name: &str, f: F, inputs: &[Value], tolerance: Tolerance)
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    let shapes: Vec<_> = inputs.iter().map(|v| (v.dtype(), v.shape())).collect();
    let opts = CheckOptions {
        tolerance,
        ..CheckOptions::default()
    };
    match check(f, inputs, &opts) {
        Ok(r) => assert!(r.passed, "{name} on {shapes:?}: {r}"),
        Err(e) => panic!("{name} on {shapes:?}: {e}"),
    }
}
