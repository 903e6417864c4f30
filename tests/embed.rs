//! Builds and runs `examples/embed`, a crate outside the workspace that depends on
//! `matgrad` with default features and uses only its public API (issue 8's acceptance
//! test). It has its own target directory under `target/embed`, so it exercises a user's
//! build, not this workspace's.

use std::process::Command;

#[test]
fn an_outside_crate_embeds_matgrad() {
    let root = env!("CARGO_MANIFEST_DIR");
    let target = std::path::Path::new(root).join("target").join("embed");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(std::path::Path::new(root).join("examples/embed/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("cube, sweep:") && stdout.contains("as expected: eigh refuses"),
        "{stdout}"
    );
}
