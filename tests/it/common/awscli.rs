//! The real AWS CLI (`awscli` from PyPI) in a virtualenv that the harness creates once and caches
//! under `target/test-tools/awscli-venv`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The awscli release the suite is pinned to.
const AWSCLI_VERSION: &str = "1.46.3";

/// The `aws` executable, installing it on first use. Panics (never skips) if it cannot.
pub fn aws() -> PathBuf {
    static AWS: OnceLock<PathBuf> = OnceLock::new();
    AWS.get_or_init(|| {
        super::venv::ensure("awscli-venv", &[&format!("awscli=={AWSCLI_VERSION}")]).join("aws")
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
