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
    assert_eq!(rows.len(), 6);
    for r in rows {
        let acc = r["test accuracy (mean)"].as_f64().unwrap();
        // three classes: chance is 1/3; every variant must do clearly better
        assert!(acc > 0.5 && acc <= 1.0, "{r}");
    }
    // same seed, same numbers, bit for bit
    let again = matgrad()
        .args(["train", "o2p-texture", "--quick", "--json", "--seed", "3"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, again.stdout);
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

#[test]
fn train_ncut_mosaic_quick() {
    let rows = quick_rows("ncut-mosaic");
    assert_eq!(rows.len(), 4);
    let dist = |r: usize| {
        rows[r]["projector distance ‖Π − Π*‖² (mean)"]
            .as_f64()
            .unwrap()
    };
    let acc = |r: usize| rows[r]["segmentation accuracy (mean)"].as_f64().unwrap();
    // held-out projector distance falls with training (at most 2k = 6), and the learned
    // segmentation beats chance (1/3 under the best matching is at least ~0.4)
    assert!(dist(3) < dist(2) && dist(3) < 6.0, "{rows:?}");
    assert!(acc(3) > 0.5 && acc(3) <= 1.0, "{rows:?}");
    let d = Dir::new();
    matgrad()
        .args(["train", "ncut-mosaic", "--quick", "--out"])
        .arg(d.p("nc"))
        .assert()
        .success();
    let png = std::fs::read(d.p("nc").join("ncut-mosaic_segmentation.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn train_residual_structured_quick() {
    let out = matgrad()
        .args(["train", "residual-structured", "--quick", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let get = |r: usize, c: &str| rows[r][c].as_f64();
    // orthogonal structure keeps the deep Jacobian well conditioned at initialisation,
    // where the dense product is many orders of magnitude worse
    let (dense, cayley) = (
        get(0, "log10 cond(J) at init").unwrap(),
        get(2, "log10 cond(J) at init").unwrap(),
    );
    assert!(cayley < 4.0 && dense > cayley + 4.0, "{rows:?}");
    // ‖R‖/‖S‖ exists only where there is a residual (NaN → null in JSON)
    assert!(get(0, "‖R‖/‖S‖ after").is_none());
    let ratio = get(2, "‖R‖/‖S‖ after").unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{rows:?}");
    for r in rows {
        let mse = r["test MSE / Var(y) (mean)"].as_f64().unwrap();
        assert!(mse.is_finite() && mse > 0.0, "{r}");
    }
}

fn status(args: &[&str], files: &[PathBuf]) -> (i32, String) {
    let mut c = matgrad();
    c.args(args);
    for f in files {
        c.arg(f);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One exit status per error class (issue 7), with one-line messages and no outputs left.
#[test]
fn exit_status_per_error_class() {
    let d = Dir::new();
    write_f64(&d.p("a.npy"), &[2, 2], &[1.0, 2.0, 3.0, 4.0], false);
    write_f64(&d.p("sing.npy"), &[2, 2], &[1.0, 2.0, 2.0, 4.0], false);
    write_f64(&d.p("g.npy"), &[2, 2], &[1.0; 4], false);
    write_f64(
        &d.p("tie.npy"),
        &[3, 3],
        &[1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0],
        false,
    );
    write_f64(&d.p("g3.npy"), &[3, 3], &[1.0; 9], false);
    std::fs::write(d.p("text.npy"), "hello").unwrap();
    let out = d.p("o.npy");
    let vjp = |op: &str, x: &str, g: &str, o: &PathBuf| -> (i32, String) {
        status(
            &["vjp", op, "--input"],
            &[
                d.p(x),
                "--cotangent".into(),
                d.p(g),
                "--output".into(),
                o.clone(),
            ],
        )
    };
    // 2: usage — an unknown op, with the nearest name suggested
    let (code, err) = vjp("logm_sim", "a.npy", "g.npy", &out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean \"logm_sym\""), "{err}");
    // 2: usage — the same output path twice
    let (code, err) = status(
        &["vjp", "matmul", "--input"],
        &[
            d.p("a.npy"),
            "--input".into(),
            d.p("a.npy"),
            "--cotangent".into(),
            d.p("g.npy"),
            "--output".into(),
            out.clone(),
            "--output".into(),
            out.clone(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("given twice"), "{err}");
    // 3: an unreadable input file
    assert_eq!(vjp("inv", "text.npy", "g.npy", &out).0, 3);
    // 4: the op refuses the input
    let (code, err) = vjp("inv", "sing.npy", "g.npy", &out);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("singular"), "{err}");
    // 5: the derivative does not exist (a cut inside a tied eigenvalue)
    let (code, err) = status(
        &["vjp", "eigh_projector", "--param", "k=2", "--input"],
        &[
            d.p("tie.npy"),
            "--cotangent".into(),
            d.p("g3.npy"),
            "--output".into(),
            out.clone(),
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("degenerate"), "{err}");
    // 6: the output cannot be written
    let (code, err) = vjp("inv", "a.npy", "g.npy", &d.p("no/such/dir/o.npy"));
    assert_eq!(code, 6, "{err}");
    assert!(!out.exists());
}

/// det at the issue's singular 4×4 of rank 3: the gradient adj(A)ᵀ, to 1e-13 of sympy's
/// exact value (tests/data/golden_det.json).
#[test]
fn vjp_det_at_a_singular_matrix() {
    let d = Dir::new();
    let a = [
        1.0, 2.0, 0.0, 3.0, 0.0, 1.0, 4.0, 1.0, 2.0, -1.0, 1.0, 0.0, 1.0, 3.0, 4.0, 4.0,
    ];
    write_f64(&d.p("a.npy"), &[4, 4], &a, false);
    write_f64(&d.p("one.npy"), &[1, 1], &[1.0], false);
    write_f64(&d.p("t.npy"), &[4, 4], &[0.5; 16], false);
    matgrad()
        .args(["vjp", "det", "--input"])
        .arg(d.p("a.npy"))
        .args(["--cotangent"])
        .arg(d.p("one.npy"))
        .arg("--output")
        .arg(d.p("g.npy"))
        .assert()
        .success();
    let data: serde_json::Value =
        serde_json::from_str(include_str!("data/golden_det.json")).unwrap();
    let want = &data[0]["grad"]["re"];
    let (_, g) = read_f64(&d.p("g.npy"));
    for i in 0..4 {
        for j in 0..4 {
            let w = want[i][j].as_f64().unwrap();
            assert!(
                (g[i * 4 + j] - w).abs() < 1e-13 * w.abs().max(1.0),
                "({i},{j})"
            );
        }
    }
    matgrad()
        .args(["jvp", "det", "--input"])
        .arg(d.p("a.npy"))
        .arg("--tangent")
        .arg(d.p("t.npy"))
        .arg("--output")
        .arg(d.p("dd.npy"))
        .assert()
        .success();
}

/// Multi-output ops: `eval` writes every output, `vjp` takes one cotangent per output
/// (or `zero`), `jvp` writes one tangent per output and refuses at a tie.
#[test]
fn multi_output_eval_vjp_jvp() {
    let d = Dir::new();
    // diag(3, 1, 2) in a rotated basis would do; diag keeps the closed forms readable
    write_f64(
        &d.p("a.npy"),
        &[3, 3],
        &[3.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0],
        false,
    );
    matgrad()
        .args(["eval", "eigh", "--input"])
        .arg(d.p("a.npy"))
        .arg("--output")
        .arg(d.p("lam.npy"))
        .arg("--output")
        .arg(d.p("u.npy"))
        .assert()
        .success();
    let (s, lam) = read_f64(&d.p("lam.npy"));
    assert_eq!(s, vec![3, 1]);
    assert!(
        (lam[0] - 1.0).abs() < 1e-15 && (lam[2] - 3.0).abs() < 1e-15,
        "ascending: {lam:?}"
    );
    let (s, _) = read_f64(&d.p("u.npy"));
    assert_eq!(s, vec![3, 3]);
    // gradient of Σ wᵢ λᵢ with w = (1, 10, 100): U diag(w) Uᵀ = diag(100, 1, 10) here
    write_f64(&d.p("w.npy"), &[3, 1], &[1.0, 10.0, 100.0], false);
    matgrad()
        .args(["vjp", "eigh", "--input"])
        .arg(d.p("a.npy"))
        .arg("--cotangent")
        .arg(d.p("w.npy"))
        .args(["--cotangent", "zero", "--output"])
        .arg(d.p("ga.npy"))
        .assert()
        .success();
    let (_, ga) = read_f64(&d.p("ga.npy"));
    assert!(
        (ga[0] - 100.0).abs() < 1e-12
            && (ga[4] - 1.0).abs() < 1e-12
            && (ga[8] - 10.0).abs() < 1e-12,
        "{ga:?}"
    );
    // forward mode: both tangents
    write_f64(
        &d.p("t.npy"),
        &[3, 3],
        &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5],
        false,
    );
    matgrad()
        .args(["jvp", "eigh", "--input"])
        .arg(d.p("a.npy"))
        .arg("--tangent")
        .arg(d.p("t.npy"))
        .arg("--output")
        .arg(d.p("dl.npy"))
        .arg("--output")
        .arg(d.p("du.npy"))
        .assert()
        .success();
    let (_, dl) = read_f64(&d.p("dl.npy"));
    assert!((dl[1] - 0.5).abs() < 1e-15 && dl[0].abs() < 1e-15, "{dl:?}");
    // at a tie the eigenvector tangent does not exist: status 5, no outputs
    write_f64(
        &d.p("tie.npy"),
        &[3, 3],
        &[2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 5.0],
        false,
    );
    let (code, err) = status(
        &["jvp", "eigh", "--input"],
        &[
            d.p("tie.npy"),
            "--tangent".into(),
            d.p("t.npy"),
            "--output".into(),
            d.p("x1.npy"),
            "--output".into(),
            d.p("x2.npy"),
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(!d.p("x1.npy").exists() && !d.p("x2.npy").exists());
    // wrong number of cotangents for a multi-output op: usage
    let (code, _) = status(
        &["vjp", "eigh", "--input"],
        &[
            d.p("a.npy"),
            "--cotangent".into(),
            d.p("w.npy"),
            "--output".into(),
            d.p("x.npy"),
        ],
    );
    assert_eq!(code, 2);
}

/// `hvp` against a closed form: f(A, B) = A ∘ B, ⟨G, f⟩ has gradients (G∘B, G∘A), whose
/// derivative along (T_A, T_B) is (G∘T_B, G∘T_A).
#[test]
fn hvp_closed_form() {
    let d = Dir::new();
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [0.5, -1.0, 2.0, 0.25];
    let g = [1.0, 2.0, -1.0, 0.5];
    let ta = [0.1, 0.2, 0.3, 0.4];
    let tb = [-1.0, 1.0, 2.0, -2.0];
    for (name, v) in [("a", &a), ("b", &b), ("g", &g), ("ta", &ta), ("tb", &tb)] {
        write_f64(&d.p(&format!("{name}.npy")), &[2, 2], v, false);
    }
    matgrad()
        .args(["hvp", "mul", "--input"])
        .arg(d.p("a.npy"))
        .arg("--input")
        .arg(d.p("b.npy"))
        .arg("--cotangent")
        .arg(d.p("g.npy"))
        .arg("--tangent")
        .arg(d.p("ta.npy"))
        .arg("--tangent")
        .arg(d.p("tb.npy"))
        .arg("--output")
        .arg(d.p("ha.npy"))
        .arg("--output")
        .arg(d.p("hb.npy"))
        .assert()
        .success();
    let (_, ha) = read_f64(&d.p("ha.npy"));
    let (_, hb) = read_f64(&d.p("hb.npy"));
    for k in 0..4 {
        assert!((ha[k] - g[k] * tb[k]).abs() < 1e-15);
        assert!((hb[k] - g[k] * ta[k]).abs() < 1e-15);
    }
}

/// Zero-sized arrays are valid input: an empty input gives an empty output and gradient.
#[test]
fn empty_arrays() {
    let d = Dir::new();
    write_f64(&d.p("e.npy"), &[0, 3], &[], false);
    write_f64(&d.p("one.npy"), &[1, 1], &[1.0], false);
    matgrad()
        .args(["vjp", "sum", "--input"])
        .arg(d.p("e.npy"))
        .arg("--cotangent")
        .arg(d.p("one.npy"))
        .arg("--output")
        .arg(d.p("g.npy"))
        .assert()
        .success();
    let (s, v) = read_f64(&d.p("g.npy"));
    assert_eq!((s, v.len()), (vec![0, 3], 0));
}

/// The whole sweep, through the binary: every registered op passes every check, and the
/// report names them all (the CLI's share of "`cargo test` runs the full check").
#[test]
fn the_full_check_sweep_passes() {
    let out = matgrad().args(["check", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops = v["ops"].as_array().unwrap();
    let failures: Vec<String> = ops
        .iter()
        .filter(|o| o["passed"] != true)
        .map(|o| o.to_string())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(out.status.success());
    let reg = matgrad::registry();
    assert_eq!(ops.len(), reg.len(), "every registered op is swept");
    let checks: u64 = ops.iter().map(|o| o["checks"].as_u64().unwrap()).sum();
    assert!(checks > 600, "{checks} checks");
    // --verbose lists every case; a typo in --op is a usage error with a suggestion
    let out = matgrad()
        .args(["check", "--op", "eigh", "--verbose"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("refused by both modes") && text.contains("[sum_cubes]"),
        "{text}"
    );
    let (code, err) = status(&["check", "--op", "eig_h"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean"), "{err}");
}

fn quick_rows(name: &str) -> Vec<serde_json::Value> {
    let out = matgrad()
        .args(["train", name, "--quick", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn train_acl_gratings_quick() {
    let rows = quick_rows("acl-gratings");
    assert_eq!(rows.len(), 6);
    let acc = |r: usize| rows[r]["test accuracy (mean)"].as_f64().unwrap();
    let params = |r: usize| rows[r]["conv parameters"].as_f64().unwrap();
    // 8 learned 7×7 kernels vs 8 Gabor kernels of 5 parameters vs 4 + 4
    assert_eq!((params(0), params(1), params(2)), (392.0, 40.0, 216.0));
    // every network beats chance on gratings (1/4) and textures (1/3)
    assert!(
        (0..3).all(|r| acc(r) > 0.5) && (3..6).all(|r| acc(r) > 0.4),
        "{rows:?}"
    );
    let d = Dir::new();
    matgrad()
        .args(["train", "acl-gratings", "--quick", "--out"])
        .arg(d.p("acl"))
        .assert()
        .success();
    let png = std::fs::read(d.p("acl").join("acl-gratings_kernels_gabor.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn train_crelu_pairing_quick() {
    let rows = quick_rows("crelu-pairing");
    assert_eq!(rows.len(), 6);
    let frac = |r: usize| rows[r]["fraction μ < −0.8 (mean)"].as_f64().unwrap();
    let err = |r: usize| {
        rows[r]["test reconstruction error / power"]
            .as_f64()
            .unwrap()
    };
    let acc = |r: usize| rows[r]["test accuracy"].as_f64().unwrap();
    // CReLU cannot need negated pairs; random filters in 64 or 25 dimensions never form them
    assert_eq!((frac(1), frac(4), frac(5)), (0.0, 0.0, 0.0), "{rows:?}");
    assert!(
        err(0) < 1.0 && err(1) < 1.0,
        "the autoencoders learn something: {rows:?}"
    );
    assert!(
        acc(2) > 0.25 && acc(3) > 0.25,
        "the conv nets beat chance (4 classes): {rows:?}"
    );
    // not applicable cells are null, not numbers
    assert!(
        rows[0]["test accuracy"].is_null()
            && rows[2]["test reconstruction error / power"].is_null()
    );
    let d = Dir::new();
    matgrad()
        .args(["train", "crelu-pairing", "--quick", "--out"])
        .arg(d.p("cr"))
        .assert()
        .success();
    let svg = std::fs::read_to_string(d.p("cr").join("crelu-pairing_hist.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("CReLU"));
}

#[test]
fn train_wconv_denoise_quick() {
    let rows = quick_rows("wconv-denoise");
    assert_eq!(rows.len(), 3);
    let den = |r: usize| rows[r]["den"].as_f64().unwrap();
    let mse = |r: usize| rows[r]["test MSE (mean)"].as_f64().unwrap();
    // standard conv has density 1; DIRECT-L stays in its box
    assert_eq!(den(0), 1.0);
    assert!((0.05..=2.0).contains(&den(1)), "{rows:?}");
    assert!(
        (0..3).all(|r| mse(r).is_finite() && mse(r) > 0.0),
        "{rows:?}"
    );
}
