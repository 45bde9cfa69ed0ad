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

/// Trusts exactly one certificate (the test's self-signed one, which webpki would refuse as a CA
/// used as an end entity), and checks the handshake signatures made with its key.
#[derive(Debug)]
struct PinnedCertificate {
    expected: rustls::pki_types::CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the test's certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The key exchange group a TLS 1.3 handshake with `port` settles on, for a client offering only
/// `groups` (in its order) and trusting the PEM certificate `cert`.
fn negotiated_group(
    port: u16,
    cert: &str,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: groups,
        ..rustls::crypto::aws_lc_rs::default_provider()
    };
    let expected = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let provider = std::sync::Arc::new(provider);
    let verifier = PinnedCertificate {
        expected,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()))
        .unwrap_or_default())
}

/// The HTTPS listener prefers the hybrid post-quantum key exchange: a client that offers it first
/// gets it, and classical-only clients still connect.
#[tokio::test(flavor = "multi_thread")]
async fn https_prefers_hybrid_post_quantum_key_exchange() {
    use rustls::crypto::aws_lc_rs::kx_group;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let server =
        TestServer::start_with(StoreKind::Sqlite, &["--tls-cert", &cert, "--tls-key", &key]);
    let port = server.port;
    let cases: Vec<(
        &str,
        Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
        &str,
    )> = vec![
        (
            "hybrid only",
            vec![kx_group::X25519MLKEM768],
            "X25519MLKEM768",
        ),
        ("classical only", vec![kx_group::X25519], "X25519"),
        ("P-256 only", vec![kx_group::SECP256R1], "secp256r1"),
        // As browsers do: the hybrid group first (its key share carries an X25519 share too),
        // X25519 as a fallback. A server preferring X25519 would pick that.
        (
            "hybrid first, classical fallback",
            vec![kx_group::X25519MLKEM768, kx_group::X25519],
            "X25519MLKEM768",
        ),
        // A client whose key share is classical keeps it: no extra round trip is forced.
        (
            "classical first, hybrid second",
            vec![kx_group::X25519, kx_group::X25519MLKEM768],
            "X25519",
        ),
    ];
    for (name, groups, expected) in cases {
        let cert = cert.clone();
        let got = tokio::task::spawn_blocking(move || negotiated_group(port, &cert, groups))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Ok(expected), "{name}");
    }
}
