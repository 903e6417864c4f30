//! `ncut_projector` at ill-conditioned features against an 80-digit reference (issue 7,
//! bug 5): two feature columns parallel to 1e-4 (cond(Z) ≈ 1e4) and 1e-6 (≈ 1e6).
//! Data and script: `tests/data/golden_ncut_conditioning.{json,py}`.
//!
//! The Gram-matrix evaluation `Z (ZᵀZ)⁻¹ Zᵀ` loses cond(Z)²·ε (1.3e-7 at the 1e-4 tilt);
//! through a QR of Z the loss is cond(Z)·ε. The bound below is 100·cond·ε with the
//! measured condition number: 2e-10 at 1e-4 and 2e-8 at 1e-6, where the Gram route gives
//! ≈1e-7 and ≈1e-3.

use matgrad::engine::Tape;
use matgrad::layers::ncut_projector;
use serde_json::Value as Json;

mod common;
use common::decode;

#[test]
fn gradient_accuracy_degrades_as_cond_not_cond_squared() {
    let data: Json =
        serde_json::from_str(include_str!("data/golden_ncut_conditioning.json")).unwrap();
    for c in data.as_array().unwrap() {
        let tilt = c["tilt"].as_f64().unwrap();
        let f = decode(&c["f"]);
        let g = decode(&c["g"]);
        let want = decode(&c["grad"]);
        let tape = Tape::new();
        let x = tape.leaf(f).unwrap();
        let p = ncut_projector(x).unwrap();
        let got = tape.vjp(&[p], &[g], &[x]).unwrap().remove(0);
        let err = got.rel_diff(&want).unwrap();
        let bound = 100.0 * f64::EPSILON / tilt;
        println!("tilt {tilt:e}: relative gradient error {err:.2e} (bound {bound:.1e})");
        assert!(err < bound, "tilt {tilt:e}: {err:e} ≥ {bound:e}");
    }
}
