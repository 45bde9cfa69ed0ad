//! Python virtualenvs the harness creates once under `target/test-tools/NAME` with pinned packages
//! from PyPI (the AWS CLI, boto3, the AWS Encryption SDK). Never skips: if one cannot be made, the
//! test that needs it fails with the reason.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Tests of one binary run in parallel threads: one of them builds a virtualenv, the others wait.
static BUILDING: Mutex<()> = Mutex::new(());

fn tools_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("test-tools")
}

/// The `bin` directory of virtualenv `name` holding exactly `packages` (pip requirement specs),
/// creating it on first use. A marker names the packages, so changing a pin rebuilds it.
pub fn ensure(name: &str, packages: &[&str]) -> PathBuf {
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = tools_dir().join(name);
    let bin = venv.join("bin");
    let marker = venv.join(format!(
        "installed-{}",
        packages.join("+").replace(['=', '/'], "_")
    ));
    if marker.exists() {
        return bin;
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("python3 is needed for the Python interop tests");
    let status = Command::new(python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("python -m venv runs");
    assert!(status.success(), "creating the virtualenv {name} failed");
    let status = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .status()
        .expect("pip runs");
    assert!(status.success(), "pip install {packages:?} failed");
    std::fs::write(&marker, b"").expect("marker written");
    bin
}
