//! Asymmetric, HMAC and ML-KEM keys through aws-sdk-kms, checked against an independent
//! implementation (the OpenSSL command line) wherever one exists on this machine: signatures from
//! Trent verify in OpenSSL with the public key from GetPublicKey, OpenSSL's RSA-OAEP ciphertexts
//! decrypt in Trent, and ECDH agrees with `openssl pkeyutl -derive`.

use crate::common;

use std::path::Path;
use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncapsulationAlgorithmSpec, EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec,
};
use common::{code, StoreKind, TestServer};

fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command line is needed by these tests");
    out
}

fn write_pem(dir: &Path, name: &str, der: &[u8]) -> String {
    let der_path = dir.join(format!("{name}.der"));
    std::fs::write(&der_path, der).unwrap();
    let pem_path = dir.join(format!("{name}.pem"));
    let out = openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "openssl rejected the SPKI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem_path.to_str().unwrap().to_string()
}

async fn create(client: &aws_sdk_kms::Client, spec: KeySpec, usage: KeyUsageType) -> String {
    client
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

async fn public_key(client: &aws_sdk_kms::Client, key: &str) -> Vec<u8> {
    client
        .get_public_key()
        .key_id(key)
        .send()
        .await
        .expect("public key")
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_verify_in_openssl() {
    let server = TestServer::start(StoreKind::Sqlite);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let message = b"pay 100 to bob".to_vec();
    let msg_path = dir.path().join("msg");
    std::fs::write(&msg_path, &message).unwrap();
    let cases: &[(KeySpec, SigningAlgorithmSpec, &[&str])] = &[
        (
            KeySpec::Rsa2048,
            SigningAlgorithmSpec::RsassaPssSha256,
            &[
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ],
        ),
        (
            KeySpec::Rsa3072,
            SigningAlgorithmSpec::RsassaPkcs1V15Sha384,
            &["-sha384"],
        ),
        (
            KeySpec::EccNistP256,
            SigningAlgorithmSpec::EcdsaSha256,
            &["-sha256"],
        ),
        (
            KeySpec::EccNistP384,
            SigningAlgorithmSpec::EcdsaSha384,
            &["-sha384"],
        ),
        (
            KeySpec::EccSecgP256K1,
            SigningAlgorithmSpec::EcdsaSha256,
            &["-sha256"],
        ),
    ];
    for (i, (spec, alg, dgst)) in cases.iter().enumerate() {
        let key = create(&client, spec.clone(), KeyUsageType::SignVerify).await;
        let pem = write_pem(
            dir.path(),
            &format!("k{i}"),
            &public_key(&client, &key).await,
        );
        let signed = client
            .sign()
            .key_id(&key)
            .message(Blob::new(message.clone()))
            .signing_algorithm(alg.clone())
            .send()
            .await
            .expect("sign");
        let sig_path = dir.path().join(format!("sig{i}"));
        std::fs::write(&sig_path, signed.signature().unwrap().as_ref()).unwrap();
        let mut args: Vec<&str> = vec!["dgst"];
        args.extend_from_slice(dgst);
        args.extend_from_slice(&[
            "-verify",
            &pem,
            "-signature",
            sig_path.to_str().unwrap(),
            msg_path.to_str().unwrap(),
        ]);
        let out = openssl(&args);
        assert!(
            out.status.success(),
            "{spec:?} {alg:?}: OpenSSL did not verify: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        let ok = client
            .verify()
            .key_id(&key)
            .message(Blob::new(message.clone()))
            .signature(signed.signature().unwrap().clone())
            .signing_algorithm(alg.clone())
            .send()
            .await
            .expect("verify");
        assert!(ok.signature_valid());
        let mut bad = signed.signature().unwrap().as_ref().to_vec();
        let n = bad.len() - 5;
        bad[n] ^= 1;
        let err = client
            .verify()
            .key_id(&key)
            .message(Blob::new(message.clone()))
            .signature(Blob::new(bad))
            .signing_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "KMSInvalidSignatureException", "{spec:?}");
    }

    // A DIGEST signed by Trent verifies in OpenSSL as a signature of the message.
    let key = create(&client, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let pem = write_pem(dir.path(), "digest", &public_key(&client, &key).await);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
    let signed = client
        .sign()
        .key_id(&key)
        .message(Blob::new(digest.as_ref().to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("sign digest");
    let sig_path = dir.path().join("digest.sig");
    std::fs::write(&sig_path, signed.signature().unwrap().as_ref()).unwrap();
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &pem,
        "-signature",
        sig_path.to_str().unwrap(),
        msg_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "digest signature did not verify as a message signature"
    );
    let err = client
        .sign()
        .key_id(&key)
        .message(Blob::new(vec![0u8; 31]))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "a 31-byte SHA-256 digest"
    );
    let err = client
        .sign()
        .key_id(&key)
        .message(Blob::new(message.clone()))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidKeyUsageException",
        "an RSA algorithm on an EC key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_encryption_ecdh_hmac_kem_and_data_key_pairs() {
    let server = TestServer::start(StoreKind::Postgres);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();

    // RSA-OAEP: OpenSSL encrypts with the public key, Trent decrypts.
    let rsa = create(&client, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let pem = write_pem(dir.path(), "rsa", &public_key(&client, &rsa).await);
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"outside in").unwrap();
    let ct = dir.path().join("ct");
    let out = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &pem,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-in",
        plain.to_str().unwrap(),
        "-out",
        ct.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let dec = client
        .decrypt()
        .key_id(&rsa)
        .ciphertext_blob(Blob::new(std::fs::read(&ct).unwrap()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .expect("decrypt OpenSSL's ciphertext");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"outside in");
    let err = client
        .encrypt()
        .key_id(&rsa)
        .plaintext(Blob::new(vec![1u8; 191]))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "RSA_2048 OAEP-SHA-256 takes at most 190 bytes"
    );

    // ECDH: the secret equals OpenSSL's.
    let ecdh = create(&client, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let kms_pub = write_pem(dir.path(), "ecdh", &public_key(&client, &ecdh).await);
    let peer = dir.path().join("peer.pem");
    assert!(openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        peer.to_str().unwrap()
    ])
    .status
    .success());
    let peer_der = dir.path().join("peer.der");
    assert!(openssl(&[
        "pkey",
        "-in",
        peer.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        peer_der.to_str().unwrap()
    ])
    .status
    .success());
    let outside = dir.path().join("secret");
    assert!(openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        peer.to_str().unwrap(),
        "-peerkey",
        &kms_pub,
        "-out",
        outside.to_str().unwrap()
    ])
    .status
    .success());
    let derived = client
        .derive_shared_secret()
        .key_id(&ecdh)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(std::fs::read(&peer_der).unwrap()))
        .send()
        .await
        .expect("derive");
    assert_eq!(
        derived.shared_secret().unwrap().as_ref(),
        std::fs::read(&outside).unwrap().as_slice()
    );

    // HMAC.
    let mac_key = create(&client, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let mac = client
        .generate_mac()
        .key_id(&mac_key)
        .message(Blob::new(b"m".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .expect("mac");
    let ok = client
        .verify_mac()
        .key_id(&mac_key)
        .message(Blob::new(b"m".to_vec()))
        .mac(mac.mac().unwrap().clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .expect("verify mac");
    assert!(ok.mac_valid());
    let err = client
        .verify_mac()
        .key_id(&mac_key)
        .message(Blob::new(b"n".to_vec()))
        .mac(mac.mac().unwrap().clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidMacException");

    // ML-KEM: encapsulate then decapsulate agree.
    let kem = create(
        &client,
        KeySpec::MlKem768,
        KeyUsageType::EncapsulateDecapsulate,
    )
    .await;
    let enc = client
        .encapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .expect("encapsulate");
    let dec = client
        .decapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .shared_secret_ciphertext_blob(enc.shared_secret_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect("decapsulate");
    assert_eq!(
        dec.shared_secret().unwrap().as_ref(),
        enc.shared_secret().unwrap().as_ref()
    );

    // Data key pairs: the private key decrypts back and OpenSSL reads it as PKCS#8.
    let sym = client
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let pair = client
        .generate_data_key_pair()
        .key_id(&sym)
        .key_pair_spec(DataKeyPairSpec::EccNistP384)
        .encryption_context("app", "pairs")
        .send()
        .await
        .expect("data key pair");
    let private = pair.private_key_plaintext().unwrap().as_ref().to_vec();
    let back = client
        .decrypt()
        .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
        .encryption_context("app", "pairs")
        .send()
        .await
        .expect("decrypt the private key");
    assert_eq!(back.plaintext().unwrap().as_ref(), private.as_slice());
    let pk = dir.path().join("pair.der");
    std::fs::write(&pk, &private).unwrap();
    let derived_pub = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        pk.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert!(derived_pub.status.success());
    assert_eq!(
        derived_pub.stdout,
        pair.public_key().unwrap().as_ref(),
        "the pair's halves match"
    );

    // AWS's combination rules.
    let err = client
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = client
        .create_key()
        .key_spec(KeySpec::Sm2)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let described = client.describe_key().key_id(&rsa).send().await.unwrap();
    let meta = described.key_metadata().unwrap();
    assert_eq!(meta.encryption_algorithms().len(), 2);
    assert!(meta.signing_algorithms().is_empty());
}

/// ReEncrypt with RSA keys on either side: symmetric -> RSA -> RSA -> symmetric round trip, and
/// AWS's refusals (no SourceKeyId for an RSA ciphertext, no destination algorithm, an encryption
/// context with an RSA key).
#[tokio::test(flavor = "multi_thread")]
async fn re_encrypt_across_symmetric_and_rsa_keys() {
    let server = TestServer::start(StoreKind::Sqlite);
    let client = server.client();
    let symmetric = client.create_key().send().await.unwrap();
    let symmetric = symmetric.key_metadata().unwrap().key_id().to_string();
    let rsa_a = create(&client, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let rsa_b = create(&client, KeySpec::Rsa3072, KeyUsageType::EncryptDecrypt).await;
    let oaep256 = EncryptionAlgorithmSpec::RsaesOaepSha256;
    let oaep1 = EncryptionAlgorithmSpec::RsaesOaepSha1;

    let start = client
        .encrypt()
        .key_id(&symmetric)
        .plaintext(Blob::new(b"moving secret".to_vec()))
        .encryption_context("purpose", "move")
        .send()
        .await
        .unwrap();
    // symmetric -> RSA A (OAEP SHA-256)
    let to_a = client
        .re_encrypt()
        .ciphertext_blob(start.ciphertext_blob().unwrap().clone())
        .source_encryption_context("purpose", "move")
        .destination_key_id(&rsa_a)
        .destination_encryption_algorithm(oaep256.clone())
        .send()
        .await
        .expect("symmetric to RSA");
    assert_eq!(
        to_a.source_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    assert_eq!(to_a.destination_encryption_algorithm(), Some(&oaep256));
    assert!(to_a.key_id().unwrap().ends_with(&rsa_a));
    // AWS names key material only for symmetric keys.
    assert!(to_a.source_key_material_id().is_some());
    assert!(to_a.destination_key_material_id().is_none());
    let blob_a = to_a.ciphertext_blob().unwrap().clone();
    let plain = client
        .decrypt()
        .key_id(&rsa_a)
        .ciphertext_blob(blob_a.clone())
        .encryption_algorithm(oaep256.clone())
        .send()
        .await
        .expect("RSA A decrypts what ReEncrypt produced");
    assert!(plain.key_material_id().is_none());
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"moving secret");

    // RSA A -> RSA B (OAEP SHA-1)
    let to_b = client
        .re_encrypt()
        .ciphertext_blob(blob_a.clone())
        .source_key_id(&rsa_a)
        .source_encryption_algorithm(oaep256.clone())
        .destination_key_id(&rsa_b)
        .destination_encryption_algorithm(oaep1.clone())
        .send()
        .await
        .expect("RSA to RSA");
    assert!(to_b.source_key_id().unwrap().ends_with(&rsa_a));
    assert_eq!(to_b.source_encryption_algorithm(), Some(&oaep256));
    assert!(
        to_b.source_key_material_id().is_none() && to_b.destination_key_material_id().is_none()
    );
    // RSA B -> symmetric, with a new encryption context
    let back = client
        .re_encrypt()
        .ciphertext_blob(to_b.ciphertext_blob().unwrap().clone())
        .source_key_id(&rsa_b)
        .source_encryption_algorithm(oaep1.clone())
        .destination_key_id(&symmetric)
        .destination_encryption_context("purpose", "back")
        .send()
        .await
        .expect("RSA to symmetric");
    let plain = client
        .decrypt()
        .ciphertext_blob(back.ciphertext_blob().unwrap().clone())
        .encryption_context("purpose", "back")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"moving secret");

    // Refusals.
    let err = client
        .re_encrypt()
        .ciphertext_blob(blob_a.clone())
        .destination_key_id(&symmetric)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "an RSA ciphertext names no key"
    );
    let err = client
        .re_encrypt()
        .ciphertext_blob(start.ciphertext_blob().unwrap().clone())
        .source_encryption_context("purpose", "move")
        .destination_key_id(&rsa_a)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException", "RSA needs its algorithm");
    let err = client
        .re_encrypt()
        .ciphertext_blob(start.ciphertext_blob().unwrap().clone())
        .source_encryption_context("purpose", "move")
        .destination_key_id(&rsa_a)
        .destination_encryption_algorithm(oaep256.clone())
        .destination_encryption_context("not", "allowed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "no context with RSA keys"
    );
    let err = client
        .re_encrypt()
        .ciphertext_blob(blob_a)
        .source_key_id(&rsa_b)
        .source_encryption_algorithm(oaep256)
        .destination_key_id(&symmetric)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "the wrong RSA key"
    );
}
