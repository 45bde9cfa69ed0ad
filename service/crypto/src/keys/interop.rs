//! Interoperability with independent implementations: the OpenSSL command line (RSA, ECDSA,
//! Ed25519, OAEP, ECDH, PKCS#8) and Python `cryptography` (ML-DSA, ML-KEM, which need
//! OpenSSL 3.5+; the machine's `openssl` may be older). A missing tool fails the test with a
//! message; it never passes silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::digest;

use super::*;

/// The `cryptography` release the interop tests are pinned to (ML-DSA and ML-KEM need >= 47).
const CRYPTOGRAPHY_VERSION: &str = "48.0.0";

/// A Python interpreter with `cryptography`, from a virtualenv the harness creates once under
/// `target/test-tools/crypto-venv` (the machine's own Python is never modified).
pub(super) fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
            let venv = target.join("test-tools").join("crypto-venv");
            let python = venv.join("bin").join("python");
            let marker = venv.join(format!("installed-cryptography-{CRYPTOGRAPHY_VERSION}"));
            if python.exists() && marker.exists() {
                return python;
            }
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 -m venv runs");
            assert!(status.success(), "creating the interop virtualenv failed");
            let status = Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("cryptography=={CRYPTOGRAPHY_VERSION}"))
                .status()
                .expect("pip runs");
            assert!(
                status.success(),
                "pip install cryptography=={CRYPTOGRAPHY_VERSION} failed"
            );
            std::fs::write(&marker, b"").expect("marker written");
            python
        })
        .clone()
}

/// A scratch directory and the tools, checked once per test.
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let openssl = Command::new("openssl").arg("version").output();
        assert!(
            openssl.as_ref().is_ok_and(|o| o.status.success()),
            "interop tests need the OpenSSL command line (`openssl`) on PATH; install the \
             `openssl` package"
        );
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn with_python() -> Self {
        // Installs the pinned `cryptography` on first use; panics (never skips) if it cannot.
        let _ = python();
        let bench = Self::new();
        let python = Command::new(python())
            .args([
                "-c",
                "from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem",
            ])
            .output();
        assert!(
            python.as_ref().is_ok_and(|o| o.status.success()),
            "ML-DSA/ML-KEM interop tests need `cryptography` >= 47 (ML-DSA and ML-KEM support) \
             in the harness's virtualenv"
        );
        bench
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Runs openssl with these arguments; returns (success, stdout + stderr).
    fn openssl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn openssl_ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.openssl(args);
        assert!(ok, "openssl {args:?} failed: {text}");
        text
    }

    /// Runs a Python script in the scratch directory; returns stdout, failing on error.
    fn python(&self, script: &str) -> String {
        let out = Command::new(python())
            .args(["-c", script])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes a DER SPKI and converts it to PEM with OpenSSL (which also proves it parses).
    fn public_pem(&self, name: &str, spki: &[u8]) -> PathBuf {
        let der = self.write(&format!("{name}.der"), spki);
        let pem = self.path(&format!("{name}.pem"));
        self.openssl_ok(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ]);
        pem
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn openssl_hash(algorithm: SigningAlgorithm) -> &'static str {
    match algorithm.digest_len() {
        Some(32) => "-sha256",
        Some(48) => "-sha384",
        _ => "-sha512",
    }
}

fn hash(algorithm: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
    let hash = match algorithm.digest_len() {
        Some(32) => &digest::SHA256,
        Some(48) => &digest::SHA384,
        _ => &digest::SHA512,
    };
    digest::digest(hash, message).as_ref().to_vec()
}

/// Every RSA and ECDSA algorithm: a RAW signature and a DIGEST signature both verify with
/// `openssl dgst -verify` over the message, with the public key from `public_key_der`.
#[test]
fn rsa_and_ecdsa_signatures_verify_in_openssl() {
    let bench = Bench::new();
    let message = b"interoperable, or it did not happen";
    let message_path = bench.write("message", message);
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256k1,
    ] {
        let material = generate(spec).unwrap();
        let pem = bench.public_pem(spec.as_str(), &public_key_der(spec, &material).unwrap());
        for algorithm in spec.algorithms(KeyUsage::SignVerify).signing {
            let digest = hash(*algorithm, message);
            for (message_type, input) in [
                (MessageType::Raw, &message[..]),
                (MessageType::Digest, &digest[..]),
            ] {
                let signature = sign(spec, &material, *algorithm, message_type, input).unwrap();
                let signature_path = bench.write("signature", &signature);
                let mut args = vec![
                    "dgst",
                    openssl_hash(*algorithm),
                    "-verify",
                    s(&pem),
                    "-signature",
                    s(&signature_path),
                ];
                if algorithm.as_str().starts_with("RSASSA_PSS") {
                    // AWS: MGF1 with the same hash, salt as long as the hash.
                    args.extend([
                        "-sigopt",
                        "rsa_padding_mode:pss",
                        "-sigopt",
                        "rsa_pss_saltlen:digest",
                    ]);
                }
                args.push(s(&message_path));
                let (ok, text) = bench.openssl(&args);
                assert!(
                    ok && text.contains("Verified OK"),
                    "{spec} {algorithm} {message_type}: {text}"
                );
                // And an altered message does not verify.
                let other = bench.write("other", b"interoperable, or it did not happen!");
                let last = args.len() - 1;
                args[last] = s(&other);
                assert!(
                    !bench.openssl(&args).0,
                    "{spec} {algorithm}: altered message"
                );
            }
        }
    }
}

/// Ed25519 (pure) verifies in OpenSSL; Ed25519ph has no OpenSSL 3.0 or Python `cryptography`
/// support, so it is pinned by the RFC 8032 test vector in `ffi` and by this check that AWS's
/// DIGEST rule holds: the signature is Ed25519ph over the 64-byte digest, i.e. the digest is
/// hashed once more (as AWS documents).
#[test]
fn ed25519_signatures_verify_in_openssl() {
    let bench = Bench::new();
    let spec = KeySpec::EccNistEdwards25519;
    let material = generate(spec).unwrap();
    let spki = public_key_der(spec, &material).unwrap();
    let pem = bench.public_pem("ed25519", &spki);
    let message = b"edwards";
    let message_path = bench.write("message", message);
    let signature = sign(
        spec,
        &material,
        SigningAlgorithm::Ed25519Sha512,
        MessageType::Raw,
        message,
    )
    .unwrap();
    let signature_path = bench.write("signature", &signature);
    let text = bench.openssl_ok(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&pem),
        "-rawin",
        "-in",
        s(&message_path),
        "-sigfile",
        s(&signature_path),
    ]);
    assert!(text.contains("Signature Verified Successfully"), "{text}");

    let digest = hash(SigningAlgorithm::Ed25519PhSha512, message);
    let prehashed = sign(
        spec,
        &material,
        SigningAlgorithm::Ed25519PhSha512,
        MessageType::Digest,
        &digest,
    )
    .unwrap();
    let public_key: [u8; 32] = der::parse_spki(&spki).unwrap().key.try_into().unwrap();
    assert!(ffi::ed25519ph_verify(&public_key, &digest, &prehashed));
    assert!(!ffi::ed25519ph_verify(&public_key, message, &prehashed));
}

/// OAEP ciphertexts made by OpenSSL with the exported public key decrypt in Trent, for both
/// hashes; and Trent's ciphertexts decrypt in OpenSSL with the PKCS#8 private key.
#[test]
fn rsa_oaep_interoperates_with_openssl() {
    let bench = Bench::new();
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
        let material = generate(spec).unwrap();
        let pem = bench.public_pem(spec.as_str(), &public_key_der(spec, &material).unwrap());
        let private_path = bench.write("private.der", material.as_bytes());
        for (algorithm, md) in [
            (EncryptionAlgorithm::RsaesOaepSha1, "sha1"),
            (EncryptionAlgorithm::RsaesOaepSha256, "sha256"),
        ] {
            let max = rsa_max_plaintext_len(spec, algorithm).unwrap();
            let plaintext: Vec<u8> = (0..max).map(|i| i as u8).collect();
            let plaintext_path = bench.write("plaintext", &plaintext);
            let md_opt = format!("rsa_oaep_md:{md}");
            let mgf_opt = format!("rsa_mgf1_md:{md}");
            bench.openssl_ok(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                s(&pem),
                "-in",
                s(&plaintext_path),
                "-out",
                "ciphertext",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &md_opt,
                "-pkeyopt",
                &mgf_opt,
            ]);
            let ciphertext = bench.read("ciphertext");
            let decrypted = rsa_decrypt(spec, &material, algorithm, &ciphertext).unwrap();
            assert_eq!(decrypted.as_slice(), &plaintext[..], "{spec} {algorithm}");

            let ours = rsa_encrypt(spec, &material, algorithm, b"from trent").unwrap();
            let ours_path = bench.write("ours", &ours);
            bench.openssl_ok(&[
                "pkeyutl",
                "-decrypt",
                "-keyform",
                "DER",
                "-inkey",
                s(&private_path),
                "-in",
                s(&ours_path),
                "-out",
                "decrypted",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &md_opt,
                "-pkeyopt",
                &mgf_opt,
            ]);
            assert_eq!(bench.read("decrypted"), b"from trent");
        }
    }
}

/// The ECDH shared secret equals `openssl pkeyutl -derive` on the other side.
#[test]
fn ecdh_matches_openssl_derive() {
    let bench = Bench::new();
    for (spec, curve) in [
        (KeySpec::EccNistP256, "P-256"),
        (KeySpec::EccNistP384, "P-384"),
        (KeySpec::EccNistP521, "P-521"),
    ] {
        let curve_opt = format!("ec_paramgen_curve:{curve}");
        bench.openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &curve_opt,
            "-out",
            "peer.pem",
        ]);
        bench.openssl_ok(&[
            "pkey", "-in", "peer.pem", "-pubout", "-outform", "DER", "-out", "peer.der",
        ]);
        let material = generate(spec).unwrap();
        let ours = bench.public_pem("trent", &public_key_der(spec, &material).unwrap());
        let secret = derive_shared_secret(
            spec,
            &material,
            KeyAgreementAlgorithm::Ecdh,
            &bench.read("peer.der"),
        )
        .unwrap();
        bench.openssl_ok(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            "peer.pem",
            "-peerkey",
            s(&ours),
            "-out",
            "z.bin",
        ]);
        assert_eq!(secret.as_slice(), &bench.read("z.bin")[..], "{spec}");
    }
}

/// Data key pairs: OpenSSL reads the PKCS#8 private key and derives the same SPKI (classical
/// specs); Python `cryptography` does the same for ML-KEM-768/1024. ML-KEM-512 is not in
/// `cryptography`: its DER is checked by `openssl asn1parse` (OID 2.16.840.1.101.3.4.4.1).
#[test]
fn data_key_pairs_are_valid_pkcs8_matching_their_public_keys() {
    let bench = Bench::with_python();
    for spec in DataKeyPairSpec::ALL {
        match spec {
            DataKeyPairSpec::Sm2 => {
                assert!(generate_data_key_pair(*spec).is_err());
                continue;
            }
            DataKeyPairSpec::Rsa4096 => continue, // slow; same code path as RSA_2048/3072
            _ => {}
        }
        let pair = generate_data_key_pair(*spec).unwrap();
        let private_path = bench.write("private.der", pair.private_key.as_slice());
        let public_path = bench.write("public.der", &pair.public_key);
        match spec {
            DataKeyPairSpec::MlKem768 | DataKeyPairSpec::MlKem1024 => {
                let out = bench.python(
                    "from cryptography.hazmat.primitives import serialization as s\n\
                     k=s.load_der_private_key(open('private.der','rb').read(),None)\n\
                     p=k.public_key().public_bytes(s.Encoding.DER,s.PublicFormat.SubjectPublicKeyInfo)\n\
                     print(type(k).__name__, p==open('public.der','rb').read())",
                );
                let expected = if *spec == DataKeyPairSpec::MlKem768 {
                    "MLKEM768PrivateKey True"
                } else {
                    "MLKEM1024PrivateKey True"
                };
                assert_eq!(out.trim(), expected, "{spec}");
            }
            DataKeyPairSpec::MlKem512 => {
                for path in [&private_path, &public_path] {
                    let text = bench.openssl_ok(&["asn1parse", "-inform", "DER", "-in", s(path)]);
                    assert!(text.contains("2.16.840.1.101.3.4.4.1"), "{text}");
                }
            }
            _ => {
                bench.openssl_ok(&[
                    "pkey",
                    "-inform",
                    "DER",
                    "-in",
                    s(&private_path),
                    "-pubout",
                    "-outform",
                    "DER",
                    "-out",
                    "derived.der",
                ]);
                assert_eq!(bench.read("derived.der"), pair.public_key, "{spec}");
                if !matches!(spec, DataKeyPairSpec::EccNistEdwards25519) {
                    let text = bench.openssl_ok(&[
                        "pkey",
                        "-inform",
                        "DER",
                        "-in",
                        s(&private_path),
                        "-check",
                        "-noout",
                    ]);
                    assert!(text.contains("valid"), "{spec}: {text}");
                }
            }
        }
    }
}

/// ML-DSA: Python `cryptography` (OpenSSL 4.0 inside) loads the SPKI and verifies RAW
/// signatures and signatures over an external mu that Python computes itself with hashlib.
#[test]
fn ml_dsa_interoperates_with_python_cryptography() {
    let bench = Bench::with_python();
    for (spec, class) in [
        (KeySpec::MlDsa44, "MLDSA44PublicKey"),
        (KeySpec::MlDsa65, "MLDSA65PublicKey"),
        (KeySpec::MlDsa87, "MLDSA87PublicKey"),
    ] {
        let material = generate(spec).unwrap();
        let spki = public_key_der(spec, &material).unwrap();
        bench.write("public.der", &spki);
        let message = b"post-quantum, and still interoperable";
        bench.write("message", message);
        let out = bench.python(
            "import hashlib\n\
             from cryptography.hazmat.primitives import serialization as s\n\
             spki=open('public.der','rb').read()\n\
             k=s.load_der_public_key(spki)\n\
             raw=k.public_bytes_raw()\n\
             tr=hashlib.shake_256(raw).digest(64)\n\
             m=open('message','rb').read()\n\
             open('mu','wb').write(hashlib.shake_256(tr+b'\\x00\\x00'+m).digest(64))\n\
             print(type(k).__name__)",
        );
        assert_eq!(out.trim(), class);
        let mu = bench.read("mu");
        let algorithm = SigningAlgorithm::MlDsaShake256;
        let raw = sign(spec, &material, algorithm, MessageType::Raw, message).unwrap();
        let over_mu = sign(spec, &material, algorithm, MessageType::ExternalMu, &mu).unwrap();
        bench.write("raw.sig", &raw);
        bench.write("mu.sig", &over_mu);
        let mut bad = raw.clone();
        bad[10] ^= 1;
        bench.write("bad.sig", &bad);
        let out = bench.python(
            "from cryptography.hazmat.primitives import serialization as s\n\
             k=s.load_der_public_key(open('public.der','rb').read())\n\
             m=open('message','rb').read()\n\
             def ok(name):\n\
             \x20   try:\n\
             \x20       k.verify(open(name,'rb').read(), m); return 'ok'\n\
             \x20   except Exception: return 'bad'\n\
             print(ok('raw.sig'), ok('mu.sig'), ok('bad.sig'))",
        );
        assert_eq!(out.trim(), "ok ok bad", "{spec}");
        // Python's PKCS#8 imports as Trent key material; Trent's signatures verify in Python.
        bench.python(&format!(
            "from cryptography.hazmat.primitives import serialization as s\n\
             from cryptography.hazmat.primitives.asymmetric import mldsa\n\
             k=mldsa.{}PrivateKey.generate()\n\
             open('py_private.der','wb').write(k.private_bytes(s.Encoding.DER,s.PrivateFormat.PKCS8,s.NoEncryption()))\n\
             open('public.der','wb').write(k.public_key().public_bytes(s.Encoding.DER,s.PublicFormat.SubjectPublicKeyInfo))",
            class.trim_end_matches("PublicKey")
        ));
        let imported = import_private_key(
            spec,
            crate::secret::SecretBytes::new(bench.read("py_private.der")),
        )
        .unwrap();
        assert_eq!(
            public_key_der(spec, &imported).unwrap(),
            bench.read("public.der")
        );
        let signature = sign(spec, &imported, algorithm, MessageType::Raw, message).unwrap();
        bench.write("raw.sig", &signature);
        let out = bench.python(
            "from cryptography.hazmat.primitives import serialization as s\n\
             k=s.load_der_public_key(open('public.der','rb').read())\n\
             k.verify(open('raw.sig','rb').read(), open('message','rb').read()); print('ok')",
        );
        assert_eq!(out.trim(), "ok", "{spec}: imported key");
        let info = der::parse_spki(&spki).unwrap();
        assert_eq!(
            info.algorithm,
            der::oid_ml_dsa(material::ml_dsa_index(spec).unwrap())
        );
    }
}

/// ML-KEM: Python encapsulates to Trent's public key and Trent decapsulates the same secret;
/// Trent encapsulates to Python's public key and Python decapsulates the same secret.
#[test]
fn ml_kem_interoperates_with_python_cryptography() {
    let bench = Bench::with_python();
    for (spec, class) in [
        (KeySpec::MlKem768, "MLKEM768PrivateKey"),
        (KeySpec::MlKem1024, "MLKEM1024PrivateKey"),
    ] {
        let material = generate(spec).unwrap();
        bench.write("trent.der", &public_key_der(spec, &material).unwrap());
        bench.python(&format!(
            "from cryptography.hazmat.primitives import serialization as s\n\
             from cryptography.hazmat.primitives.asymmetric import mlkem\n\
             k=s.load_der_public_key(open('trent.der','rb').read())\n\
             ss,ct=k.encapsulate()\n\
             open('py.ss','wb').write(ss); open('py.ct','wb').write(ct)\n\
             mine=mlkem.{class}.generate()\n\
             open('py_private.der','wb').write(mine.private_bytes(s.Encoding.DER,s.PrivateFormat.PKCS8,s.NoEncryption()))\n\
             open('py_public.der','wb').write(mine.public_key().public_bytes(s.Encoding.DER,s.PublicFormat.SubjectPublicKeyInfo))"
        ));
        let secret = decapsulate(
            spec,
            &material,
            EncapsulationAlgorithm::MlKem,
            &bench.read("py.ct"),
        )
        .unwrap();
        assert_eq!(secret.as_slice(), &bench.read("py.ss")[..], "{spec}");

        let sent = encapsulate(
            spec,
            EncapsulationAlgorithm::MlKem,
            &bench.read("py_public.der"),
        )
        .unwrap();
        bench.write("trent.ct", &sent.ciphertext);
        let out = bench.python(
            "from cryptography.hazmat.primitives import serialization as s\n\
             k=s.load_der_private_key(open('py_private.der','rb').read(),None)\n\
             print(k.decapsulate(open('trent.ct','rb').read()).hex())",
        );
        assert_eq!(
            out.trim(),
            hex::encode(sent.shared_secret.as_slice()),
            "{spec}"
        );

        // Python's PKCS#8 (seed form) imports as Trent key material and decapsulates too.
        let imported = import_private_key(
            spec,
            crate::secret::SecretBytes::new(bench.read("py_private.der")),
        )
        .unwrap();
        let again = decapsulate(
            spec,
            &imported,
            EncapsulationAlgorithm::MlKem,
            &sent.ciphertext,
        )
        .unwrap();
        assert_eq!(again, sent.shared_secret);
    }
}

/// ML-KEM-512 has no independent implementation on this machine: its SPKI and PKCS#8 are
/// checked structurally by OpenSSL's DER parser, and its sizes against FIPS 203.
#[test]
fn ml_kem_512_der_parses_in_openssl() {
    let bench = Bench::new();
    let material = generate(KeySpec::MlKem512).unwrap();
    let spki = public_key_der(KeySpec::MlKem512, &material).unwrap();
    let path = bench.write("spki.der", &spki);
    let text = bench.openssl_ok(&["asn1parse", "-inform", "DER", "-in", s(&path)]);
    assert!(text.contains("2.16.840.1.101.3.4.4.1"), "{text}");
    assert!(text.contains("BIT STRING"), "{text}");
    assert_eq!(der::parse_spki(&spki).unwrap().key.len(), 800);
}
