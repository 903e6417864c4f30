//! Functions of symmetric/Hermitian matrices: `logm_sym`, `sqrtm_sym`, `expm_sym`,
//! `powm_sym` and `matrix_function_sym` for a user `f` with `f′` (and `f″` for second
//! order).
//!
//! forward: `f(A) = U f(Λ) Uᴴ` with `sym(A) = U Λ Uᴴ` (faer's self-adjoint eigensolver);
//! tangent and adjoint: Daleckii–Krein (see [`crate::daleckii_krein`]), exact at repeated
//! eigenvalues; divided differences are guarded against cancellation at near-ties
//! ([`crate::divided`]). The input must be Hermitian within `HERMITIAN_RTOL`; the op reads
//! `sym(A)` and returns the gradient of `A ↦ f(sym(A))`.
//!
//! Domains: `logm_sym` needs λ > 0; `sqrtm_sym` needs λ ≥ 0 (eigenvalues down to
//! `−n·ε·max|λ|` are rounding and are clamped to 0; the derivative needs λ > 0);
//! `powm_sym(p)` needs λ > 0 unless p is a nonnegative integer.
//! Derivation: docs/math/matrix_function_sym.md.

use std::rc::Rc;

use matgrad_engine::Var;

use crate::daleckii_krein::{MatFn, Shared};
use crate::divided::SymFn;
use crate::error::{Result, SpectralError};
use crate::sym_eig::{decompose, reconstruct};

pub(crate) fn check_domain(f: &SymFn, lambda: &[f64]) -> Result<()> {
    let op = f.name();
    let n = lambda.len() as f64;
    let scale = lambda.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let Some((index, &value)) = lambda.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)) else {
        return Ok(()); // an empty spectrum is in every domain
    };
    let bad = match f {
        SymFn::Log => (value <= 0.0).then_some("logm_sym needs a positive definite matrix; add εI"),
        SymFn::Sqrt => (value < -n * f64::EPSILON * scale)
            .then_some("sqrtm_sym needs a positive semidefinite matrix"),
        SymFn::Pow(p) if !(p.fract() == 0.0 && *p >= 0.0) => (value <= 0.0)
            .then_some("a non-integer or negative power needs a positive definite matrix; add εI"),
        _ => None,
    };
    match bad {
        Some(hint) => Err(SpectralError::SpectrumDomain {
            op,
            index,
            value,
            hint,
        }),
        None => Ok(()),
    }
}

/// `f(A)` for a Hermitian `A` and a scalar function given as [`SymFn`].
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// use matgrad_spectral::{matrix_function_sym, SymFn};
/// # fn main() -> Result<(), matgrad_spectral::SpectralError> {
/// let tape = Tape::new();
/// let a = tape.leaf(Value::Real(faer::mat![[2.0, 1.0], [1.0, 2.0]]))?;
/// let cube = SymFn::Custom {
///     name: "cube",
///     f: std::rc::Rc::new(|x: f64| x.powi(3)),
///     df: std::rc::Rc::new(|x: f64| 3.0 * x * x),
///     d2f: Some(std::rc::Rc::new(|x: f64| 6.0 * x)),
/// };
/// let y = matrix_function_sym(a, cube)?;          // = A³
/// let want = a.matmul(a)?.matmul(a)?;
/// assert!(y.value().rel_diff(&want.value())? < 1e-14);
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
/// Not square; not Hermitian; eigenvalues outside the domain; eigensolver failure.
pub fn matrix_function_sym<'t>(a: Var<'t>, f: SymFn) -> Result<Var<'t>> {
    let op = f.name();
    let mut eig = a.with_value(|v| decompose(op, v))?;
    check_domain(&f, &eig.lambda)?;
    if matches!(f, SymFn::Sqrt) {
        for l in &mut eig.lambda {
            *l = l.max(0.0);
        }
    }
    let out = reconstruct(&eig, |i| f.value(eig.lambda[i]));
    let shared = Rc::new(Shared::new(eig, Rc::new(f)));
    a.tape().record1(Rc::new(MatFn { fam: shared }), &[a], out)
}

/// Principal logarithm of a symmetric/Hermitian positive definite matrix.
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`matrix_function_sym`]; [`SpectralError::Domain`] when A is not positive definite.
pub fn logm_sym(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_sym(a, SymFn::Log)
}

/// Principal square root of a symmetric/Hermitian positive semidefinite matrix.
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`matrix_function_sym`]; [`SpectralError::Domain`] when A has a negative eigenvalue.
pub fn sqrtm_sym(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_sym(a, SymFn::Sqrt)
}

/// Exponential of a symmetric/Hermitian matrix.
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`matrix_function_sym`].
pub fn expm_sym(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_sym(a, SymFn::Exp)
}

/// `Aᵖ` for a symmetric/Hermitian matrix (positive definite unless p is a nonnegative
/// integer).
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// As [`matrix_function_sym`]; a non-finite `p`.
pub fn powm_sym(a: Var<'_>, p: f64) -> Result<Var<'_>> {
    if !p.is_finite() {
        return Err(SpectralError::InvalidArgument {
            op: "powm_sym",
            message: format!("the exponent must be finite, got {p}"),
        });
    }
    matrix_function_sym(a, SymFn::Pow(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::check::Tolerance;
    use matgrad_engine::testing::{
        assert_rules, assert_rules_with, hermitian_from_seed, spd_from_seed, symmetric_from_seed,
        Spectrum,
    };
    use matgrad_engine::{Form, Tape, Value};

    fn spectra() -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("distinct", Spectrum::log_spaced(4, 0.5, 3.0).values()),
            ("identity", vec![1.0; 4]),
            ("ties 2+2", vec![1.0, 1.0, 2.0, 2.0]),
            (
                "near tie 1e-6",
                Spectrum::exact(vec![0.7, 1.0, 1.0 + 1e-6, 2.0]).values(),
            ),
            (
                "near tie 1e-10",
                Spectrum::exact(vec![0.7, 1.0, 1.0 + 1e-10, 2.0]).values(),
            ),
            (
                "cluster",
                Spectrum::exact(vec![1.0, 1.0 + 1e-3, 1.0 + 2e-3, 3.0]).values(),
            ),
        ]
    }

    #[test]
    fn forward_reconstructs() {
        let t = Tape::new();
        for n in [1, 2, 3, 8, 31] {
            let a = t.constant(spd_from_seed(n, 50.0, n as u64)).unwrap();
            let l = logm_sym(a).unwrap();
            let back = expm_sym(l.sym().unwrap()).unwrap();
            assert!(
                back.value().rel_diff(&a.value()).unwrap() < 1e-12 * n as f64,
                "exp(log A) = A, n={n}"
            );
            let s = sqrtm_sym(a).unwrap();
            let sq = s.matmul(s).unwrap();
            assert!(
                sq.value().rel_diff(&a.value()).unwrap() < 1e-12 * n as f64,
                "sqrt(A)² = A"
            );
            let p = powm_sym(a, 2.0).unwrap();
            assert!(p.value().rel_diff(&a.matmul(a).unwrap().value()).unwrap() < 1e-12 * n as f64);
        }
        let h = t
            .constant(hermitian_from_seed(&[0.5, 1.0, 4.0], 3))
            .unwrap();
        let s = sqrtm_sym(h).unwrap();
        let sq = s.matmul_forms(Form::Plain, s, Form::Plain).unwrap();
        assert!(sq.value().rel_diff(&h.value()).unwrap() < 1e-13);
    }

    /// At A = I the gradient of ⟨Ḡ, f(A)⟩ is f′(1)·sym(Ḡ) (closed form: every divided
    /// difference is f′(1)); eigh-composition gives NaN there (PyTorch, JAX).
    #[test]
    fn exact_at_identity() {
        let t = Tape::new();
        for (f, d) in [
            (SymFn::Log, 1.0),
            (SymFn::Exp, std::f64::consts::E),
            (SymFn::Sqrt, 0.5),
            (SymFn::Pow(3.0), 3.0),
        ] {
            let a = t
                .leaf(Value::identity(matgrad_engine::DType::F64, 3))
                .unwrap();
            let y = matrix_function_sym(a, f).unwrap();
            let gbar = matgrad_engine::testing::real_matrix(3, 3, 5);
            let g = t.vjp(&[y], std::slice::from_ref(&gbar), &[a]).unwrap();
            let gb = gbar.as_real().unwrap();
            let got = g[0].as_real().unwrap();
            for i in 0..3 {
                for j in 0..3 {
                    let w = d * 0.5 * (gb[(i, j)] + gb[(j, i)]);
                    assert!(
                        (got[(i, j)] - w).abs() < 1e-14,
                        "{i},{j}: {} vs {w}",
                        got[(i, j)]
                    );
                }
            }
        }
    }

    #[test]
    fn rules_over_spectra() {
        for (label, spec) in spectra() {
            let a = symmetric_from_seed(&spec, 91);
            for f in [
                SymFn::Log,
                SymFn::Exp,
                SymFn::Sqrt,
                SymFn::Pow(1.5),
                SymFn::Pow(-0.5),
            ] {
                let name = format!("{} {label}", f.name());
                assert_rules(
                    &name,
                    move |_, x| matrix_function_sym(x[0].sym()?, f.clone()),
                    std::slice::from_ref(&a),
                );
            }
        }
        let h = hermitian_from_seed(&[1.0, 1.0, 2.5], 92);
        assert_rules("logm_sym complex tie", |_, x| logm_sym(x[0].sym()?), &[h]);
    }

    /// Regression (issue 7, bug 1): integer powers at a tied *negative* eigenvalue took the
    /// plain quotient at the ≈1e-15 gaps the eigensolver returns for a tie (vjp-vs-FD 3e-2
    /// on (−3, −3, −3, 1)); clusters near 0 and at −1e3, first and second order.
    #[test]
    fn integer_powers_at_negative_ties() {
        for (label, spec) in [
            ("(-3,-3,-3,1)", vec![-3.0, -3.0, -3.0, 1.0]),
            ("(-1e3,-1e3,2)", vec![-1e3, -1e3, 2.0]),
            ("(-2,-2+1e-9,-1,-1)", vec![-2.0, -2.0 + 1e-9, -1.0, -1.0]),
            ("cluster at 0", vec![-5e-10, 5e-10, 2e-9, 1.0]),
        ] {
            for seed in [1, 2, 3] {
                let a = symmetric_from_seed(&spec, seed);
                for p in [2.0, 3.0] {
                    assert_rules(
                        &format!("powm_sym p={p} {label} seed {seed}"),
                        move |_, x| powm_sym(x[0].sym()?, p),
                        std::slice::from_ref(&a),
                    );
                }
            }
        }
    }

    /// Regression (issue 7, bug 1): a user function's divided differences switched to
    /// f′(midpoint) only relative to |a|, |b|, so a cluster at 0 took the plain quotient
    /// (custom exp vs built-in exp: 2e-8 apart at ±5e-10, 5e-5 at ±5e-13). The gradients of
    /// a user exp and the built-in exp must now agree to rounding everywhere.
    #[test]
    fn user_function_agrees_with_builtin_near_zero() {
        let custom = SymFn::Custom {
            name: "my_exp",
            f: Rc::new(f64::exp),
            df: Rc::new(f64::exp),
            d2f: Some(Rc::new(f64::exp)),
        };
        for spec in [
            vec![-5e-10, 5e-10, 1.0],
            vec![-5e-13, 5e-13, 1.0],
            vec![-1e3, -1e3 + 1e-10, 0.0],
            vec![7.0, 7.0 + 1e-12, 7.0 + 3e-12],
        ] {
            let av = symmetric_from_seed(&spec, 4);
            let gbar = matgrad_engine::testing::real_matrix(3, 3, 5);
            let grad = |f: SymFn| {
                let t = Tape::new();
                let a = t.leaf(av.clone()).unwrap();
                let y = matrix_function_sym(a, f).unwrap();
                t.vjp(&[y], std::slice::from_ref(&gbar), &[a]).unwrap()[0].clone()
            };
            let (mine, builtin) = (grad(custom.clone()), grad(SymFn::Exp));
            let d = mine.rel_diff(&builtin).unwrap();
            assert!(
                d < 1e-14,
                "{spec:?}: user exp vs built-in exp differ by {d:e}"
            );
        }
    }

    #[test]
    fn custom_function_with_and_without_second_derivative() {
        let cube = |d2: bool| SymFn::Custom {
            name: "cube",
            f: Rc::new(|x: f64| x.powi(3)),
            df: Rc::new(|x: f64| 3.0 * x * x),
            d2f: if d2 {
                Some(Rc::new(|x: f64| 6.0 * x))
            } else {
                None
            },
        };
        let a = symmetric_from_seed(&[1.0, 1.0, 2.0], 93);
        assert_rules_with(
            "cube",
            move |_, x| matrix_function_sym(x[0].sym()?, cube(true)),
            std::slice::from_ref(&a),
            Tolerance::STRICT,
        );
        // first order works without f″; second order is a clear error
        let t = Tape::new();
        let x = t.leaf(a).unwrap();
        let y = matrix_function_sym(x, cube(false))
            .unwrap()
            .trace()
            .unwrap();
        let g = t.grad_graph(y, &[x]).unwrap()[0];
        let s = g.sum(matgrad_engine::Axis::All).unwrap();
        let err = t.grad(s, &[x]).unwrap_err();
        assert!(err.to_string().contains("need f″"), "{err}");
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let indefinite = t.leaf(symmetric_from_seed(&[-1.0, 2.0], 1)).unwrap();
        assert!(matches!(
            logm_sym(indefinite),
            Err(SpectralError::SpectrumDomain {
                op: "logm_sym",
                index: 0,
                ..
            })
        ));
        assert!(matches!(
            sqrtm_sym(indefinite),
            Err(SpectralError::SpectrumDomain { .. })
        ));
        assert!(matches!(
            powm_sym(indefinite, 0.5),
            Err(SpectralError::SpectrumDomain { .. })
        ));
        assert!(
            powm_sym(indefinite, 2.0).is_ok(),
            "integer powers need no definiteness"
        );
        assert!(matches!(
            powm_sym(indefinite, f64::NAN),
            Err(SpectralError::InvalidArgument { .. })
        ));
        let ns = t
            .leaf(Value::Real(faer::mat![[1.0, 2.0], [0.0, 1.0]]))
            .unwrap();
        assert!(matches!(
            logm_sym(ns),
            Err(matgrad_engine::EngineError::NotHermitian { .. })
        ));
        let rect = t.leaf(Value::Real(faer::mat![[1.0, 2.0]])).unwrap();
        assert!(matches!(
            expm_sym(rect),
            Err(matgrad_engine::EngineError::NotSquare { .. })
        ));
        // sqrt at a singular PSD matrix: the value exists, the derivative does not
        let psd = t.leaf(symmetric_from_seed(&[0.0, 1.0], 2)).unwrap();
        let s = sqrtm_sym(psd).unwrap().trace().unwrap();
        assert!(t.grad(s, &[psd]).is_err());
    }
}
