//! `matgrad ops`: the registry, for people and for scripts.

use matgrad::engine::check::Domain;
use serde_json::json;

/// Prints the registry; returns the exit code.
pub fn run(as_json: bool) -> i32 {
    let reg = matgrad::registry();
    if as_json {
        let rows: Vec<_> = reg
            .iter()
            .map(|o| {
                json!({
                    "name": o.name,
                    "arity": o.inputs.len(),
                    "inputs": o.inputs.iter().map(|i| json!({
                        "name": i.name,
                        "domain": match i.domain { Domain::General => "general", Domain::Hermitian => "hermitian" },
                    })).collect::<Vec<_>>(),
                    "outputs": o.output_names(),
                    "semantics": o.summary,
                    "params": o.params.iter().map(|p| json!({"name": p.name, "default": p.default, "meaning": p.meaning})).collect::<Vec<_>>(),
                    "cotangents": o.cotangents,
                })
            })
            .collect();
        let note = "ops of sym(X) read sym(X) = (X + X^H)/2 and differentiate X -> f(sym(X)); any asymmetry is accepted";
        let convention = "vjp writes, per input, the gradient of Re sum(conj(G) * f(X)) (PyTorch's convention for complex inputs: d/dRe + i d/dIm)";
        println!(
            "{}",
            json!({ "ops": rows, "symmetric_input_policy": note, "vjp_convention": convention })
        );
    } else {
        println!("Ops of sym(X) read sym(X) = (X + Xᴴ)/2 and differentiate X ↦ f(sym(X)): any asymmetry is accepted.");
        println!("vjp writes, per input, the gradient of Re Σ conj(Ḡ) ∘ f(X…) (one Ḡ per output); jvp, the directional derivative of each output.\n");
        for o in reg.iter() {
            let ins: Vec<String> = o
                .inputs
                .iter()
                .map(|i| match i.domain {
                    Domain::Hermitian => format!("{} (Hermitian)", i.name),
                    Domain::General => i.name.to_string(),
                })
                .collect();
            println!(
                "{:<27} ({}) → ({})  {}",
                o.name,
                ins.join(", "),
                o.output_names().join(", "),
                o.summary
            );
            for p in &o.params {
                println!(
                    "{:<29}--param {}=… (default {}): {}",
                    "", p.name, p.default, p.meaning
                );
            }
            if o.output_names().len() > 1 {
                println!("{:<29}admissible cotangents: {}", "", o.cotangents);
            }
        }
    }
    super::exit::OK
}
