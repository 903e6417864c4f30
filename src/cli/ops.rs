//! `matgrad ops`: the registry, for people and for scripts.

use serde_json::json;

use super::registry::registry;

/// Prints the registry; returns the exit code.
pub fn run(as_json: bool) -> i32 {
    let ops = registry();
    if as_json {
        let rows: Vec<_> = ops
            .iter()
            .map(|o| json!({ "name": o.name, "arity": o.arity, "semantics": o.summary }))
            .collect();
        println!("{}", json!({ "ops": rows }));
    } else {
        for o in &ops {
            println!("{:<15} {}  {}", o.name, o.arity, o.summary);
        }
    }
    0
}
