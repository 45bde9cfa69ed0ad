//! The real AWS CLI (`awscli` from PyPI) in a virtualenv that the harness creates once and caches
//! under `target/test-tools/awscli-venv`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The awscli release the suite is pinned to.
const AWSCLI_VERSION: &str = "1.46.3";

fn venv_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("test-tools").join("awscli-venv")
}

/// The `aws` executable, installing it on first use. Panics (never skips) if it cannot.
pub fn aws() -> PathBuf {
    static AWS: OnceLock<PathBuf> = OnceLock::new();
    AWS.get_or_init(|| {
        let venv = venv_dir();
        let aws = venv.join("bin").join("aws");
        let marker = venv.join(format!("installed-{AWSCLI_VERSION}"));
        if aws.exists() && marker.exists() {
            return aws;
        }
        let python = ["python3", "python"]
            .into_iter()
            .find(|p| Command::new(p).arg("--version").output().is_ok())
            .expect("python3 is needed for the AWS CLI tests");
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python -m venv runs");
        assert!(status.success(), "creating the AWS CLI virtualenv failed");
        let status = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("awscli=={AWSCLI_VERSION}"))
            .status()
            .expect("pip runs");
        assert!(
            status.success(),
            "pip install awscli=={AWSCLI_VERSION} failed"
        );
        std::fs::write(&marker, b"").expect("marker written");
        aws
    })
    .clone()
}

/// An `aws` command against `endpoint` as `creds` (access key, secret), JSON output, in
/// `common::REGION`, and nothing from the host's AWS configuration.
pub fn command(endpoint: &str, creds: (&str, &str)) -> Command {
    let mut cmd = Command::new(aws());
    cmd.args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1)
        .env("AWS_DEFAULT_REGION", super::REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}
