//! `matgrad check`: every registered op through the gradient checker — every case, every
//! probe, every mode (VJP and JVP against finite differences, the dot-product identity,
//! reverse-over-reverse and forward-over-reverse Hessian-vector products) and the refusals
//! the cases expect at ties and gauges.

use matgrad::engine::spec::{check_op, OpReport, Outcome};
use serde_json::json;

use super::exit;

fn line_json(l: &matgrad::engine::spec::CaseLine) -> serde_json::Value {
    match &l.outcome {
        Outcome::Checked(r) => json!({
            "case": l.case, "probe": l.probe, "kind": "checked", "passed": r.passed,
            "vjp_fd_error": r.vjp_fd_error, "jvp_fd_error": r.jvp_fd_error,
            "dot_product_error": r.dot_product_error, "second_order_error": r.second_order_error,
            "hvp_modes_error": r.hvp_modes_error,
        }),
        Outcome::Refused(m) => {
            json!({ "case": l.case, "probe": l.probe, "kind": "refused as expected", "passed": true, "message": m })
        }
        Outcome::Error(m) => {
            json!({ "case": l.case, "probe": l.probe, "kind": "error", "passed": false, "message": m })
        }
    }
}

/// Runs the sweep; returns the process exit code.
pub fn run(only: Option<&str>, as_json: bool, verbose: bool, out: Option<&std::path::Path>) -> i32 {
    let reg = matgrad::registry();
    let selected: Vec<_> = match only {
        Some(name) => match reg.lookup(name) {
            Ok(op) => vec![op],
            Err(e) => {
                eprintln!("matgrad check: error: {e}");
                return exit::USAGE;
            }
        },
        None => reg.iter().collect(),
    };
    let reports: Vec<OpReport> = selected.iter().map(|o| check_op(o)).collect();
    let failed = reports.iter().any(|r| !r.passed());
    if as_json {
        let rows: Vec<_> = reports
            .iter()
            .map(|r| {
                let mut v = json!({
                    "op": r.name, "cases": r.cases(), "checks": r.lines.len(),
                    "vjp_fd_error": r.fd, "dot_product_error": r.dot,
                    "second_order_error": r.second, "hvp_modes_error": r.hvp_modes,
                    "passed": r.passed(), "failures": r.failures,
                });
                if verbose {
                    v["lines"] = r.lines.iter().map(line_json).collect();
                }
                v
            })
            .collect();
        println!("{}", json!({ "ops": rows, "passed": !failed }));
    } else {
        println!(
            "{:<28} {:>5} {:>6} {:>10} {:>10} {:>10} {:>10}  verdict",
            "op", "cases", "checks", "fd", "dot", "2nd order", "rev/fwd"
        );
        for r in &reports {
            println!(
                "{:<28} {:>5} {:>6} {:>10.2e} {:>10.2e} {:>10.2e} {:>10.1e}  {}",
                r.name,
                r.cases(),
                r.lines.len(),
                r.fd,
                r.dot,
                r.second,
                r.hvp_modes,
                if r.passed() { "pass" } else { "FAIL" }
            );
            if verbose {
                for l in &r.lines {
                    let what = match &l.outcome {
                        Outcome::Checked(c) => c.to_string(),
                        Outcome::Refused(m) => format!("refused by both modes, as expected: {m}"),
                        Outcome::Error(m) => format!("ERROR: {m}"),
                    };
                    println!("    {} [{}]: {what}", l.case, l.probe);
                }
            } else {
                for f in &r.failures {
                    println!("    {f}");
                }
            }
        }
        let n: usize = reports.iter().map(|r| r.lines.len()).sum();
        println!(
            "\n{} ops, {} checks (case × probe, each in every mode): {}",
            reports.len(),
            n,
            if failed { "FAILURES above" } else { "all pass" }
        );
    }
    if let Some(dir) = out {
        if let Err(e) = write_report(dir, &reports) {
            eprintln!("matgrad check: error: {}: {e}", dir.display());
            return exit::OUTPUT_FILE;
        }
    }
    if failed {
        exit::CHECK_FAILED
    } else {
        exit::OK
    }
}

fn put(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("matgrad-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_report(dir: &std::path::Path, summaries: &[OpReport]) -> Result<(), String> {
    use super::gap_report::{plot, sweep};
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let rows = sweep()?;
    let svg = dir.join("gap_error.svg");
    let tmp = dir.join("gap_error.svg.matgrad-tmp");
    plot(&rows, &tmp)?;
    std::fs::rename(&tmp, &svg).map_err(|e| e.to_string())?;
    let mut md = String::from("# matgrad check report\n\nEvery registered op, every case × probe, every mode (`cargo run --release -- check --out docs/results/check`).\n\n| op | cases | checks | VJP/JVP vs FD | JVP·VJP dot | second order | rev vs fwd-over-rev | verdict |\n|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        md += &format!(
            "| {} | {} | {} | {:.2e} | {:.2e} | {:.2e} | {:.1e} | {} |\n",
            s.name,
            s.cases(),
            s.lines.len(),
            s.fd,
            s.dot,
            s.second,
            s.hvp_modes,
            if s.passed() { "pass" } else { "FAIL" }
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
    let ops: Vec<_> = summaries.iter().map(|s| json!({ "op": s.name, "cases": s.cases(), "checks": s.lines.len(), "vjp_fd_error": s.fd, "dot_product_error": s.dot, "second_order_error": s.second, "hvp_modes_error": s.hvp_modes, "passed": s.passed() })).collect();
    put(
        &dir.join("report.json"),
        json!({ "ops": ops, "gap_sweep": gap_rows })
            .to_string()
            .as_bytes(),
    )
}
