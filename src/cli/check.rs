//! `matgrad check`: every registered op through the gradient checker.

use matgrad_engine::check::{check, CheckOptions};
use serde_json::json;

use super::registry::{registry, OpEntry};

/// Worst errors of one op over its cases.
pub struct OpSummary {
    /// Op name.
    pub name: &'static str,
    /// Number of cases run.
    pub cases: usize,
    /// Worst VJP-vs-FD error.
    pub vjp_fd: f64,
    /// Worst JVP/VJP dot-product error.
    pub dot: f64,
    /// Worst second-order error.
    pub second: f64,
    /// Failed cases, with the reason.
    pub failures: Vec<String>,
}

fn run_op(op: &OpEntry) -> OpSummary {
    let mut s = OpSummary {
        name: op.name,
        cases: 0,
        vjp_fd: 0.0,
        dot: 0.0,
        second: 0.0,
        failures: Vec::new(),
    };
    let apply = op.apply;
    let params = match super::registry::Params::parse(op, &[]) {
        Ok(p) => p,
        Err(e) => {
            s.failures.push(format!("default parameters: {e}"));
            return s;
        }
    };
    for c in (op.cases)() {
        s.cases += 1;
        let opts = CheckOptions {
            tolerance: c.tolerance,
            ..CheckOptions::default()
        };
        match check(|_, x| apply(x, &params), &c.inputs, &opts) {
            Ok(r) => {
                s.vjp_fd = s.vjp_fd.max(r.vjp_fd_error.max(r.jvp_fd_error));
                s.dot = s.dot.max(r.dot_product_error);
                s.second = s.second.max(r.second_order_error.unwrap_or(0.0));
                if !r.passed {
                    s.failures.push(format!("{}: {r}", c.label));
                }
            }
            Err(e) => s.failures.push(format!("{}: {e}", c.label)),
        }
    }
    s
}

/// Runs the sweep; returns the process exit code.
pub fn run(only: Option<&str>, as_json: bool, out: Option<&std::path::Path>) -> i32 {
    let ops = registry();
    let selected: Vec<&OpEntry> = ops
        .iter()
        .filter(|o| only.is_none_or(|n| n == o.name))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
        eprintln!(
            "matgrad check: unknown op {:?}; known ops: {}",
            only.unwrap_or(""),
            names.join(", ")
        );
        return 2;
    }
    let summaries: Vec<OpSummary> = selected.iter().map(|o| run_op(o)).collect();
    let failed = summaries.iter().any(|s| !s.failures.is_empty());
    if as_json {
        let rows: Vec<_> = summaries
            .iter()
            .map(|s| {
                json!({
                    "op": s.name, "cases": s.cases, "vjp_fd_error": s.vjp_fd, "dot_product_error": s.dot,
                    "second_order_error": s.second, "passed": s.failures.is_empty(), "failures": s.failures,
                })
            })
            .collect();
        println!("{}", json!({ "ops": rows, "passed": !failed }));
    } else {
        println!(
            "{:<15} {:>5} {:>12} {:>12} {:>12}  verdict",
            "op", "cases", "vjp-vs-fd", "jvp·vjp dot", "2nd order"
        );
        for s in &summaries {
            println!(
                "{:<15} {:>5} {:>12.2e} {:>12.2e} {:>12.2e}  {}",
                s.name,
                s.cases,
                s.vjp_fd,
                s.dot,
                s.second,
                if s.failures.is_empty() {
                    "pass"
                } else {
                    "FAIL"
                }
            );
            for f in &s.failures {
                println!("    {f}");
            }
        }
        let n: usize = summaries.iter().map(|s| s.cases).sum();
        println!(
            "\n{} ops, {} cases: {}",
            summaries.len(),
            n,
            if failed { "FAILURES above" } else { "all pass" }
        );
    }
    if let Some(dir) = out {
        if let Err(e) = write_report(dir, &summaries) {
            eprintln!("matgrad check: error: {}: {e}", dir.display());
            return 1;
        }
    }
    i32::from(failed)
}

fn put(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("matgrad-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_report(dir: &std::path::Path, summaries: &[OpSummary]) -> Result<(), String> {
    use super::gap_report::{plot, sweep};
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let rows = sweep()?;
    let svg = dir.join("gap_error.svg");
    let tmp = dir.join("gap_error.svg.matgrad-tmp");
    plot(&rows, &tmp)?;
    std::fs::rename(&tmp, &svg).map_err(|e| e.to_string())?;
    let mut md = String::from("# matgrad check report\n\n| op | cases | vjp vs FD | JVP·VJP dot | second order | verdict |\n|---|---|---|---|---|---|\n");
    for s in summaries {
        md += &format!(
            "| {} | {} | {:.2e} | {:.2e} | {:.2e} | {} |\n",
            s.name,
            s.cases,
            s.vjp_fd,
            s.dot,
            s.second,
            if s.failures.is_empty() {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    md += "\n## Gradient error vs eigenvalue gap (gap_error.svg)\n\nA = Q diag(3, 3+g, 5) Qᵀ (rotated) or diag(3, 3+g, 5) (diagonal: an exact tie at g = 0), loss ⟨Ḡ, log A⟩; relative error against the closed form at the exact spectrum.\n\n| A | gap g | matgrad logm_sym | eigh composition (K-matrix) |\n|---|---|---|---|\n";
    for r in &rows {
        md += &format!(
            "| {} | {:.0e} | {:.1e} | {:.1e} |\n",
            if r.diagonal { "diagonal" } else { "rotated" },
            r.gap,
            r.matgrad,
            r.kmatrix
        );
    }
    put(&dir.join("report.md"), md.as_bytes())?;
    let gap_rows: Vec<_> = rows.iter().map(|r| json!({ "gap": r.gap, "diagonal": r.diagonal, "matgrad": r.matgrad, "kmatrix": if r.kmatrix.is_finite() { json!(r.kmatrix) } else { json!(null) } })).collect();
    let ops: Vec<_> = summaries.iter().map(|s| json!({ "op": s.name, "cases": s.cases, "vjp_fd_error": s.vjp_fd, "dot_product_error": s.dot, "second_order_error": s.second, "passed": s.failures.is_empty() })).collect();
    put(
        &dir.join("report.json"),
        json!({ "ops": ops, "gap_sweep": gap_rows })
            .to_string()
            .as_bytes(),
    )
}
