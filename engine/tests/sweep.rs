//! Every registered engine op through the checker (every case, every mode) — the engine's
//! part of `matgrad check`, run by `cargo test`.

use matgrad_engine::ops::specs::specs;
use matgrad_engine::spec::{check_op, Registry};

#[test]
fn every_engine_op_passes_its_sweep() {
    let mut reg = Registry::new();
    reg.extend(specs()).unwrap();
    let mut failures = Vec::new();
    for spec in reg.iter() {
        let r = check_op(spec);
        assert!(!r.lines.is_empty(), "{} has no cases", spec.name);
        failures.extend(r.failures.iter().map(|f| format!("{}: {f}", spec.name)));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
