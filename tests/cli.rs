//! End-to-end tests of the `matgrad` binary: the vjp/jvp file contract, every documented
//! bad input, and the JSON outputs.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use npyz::WriterBuilder;

fn write_f64(path: &Path, shape: &[u64], data: &[f64], fortran: bool) {
    let mut f = std::fs::File::create(path).unwrap();
    let order = if fortran {
        npyz::Order::Fortran
    } else {
        npyz::Order::C
    };
    let mut w = npyz::WriteOptions::<f64>::new()
        .default_dtype()
        .order(order)
        .shape(shape)
        .writer(&mut f)
        .begin_nd()
        .unwrap();
    for x in data {
        w.push(x).unwrap();
    }
    w.finish().unwrap();
}

fn write_c128(path: &Path, shape: &[u64], data: &[(f64, f64)]) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::<npyz::num_complex::Complex<f64>>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut f)
        .begin_nd()
        .unwrap();
    for &(re, im) in data {
        w.push(&npyz::num_complex::Complex::new(re, im)).unwrap();
    }
    w.finish().unwrap();
}

fn read_f64(path: &Path) -> (Vec<u64>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.order(), npyz::Order::C);
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

fn matgrad() -> Command {
    Command::cargo_bin("matgrad").unwrap()
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

#[test]
fn vjp_matmul_matches_closed_form() {
    let d = Dir::new();
    // A (2×3), B (3×2) in C order; Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let g = [1.0, -1.0, 2.0, 0.5];
    write_f64(&d.p("a.npy"), &[2, 3], &a, false);
    // B written in Fortran order: the same matrix
    let b_f: Vec<f64> = (0..2)
        .flat_map(|j| (0..3).map(move |i| b[i * 2 + j]))
        .collect();
    write_f64(&d.p("b.npy"), &[3, 2], &b_f, true);
    write_f64(&d.p("g.npy"), &[2, 2], &g, false);
    matgrad()
        .args(["vjp", "matmul", "--input"])
        .arg(d.p("a.npy"))
        .arg("--input")
        .arg(d.p("b.npy"))
        .arg("--cotangent")
        .arg(d.p("g.npy"))
        .arg("--output")
        .arg(d.p("da.npy"))
        .arg("--output")
        .arg(d.p("db.npy"))
        .assert()
        .success();
    let (s, da) = read_f64(&d.p("da.npy"));
    assert_eq!(s, vec![2, 3]);
    for i in 0..2 {
        for j in 0..3 {
            let want: f64 = (0..2).map(|k| g[i * 2 + k] * b[j * 2 + k]).sum();
            assert!((da[i * 3 + j] - want).abs() < 1e-14);
        }
    }
    let (s, db) = read_f64(&d.p("db.npy"));
    assert_eq!(s, vec![3, 2]);
    for i in 0..3 {
        for j in 0..2 {
            let want: f64 = (0..2).map(|k| a[k * 3 + i] * g[k * 2 + j]).sum();
            assert!((db[i * 2 + j] - want).abs() < 1e-14);
        }
    }
}

#[test]
fn jvp_and_vjp_files_satisfy_the_dot_product_identity() {
    let d = Dir::new();
    // SPD A, random-ish G and T
    let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
    let g = [0.3, -1.0, 0.7, 0.1, 0.9, -0.4, 1.2, 0.0, -0.8];
    let t = [1.0, 0.5, -0.3, 0.2, -1.1, 0.6, 0.9, 0.4, 0.05];
    write_f64(&d.p("a.npy"), &[3, 3], &a, false);
    write_f64(&d.p("g.npy"), &[3, 3], &g, false);
    write_f64(&d.p("t.npy"), &[3, 3], &t, false);
    for op in ["logm_sym", "sqrtm_sym", "expm", "logm"] {
        matgrad()
            .args(["vjp", op, "--input"])
            .arg(d.p("a.npy"))
            .arg("--cotangent")
            .arg(d.p("g.npy"))
            .arg("--output")
            .arg(d.p("ga.npy"))
            .assert()
            .success();
        matgrad()
            .args(["jvp", op, "--input"])
            .arg(d.p("a.npy"))
            .arg("--tangent")
            .arg(d.p("t.npy"))
            .arg("--output")
            .arg(d.p("y.npy"))
            .assert()
            .success();
        let (_, ga) = read_f64(&d.p("ga.npy"));
        let (_, yd) = read_f64(&d.p("y.npy"));
        let lhs: f64 = g.iter().zip(&yd).map(|(a, b)| a * b).sum();
        let rhs: f64 = ga.iter().zip(&t).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
            "{op}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn parameters_and_complex_files() {
    let d = Dir::new();
    write_f64(
        &d.p("a.npy"),
        &[3, 3],
        &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 5.0],
        false,
    );
    write_f64(&d.p("g.npy"), &[3, 3], &[1.0; 9], false);
    // powm_sym p=2 on diag(2,1,5) with Ḡ = 1: gradient of Σ A² is 2·A (symmetric)
    matgrad()
        .args(["vjp", "powm_sym", "--param", "p=2", "--input"])
        .arg(d.p("a.npy"))
        .arg("--cotangent")
        .arg(d.p("g.npy"))
        .arg("--output")
        .arg(d.p("o.npy"))
        .assert()
        .success();
    let (_, o) = read_f64(&d.p("o.npy"));
    assert!(
        (o[0] - 4.0).abs() < 1e-12 && (o[8] - 10.0).abs() < 1e-12 && (o[1] - 3.0).abs() < 1e-12,
        "{o:?}"
    );
    // eigh_projector k=1 largest: P = e₃e₃ᵀ; ⟨1, P⟩ = 1 has zero gradient along diagonal perturbations
    matgrad()
        .args([
            "vjp",
            "eigh_projector",
            "--param",
            "k=1",
            "--param",
            "which=largest",
            "--input",
        ])
        .arg(d.p("a.npy"))
        .arg("--cotangent")
        .arg(d.p("g.npy"))
        .arg("--output")
        .arg(d.p("p.npy"))
        .assert()
        .success();
    // complex: |z| of a 1×1, gradient z/|z|
    write_c128(&d.p("z.npy"), &[1, 1], &[(3.0, 4.0)]);
    write_f64(&d.p("one.npy"), &[1, 1], &[1.0], false);
    matgrad()
        .args(["vjp", "abs", "--input"])
        .arg(d.p("z.npy"))
        .arg("--cotangent")
        .arg(d.p("one.npy"))
        .arg("--output")
        .arg(d.p("gz.npy"))
        .assert()
        .success();
    let bytes = std::fs::read(d.p("gz.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let z: Vec<npyz::num_complex::Complex<f64>> = npy.into_vec().unwrap();
    assert!((z[0].re - 0.6).abs() < 1e-15 && (z[0].im - 0.8).abs() < 1e-15);
}

fn fails_with(args: &[&str], files: &[PathBuf], needle: &str) {
    let mut c = matgrad();
    c.args(args);
    for f in files {
        c.arg(f);
    }
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err:?}");
}

#[test]
fn bad_inputs_get_one_line_errors_and_leave_no_output() {
    let d = Dir::new();
    write_f64(&d.p("a.npy"), &[2, 2], &[1.0, 2.0, 3.0, 4.0], false);
    write_f64(&d.p("g.npy"), &[2, 2], &[1.0; 4], false);
    write_f64(&d.p("g3.npy"), &[3, 3], &[1.0; 9], false);
    write_f64(&d.p("nan.npy"), &[2, 2], &[1.0, f64::NAN, 0.0, 1.0], false);
    write_f64(&d.p("rank3.npy"), &[2, 2, 1], &[1.0; 4], false);
    write_f64(
        &d.p("tie.npy"),
        &[3, 3],
        &[1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0],
        false,
    );
    write_f64(&d.p("g33.npy"), &[3, 3], &[1.0; 9], false);
    std::fs::write(d.p("text.npy"), "hello").unwrap();
    {
        let mut f = std::fs::File::create(d.p("int.npy")).unwrap();
        let mut w = npyz::WriteOptions::<i64>::new()
            .default_dtype()
            .shape(&[2, 2])
            .writer(&mut f)
            .begin_nd()
            .unwrap();
        for x in [1i64, 2, 3, 4] {
            w.push(&x).unwrap();
        }
        w.finish().unwrap();
    }
    // a well-formed header claiming 10¹² elements, followed by 32 bytes of data
    {
        let mut header =
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }".to_string();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 32]);
        std::fs::write(d.p("huge.npy"), bytes).unwrap();
    }
    let out = d.p("out.npy");
    std::fs::write(&out, "stale result of an earlier run").unwrap();
    let vjp = |op: &'static str, input: &str, cot: &str| -> (Vec<&'static str>, Vec<PathBuf>) {
        (
            vec!["vjp", op, "--input"],
            vec![
                d.p(input),
                "--cotangent".into(),
                d.p(cot),
                "--output".into(),
                out.clone(),
            ],
        )
    };
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("inv", "missing.npy", "g.npy", "cannot open"),
        ("inv", "text.npy", "g.npy", "not an .npy"),
        ("inv", "int.npy", "g.npy", "not supported"),
        ("inv", "rank3.npy", "g.npy", "2-D"),
        ("inv", "nan.npy", "g.npy", "NaN"),
        ("inv", "huge.npy", "g.npy", "elements"),
        (
            "inv",
            "a.npy",
            "g3.npy",
            "cotangent must have the output's shape",
        ),
        ("nosuchop", "a.npy", "g.npy", "unknown op"),
        ("eigh_projector", "tie.npy", "g33.npy", "degenerate"),
    ];
    for (op, input, cot, needle) in cases {
        let (args, files) = vjp(op, input, cot);
        fails_with(&args, &files, needle);
        assert!(
            !out.exists(),
            "{op} {input}: a failed run must not leave {out:?}"
        );
        std::fs::write(&out, "stale").unwrap();
    }
    // shape mismatch between inputs
    fails_with(
        &["vjp", "matmul", "--input"],
        &[
            d.p("a.npy"),
            "--input".into(),
            d.p("g3.npy"),
            "--cotangent".into(),
            d.p("g.npy"),
            "--output".into(),
            out.clone(),
            "--output".into(),
            d.p("o2.npy"),
        ],
        "shape mismatch",
    );
    // unknown parameter
    fails_with(
        &["vjp", "inv", "--param", "q=1", "--input"],
        &[
            d.p("a.npy"),
            "--cotangent".into(),
            d.p("g.npy"),
            "--output".into(),
            out.clone(),
        ],
        "unknown parameter",
    );
    // wrong number of outputs
    fails_with(
        &["vjp", "inv", "--input"],
        &[
            d.p("a.npy"),
            "--cotangent".into(),
            d.p("g.npy"),
            "--output".into(),
            out.clone(),
            "--output".into(),
            d.p("o2.npy"),
        ],
        "needs 1 --output",
    );
    assert!(!d.p("o2.npy").exists());
}

#[test]
fn json_outputs_parse() {
    let out = matgrad().args(["ops", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for required in [
        "matmul",
        "solve",
        "inv",
        "det",
        "logdet",
        "eigvalsh",
        "svdvals",
        "logm_sym",
        "sqrtm_sym",
        "expm_sym",
        "powm_sym",
        "expm",
        "logm",
        "sqrtm",
        "eigh_projector",
        "o2p",
        "ncut_projector",
    ] {
        assert!(names.contains(&required), "ops --json lacks {required}");
    }
    let out = matgrad()
        .args(["check", "--op", "logm_sym", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["ops"][0]["op"], "logm_sym");
    assert!(v["ops"][0]["dot_product_error"].as_f64().unwrap() < 1e-12);
}

#[test]
fn check_out_writes_report_and_plot() {
    let d = Dir::new();
    let dir = d.p("report");
    matgrad()
        .args(["check", "--op", "logm_sym", "--out"])
        .arg(&dir)
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.join("gap_error.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("K-matrix"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let sweep = v["gap_sweep"].as_array().unwrap();
    // matgrad stays at rounding level at every gap, ties included
    assert!(sweep.iter().all(|r| r["matgrad"].as_f64().unwrap() < 1e-13));
    // the eigh-composition route is wrong at an exact tie of a diagonal matrix
    let tie = sweep
        .iter()
        .find(|r| r["diagonal"] == true && r["gap"] == 0.0)
        .unwrap();
    assert!(tie["kmatrix"].as_f64().unwrap() > 1e-2);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("matgrad-tmp")),
        "{names:?}"
    );
}

#[test]
fn train_list_and_quick_run() {
    let out = matgrad().args(["train", "--list"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("o2p-texture"));
    let out = matgrad()
        .args(["train", "o2p-texture", "--quick", "--json", "--seed", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seed"], 3);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let acc = r["test accuracy"].as_f64().unwrap();
        // three classes: chance is 1/3; the learned models must do clearly better
        assert!(acc > 0.5 && acc <= 1.0, "{r}");
    }
    let d = Dir::new();
    matgrad()
        .args(["train", "o2p-texture", "--quick", "--out"])
        .arg(d.p("tr"))
        .assert()
        .success();
    assert!(std::fs::read_to_string(d.p("tr").join("o2p-texture.md"))
        .unwrap()
        .contains("test accuracy"));
    assert!(
        std::fs::read_to_string(d.p("tr").join("o2p-texture_loss.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    let out = matgrad().args(["train", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown experiment"));
}
