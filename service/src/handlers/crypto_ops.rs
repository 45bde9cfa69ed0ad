//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext) and GenerateRandom with
//! symmetric keys. Plaintexts live in `SecretBytes` and are zeroized when dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    authorize_as, check_key_state, dry_run_check, material, no_recipient, resolve_key, CallContext,
    Outcome,
};
use crate::crypto::ciphertext::{self, CiphertextError, CiphertextHeader};
use crate::crypto::random_secret;
use crate::crypto::secret::SecretBytes;
use crate::domain::events::MaterialInfo;
use crate::domain::key::KeySnapshot;
use crate::domain::rules::check_symmetric_encryption;
use crate::protocol::wire::set;
use crate::protocol::wire::{b64, blob, decode, secret_blob};
use crate::protocol::KmsError;
use crate::state::AppState;

type Context = BTreeMap<String, String>;

fn internal(_: impl std::fmt::Debug) -> KmsError {
    KmsError::KmsInternal("The cryptographic operation failed.".into())
}

/// Encrypt `plaintext` under the key's current material; for a key in an external key store,
/// encrypt that blob again with the external key (double encryption: format version 4).
pub(super) async fn seal_under(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    plaintext: &SecretBytes,
    context: &Context,
) -> Result<(Vec<u8>, MaterialInfo), KmsError> {
    let current = key
        .current_material()
        .cloned()
        .ok_or_else(|| KmsError::KmsInternal("The key has no material.".into()))?;
    let material = material(state, key, current.version).await?;
    let header = CiphertextHeader {
        key_id: key.key_id.clone(),
        material_version: current.version as u32,
    };
    let blob = ciphertext::encrypt(&header, &material, plaintext, context).map_err(internal)?;
    if key.custom_key_store_id.is_none() {
        return Ok((blob, current));
    }
    let outer = ciphertext::external_header(&header).map_err(internal)?;
    let aad = ciphertext::external_aad(&outer, context);
    let inner = SecretBytes::new(blob);
    let layer = super::custom_key_stores::external_encrypt(state, ctx, key, &inner, &aad).await?;
    let blob = ciphertext::wrap_external(&outer, &layer).map_err(internal)?;
    Ok((blob, current))
}

/// Everything an encrypting operation checks before touching material.
fn check_encrypt_key(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    action: &str,
    context: &Context,
    algorithm: Option<&str>,
) -> Result<(), KmsError> {
    authorize_as(
        state,
        ctx,
        key,
        action,
        Some(context),
        Some(algorithm.unwrap_or("SYMMETRIC_DEFAULT")),
    )?;
    check_key_state(ctx, key)?;
    check_symmetric_encryption(ctx.op, key, algorithm)?;
    Ok(())
}

/// The checks a use of `key` for encryption or decryption makes before any ciphertext is read
/// (authorization of `action`, state, usage, context, algorithm), for symmetric and RSA keys.
fn check_encryption_use(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    action: &str,
    context: &Context,
    algorithm: Option<&str>,
) -> Result<(), KmsError> {
    if key.key_spec == "SYMMETRIC_DEFAULT" {
        check_encrypt_key(state, ctx, key, action, context, algorithm)
    } else {
        super::asymmetric::asymmetric_encryption_checks(state, ctx, key, action, context, algorithm)
            .map(|_| ())
    }
}

/// Whether a dry run is to skip the ciphertext (`DryRunModifiers: ["IGNORE_CIPHERTEXT"]`, which
/// applies only when `DryRun` is true): only the key, its state and the caller's permission are
/// checked, so permissions can be tested without a real ciphertext.
fn ignores_ciphertext(dry_run: Option<bool>, modifiers: &[String]) -> bool {
    dry_run == Some(true) && modifiers.iter().any(|m| m == "IGNORE_CIPHERTEXT")
}

/// A dry run that ignores the ciphertext without naming the key (`member`) the ciphertext would
/// have named.
fn key_required_for_dry_run(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "{member} is required when DryRunModifiers contains IGNORE_CIPHERTEXT."
    ))
}

/// AWS's answer to a ciphertext that does not open: InvalidCiphertextException with an empty
/// message (it says nothing of why).
fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(String::new())
}

/// Open a ciphertext blob: find its key, check KeyId, authorization, state and algorithm, decrypt.
async fn open_blob(
    state: &AppState,
    ctx: &CallContext,
    blob: &[u8],
    context: &Context,
    key_id: Option<&str>,
    algorithm: Option<&str>,
) -> Result<(Arc<KeySnapshot>, SecretBytes, MaterialInfo), KmsError> {
    let header = ciphertext::parse_header(blob).map_err(|_| invalid_ciphertext())?;
    let embedded = header.key_id;
    let key = match key_id {
        Some(requested) => {
            let key = resolve_key(state, ctx, requested)?;
            if key.key_id != embedded {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
            key
        }
        None => {
            let model = state.read_model()?;
            let found = model.live_key_shared(&ctx.region, &embedded);
            let stream = crate::domain::events::KeyEvent::stream_for(&ctx.region, &embedded);
            let key =
                found.ok_or_else(|| super::unless_unheld(&model, &stream, invalid_ciphertext()))?;
            drop(model);
            ctx.touch(key.arn());
            key
        }
    };
    let action = match ctx.op {
        crate::protocol::Operation::ReEncrypt => "kms:ReEncryptFrom".to_string(),
        op => crate::authorize::action_of(op),
    };
    check_encrypt_key(state, ctx, &key, &action, context, algorithm)?;
    let version = i32::try_from(header.material_version).map_err(|_| invalid_ciphertext())?;
    let info = key
        .material(version)
        .cloned()
        .ok_or_else(invalid_ciphertext)?;
    let material = material(state, &key, version).await?;
    // A key in an external key store only makes version-4 blobs, opened by its external key
    // first; any other key never does.
    let external = blob.get(1) == Some(&ciphertext::FORMAT_VERSION_XKS);
    if external != key.custom_key_store_id.is_some() {
        return Err(invalid_ciphertext());
    }
    let inner = if external {
        let (outer, layer) = ciphertext::unwrap_external(blob).map_err(|_| invalid_ciphertext())?;
        let aad = ciphertext::external_aad(&outer, context);
        Some(super::custom_key_stores::external_decrypt(state, ctx, &key, &layer, &aad).await?)
    } else {
        None
    };
    let opened = inner.as_ref().map_or(blob, |i| i.as_slice());
    let plaintext = ciphertext::decrypt(opened, &material, context).map_err(|e| match e {
        CiphertextError::Malformed | CiphertextError::Authentication => invalid_ciphertext(),
    })?;
    Ok((key, plaintext, info))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest {
    key_id: String,
    #[serde(deserialize_with = "secret_blob")]
    plaintext: SecretBytes,
    #[serde(default)]
    encryption_context: Context,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

/// Encrypt.
pub async fn encrypt(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: EncryptRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    if key.key_spec != "SYMMETRIC_DEFAULT" {
        return super::asymmetric::rsa_encrypt_call(
            state,
            ctx,
            &key,
            &req.plaintext,
            &req.encryption_context,
            req.encryption_algorithm.as_deref(),
            req.dry_run,
        )
        .await;
    }
    let action = crate::authorize::action_of(ctx.op);
    check_encrypt_key(
        state,
        ctx,
        &key,
        &action,
        &req.encryption_context,
        req.encryption_algorithm.as_deref(),
    )?;
    dry_run_check(req.dry_run)?;
    let (blob, _) = seal_under(state, ctx, &key, &req.plaintext, &req.encryption_context).await?;
    Ok(Outcome::reply(json!({
        "CiphertextBlob": b64(&blob),
        "KeyId": key.arn(),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest {
    #[serde(deserialize_with = "blob")]
    ciphertext_blob: Vec<u8>,
    #[serde(default)]
    encryption_context: Context,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
    #[serde(default)]
    dry_run_modifiers: Vec<String>,
}

/// Decrypt (KeyId optional: the ciphertext names its key).
pub async fn decrypt(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DecryptRequest = decode(body)?;
    no_recipient(&req.recipient)?;
    if ignores_ciphertext(req.dry_run, &req.dry_run_modifiers) {
        let id = req.key_id.as_deref();
        let key = resolve_key(
            state,
            ctx,
            id.ok_or_else(|| key_required_for_dry_run("KeyId"))?,
        )?;
        check_encryption_use(
            state,
            ctx,
            &key,
            "kms:Decrypt",
            &req.encryption_context,
            req.encryption_algorithm.as_deref(),
        )?;
        return Err(super::dry_run_succeeded());
    }
    // Asymmetric ciphertexts do not name their key: AWS requires KeyId for them.
    if let Some(id) = req.key_id.as_deref() {
        let key = resolve_key(state, ctx, id)?;
        // Only an asymmetric encryption key decrypts what names no key; any other named key is
        // compared with the key the ciphertext names (IncorrectKeyException when they differ).
        if key.key_spec != "SYMMETRIC_DEFAULT" && key.key_usage == "ENCRYPT_DECRYPT" {
            return super::asymmetric::rsa_decrypt_call(
                state,
                ctx,
                &key,
                &req.ciphertext_blob,
                &req.encryption_context,
                req.encryption_algorithm.as_deref(),
                req.dry_run,
            )
            .await;
        }
    }
    let (key, plaintext, info) = open_blob(
        state,
        ctx,
        &req.ciphertext_blob,
        &req.encryption_context,
        req.key_id.as_deref(),
        req.encryption_algorithm.as_deref(),
    )
    .await?;
    dry_run_check(req.dry_run)?;
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "Plaintext": b64(plaintext.as_slice()),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "KeyMaterialId": info.material_id,
    })))
}

/// ReEncrypt's source side: authorise kms:ReEncryptFrom and decrypt, under the named asymmetric
/// key or the symmetric key the ciphertext names: (the key, the plaintext, the algorithm, the
/// material id AWS reports for symmetric keys).
async fn open_source(
    state: &AppState,
    ctx: &CallContext,
    req: &ReEncryptRequest,
    asymmetric_source: Option<&Arc<KeySnapshot>>,
) -> Result<(Arc<KeySnapshot>, SecretBytes, &'static str, Option<String>), KmsError> {
    let opened = match asymmetric_source {
        Some(key) => {
            let (spec, alg) = super::asymmetric::asymmetric_encryption_checks(
                state,
                ctx,
                key,
                "kms:ReEncryptFrom",
                &req.source_encryption_context,
                req.source_encryption_algorithm.as_deref(),
            )?;
            let plaintext =
                super::asymmetric::rsa_open(state, key, spec, alg, &req.ciphertext_blob).await?;
            // AWS names key material only for symmetric keys.
            (key.clone(), plaintext, alg.as_str(), None)
        }
        None => {
            let (key, plaintext, info) = open_blob(
                state,
                ctx,
                &req.ciphertext_blob,
                &req.source_encryption_context,
                req.source_key_id.as_deref(),
                req.source_encryption_algorithm.as_deref(),
            )
            .await?;
            (key, plaintext, "SYMMETRIC_DEFAULT", Some(info.material_id))
        }
    };
    Ok(opened)
}

/// ReEncrypt's destination side: authorise kms:ReEncryptTo and encrypt the plaintext under the
/// destination key: (the blob, the algorithm, the material id for symmetric keys).
async fn seal_destination(
    state: &AppState,
    ctx: &CallContext,
    req: &ReEncryptRequest,
    destination: &KeySnapshot,
    plaintext: &SecretBytes,
) -> Result<(Vec<u8>, &'static str, Option<String>), KmsError> {
    let destination_algorithm = req.destination_encryption_algorithm.as_deref();
    let sealed = if destination.key_spec != "SYMMETRIC_DEFAULT" {
        let (spec, alg) = super::asymmetric::asymmetric_encryption_checks(
            state,
            ctx,
            destination,
            "kms:ReEncryptTo",
            &req.destination_encryption_context,
            destination_algorithm,
        )?;
        dry_run_check(req.dry_run)?;
        let blob = super::asymmetric::rsa_seal(state, destination, spec, alg, plaintext).await?;
        (blob, alg.as_str(), None)
    } else {
        check_encrypt_key(
            state,
            ctx,
            destination,
            "kms:ReEncryptTo",
            &req.destination_encryption_context,
            destination_algorithm,
        )?;
        dry_run_check(req.dry_run)?;
        let (blob, info) = seal_under(
            state,
            ctx,
            destination,
            plaintext,
            &req.destination_encryption_context,
        )
        .await?;
        (blob, "SYMMETRIC_DEFAULT", Some(info.material_id))
    };
    Ok(sealed)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptRequest {
    #[serde(deserialize_with = "blob")]
    ciphertext_blob: Vec<u8>,
    #[serde(default)]
    source_encryption_context: Context,
    source_key_id: Option<String>,
    destination_key_id: String,
    #[serde(default)]
    destination_encryption_context: Context,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
    #[serde(default)]
    dry_run_modifiers: Vec<String>,
}

/// ReEncrypt: decrypt under the source key and encrypt under the destination key, server-side.
/// Either side may be an RSA encryption key (its algorithm then required, no encryption context);
/// a ciphertext of an RSA key names no key, so its SourceKeyId is required, as in AWS.
pub async fn re_encrypt(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ReEncryptRequest = decode(body)?;
    let destination = resolve_key(state, ctx, &req.destination_key_id)?;
    let named_source = match req.source_key_id.as_deref() {
        Some(id) => Some(resolve_key(state, ctx, id)?),
        None => None,
    };
    let asymmetric_source = named_source
        .as_ref()
        .filter(|k| k.key_spec != "SYMMETRIC_DEFAULT");
    // kms:ReEncryptOnSameKey, for both authorizations: an RSA source is the named key, a
    // symmetric ciphertext names its own key (an unreadable one leaves the condition key out, and
    // is refused below).
    let source_id = match asymmetric_source {
        Some(k) => Some(k.key_id.clone()),
        None => ciphertext::parse_header(&req.ciphertext_blob)
            .ok()
            .map(|h| h.key_id),
    };
    if ignores_ciphertext(req.dry_run, &req.dry_run_modifiers) {
        let source = named_source
            .as_ref()
            .ok_or_else(|| key_required_for_dry_run("SourceKeyId"))?;
        let same = source.key_id == destination.key_id;
        ctx.add_condition_key("kms:ReEncryptOnSameKey", same.into());
        check_encryption_use(
            state,
            ctx,
            source,
            "kms:ReEncryptFrom",
            &req.source_encryption_context,
            req.source_encryption_algorithm.as_deref(),
        )?;
        check_encryption_use(
            state,
            ctx,
            &destination,
            "kms:ReEncryptTo",
            &req.destination_encryption_context,
            req.destination_encryption_algorithm.as_deref(),
        )?;
        return Err(super::dry_run_succeeded());
    }
    if let Some(id) = source_id {
        ctx.add_condition_key("kms:ReEncryptOnSameKey", (id == destination.key_id).into());
    }
    let (source, plaintext, source_algorithm, source_material) =
        open_source(state, ctx, &req, asymmetric_source).await?;
    let (blob, algorithm, destination_material) =
        seal_destination(state, ctx, &req, &destination, &plaintext).await?;
    let mut reply = json!({
        "CiphertextBlob": b64(&blob),
        "SourceKeyId": source.arn(),
        "KeyId": destination.arn(),
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": algorithm,
    });
    if let Some(id) = source_material {
        set(&mut reply, "SourceKeyMaterialId", json!(id));
    }
    if let Some(id) = destination_material {
        set(&mut reply, "DestinationKeyMaterialId", json!(id));
    }
    Ok(Outcome::reply(reply))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyRequest {
    key_id: String,
    #[serde(default)]
    encryption_context: Context,
    number_of_bytes: Option<usize>,
    key_spec: Option<String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

/// GenerateDataKey and GenerateDataKeyWithoutPlaintext.
pub async fn generate_data_key(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
    with_plaintext: bool,
) -> Result<Outcome, KmsError> {
    let req: GenerateDataKeyRequest = decode(body)?;
    no_recipient(&req.recipient)?;
    let len = match (req.number_of_bytes, req.key_spec.as_deref()) {
        (Some(n), None) => n,
        (None, Some("AES_256")) => 32,
        (None, Some("AES_128")) => 16,
        (None, Some(other)) => {
            return Err(KmsError::Validation(format!(
                "Unknown data key spec {other}"
            )))
        }
        _ => {
            return Err(KmsError::Validation(
                "Please specify either number of bytes or key spec.".into(),
            ))
        }
    };
    let key = resolve_key(state, ctx, &req.key_id)?;
    let action = crate::authorize::action_of(ctx.op);
    check_encrypt_key(state, ctx, &key, &action, &req.encryption_context, None)?;
    dry_run_check(req.dry_run)?;
    let data_key = random_secret(len).map_err(internal)?;
    let (blob, info) = seal_under(state, ctx, &key, &data_key, &req.encryption_context).await?;
    let mut body = json!({
        "CiphertextBlob": b64(&blob),
        "KeyId": key.arn(),
        "KeyMaterialId": info.material_id,
    });
    if with_plaintext {
        set(&mut body, "Plaintext", json!(b64(data_key.as_slice())));
    }
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateRandomRequest {
    number_of_bytes: Option<usize>,
    custom_key_store_id: Option<String>,
    recipient: Option<Value>,
}

/// GenerateRandom.
pub fn generate_random(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: GenerateRandomRequest = decode(body)?;
    super::authorize_account(state, ctx)?;
    no_recipient(&req.recipient)?;
    if req.custom_key_store_id.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Custom key stores are not supported by this server.".into(),
        ));
    }
    let Some(n) = req.number_of_bytes else {
        return Err(KmsError::Validation("NumberOfBytes is required.".into()));
    };
    let bytes = random_secret(n).map_err(internal)?;
    Ok(Outcome::reply(
        json!({ "Plaintext": b64(bytes.as_slice()) }),
    ))
}
