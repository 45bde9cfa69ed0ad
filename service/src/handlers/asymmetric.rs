//! Operations of asymmetric, HMAC and ML-KEM keys: GetPublicKey, Sign, Verify, GenerateMac,
//! VerifyMac, DeriveSharedSecret, Encapsulate, Decapsulate, GenerateDataKeyPair and
//! GenerateDataKeyPairWithoutPlaintext. The cryptography is `crate::crypto::keys`; this module
//! resolves, authorises, checks the key's state and usage, and shapes the responses. Private key
//! material is unsealed per call into zeroizing buffers.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    authorize_as, check_key_state, dry_run_check, material, no_recipient, resolve_key, CallContext,
    KeyOnly, Outcome,
};
use crate::crypto::keys::{self, KeyError, KeySpec, KeyUsage, PrivateKeyMaterial};
use crate::crypto::secret::SecretBytes;
use crate::domain::key::KeySnapshot;
use crate::protocol::wire::set;
use crate::protocol::wire::{b64, blob, decode, secret_blob};
use crate::protocol::KmsError;
use crate::state::AppState;

/// The key spec of a key as the crypto module names it.
pub fn spec_of(key: &KeySnapshot) -> Result<KeySpec, KmsError> {
    KeySpec::from_str(&key.key_spec)
        .map_err(|_| KmsError::KmsInternal("The key has an unknown key spec.".into()))
}

fn usage_of(key: &KeySnapshot) -> Result<KeyUsage, KmsError> {
    KeyUsage::from_str(&key.key_usage)
        .map_err(|_| KmsError::KmsInternal("The key has an unknown key usage.".into()))
}

/// Resolve, authorise and check a key for an operation that needs `usage`.
fn key_for_usage(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
    usage: KeyUsage,
) -> Result<(std::sync::Arc<KeySnapshot>, KeySpec), KmsError> {
    let key = resolve_key(state, ctx, key_id)?;
    authorize_as(
        state,
        ctx,
        &key,
        &crate::authorize::action_of(ctx.op),
        None,
        None,
    )?;
    check_key_state(ctx, &key)?;
    if usage_of(&key)? != usage {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            key.arn(),
            key.key_usage,
            ctx.op.name()
        )));
    }
    let spec = spec_of(&key)?;
    Ok((key, spec))
}

/// The current private material of a key.
async fn private_material(
    state: &AppState,
    key: &KeySnapshot,
) -> Result<PrivateKeyMaterial, KmsError> {
    let version = key
        .current_material()
        .map(|m| m.version)
        .ok_or_else(|| KmsError::KmsInternal("The key has no material.".into()))?;
    Ok(PrivateKeyMaterial::from_secret(
        material(state, key, version).await?,
    ))
}

fn parse<T: FromStr>(value: &str) -> Result<T, KmsError> {
    T::from_str(value).map_err(|_| KmsError::Validation(format!("'{value}' is not a valid value")))
}

/// The algorithm lists of DescribeKey and GetPublicKey for a key, under their wire names.
pub fn algorithm_lists(key_spec: &str, key_usage: &str) -> Vec<(&'static str, Value)> {
    let (Ok(spec), Ok(usage)) = (KeySpec::from_str(key_spec), KeyUsage::from_str(key_usage)) else {
        return Vec::new();
    };
    let a = spec.algorithms(usage);
    let lists: [(&'static str, Vec<&'static str>); 5] = [
        (
            "EncryptionAlgorithms",
            a.encryption.iter().map(|x| x.as_str()).collect(),
        ),
        (
            "SigningAlgorithms",
            a.signing.iter().map(|x| x.as_str()).collect(),
        ),
        ("MacAlgorithms", a.mac.iter().map(|x| x.as_str()).collect()),
        (
            "KeyAgreementAlgorithms",
            a.key_agreement.iter().map(|x| x.as_str()).collect(),
        ),
        (
            "EncapsulationAlgorithms",
            a.encapsulation.iter().map(|x| x.as_str()).collect(),
        ),
    ];
    lists
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(name, names)| (name, Value::from(names)))
        .collect()
}

/// GetPublicKey: the DER SubjectPublicKeyInfo and the metadata AWS returns with it.
pub async fn get_public_key(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize_as(state, ctx, &key, "kms:GetPublicKey", None, None)?;
    check_key_state(ctx, &key)?;
    let spec = spec_of(&key)?;
    if !spec.is_asymmetric() {
        return Err(KeyError::UnsupportedOperation(spec).into());
    }
    let material = private_material(state, &key).await?;
    let public = keys::public_key_der(spec, &material)?;
    let mut body = json!({
        "KeyId": key.arn(),
        "PublicKey": b64(&public),
        "KeySpec": key.key_spec,
        "CustomerMasterKeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
    });
    for (name, list) in algorithm_lists(&key.key_spec, &key.key_usage) {
        set(&mut body, name, list);
    }
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignRequest {
    key_id: String,
    #[serde(deserialize_with = "secret_blob")]
    message: SecretBytes,
    message_type: Option<String>,
    signing_algorithm: String,
    #[serde(default, deserialize_with = "blob")]
    signature: Vec<u8>,
    dry_run: Option<bool>,
}

/// Sign (RAW, DIGEST, or EXTERNAL_MU for ML-DSA).
pub async fn sign(state: &AppState, ctx: &CallContext, body: &Value) -> Result<Outcome, KmsError> {
    let req: SignRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::SignVerify)?;
    let algorithm = parse(&req.signing_algorithm)?;
    let message_type = parse(req.message_type.as_deref().unwrap_or("RAW"))?;
    keys::validate_signing_input(spec, algorithm, message_type, req.message.as_slice())?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let signature = keys::sign(
        spec,
        &material,
        algorithm,
        message_type,
        req.message.as_slice(),
    )?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "Signature": b64(&signature),
        "SigningAlgorithm": req.signing_algorithm,
    })))
}

/// Verify: `SignatureValid: true`, or `KMSInvalidSignatureException` as AWS answers.
pub async fn verify(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: SignRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::SignVerify)?;
    let algorithm = parse(&req.signing_algorithm)?;
    let message_type = parse(req.message_type.as_deref().unwrap_or("RAW"))?;
    keys::validate_signing_input(spec, algorithm, message_type, req.message.as_slice())?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let valid = keys::verify(
        spec,
        &material,
        algorithm,
        message_type,
        req.message.as_slice(),
        &req.signature,
    )?;
    if !valid {
        return Err(KmsError::KmsInvalidSignature(String::new()));
    }
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "SignatureValid": true,
        "SigningAlgorithm": req.signing_algorithm,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacRequest {
    key_id: String,
    #[serde(deserialize_with = "secret_blob")]
    message: SecretBytes,
    mac_algorithm: String,
    #[serde(default, deserialize_with = "blob")]
    mac: Vec<u8>,
    dry_run: Option<bool>,
}

/// GenerateMac.
pub async fn generate_mac(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: MacRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::GenerateVerifyMac)?;
    let algorithm = parse(&req.mac_algorithm)?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let mac = keys::hmac_generate(spec, &material, algorithm, req.message.as_slice())?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "Mac": b64(&mac),
        "MacAlgorithm": req.mac_algorithm,
    })))
}

/// VerifyMac: `MacValid: true`, or `KMSInvalidMacException`.
pub async fn verify_mac(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: MacRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::GenerateVerifyMac)?;
    let algorithm = parse(&req.mac_algorithm)?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    if !keys::hmac_verify(spec, &material, algorithm, req.message.as_slice(), &req.mac)? {
        return Err(KmsError::KmsInvalidMac(String::new()));
    }
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "MacValid": true,
        "MacAlgorithm": req.mac_algorithm,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeriveSharedSecretRequest {
    key_id: String,
    key_agreement_algorithm: String,
    #[serde(deserialize_with = "blob")]
    public_key: Vec<u8>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

/// DeriveSharedSecret (ECDH with a peer's DER SubjectPublicKeyInfo).
pub async fn derive_shared_secret(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DeriveSharedSecretRequest = decode(body)?;
    no_recipient(&req.recipient)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::KeyAgreement)?;
    let algorithm = parse(&req.key_agreement_algorithm)?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let secret = keys::derive_shared_secret(spec, &material, algorithm, &req.public_key)?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "SharedSecret": b64(secret.as_slice()),
        "KeyAgreementAlgorithm": req.key_agreement_algorithm,
        "KeyOrigin": key.origin,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KemRequest {
    key_id: String,
    encapsulation_algorithm: String,
    #[serde(default, deserialize_with = "blob")]
    shared_secret_ciphertext_blob: Vec<u8>,
    dry_run: Option<bool>,
}

/// Encapsulate (ML-KEM): a shared secret and its ciphertext under the key's public key.
pub async fn encapsulate(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KemRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::EncapsulateDecapsulate)?;
    let algorithm = parse(&req.encapsulation_algorithm)?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let public = keys::public_key_der(spec, &material)?;
    let out = keys::encapsulate(spec, algorithm, &public)?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "SharedSecret": b64(out.shared_secret.as_slice()),
        "SharedSecretCiphertextBlob": b64(&out.ciphertext),
        "EncapsulationAlgorithm": req.encapsulation_algorithm,
    })))
}

/// Decapsulate (ML-KEM).
pub async fn decapsulate(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KemRequest = decode(body)?;
    let (key, spec) = key_for_usage(state, ctx, &req.key_id, KeyUsage::EncapsulateDecapsulate)?;
    let algorithm = parse(&req.encapsulation_algorithm)?;
    dry_run_check(req.dry_run)?;
    let material = private_material(state, &key).await?;
    let secret = keys::decapsulate(
        spec,
        &material,
        algorithm,
        &req.shared_secret_ciphertext_blob,
    )?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "SharedSecret": b64(secret.as_slice()),
        "EncapsulationAlgorithm": req.encapsulation_algorithm,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairRequest {
    key_id: String,
    key_pair_spec: String,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

/// GenerateDataKeyPair(WithoutPlaintext): a fresh key pair whose PKCS#8 private key is encrypted
/// under a symmetric KMS key with the encryption context bound.
pub async fn generate_data_key_pair(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
    with_plaintext: bool,
) -> Result<Outcome, KmsError> {
    let req: DataKeyPairRequest = decode(body)?;
    no_recipient(&req.recipient)?;
    let pair_spec = parse(&req.key_pair_spec)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    let action = crate::authorize::action_of(ctx.op);
    authorize_as(
        state,
        ctx,
        &key,
        &action,
        Some(&req.encryption_context),
        None,
    )?;
    check_key_state(ctx, &key)?;
    crate::domain::rules::check_symmetric_encryption(ctx.op, &key, None)?;
    dry_run_check(req.dry_run)?;
    let pair = tokio::task::spawn_blocking(move || keys::generate_data_key_pair(pair_spec))
        .await
        .map_err(|_| KmsError::KmsInternal("Key pair generation failed.".into()))??;
    let (blob, info) =
        super::crypto_ops::seal_under(state, ctx, &key, &pair.private_key, &req.encryption_context)
            .await?;
    let mut body = json!({
        "KeyId": key.arn(),
        "KeyPairSpec": req.key_pair_spec,
        "PrivateKeyCiphertextBlob": b64(&blob),
        "PublicKey": b64(&pair.public_key),
        "KeyMaterialId": info.material_id,
    });
    if with_plaintext {
        set(
            &mut body,
            "PrivateKeyPlaintext",
            json!(b64(pair.private_key.as_slice())),
        );
    }
    Ok(Outcome::reply(body))
}

/// Authorise `action` on an RSA encryption key and check its state, usage, the (absent) encryption
/// context and the algorithm: what every use of an RSA key for encryption checks first.
pub(super) fn asymmetric_encryption_checks(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    action: &str,
    context: &BTreeMap<String, String>,
    algorithm: Option<&str>,
) -> Result<(KeySpec, keys::EncryptionAlgorithm), KmsError> {
    authorize_as(state, ctx, key, action, None, algorithm)?;
    check_key_state(ctx, key)?;
    if usage_of(key)? != KeyUsage::EncryptDecrypt {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            key.arn(),
            key.key_usage,
            ctx.op.name()
        )));
    }
    if !context.is_empty() {
        return Err(KmsError::Validation(
            "EncryptionContext is not supported with asymmetric KMS keys.".into(),
        ));
    }
    let spec = spec_of(key)?;
    let Some(algorithm) = algorithm else {
        return Err(KmsError::Validation(format!(
            "An EncryptionAlgorithm (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256) is required for key spec {spec}."
        )));
    };
    Ok((spec, parse(algorithm)?))
}

/// Encrypt with an RSA key (RSAES_OAEP_SHA_1 / SHA_256, AWS's plaintext limits).
pub async fn rsa_encrypt_call(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    plaintext: &SecretBytes,
    context: &BTreeMap<String, String>,
    algorithm: Option<&str>,
    dry: Option<bool>,
) -> Result<Outcome, KmsError> {
    let action = crate::authorize::action_of(ctx.op);
    let (spec, alg) = asymmetric_encryption_checks(state, ctx, key, &action, context, algorithm)?;
    dry_run_check(dry)?;
    let ciphertext = rsa_seal(state, key, spec, alg, plaintext).await?;
    Ok(Outcome::reply(json!({
        "CiphertextBlob": b64(&ciphertext),
        "KeyId": key.arn(),
        "EncryptionAlgorithm": alg.as_str(),
    })))
}

/// Encrypt `plaintext` under an RSA key already checked by `asymmetric_encryption_checks`.
pub async fn rsa_seal(
    state: &AppState,
    key: &KeySnapshot,
    spec: KeySpec,
    alg: keys::EncryptionAlgorithm,
    plaintext: &SecretBytes,
) -> Result<Vec<u8>, KmsError> {
    let material = private_material(state, key).await?;
    Ok(keys::rsa_encrypt(
        spec,
        &material,
        alg,
        plaintext.as_slice(),
    )?)
}

/// Decrypt `ciphertext` with an RSA key already checked by `asymmetric_encryption_checks`.
pub async fn rsa_open(
    state: &AppState,
    key: &KeySnapshot,
    spec: KeySpec,
    alg: keys::EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, KmsError> {
    let material = private_material(state, key).await?;
    Ok(keys::rsa_decrypt(spec, &material, alg, ciphertext)?)
}

/// Decrypt with an RSA key.
pub async fn rsa_decrypt_call(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    ciphertext: &[u8],
    context: &BTreeMap<String, String>,
    algorithm: Option<&str>,
    dry: Option<bool>,
) -> Result<Outcome, KmsError> {
    let action = crate::authorize::action_of(ctx.op);
    let (spec, alg) = asymmetric_encryption_checks(state, ctx, key, &action, context, algorithm)?;
    dry_run_check(dry)?;
    let plaintext = rsa_open(state, key, spec, alg, ciphertext).await?;
    // No KeyMaterialId: AWS returns it only for symmetric encryption keys.
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "Plaintext": b64(plaintext.as_slice()),
        "EncryptionAlgorithm": alg.as_str(),
    })))
}
