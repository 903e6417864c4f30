//! The spectrum generators deliver the spectrum they promise, and the core ops' rules
//! hold on matrices drawn from them.

use faer::Side;
use matgrad_engine::check::{check, CheckOptions, Order, Tolerance};
use matgrad_engine::testing::{self, Spectrum};
use matgrad_engine::Value;
use proptest::prelude::*;

/// Eigenvalues of the generated matrix vs the prescribed ones: the product Q Λ Qᵀ and the
/// eigensolver each contribute a few ε·‖A‖.
const SPECTRUM_ATOL: f64 = 1e-12;

fn eigenvalues(v: &Value) -> Vec<f64> {
    match v {
        Value::Real(a) => a.self_adjoint_eigenvalues(Side::Lower).unwrap(),
        Value::Complex(a) => a.self_adjoint_eigenvalues(Side::Lower).unwrap(),
    }
}

fn assert_spectrum(v: &Value, want: &[f64]) {
    let got = eigenvalues(v);
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= SPECTRUM_ATOL * scale,
            "got {got:?}, want {want:?}"
        );
    }
    assert_eq!(v.asymmetry(), Some(0.0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn exact_ties(a in testing::symmetric_with_spectrum(Spectrum::ties(6, 3))) {
        assert_spectrum(&a, &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn clusters(a in testing::hermitian_with_spectrum(Spectrum::clusters(6, 2, 1e-3))) {
        assert_spectrum(&a, &Spectrum::clusters(6, 2, 1e-3).values());
    }

    #[test]
    fn near_tie(a in testing::symmetric_with_spectrum(Spectrum::near_tie(5, 2, 1e-9))) {
        let ev = eigenvalues(&a);
        prop_assert!((ev[3] - ev[2] - 1e-9).abs() < 1e-12, "gap {}", ev[3] - ev[2]);
    }

    #[test]
    fn spd_condition_number(a in testing::spd(5, 1e3)) {
        let ev = eigenvalues(&a);
        prop_assert!((ev[4] / ev[0] / 1e3 - 1.0).abs() < 1e-10);
    }

    #[test]
    fn orthogonal_and_unitary(q in testing::orthogonal(4), u in testing::unitary(3)) {
        let q = q.as_real().unwrap().clone();
        let e = q.transpose() * &q - faer::Mat::<f64>::identity(4, 4);
        prop_assert!(e.norm_l2() < 1e-14);
        let u = u.as_complex().unwrap().clone();
        let e = u.adjoint() * &u - faer::Mat::<matgrad_engine::C64>::identity(3, 3);
        prop_assert!(e.norm_l2() < 1e-14);
    }

    #[test]
    fn rank_deficient_has_that_rank(a in testing::rank_deficient(5, 4, 2)) {
        let s = a.as_real().unwrap().singular_values().unwrap();
        prop_assert!(s[1] > 1e-8 && s[2] < 1e-12 * s[0]);
    }

    #[test]
    fn cholesky_and_logdet_rules_on_random_spd(a in testing::spd(4, 100.0)) {
        let opts = CheckOptions { tolerance: Tolerance::BALANCED, order: Order::First, directions: 1, ..CheckOptions::default() };
        let r = check(|_, x| x[0].sym()?.logdet_spd(), std::slice::from_ref(&a), &opts).unwrap();
        prop_assert!(r.passed, "{}", r);
        let r = check(|_, x| x[0].inv(), &[a], &opts).unwrap();
        prop_assert!(r.passed, "{}", r);
    }
}
