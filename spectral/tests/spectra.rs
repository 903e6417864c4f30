//! Property tests over generated spectra: matrix functions and projectors keep their
//! rules (finite differences, dot product, second order) at exact ties, near-ties from
//! 1e-4 to 1e-12, and clusters, for random eigenvectors, real and complex.

use matgrad_engine::check::{check, CheckOptions, Tolerance};
use matgrad_engine::testing::{self, Spectrum};
use matgrad_engine::{EngineError, Value};
use matgrad_spectral::{eigh_projector, logm_sym, matrix_function_sym, SymFn, Which};
use proptest::prelude::*;

fn assert_pass(
    name: &str,
    r: Result<matgrad_engine::check::CheckReport, EngineError>,
) -> Result<(), TestCaseError> {
    match r {
        Ok(r) => {
            prop_assert!(r.passed, "{}: {}", name, r);
            Ok(())
        }
        Err(err) => Err(TestCaseError::fail(format!("{name}: {err}"))),
    }
}

fn opts() -> CheckOptions {
    CheckOptions {
        tolerance: Tolerance::STRICT,
        directions: 1,
        ..CheckOptions::default()
    }
}

fn spectrum() -> impl Strategy<Value = Spectrum> {
    prop_oneof![
        Just(Spectrum::ties(4, 2)),
        Just(Spectrum::ties(3, 3)),
        (
            0usize..3,
            prop::sample::select(vec![1e-4, 1e-6, 1e-8, 1e-10, 1e-12])
        )
            .prop_map(|(k, g)| Spectrum::near_tie(4, k, g)),
        prop::sample::select(vec![1e-2, 1e-5, 1e-9]).prop_map(|w| Spectrum::clusters(4, 2, w)),
        Just(Spectrum::log_spaced(4, 0.5, 8.0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn matrix_functions_exact_over_spectra(spec in spectrum(), seed in any::<u64>(), complex in any::<bool>(), which in 0usize..3) {
        let a: Value = if complex { testing::hermitian_from_seed(&spec.values(), seed) } else { testing::symmetric_from_seed(&spec.values(), seed) };
        let f = [SymFn::Log, SymFn::Sqrt, SymFn::Exp][which].clone();
        let name = format!("{} on {:?}", f.name(), spec);
        assert_pass(&name, check(move |_, x| matrix_function_sym(x[0].sym()?, f.clone()), std::slice::from_ref(&a), &opts()))?;
        assert_pass("logm", check(|_, x| logm_sym(x[0].sym()?), &[a], &opts()))?;
    }

    #[test]
    fn projector_exact_with_ties_off_the_cut(seed in any::<u64>(), complex in any::<bool>(), mult in 1usize..4) {
        // kept block: `mult` tied eigenvalues at 1; discarded: 3, 3 (tied) — gap 2 at the cut
        let mut spec = vec![1.0; mult];
        spec.extend([3.0, 3.0]);
        let a = if complex { testing::hermitian_from_seed(&spec, seed) } else { testing::symmetric_from_seed(&spec, seed) };
        assert_pass("projector", check(move |_, x| eigh_projector(x[0].sym()?, mult, Which::Smallest), &[a], &opts()))?;
    }
}
