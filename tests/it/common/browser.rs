//! A real browser for the console's tests: Debian's Chromium (installed with apt-get when
//! missing, as CI runs as root) driven by playwright-core, which npm installs once from
//! `tests/console/package-lock.json` into `target/test-tools/console-node`. No browser is
//! downloaded: playwright-core drives the distribution's Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::run_tool;
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's path, installing the distribution's package when it is missing.
pub fn chromium() -> &'static Path {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if !Path::new(CHROMIUM).exists() {
            run_tool(
                Command::new("apt-get")
                    .args(["install", "-y", "chromium"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                "installing chromium (apt-get, as root)",
            );
        }
    });
    Path::new(CHROMIUM)
}

/// The directory holding `node_modules/playwright-core`, installed once with `npm ci` (again
/// when the lock file changes).
pub fn node_modules() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = repo.join("tests/console");
        let dir = repo.join("target/test-tools/console-node");
        std::fs::create_dir_all(&dir).expect("create the console's node directory");
        let lock = std::fs::read(source.join("package-lock.json")).expect("the lock file");
        let installed = std::fs::read(dir.join("package-lock.json")).ok();
        if installed.as_deref() != Some(lock.as_slice())
            || !dir.join("node_modules/playwright-core").exists()
        {
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(source.join(file), dir.join(file)).expect("copy the npm manifest");
            }
            run_tool(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir),
                "npm ci (playwright-core)",
            );
        }
        dir.join("node_modules")
    })
}

/// Run a scenario script of `tests/console/` with `env`; its last stdout line is its JSON facts.
pub fn run_scenario(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("node");
    cmd.arg(repo.join("tests/console").join(script))
        .env("CONSOLE_NODE_MODULES", node_modules())
        .env("CHROMIUM", chromium());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs (Node.js is on PATH)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser scenario {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("facts line {last:?}: {e}"))
}

/// Build the console from `service/console/` (sources, package.json, lock file) in a copy under
/// `target/test-tools/console-build` with `npm ci` and `npm run build`; returns its `dist/`.
pub fn build_console() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = repo.join("service/console");
    let dir = repo.join("target/test-tools/console-build");
    let _ = std::fs::remove_dir_all(dir.join("src"));
    let _ = std::fs::remove_dir_all(dir.join("dist"));
    std::fs::create_dir_all(dir.join("src/pages")).expect("create the build directory");
    std::fs::create_dir_all(dir.join("dist")).expect("create dist");
    copy_tree(&source.join("src"), &dir.join("src"));
    for file in ["package.json", "package-lock.json", "tsconfig.json"] {
        std::fs::copy(source.join(file), dir.join(file)).expect("copy the build manifest");
    }
    if !dir.join("node_modules/esbuild").exists() || lock_changed(&source, &dir) {
        run_tool(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm ci (the console's build tools)",
        );
        std::fs::copy(source.join("package-lock.json"), dir.join("installed.lock"))
            .expect("remember the installed lock");
    }
    run_tool(
        Command::new("npm").args(["run", "build"]).current_dir(&dir),
        "npm run build (the console)",
    );
    dir.join("dist")
}

fn lock_changed(source: &Path, dir: &Path) -> bool {
    std::fs::read(source.join("package-lock.json")).ok()
        != std::fs::read(dir.join("installed.lock")).ok()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read the sources") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("create a directory");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a source");
        }
    }
}
