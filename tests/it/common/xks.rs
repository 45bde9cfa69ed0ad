//! A real external key store for the tests: SoftHSMv2 (Debian's `softhsm2`, with `pkcs11-tool` from
//! `opensc`, installed when missing) holding AES-256 keys in a token of the test's own, and AWS's
//! open-source XKS proxy in front of it, built once from `../shared/vendor/aws-kms-xks-proxy` into
//! `target/test-tools` (the vendored tree is copied first: `../shared` is read-only, and the copy
//! must not be taken for a member of this workspace). Nothing here skips: a missing piece panics.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::run_tool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The SoftHSMv2 PKCS#11 library Debian's package installs.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's user PIN (a test token: the PIN protects nothing real).
const USER_PIN: &str = "1234";

/// The proxy credential the proxy is configured with (its rules: an access key id of 20 to 30
/// characters of A-Z and 2-7, a secret of 43 to 64 base64 characters).
pub const ACCESS_KEY_ID: &str = "AKIAXKSTESTKEYABCDEFG";
/// The secret of `ACCESS_KEY_ID`.
pub const SECRET: &str = "xksTestSecretKey0123456789abcdefghijklmnopqr";

/// SoftHSMv2 and pkcs11-tool, installed from the distribution when missing (as root, as CI runs).
fn ensure_softhsm() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let present = Path::new(SOFTHSM_MODULE).exists()
            && Command::new("pkcs11-tool")
                .arg("--version")
                .output()
                .is_ok()
            && Command::new("softhsm2-util")
                .arg("--version")
                .output()
                .is_ok();
        if !present {
            run_tool(
                Command::new("apt-get")
                    .args([
                        "install",
                        "-y",
                        "--no-install-recommends",
                        "softhsm2",
                        "opensc",
                    ])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                "installing softhsm2 and opensc (apt-get, as root)",
            );
        }
    });
}

/// The proxy's executable, built on first use (about 3.5 minutes cold on 2 cores, then cached).
fn proxy_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            // The vendored tree sits in ../shared beside the repository (read-only in CI).
            let candidates: Vec<PathBuf> = std::env::var_os("TRENT_XKS_PROXY_SRC")
                .map(PathBuf::from)
                .into_iter()
                .chain([
                    root.join("../shared/vendor/aws-kms-xks-proxy"),
                    PathBuf::from("/work/shared/vendor/aws-kms-xks-proxy"),
                ])
                .collect();
            let vendored = candidates
                .iter()
                .find(|c| c.join("xks-axum/Cargo.toml").exists())
                .cloned()
                .unwrap_or_else(|| {
                    panic!(
                        "the vendored XKS proxy is in none of {candidates:?} (set TRENT_XKS_PROXY_SRC)"
                    )
                });
            let tools = root.join("target/test-tools");
            let src = tools.join("xks-proxy-src");
            let manifest = src.join("xks-axum/Cargo.toml");
            if !manifest.exists() {
                std::fs::create_dir_all(&tools).unwrap();
                run_tool(
                    Command::new("cp").arg("-r").arg(&vendored).arg(&src),
                    "copying the vendored XKS proxy",
                );
                // Its own workspace: otherwise cargo takes it for a member of Trent's. And the
                // proxy crate itself unoptimised: its GetKeyMetadata reads PKCS#11 attributes
                // through pointers into immutable locals, which today's optimiser folds to zero
                // (it then reports an AES key as `RSA_0` with no usage).
                let mut text = std::fs::read_to_string(&manifest).unwrap();
                text.push_str(
                    "\n[workspace]\n\n[profile.release.package.xks-proxy]\nopt-level = 0\n",
                );
                std::fs::write(&manifest, text).unwrap();
            }
            let target = tools.join("xks-proxy-target");
            run_tool(
                Command::new("cargo")
                    .args(["build", "--release", "--quiet", "--manifest-path"])
                    .arg(&manifest)
                    .arg("--target-dir")
                    .arg(&target),
                "building the XKS proxy",
            );
            target.join("release/xks-proxy")
        })
        .clone()
}

/// A running XKS proxy over a SoftHSMv2 token of its own.
pub struct XksProxy {
    child: Option<Child>,
    /// The proxy's port (plain HTTP on 127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// With HTTPS: the PEM of the test CA that signed the proxy's certificate.
    pub ca_bundle: Option<PathBuf>,
}

impl XksProxy {
    /// A token holding an AES-256 key per label, and a proxy serving those keys over plain HTTP.
    pub fn start(key_labels: &[&str]) -> Self {
        Self::start_with(key_labels, false)
    }

    /// As `start`, the proxy serving HTTPS with a certificate for `localhost` and 127.0.0.1 from
    /// a test CA of its own (`ca_bundle`).
    pub fn start_tls(key_labels: &[&str]) -> Self {
        Self::start_with(key_labels, true)
    }

    fn start_with(key_labels: &[&str], tls: bool) -> Self {
        ensure_softhsm();
        let binary = proxy_binary();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let mut proxy = Self {
            child: None,
            port: super::free_port(),
            dir,
            binary,
            ca_bundle: None,
        };
        if tls {
            proxy.ca_bundle = Some(proxy.make_certificates());
        }
        run_tool(
            proxy.softhsm_command("softhsm2-util").args([
                "--init-token",
                "--free",
                "--label",
                "trent-tests",
                "--pin",
                USER_PIN,
                "--so-pin",
                "87654321",
            ]),
            "creating the SoftHSM token",
        );
        for (i, label) in key_labels.iter().enumerate() {
            proxy.create_key(label, i + 1);
        }
        proxy.write_settings(key_labels, tls);
        proxy.spawn();
        proxy
    }

    fn softhsm_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"));
        cmd
    }

    fn pkcs11_tool(&self) -> Command {
        let mut cmd = self.softhsm_command("pkcs11-tool");
        cmd.args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            "trent-tests",
            "--login",
            "--pin",
            USER_PIN,
        ]);
        cmd
    }

    fn create_key(&self, label: &str, id: usize) {
        run_tool(
            self.pkcs11_tool().args([
                "--keygen",
                "--key-type",
                "AES:32",
                "--label",
                label,
                "--id",
                &format!("{id:02x}"),
            ]),
            "creating an AES key in the SoftHSM token",
        );
    }

    /// Delete an external key from the HSM (the proxy then answers KeyNotFoundException).
    pub fn delete_key(&self, label: &str) {
        run_tool(
            self.pkcs11_tool()
                .args(["--delete-object", "--type", "secrkey", "--label", label]),
            "deleting a key from the SoftHSM token",
        );
    }

    /// A test CA and a server certificate it signs (RSA 2048, for the proxy's rustls 0.20):
    /// returns the CA's PEM.
    fn make_certificates(&self) -> PathBuf {
        let d = self.dir.path();
        let at = |name: &str| d.join(name).display().to_string();
        let openssl = |args: &[&str]| {
            run_tool(
                Command::new("openssl").args(args),
                "making test certificates",
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &at("ca.key"),
            "-out",
            &at("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=trent-test-xks-ca",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &at("server.key"),
            "-out",
            &at("server.csr"),
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &at("server.csr"),
            "-CA",
            &at("ca.pem"),
            "-CAkey",
            &at("ca.key"),
            "-CAcreateserial",
            "-out",
            &at("server.pem"),
            "-days",
            "2",
            "-extfile",
            &at("server.ext"),
        ]);
        d.join("ca.pem")
    }

    fn write_settings(&self, key_labels: &[&str], tls: bool) {
        let keys: Vec<String> = key_labels.iter().map(|l| format!("{l:?}")).collect();
        let settings = format!(
            r#"[server]
ip = "127.0.0.1"
port = {port}
port_http_ping = {ping}
region = "us-east-1"
service = "kms-xks-proxy"

[server.tcp_keepalive]
tcp_keepalive_secs = 60
tcp_keepalive_retries = 3
tcp_keepalive_interval_secs = 1

[tracing]
is_stdout_writer_enabled = true
is_file_writer_enabled = false
level = "WARN"
directory = "{dir}/logs"
file_prefix = "xks-proxy.log"
rotation_kind = "NEVER"

[security]
is_sigv4_auth_enabled = true
is_tls_enabled = {tls}
is_mtls_enabled = false

[tls]
tls_cert_pem = "{dir}/server.pem"
tls_key_pem = "{dir}/server.key"
mtls_client_ca_pem = "unused.pem"
mtls_client_dns_name = "localhost"

[[external_key_stores]]
uri_path_prefix = ""
sigv4_access_key_id = "{ACCESS_KEY_ID}"
sigv4_secret_access_key = "{SECRET}"
xks_key_id_set = [{keys}]

[pkcs11]
session_pool_max_size = 8
session_pool_timeout_milli = 0
session_eager_close = false
user_pin = "{USER_PIN}"
PKCS11_HSM_MODULE = "{SOFTHSM_MODULE}"
context_read_timeout_milli = 100

[pkcs11_logger]
PKCS11_LOGGER_LIBRARY_PATH = ""
PKCS11_LOGGER_LOG_FILE_PATH = ""
PKCS11_LOGGER_FLAGS = "0"

[limits]
max_plaintext_in_base64 = 8192
max_aad_in_base64 = 16384

[hsm_capabilities]
can_generate_iv = false
is_zero_iv_required = false
"#,
            port = self.port,
            ping = super::free_port(),
            tls = tls,
            dir = self.dir.path().display(),
            keys = keys.join(", "),
        );
        std::fs::write(self.dir.path().join("settings.toml"), settings).unwrap();
    }

    fn spawn(&mut self) {
        let child = self
            .softhsm_command(self.binary.to_str().unwrap())
            .env(
                "XKS_PROXY_SETTINGS_TOML",
                self.dir.path().join("settings.toml"),
            )
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the XKS proxy starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the XKS proxy did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's URI endpoint.
    pub fn uri_endpoint(&self) -> String {
        match self.ca_bundle {
            Some(_) => format!("https://localhost:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Stop the proxy (the HSM's token stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and token.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for XksProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
