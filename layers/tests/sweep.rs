//! Every registered layer op through the checker — the layers' part of `matgrad check`.

use matgrad_engine::spec::{check_op, Registry};
use matgrad_layers::specs::specs;

#[test]
fn every_layer_op_passes_its_sweep() {
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
