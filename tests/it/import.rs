//! Imported key material through aws-sdk-kms: keys of Origin EXTERNAL, material wrapped OUTSIDE
//! Trent by the OpenSSL command line with each wrapping algorithm (RSA-OAEP with `pkeyutl`; for
//! RSA_AES_KEY_WRAP_* an ephemeral AES-256 key wrapped with RSA-OAEP and the material wrapped
//! with AES key wrap with padding by `openssl enc -id-aes256-wrap-pad`), then used; import
//! tokens that expired, belong to another key or were altered; re-import of different and of
//! the same material; DeleteImportedKeyMaterial; and expiry of material by the scheduler, with
//! time moved by the test clock.

use crate::common;

use std::path::Path;
use std::process::Command;

use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportState, ImportType, IncludeKeyMaterial,
    KeyMaterialState, KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec, OriginType, RotationType,
    WrappingKeySpec,
};
use common::db::Db;
use common::{code, StoreKind, TestServer};

const DAY: i64 = 86_400;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command line is needed by these tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    openssl(&["rand", &n.to_string()])
}

/// Wrap `material` for import with `algorithm` and the wrapping public key (DER SPKI), using
/// only the OpenSSL command line.
pub(crate) fn wrap(
    dir: &Path,
    public_der: &[u8],
    material: &[u8],
    algorithm: &AlgorithmSpec,
) -> Vec<u8> {
    std::fs::write(path(dir, "wrapping.der"), public_der).unwrap();
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        &path(dir, "wrapping.der"),
        "-out",
        &path(dir, "wrapping.pem"),
    ]);
    let md = match algorithm {
        AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaAesKeyWrapSha1 => "sha1",
        _ => "sha256",
    };
    let oaep = |input: &str| {
        openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &path(dir, "wrapping.pem"),
            "-in",
            input,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            "-pkeyopt",
            &format!("rsa_mgf1_md:{md}"),
        ])
    };
    std::fs::write(path(dir, "material.bin"), material).unwrap();
    match algorithm {
        AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaesOaepSha256 => {
            oaep(&path(dir, "material.bin"))
        }
        _ => {
            let aes = random_bytes(32);
            std::fs::write(path(dir, "aes.bin"), &aes).unwrap();
            let mut wrapped = oaep(&path(dir, "aes.bin"));
            wrapped.extend(openssl(&[
                "enc",
                "-id-aes256-wrap-pad",
                "-K",
                &hex::encode(&aes),
                "-iv",
                "A65959A6",
                "-in",
                &path(dir, "material.bin"),
            ]));
            wrapped
        }
    }
}

async fn create_external(
    client: &aws_sdk_kms::Client,
    spec: KeySpec,
    usage: KeyUsageType,
) -> String {
    let meta = client
        .create_key()
        .origin(OriginType::External)
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.origin(), Some(&OriginType::External));
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(meta.current_key_material_id(), None);
    meta.key_id
}

/// GetParametersForImport: (public key DER, import token).
async fn parameters(
    client: &aws_sdk_kms::Client,
    key: &str,
    algorithm: AlgorithmSpec,
) -> (Vec<u8>, Vec<u8>) {
    let out = client
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(algorithm)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    (
        out.public_key.unwrap().into_inner(),
        out.import_token.unwrap().into_inner(),
    )
}

async fn import(
    client: &aws_sdk_kms::Client,
    key: &str,
    token: &[u8],
    wrapped: &[u8],
    valid_to: Option<i64>,
) -> Result<String, String> {
    let mut req = client
        .import_key_material()
        .key_id(key)
        .import_token(Blob::new(token.to_vec()))
        .encrypted_key_material(Blob::new(wrapped.to_vec()));
    req = match valid_to {
        Some(t) => req
            .expiration_model(ExpirationModelType::KeyMaterialExpires)
            .valid_to(DateTime::from_secs(t)),
        None => req.expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire),
    };
    match req.send().await {
        Ok(out) => Ok(out.key_material_id.unwrap_or_default()),
        Err(e) => Err(code(&e)),
    }
}

/// Get parameters, wrap outside, import (material that does not expire).
async fn import_fresh(
    client: &aws_sdk_kms::Client,
    dir: &Path,
    key: &str,
    material: &[u8],
    algorithm: AlgorithmSpec,
) -> Result<String, String> {
    let (public, token) = parameters(client, key, algorithm.clone()).await;
    let wrapped = wrap(dir, &public, material, &algorithm);
    import(client, key, &token, &wrapped, None).await
}

async fn encrypt(client: &aws_sdk_kms::Client, key: &str) -> Blob {
    client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"imported".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
}

async fn decrypt(client: &aws_sdk_kms::Client, blob: &Blob) -> Result<Vec<u8>, String> {
    client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .map(|o| o.plaintext.unwrap().into_inner())
        .map_err(|e| code(&e))
}

async fn describe(client: &aws_sdk_kms::Client, key: &str) -> aws_sdk_kms::types::KeyMetadata {
    client
        .describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
}

fn service_events(records: &[serde_json::Value], name: &str, key: &str) -> usize {
    records
        .iter()
        .filter(|r| {
            r["eventType"] == "AwsServiceEvent"
                && r["eventName"] == name
                && r["resources"][0]["ARN"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(key))
        })
        .count()
}

/// Symmetric material with each wrapping algorithm; HMAC and EC material checked against
/// OpenSSL; DeleteImportedKeyMaterial and re-import.
async fn import_flow(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    for algorithm in [
        AlgorithmSpec::RsaesOaepSha1,
        AlgorithmSpec::RsaesOaepSha256,
        AlgorithmSpec::RsaAesKeyWrapSha1,
        AlgorithmSpec::RsaAesKeyWrapSha256,
    ] {
        let key = create_external(
            &client,
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
        )
        .await;
        let err = client
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "KMSInvalidStateException", "no material yet");
        let material = random_bytes(32);
        let material_id = import_fresh(&client, dir, &key, &material, algorithm.clone())
            .await
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"));
        let meta = describe(&client, &key).await;
        assert_eq!(meta.key_state(), Some(&KeyState::Enabled), "{algorithm:?}");
        assert_eq!(meta.current_key_material_id(), Some(material_id.as_str()));
        assert_eq!(
            meta.expiration_model(),
            Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
        );
        assert_eq!(meta.valid_to(), None);
        let blob = encrypt(&client, &key).await;
        assert_eq!(decrypt(&client, &blob).await.unwrap(), b"imported");
    }

    // HMAC material: Trent's MAC equals OpenSSL's with the same key.
    let hmac = create_external(&client, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let hmac_material = random_bytes(32);
    import_fresh(
        &client,
        dir,
        &hmac,
        &hmac_material,
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap();
    let mac = client
        .generate_mac()
        .key_id(&hmac)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(b"message".to_vec()))
        .send()
        .await
        .unwrap()
        .mac
        .unwrap()
        .into_inner();
    std::fs::write(path(dir, "message.bin"), b"message").unwrap();
    let expected = openssl(&[
        "mac",
        "-digest",
        "SHA256",
        "-macopt",
        &format!("hexkey:{}", hex::encode(&hmac_material)),
        "-binary",
        "-in",
        &path(dir, "message.bin"),
        "HMAC",
    ]);
    assert_eq!(mac, expected, "the MAC uses the imported material");

    // EC private key (PKCS#8 from OpenSSL): GetPublicKey returns its public key.
    let ec = create_external(&client, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-outform",
        "DER",
        "-out",
        &path(dir, "ec-sec1.der"),
    ]);
    // AWS takes asymmetric material as PKCS#8; OpenSSL writes EC keys as SEC1 in DER.
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-inform",
        "DER",
        "-in",
        &path(dir, "ec-sec1.der"),
        "-outform",
        "DER",
        "-out",
        &path(dir, "ec.der"),
    ]);
    let ec_material = std::fs::read(path(dir, "ec.der")).unwrap();
    let ec_public = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        &path(dir, "ec.der"),
        "-pubout",
        "-outform",
        "DER",
    ]);
    import_fresh(
        &client,
        dir,
        &ec,
        &ec_material,
        AlgorithmSpec::RsaAesKeyWrapSha256,
    )
    .await
    .unwrap();
    let public = client.get_public_key().key_id(&ec).send().await.unwrap();
    assert_eq!(public.public_key.unwrap().into_inner(), ec_public);

    // Delete, then re-import: different material refused, the same restores decryption.
    let key = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = random_bytes(32);
    let material_id = import_fresh(
        &client,
        dir,
        &key,
        &material,
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap();
    let blob = encrypt(&client, &key).await;
    let err = import_fresh(
        &client,
        dir,
        &key,
        &random_bytes(32),
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err, "IncorrectKeyMaterialException",
        "different material while present"
    );
    let db = Db::open(&server).await;
    assert_eq!(db.material_rows(&key).await, 1);
    client
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        db.material_rows(&key).await,
        0,
        "material destroyed at once"
    );
    let meta = describe(&client, &key).await;
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(meta.expiration_model(), None);
    assert_eq!(
        meta.current_key_material_id(),
        Some(material_id.as_str()),
        "as in AWS, the current material's id stays after its deletion"
    );
    assert_eq!(
        decrypt(&client, &blob).await.unwrap_err(),
        "KMSInvalidStateException"
    );
    let err = import_fresh(
        &client,
        dir,
        &key,
        &random_bytes(32),
        AlgorithmSpec::RsaesOaepSha1,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err, "IncorrectKeyMaterialException",
        "different material after deletion"
    );
    let again = import_fresh(
        &client,
        dir,
        &key,
        &material,
        AlgorithmSpec::RsaAesKeyWrapSha1,
    )
    .await
    .unwrap();
    assert_eq!(
        again, material_id,
        "the same material keeps its KeyMaterialId"
    );
    assert_eq!(decrypt(&client, &blob).await.unwrap(), b"imported");
    assert_eq!(db.material_rows(&key).await, 1);

    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "{out}");
}

/// Import tokens: 24 hours by the domain clock, bound to their key and algorithm, unforgeable;
/// wrapped material that does not unwrap; refused wrapping algorithms and keys.
async fn tokens(store: StoreKind) {
    let server = TestServer::start_with_test_clock(store);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let other = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = random_bytes(32);

    let out = client
        .get_parameters_for_import()
        .key_id(&key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa3072)
        .send()
        .await
        .unwrap();
    let created = describe(&client, &key).await.creation_date.unwrap().secs();
    let valid_to = out.parameters_valid_to.unwrap().secs();
    assert!((valid_to - created - DAY).abs() < 60, "valid for 24 hours");
    assert_eq!(
        out.public_key.as_ref().unwrap().as_ref().len(),
        422,
        "RSA 3072 SPKI"
    );
    let (public, token) = (
        out.public_key.unwrap().into_inner(),
        out.import_token.unwrap().into_inner(),
    );
    let wrapped = wrap(dir, &public, &material, &AlgorithmSpec::RsaesOaepSha256);
    let (public2, token2) = parameters(&client, &key, AlgorithmSpec::RsaesOaepSha256).await;
    let wrapped2 = wrap(dir, &public2, &material, &AlgorithmSpec::RsaesOaepSha256);

    // Foreign, altered and truncated tokens.
    let (other_public, other_token) =
        parameters(&client, &other, AlgorithmSpec::RsaesOaepSha256).await;
    let other_wrapped = wrap(
        dir,
        &other_public,
        &material,
        &AlgorithmSpec::RsaesOaepSha256,
    );
    assert_eq!(
        import(&client, &key, &other_token, &other_wrapped, None)
            .await
            .unwrap_err(),
        "InvalidImportTokenException"
    );
    let mut altered = token.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(
        import(&client, &key, &altered, &wrapped, None)
            .await
            .unwrap_err(),
        "InvalidImportTokenException"
    );
    let mut later = token.clone();
    later[12] ^= 0x40; // the expiry in the header
    assert_eq!(
        import(&client, &key, &later, &wrapped, None)
            .await
            .unwrap_err(),
        "InvalidImportTokenException"
    );
    // Material wrapped with another OAEP hash, or not wrapped at all.
    let sha1_wrapped = wrap(dir, &public, &material, &AlgorithmSpec::RsaesOaepSha1);
    assert_eq!(
        import(&client, &key, &token, &sha1_wrapped, None)
            .await
            .unwrap_err(),
        "InvalidCiphertextException"
    );
    assert_eq!(
        import(&client, &key, &token, &material, None)
            .await
            .unwrap_err(),
        "InvalidCiphertextException"
    );
    // Material of the wrong size for the key spec.
    let short = wrap(
        dir,
        &public,
        &random_bytes(16),
        &AlgorithmSpec::RsaesOaepSha256,
    );
    assert_eq!(
        import(&client, &key, &token, &short, None)
            .await
            .unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    // ExpirationModel and ValidTo must agree.
    let err = client
        .import_key_material()
        .key_id(&key)
        .import_token(Blob::new(token.clone()))
        .encrypted_key_material(Blob::new(wrapped.clone()))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    // Still valid 10 seconds before 24 hours; expired 1 second after.
    server.advance_clock(DAY - 10).await;
    import(&client, &key, &token, &wrapped, None).await.unwrap();
    server.advance_clock(11).await;
    assert_eq!(
        import(&client, &key, &token2, &wrapped2, None)
            .await
            .unwrap_err(),
        "ExpiredImportTokenException"
    );

    // Refused wrapping algorithms, and keys that are not EXTERNAL.
    let err = client
        .get_parameters_for_import()
        .key_id(&other)
        .wrapping_algorithm(AlgorithmSpec::RsaesPkcs1V15)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = client
        .get_parameters_for_import()
        .key_id(&other)
        .wrapping_algorithm(AlgorithmSpec::Sm2Pke)
        .wrapping_key_spec(WrappingKeySpec::Sm2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let native = client
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let err = client
        .get_parameters_for_import()
        .key_id(&native)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let (public3, token3) = parameters(&client, &key, AlgorithmSpec::RsaesOaepSha256).await;
    let wrapped3 = wrap(dir, &public3, &material, &AlgorithmSpec::RsaesOaepSha256);
    let err = client
        .import_key_material()
        .key_id(&key)
        .import_type(ImportType::NewKeyMaterial)
        .import_token(Blob::new(token3))
        .encrypted_key_material(Blob::new(wrapped3))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "IncorrectKeyMaterialException",
        "NEW_KEY_MATERIAL with the material the key already has"
    );
}

/// On-demand rotation of an imported key: NEW_KEY_MATERIAL imports a further version in state
/// PENDING_ROTATION (with its description); RotateKeyOnDemand makes it current; older
/// ciphertexts still decrypt; with nothing pending, RotateKeyOnDemand is refused.
async fn rotation(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material_a = random_bytes(32);
    let material_b = random_bytes(32);
    let a = import_fresh(
        &client,
        dir,
        &key,
        &material_a,
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap();
    assert_eq!(a.len(), 64);
    let c1 = encrypt(&client, &key).await;

    let err = client.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(
        code(&err.unwrap_err()),
        "UnsupportedOperationException",
        "nothing pending before the NEW_KEY_MATERIAL import"
    );

    let (public, token) = parameters(&client, &key, AlgorithmSpec::RsaesOaepSha256).await;
    let wrapped = wrap(dir, &public, &material_b, &AlgorithmSpec::RsaesOaepSha256);
    let out = client
        .import_key_material()
        .key_id(&key)
        .import_type(ImportType::NewKeyMaterial)
        .key_material_description("second material")
        .import_token(Blob::new(token))
        .encrypted_key_material(Blob::new(wrapped))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    assert!(out.key_id().unwrap().ends_with(&key));
    let b = out.key_material_id.unwrap();
    assert_ne!(a, b);

    let list = |client: aws_sdk_kms::Client, key: String| async move {
        client
            .list_key_rotations()
            .key_id(key)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .send()
            .await
            .unwrap()
            .rotations
            .unwrap_or_default()
    };
    let rows = list(client.clone(), key.clone()).await;
    let states: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.key_material_id().unwrap().to_string(),
                r.key_material_state().cloned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (a.clone(), Some(KeyMaterialState::Current)),
            (b.clone(), Some(KeyMaterialState::PendingRotation)),
        ]
    );
    assert_eq!(rows[1].key_material_description(), Some("second material"));
    assert_eq!(rows[1].import_state(), Some(&ImportState::Imported));
    assert_eq!(rows[0].key_material_description(), None);
    assert_eq!(
        describe(&client, &key).await.current_key_material_id(),
        Some(a.as_str())
    );
    let still_a = encrypt(&client, &key).await;
    assert_eq!(
        decrypt_material(&client, &still_a).await,
        a,
        "pending is not used"
    );

    client
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let rows = list(client.clone(), key.clone()).await;
    let states: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.key_material_id().unwrap().to_string(),
                r.key_material_state().cloned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (a.clone(), Some(KeyMaterialState::NonCurrent)),
            (b.clone(), Some(KeyMaterialState::Current)),
        ]
    );
    assert_eq!(rows[1].rotation_type(), Some(&RotationType::OnDemand));
    assert_eq!(rows[1].key_material_description(), Some("second material"));
    assert_eq!(
        describe(&client, &key).await.current_key_material_id(),
        Some(b.as_str())
    );
    let c2 = encrypt(&client, &key).await;
    assert_eq!(decrypt_material(&client, &c2).await, b);
    assert_eq!(decrypt_material(&client, &c1).await, a);
    assert_eq!(decrypt(&client, &c1).await.unwrap(), b"imported");

    let err = client.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(
        code(&err.unwrap_err()),
        "UnsupportedOperationException",
        "nothing pending after the rotation"
    );

    // After deletion, EXISTING_KEY_MATERIAL re-imports the version KeyMaterialId names.
    client
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        decrypt(&client, &c1).await.unwrap_err(),
        "KMSInvalidStateException"
    );
    let reimport = |material: Vec<u8>, id: String| {
        let client = client.clone();
        let key = key.clone();
        async move {
            let (public, token) = parameters(&client, &key, AlgorithmSpec::RsaesOaepSha256).await;
            let wrapped = wrap(dir, &public, &material, &AlgorithmSpec::RsaesOaepSha256);
            client
                .import_key_material()
                .key_id(&key)
                .import_type(ImportType::ExistingKeyMaterial)
                .key_material_id(id)
                .import_token(Blob::new(token))
                .encrypted_key_material(Blob::new(wrapped))
                .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
                .send()
                .await
                .map(|o| o.key_material_id.unwrap())
                .map_err(|e| code(&e))
        }
    };
    assert_eq!(
        reimport(material_a.clone(), b.clone()).await.unwrap_err(),
        "IncorrectKeyMaterialException",
        "A's material under B's id"
    );
    assert_eq!(reimport(material_a.clone(), a.clone()).await.unwrap(), a);
    assert_eq!(
        describe(&client, &key).await.key_state(),
        Some(&KeyState::PendingImport),
        "the current material (B) is still missing"
    );
    assert_eq!(reimport(material_b.clone(), b.clone()).await.unwrap(), b);
    assert_eq!(
        describe(&client, &key).await.key_state(),
        Some(&KeyState::Enabled)
    );
    assert_eq!(decrypt_material(&client, &c1).await, a);
    assert_eq!(decrypt_material(&client, &c2).await, b);
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "{out}");
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "{out}");
}

/// The KeyMaterialId a Decrypt response names.
async fn decrypt_material(client: &aws_sdk_kms::Client, blob: &Blob) -> String {
    client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap()
        .key_material_id
        .unwrap()
}

/// Material with a ValidTo is destroyed by the scheduler when it passes, exactly once, with a
/// DeleteExpiredKeyMaterial service event; the same material can be imported again.
async fn expiry(store: StoreKind) {
    let server = TestServer::start_with_test_clock(store);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let keeps = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let now = describe(&client, &key).await.creation_date.unwrap().secs();
    let material = random_bytes(32);
    let (public, token) = parameters(&client, &key, AlgorithmSpec::RsaesOaepSha256).await;
    let wrapped = wrap(dir, &public, &material, &AlgorithmSpec::RsaesOaepSha256);
    import(&client, &key, &token, &wrapped, Some(now + 3600))
        .await
        .unwrap();
    import_fresh(
        &client,
        dir,
        &keeps,
        &random_bytes(32),
        AlgorithmSpec::RsaesOaepSha1,
    )
    .await
    .unwrap();
    let meta = describe(&client, &key).await;
    assert_eq!(
        meta.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(meta.valid_to().map(|t| t.secs()), Some(now + 3600));
    let blob = encrypt(&client, &key).await;

    server.advance_clock(3500).await;
    let report = server.scheduler_tick().await;
    assert_eq!(report["expired"], serde_json::json!([]), "not yet");
    server.advance_clock(200).await;
    let report = server.scheduler_tick().await;
    assert_eq!(report["expired"], serde_json::json!([key]));
    let again = server.scheduler_tick().await;
    assert_eq!(again["expired"], serde_json::json!([]), "expired twice");

    let meta = describe(&client, &key).await;
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(meta.valid_to(), None);
    assert_eq!(
        decrypt(&client, &blob).await.unwrap_err(),
        "KMSInvalidStateException"
    );
    assert_eq!(
        describe(&client, &keeps).await.key_state(),
        Some(&KeyState::Enabled)
    );
    let db = Db::open(&server).await;
    assert_eq!(
        db.material_rows(&key).await,
        0,
        "expired material destroyed"
    );
    assert_eq!(db.material_rows(&keeps).await, 1);
    let records = db.audit_records().await;
    assert_eq!(
        service_events(&records, "DeleteExpiredKeyMaterial", &key),
        1
    );
    assert_eq!(
        service_events(&records, "DeleteExpiredKeyMaterial", &keeps),
        0
    );

    import_fresh(
        &client,
        dir,
        &key,
        &material,
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap();
    assert_eq!(decrypt(&client, &blob).await.unwrap(), b"imported");
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "{out}");
}

/// The state of `key` once it leaves a transient multi-Region state.
async fn settled(client: &aws_sdk_kms::Client, key: &str) -> KeyState {
    for _ in 0..500 {
        let state = describe(client, key).await.key_state.unwrap();
        if !matches!(state, KeyState::Creating | KeyState::Updating) {
            return state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{key} stayed in a transient state");
}

/// A multi-Region key with imported material: each Region's key imports the same material
/// itself (a replica starts without), gets the primary's KeyMaterialId, refuses other material,
/// and deletes its own copy without touching the other Regions'.
async fn multi_region_imported_material(store: StoreKind) {
    let server = TestServer::start(store);
    let east = server.client();
    let west = server.client_as(common::ACCESS_KEY, common::SECRET_KEY, "eu-west-1");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let created = east
        .create_key()
        .origin(OriginType::External)
        .multi_region(true)
        .send()
        .await
        .unwrap();
    let key = created.key_metadata.unwrap().key_id;
    assert!(key.starts_with("mrk-"));
    let early = east
        .replicate_key()
        .key_id(&key)
        .replica_region("eu-west-1")
        .send()
        .await;
    assert_eq!(
        code(&early.unwrap_err()),
        "KMSInvalidStateException",
        "no material yet"
    );

    let material = random_bytes(32);
    let alg = AlgorithmSpec::RsaesOaepSha256;
    let id = import_fresh(&east, dir, &key, &material, alg.clone())
        .await
        .unwrap();
    let blob = encrypt(&east, &key).await;
    east.replicate_key()
        .key_id(&key)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    assert_eq!(settled(&west, &key).await, KeyState::PendingImport);
    assert_eq!(
        decrypt(&west, &blob).await.unwrap_err(),
        "KMSInvalidStateException"
    );

    let other = import_fresh(&west, dir, &key, &random_bytes(32), alg.clone()).await;
    assert_eq!(other.unwrap_err(), "IncorrectKeyMaterialException");
    let west_id = import_fresh(&west, dir, &key, &material, alg.clone())
        .await
        .unwrap();
    assert_eq!(
        west_id, id,
        "the same material has the same KeyMaterialId in every Region"
    );
    assert_eq!(
        describe(&west, &key).await.current_key_material_id(),
        Some(id.as_str())
    );
    assert_eq!(decrypt(&west, &blob).await.unwrap(), b"imported");

    west.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        describe(&west, &key).await.key_state,
        Some(KeyState::PendingImport)
    );
    assert_eq!(
        decrypt(&east, &blob).await.unwrap(),
        b"imported",
        "the primary's copy stays"
    );
    assert_eq!(
        decrypt(&west, &blob).await.unwrap_err(),
        "KMSInvalidStateException"
    );
    import_fresh(&west, dir, &key, &material, alg.clone())
        .await
        .unwrap();
    assert_eq!(decrypt(&west, &blob).await.unwrap(), b"imported");

    // New material: into the primary first, then the same into each replica, then the primary
    // rotates on demand and the rotation reaches every Region.
    let import_typed = |client: aws_sdk_kms::Client, material: Vec<u8>, kind: ImportType| {
        let (key, alg) = (key.clone(), alg.clone());
        async move {
            let (public, token) = parameters(&client, &key, alg.clone()).await;
            let wrapped = wrap(dir, &public, &material, &alg);
            client
                .import_key_material()
                .key_id(&key)
                .import_token(Blob::new(token))
                .encrypted_key_material(Blob::new(wrapped))
                .import_type(kind)
                .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
                .send()
                .await
                .map(|o| o.key_material_id.unwrap_or_default())
                .map_err(|e| code(&e))
        }
    };
    let next = random_bytes(32);
    let on_replica = import_typed(west.clone(), next.clone(), ImportType::NewKeyMaterial).await;
    assert_eq!(on_replica.unwrap_err(), "UnsupportedOperationException");
    let pending_id = import_typed(east.clone(), next.clone(), ImportType::NewKeyMaterial)
        .await
        .unwrap();
    let early = east.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(
        code(&early.unwrap_err()),
        "KMSInvalidStateException",
        "the replica lacks it"
    );
    let other = import_typed(
        west.clone(),
        random_bytes(32),
        ImportType::ExistingKeyMaterial,
    )
    .await;
    assert_eq!(other.unwrap_err(), "IncorrectKeyMaterialException");
    let west_pending = import_typed(west.clone(), next.clone(), ImportType::ExistingKeyMaterial)
        .await
        .unwrap();
    assert_eq!(west_pending, pending_id);
    let from_replica = west.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(
        code(&from_replica.unwrap_err()),
        "UnsupportedOperationException"
    );
    east.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    for client in [&east, &west] {
        let meta = describe(client, &key).await;
        assert_eq!(meta.current_key_material_id(), Some(pending_id.as_str()));
    }
    let rotated = encrypt(&west, &key).await;
    assert_eq!(decrypt(&east, &rotated).await.unwrap(), b"imported");
    assert_eq!(
        decrypt(&west, &blob).await.unwrap(),
        b"imported",
        "older material still opens"
    );
}

on_both_stores!(
    import_flow,
    tokens,
    expiry,
    rotation,
    ciphertext_formats,
    multi_region_imported_material
);

/// Ciphertext formats with material the test knows (imported): a format-1 blob written as the
/// first format did (a random nonce directly under the material) still decrypts, and new blobs
/// are format 2, whose body is not the material's own AES-GCM encryption.
async fn ciphertext_formats(store: StoreKind) {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let server = TestServer::start(store);
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let key = create_external(
        &client,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = random_bytes(32);
    import_fresh(
        &client,
        dir.path(),
        &key,
        &material,
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await
    .unwrap();
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).unwrap());
    // Header: magic, version, key id (UUID bytes), material version 1; AAD: header and the
    // canonical empty context (four zero bytes).
    let mut header = vec![0x54, 0x01];
    header.extend_from_slice(uuid::Uuid::parse_str(&key).unwrap().as_bytes());
    header.extend_from_slice(&1u32.to_be_bytes());
    let nonce_bytes = random_bytes(12);
    let mut aad = header.clone();
    aad.extend_from_slice(&[0, 0, 0, 0]);
    let mut body = b"written by format 1".to_vec();
    aead.seal_in_place_append_tag(
        Nonce::try_assume_unique_for_key(&nonce_bytes).unwrap(),
        Aad::from(aad.clone()),
        &mut body,
    )
    .unwrap();
    let mut v1 = header.clone();
    v1.extend_from_slice(&nonce_bytes);
    v1.extend_from_slice(&body);
    assert_eq!(
        decrypt(&client, &Blob::new(v1)).await.unwrap(),
        b"written by format 1"
    );

    let v2 = encrypt(&client, &key).await.into_inner();
    assert_eq!(v2[1], 0x02, "new ciphertexts are format 2");
    assert_eq!(v2.len(), b"imported".len() + 22 + 32 + 12 + 16);
    assert_eq!(v2[2..22], header[2..22]);
    // Read as if it were format 1 (skipping the salt), it does not open under the material:
    // the material never encrypts directly.
    let (nonce, rest) = v2[54..].split_at(12);
    let mut as_v1 = rest.to_vec();
    let mut v1_aad = v2[..22].to_vec();
    v1_aad[1] = 0x01;
    v1_aad.extend_from_slice(&[0, 0, 0, 0]);
    assert!(aead
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).unwrap(),
            Aad::from(v1_aad),
            &mut as_v1,
        )
        .is_err());
    assert_eq!(decrypt(&client, &Blob::new(v2)).await.unwrap(), b"imported");
}
