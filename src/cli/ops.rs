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
        let note = "ops of sym(A) read sym(A) = (A + A^H)/2 and differentiate X -> f(sym(X)); any asymmetry is accepted";
        println!("{}", json!({ "ops": rows, "symmetric_input_policy": note }));
    } else {
        println!("Ops of sym(A) read sym(A) = (A + Aᴴ)/2 and differentiate X ↦ f(sym(X)): any asymmetry is accepted.");
        println!("vjp writes, per input, the gradient of sum(Ḡ ∘ f(X…)); jvp writes the directional derivative.\n");
        for o in &ops {
            println!("{:<15} {}  {}", o.name, o.arity, o.summary);
            for p in o.params {
                println!(
                    "{:<17}  --param {}=… (default {}): {}",
                    "", p.name, p.default, p.meaning
                );
            }
        }
    }
    0
}
