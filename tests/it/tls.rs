//! HTTPS: `trent serve --tls-cert --tls-key` serves the API over TLS (a certificate made here by the
//! openssl command line), the AWS CLI talks to it with `AWS_CA_BUNDLE`, policies see
//! `aws:SecureTransport` true over HTTPS and false over plain HTTP, and plain HTTP to the TLS port
//! gets no HTTP answer.

use crate::common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::{awscli, StoreKind, TestServer, ACCESS_KEY, ACCOUNT, SECRET_KEY};

/// A key policy that refuses Encrypt unless the call came over HTTPS.
fn https_only_policy() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"HttpsOnly","Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
    )
}

/// A self-signed P-256 certificate for 127.0.0.1 and its key, written to `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=trent-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .output()
        .expect("the openssl command line is needed by this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

fn aws(endpoint: &str, ca_bundle: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = awscli::command(endpoint, (ACCESS_KEY, SECRET_KEY));
    if let Some(bundle) = ca_bundle {
        cmd.env("AWS_CA_BUNDLE", bundle);
    }
    let out = cmd.args(args).output().expect("aws runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn encrypt_with_new_key(endpoint: &str, ca_bundle: Option<&str>) -> (bool, String) {
    let (ok, out, err) = aws(
        endpoint,
        ca_bundle,
        &["kms", "create-key", "--policy", &https_only_policy()],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, err) = aws(
        endpoint,
        ca_bundle,
        &["kms", "encrypt", "--key-id", &key_id, "--plaintext", "aGk="],
    );
    (ok, err)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_listener_and_secure_transport() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let server =
        TestServer::start_with(StoreKind::Sqlite, &["--tls-cert", &cert, "--tls-key", &key]);
    let https = server.endpoint().replace("http://", "https://");

    let (ok, out, err) = aws(&https, Some(&cert), &["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("arn:aws:iam::{ACCOUNT}:root")),
        "{out}"
    );
    let (ok, err) = encrypt_with_new_key(&https, Some(&cert));
    assert!(ok, "over HTTPS aws:SecureTransport is true: {err}");

    // Without the CA the CLI refuses the certificate; plain HTTP gets no HTTP answer.
    let (ok, _, err) = aws(&https, None, &["kms", "list-keys"]);
    assert!(!ok && err.contains("SSL"), "{err}");
    let mut plain = std::net::TcpStream::connect(https.trim_start_matches("https://")).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was answered"
    );

    // The same policy over plain HTTP: the Deny applies.
    let http_server = TestServer::start(StoreKind::Sqlite);
    let (ok, err) = encrypt_with_new_key(&http_server.endpoint(), None);
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    assert!(err.contains("explicit deny"), "{err}");

    // A certificate without its key (or a bad file) stops the server at start, naming the file.
    let out = Command::new(common::trent_bin())
        .args(["serve", "--tls-cert", &cert, "--tls-key"])
        .arg(dir.path().join("missing.pem"))
        .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}
