//! GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial: bringing your own key
//! material into a key of Origin EXTERNAL.
//!
//! The import token needs no storage: it carries the RSA wrapping private key (PKCS#8) sealed
//! under the root key, with the key id, the wrapping algorithm and the token's expiry bound into
//! the seal's associated data. A token is therefore unforgeable, useless for any other key or
//! algorithm, and expires 24 hours after issue by the domain clock; nothing has to be cleaned up
//! when it is never used. Re-imports are compared with the first import through a SHA-256
//! fingerprint of the material bound to the key id (kept in the events, because deletion
//! destroys the material itself). Nothing here ever logs or returns material.

use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{
    KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{key_change, key_for, CallContext, Outcome};
use crate::crypto::keys::{self, KeySpec};
use crate::crypto::random_public;
use crate::crypto::root_key::SealPurpose;
use crate::crypto::secret::SecretBytes;
use crate::domain::events::{KeyEvent, MaterialInfo};
use crate::domain::key::{epoch_seconds, KeySnapshot};
use crate::protocol::wire::set;
use crate::protocol::wire::{b64, blob, decode};
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::SealedMaterial;

/// How long an import token and its wrapping key stay valid.
pub const IMPORT_TOKEN_LIFETIME_HOURS: i64 = 24;

const TOKEN_MAGIC: &[u8; 4] = b"TIT1";
const TOKEN_HEADER_LEN: usize = 4 + 1 + 8;

/// The wrapping algorithms Trent accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WrappingAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    fn parse(name: &str) -> Result<Self, KmsError> {
        match name {
            "RSAES_OAEP_SHA_1" => Ok(Self::RsaesOaepSha1),
            "RSAES_OAEP_SHA_256" => Ok(Self::RsaesOaepSha256),
            "RSA_AES_KEY_WRAP_SHA_1" => Ok(Self::RsaAesKeyWrapSha1),
            "RSA_AES_KEY_WRAP_SHA_256" => Ok(Self::RsaAesKeyWrapSha256),
            "RSAES_PKCS1_V1_5" => Err(KmsError::Validation(
                "The wrapping algorithm RSAES_PKCS1_V1_5 is no longer supported; use \
                 RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
                    .into(),
            )),
            "SM2PKE" => Err(KmsError::UnsupportedOperation(
                "The wrapping algorithm SM2PKE is not supported in this Region.".into(),
            )),
            other => Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'wrappingAlgorithm' failed to \
                 satisfy constraint: Member must satisfy enum value set: [RSAES_PKCS1_V1_5, \
                 RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, \
                 RSA_AES_KEY_WRAP_SHA_256, SM2PKE]"
            ))),
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::RsaesOaepSha1 => 1,
            Self::RsaesOaepSha256 => 2,
            Self::RsaAesKeyWrapSha1 => 3,
            Self::RsaAesKeyWrapSha256 => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [
            Self::RsaesOaepSha1,
            Self::RsaesOaepSha256,
            Self::RsaAesKeyWrapSha1,
            Self::RsaAesKeyWrapSha256,
        ]
        .into_iter()
        .find(|a| a.code() == code)
    }

    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => &OAEP_SHA1_MGF1SHA1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }

    fn uses_aes_key_wrap(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }
}

fn wrapping_key_size(name: &str) -> Result<KeySize, KmsError> {
    match name {
        "RSA_2048" => Ok(KeySize::Rsa2048),
        "RSA_3072" => Ok(KeySize::Rsa3072),
        "RSA_4096" => Ok(KeySize::Rsa4096),
        "SM2" => Err(KmsError::UnsupportedOperation(
            "The wrapping key spec SM2 is not supported in this Region.".into(),
        )),
        other => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'wrappingKeySpec' failed to satisfy \
             constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"
        ))),
    }
}

/// What a seal of an import token is bound to (never a valid key id, so never a keystore seal).
fn token_binding(key_id: &str, algorithm: WrappingAlgorithm, expires_ms: i64) -> String {
    format!("import-token/{key_id}/{}/{expires_ms}", algorithm.code())
}

/// Refuse keys that do not take imported material.
fn check_external(key: &KeySnapshot) -> Result<(), KmsError> {
    if key.origin != "EXTERNAL" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} origin is {} which is not valid for this operation.",
            key.arn(),
            key.origin
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersForImportRequest {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

/// GetParametersForImport: a fresh RSA wrapping key and the import token that holds it.
pub async fn get_parameters_for_import(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: GetParametersForImportRequest = decode(body)?;
    let algorithm = WrappingAlgorithm::parse(&req.wrapping_algorithm)?;
    let size = wrapping_key_size(&req.wrapping_key_spec)?;
    let key = key_for(state, ctx, &req.key_id)?;
    check_external(&key)?;
    let internal = |_| KmsError::KmsInternal("Wrapping key generation failed.".into());
    // RSA 4096 takes up to a second to generate: off the request workers.
    let (private_der, public_der) = tokio::task::spawn_blocking(move || {
        let private = PrivateDecryptingKey::generate(size)?;
        let public = private.public_key().as_der()?.as_ref().to_vec();
        let private = SecretBytes::new(private.as_der()?.as_ref().to_vec());
        Ok::<_, aws_lc_rs::error::Unspecified>((private, public))
    })
    .await
    .map_err(|_| KmsError::KmsInternal("Wrapping key generation failed.".into()))?
    .map_err(internal)?;
    let valid_to = state.clock.now() + Duration::hours(IMPORT_TOKEN_LIFETIME_HOURS);
    let expires_ms = valid_to.timestamp_millis();
    let sealed = state
        .root_key
        .seal_token(
            SealPurpose::ImportToken,
            &token_binding(&key.key_id, algorithm, expires_ms),
            &private_der,
        )
        .map_err(|_| KmsError::KmsInternal("Import token sealing failed.".into()))?;
    let mut token = TOKEN_MAGIC.to_vec();
    token.push(algorithm.code());
    token.extend_from_slice(&expires_ms.to_be_bytes());
    token.extend_from_slice(&sealed);
    Ok(Outcome::reply(json!({
        "KeyId": key.arn(),
        "ImportToken": b64(&token),
        "PublicKey": b64(&public_der),
        "ParametersValidTo": epoch_seconds(valid_to),
    })))
}

/// An opened import token: the wrapping private key and its algorithm.
struct OpenedToken {
    algorithm: WrappingAlgorithm,
    private_key: SecretBytes,
}

/// Open an import token for `key_id`; expired and foreign tokens get AWS's errors.
fn open_token(
    state: &AppState,
    key: &KeySnapshot,
    token: &[u8],
    now: DateTime<Utc>,
) -> Result<OpenedToken, KmsError> {
    let invalid = || {
        KmsError::InvalidImportToken(format!(
            "The import token is invalid or is associated with a different KMS key than {}.",
            key.arn()
        ))
    };
    if token.len() <= TOKEN_HEADER_LEN || token.get(..4) != Some(TOKEN_MAGIC.as_slice()) {
        return Err(invalid());
    }
    let (header, sealed) = token.split_at(TOKEN_HEADER_LEN);
    let code = header.get(4).copied().ok_or_else(invalid)?;
    let algorithm = WrappingAlgorithm::from_code(code).ok_or_else(invalid)?;
    let expiry: [u8; 8] = header
        .get(5..)
        .and_then(|e| e.try_into().ok())
        .ok_or_else(invalid)?;
    let expires_ms = i64::from_be_bytes(expiry);
    let private_key = state
        .root_key
        .open_token(
            SealPurpose::ImportToken,
            &token_binding(&key.key_id, algorithm, expires_ms),
            sealed,
        )
        .map_err(|_| invalid())?;
    // Authentic, so the expiry is the one Trent wrote.
    if now.timestamp_millis() > expires_ms {
        return Err(KmsError::ExpiredImportToken(
            "The import token is expired. Use GetParametersForImport to get a new import token \
             and public key, wrap the key material with the new public key, and try again."
                .into(),
        ));
    }
    Ok(OpenedToken {
        algorithm,
        private_key,
    })
}

/// Unwrap the encrypted key material with the token's wrapping key and algorithm.
fn unwrap_material(opened: &OpenedToken, wrapped: &[u8]) -> Result<SecretBytes, KmsError> {
    let invalid = || {
        KmsError::InvalidCiphertext(
            "The encrypted key material could not be decrypted with the wrapping key of the \
             import token."
                .into(),
        )
    };
    let private =
        PrivateDecryptingKey::from_pkcs8(opened.private_key.as_slice()).map_err(|_| {
            KmsError::KmsInternal("The import token's wrapping key does not load.".into())
        })?;
    let modulus_len = private.key_size_bytes();
    let oaep = OaepPrivateDecryptingKey::new(private).map_err(|_| {
        KmsError::KmsInternal("The import token's wrapping key does not load.".into())
    })?;
    let (rsa_part, aes_part) = if opened.algorithm.uses_aes_key_wrap() {
        if wrapped.len() <= modulus_len {
            return Err(invalid());
        }
        wrapped.split_at(modulus_len)
    } else {
        (wrapped, &[][..])
    };
    let mut out = SecretBytes::new(vec![0u8; modulus_len]);
    let len = oaep
        .decrypt(opened.algorithm.oaep(), rsa_part, out.as_mut_slice(), None)
        .map_err(|_| invalid())?
        .len();
    let first = out.prefix(len);
    if !opened.algorithm.uses_aes_key_wrap() {
        return Ok(first);
    }
    // RSA_AES_KEY_WRAP_*: the RSA part holds a 256-bit AES key, the rest is the material
    // wrapped with it by AES key wrap with padding (RFC 5649).
    if first.len() != 32 {
        return Err(invalid());
    }
    let kek = AesKek::new(&AES_256, first.as_slice()).map_err(|_| invalid())?;
    let mut material = SecretBytes::new(vec![0u8; aes_part.len()]);
    let len = kek
        .unwrap_with_padding(aes_part, material.as_mut_slice())
        .map_err(|_| invalid())?
        .len();
    Ok(material.prefix(len))
}

/// Hex SHA-256 of material bound to its key id: the same material gives the same fingerprint
/// only for the same key.
fn fingerprint(key_id: &str, material: &SecretBytes) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"trent-imported-material-v1\0");
    ctx.update(key_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(material.as_slice());
    hex::encode(ctx.finish().as_ref())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportKeyMaterialRequest {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    import_token: Vec<u8>,
    #[serde(deserialize_with = "blob")]
    encrypted_key_material: Vec<u8>,
    expiration_model: Option<String>,
    valid_to: Option<f64>,
    import_type: Option<String>,
    /// Describes the imported material version (kept with it; shown by ListKeyRotations).
    key_material_description: Option<String>,
    key_material_id: Option<String>,
}

/// The expiry of an import: `(ExpirationModel, ValidTo)` as AWS checks them.
fn expiration(
    model: Option<&str>,
    valid_to: Option<f64>,
    now: DateTime<Utc>,
) -> Result<(String, Option<DateTime<Utc>>), KmsError> {
    let valid_to = valid_to
        .map(|secs| {
            Utc.timestamp_millis_opt((secs * 1000.0).round() as i64)
                .single()
                .ok_or_else(|| KmsError::Validation("ValidTo is not a valid timestamp.".into()))
        })
        .transpose()?;
    // AWS's default is KEY_MATERIAL_EXPIRES, which needs a ValidTo.
    let model = model.unwrap_or("KEY_MATERIAL_EXPIRES");
    match (model, valid_to) {
        ("KEY_MATERIAL_EXPIRES", None) => Err(KmsError::Validation(
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES".into(),
        )),
        ("KEY_MATERIAL_EXPIRES", Some(t)) if t <= now => Err(KmsError::Validation(
            "The ValidTo date must be in the future.".into(),
        )),
        ("KEY_MATERIAL_EXPIRES", Some(t)) => Ok((model.to_string(), Some(t))),
        ("KEY_MATERIAL_DOES_NOT_EXPIRE", Some(_)) => Err(KmsError::Validation(
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
                .into(),
        )),
        ("KEY_MATERIAL_DOES_NOT_EXPIRE", None) => Ok((model.to_string(), None)),
        (other, _) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'expirationModel' failed to satisfy \
             constraint: Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, \
             KEY_MATERIAL_DOES_NOT_EXPIRE]"
        ))),
    }
}

/// ImportKeyMaterial: unwrap, check the material for the key spec (and against an earlier
/// import), seal it as the key's material, and make the key usable.
pub async fn import_key_material(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ImportKeyMaterialRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    check_external(&key)?;
    let now = state.clock.now();
    let (expiration_model, valid_to) =
        expiration(req.expiration_model.as_deref(), req.valid_to, now)?;
    let previous = key.imported.clone();
    // A replica takes one of its primary's material versions: its own history does not decide.
    let target = if key.is_replica() {
        None
    } else {
        let new_material = import_type(&req, &key, previous.as_ref())?;
        restored_material(&key, previous.as_ref(), &req, new_material)?
    };
    let opened = open_token(state, &key, &req.import_token, now)?;
    let material = unwrap_material(&opened, &req.encrypted_key_material)?;
    let spec = KeySpec::from_str(&key.key_spec)
        .map_err(|_| KmsError::KmsInternal("The key's spec is unknown.".into()))?;
    let material = keys::import_private_key(spec, material)?.into_secret();
    let print = fingerprint(&key.key_id, &material);
    let internal = |_| KmsError::KmsInternal("Key material sealing failed.".into());
    let (info, pending, present) = if key.is_replica() {
        replica_material(state, &key, &req, &print)?
    } else {
        material_version(&key, previous.as_ref(), target, &print, now)?
    };
    let event = KeyEvent::KeyMaterialImported {
        schema: 1,
        material: info.clone(),
        fingerprint: print,
        expiration_model,
        valid_to,
        pending,
        description: req.key_material_description.clone(),
        at: now,
    };
    let body = json!({ "KeyId": key.arn(), "KeyMaterialId": info.material_id });
    let mut outcome = key_change(&key, vec![event], body.clone())?;
    // Material still in the keystore (a re-import that changes the expiry) is not sealed again.
    if !present {
        let sealed = state
            .root_key
            .seal(&key.material_owner(), info.version, &material)
            .map_err(internal)?;
        outcome.unit.materials.push(SealedMaterial {
            key_id: key.material_owner(),
            version: info.version,
            sealed,
        });
    }
    outcome.response_elements = Some(json!({
        "keyId": key.arn(),
        "keyMaterialId": info.material_id,
    }));
    Ok(outcome)
}

/// An import into a replica of a multi-Region key: the material must be one its primary holds
/// (current, earlier, or pending rotation), and it takes that version and KeyMaterialId there.
/// New material goes into the primary first, as AWS requires. Answers (the version's info,
/// whether it waits for rotation, whether the replica holds its sealed copy already).
fn replica_material(
    state: &AppState,
    key: &KeySnapshot,
    req: &ImportKeyMaterialRequest,
    print: &str,
) -> Result<(MaterialInfo, bool, bool), KmsError> {
    let primary_region = key.primary_region.as_deref().unwrap_or_default();
    if req.import_type.as_deref() == Some("NEW_KEY_MATERIAL") && key.imported.is_some() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is a multi-Region replica key: import new key material into its primary key (in \
             {primary_region}), then the same key material into each replica with ImportType \
             EXISTING_KEY_MATERIAL.",
            key.arn()
        )));
    }
    let not_primary_material = || {
        KmsError::IncorrectKeyMaterial(format!(
            "The key material is not key material of the primary key of {} (in \
             {primary_region}); import the same key material into every Region.",
            key.key_id
        ))
    };
    let model = state.read_model()?;
    let primary = model
        .live_key(primary_region, &key.key_id)
        .ok_or_else(not_primary_material)?;
    let imported = primary.imported.as_ref().ok_or_else(not_primary_material)?;
    let known = |version: i32| primary.material(version).cloned();
    let found = match &imported.pending {
        Some(p) if p.fingerprint == print => Some((p.material.clone(), true)),
        _ => imported
            .versions
            .iter()
            .find(|(_, v)| v.fingerprint == print)
            .map(|(version, _)| *version)
            .or((imported.fingerprint == print).then_some(imported.version))
            .and_then(known)
            .map(|info| (info, false)),
    };
    let (info, pending) = found.ok_or_else(not_primary_material)?;
    if pending && key.imported.is_none() {
        return Err(KmsError::IncorrectKeyMaterial(format!(
            "{} has no key material yet: import the primary key's current key material first.",
            key.arn()
        )));
    }
    if let Some(id) = req
        .key_material_id
        .as_ref()
        .filter(|id| **id != info.material_id)
    {
        return Err(KmsError::IncorrectKeyMaterial(format!(
            "Key material {id} is not the key material imported."
        )));
    }
    let present = key.imported.as_ref().is_some_and(|i| {
        let staged = i
            .pending
            .as_ref()
            .is_some_and(|p| p.material.version == info.version);
        let kept = i.versions.get(&info.version).is_some_and(|v| v.present)
            || (i.version == info.version && i.present);
        if pending {
            staged
        } else {
            kept
        }
    });
    Ok((info, pending, present))
}

/// Whether an import brings new key material (ImportType, with AWS's default: new for a key
/// that never had material, existing after that), refused when the key cannot take it.
fn import_type(
    req: &ImportKeyMaterialRequest,
    key: &KeySnapshot,
    previous: Option<&crate::domain::key::ImportedMaterial>,
) -> Result<bool, KmsError> {
    // AWS: omitted, ImportType is NEW_KEY_MATERIAL for a key that never had material and
    // EXISTING_KEY_MATERIAL after that.
    let new_material = match req.import_type.as_deref() {
        None => previous.is_none(),
        Some("NEW_KEY_MATERIAL") => true,
        Some("EXISTING_KEY_MATERIAL") => false,
        Some(other) => {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'importType' failed to satisfy \
                 constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, \
                 EXISTING_KEY_MATERIAL]"
            )))
        }
    };
    if !new_material && previous.is_none() {
        return Err(KmsError::IncorrectKeyMaterial(format!(
            "No key material has been imported into {} yet; use ImportType NEW_KEY_MATERIAL.",
            key.arn()
        )));
    }
    let rotation = new_material && previous.is_some();
    if rotation && key.key_spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} has key spec {}; only symmetric encryption keys take new key material after \
             the first import.",
            key.arn(),
            key.key_spec
        )));
    }
    if new_material && req.key_material_id.is_some() {
        return Err(KmsError::Validation(
            "A KeyMaterialId cannot be specified with ImportType NEW_KEY_MATERIAL.".into(),
        ));
    }
    if let Some(p) = previous.as_ref().and_then(|p| p.pending.as_ref()) {
        if rotation {
            return Err(KmsError::KmsInvalidState(format!(
                "{} already has key material {} pending rotation; rotate the key on demand or \
                 delete the imported key material first.",
                key.arn(),
                p.material.material_id
            )));
        }
    }
    Ok(new_material)
}

/// The version an EXISTING_KEY_MATERIAL import restores: the one KeyMaterialId names, or the
/// current one; `true` with it when it names the material pending rotation. None for new
/// material.
fn restored_material(
    key: &KeySnapshot,
    previous: Option<&crate::domain::key::ImportedMaterial>,
    req: &ImportKeyMaterialRequest,
    new_material: bool,
) -> Result<Option<(MaterialInfo, bool)>, KmsError> {
    let target = match (previous, &req.key_material_id) {
        (Some(prev), _) if !new_material => {
            let pending = prev
                .pending
                .as_ref()
                .filter(|p| req.key_material_id.as_ref() == Some(&p.material.material_id));
            let info = match (pending, &req.key_material_id) {
                (Some(p), _) => p.material.clone(),
                (None, Some(id)) => key
                    .materials
                    .iter()
                    .find(|m| m.material_id == *id && prev.versions.contains_key(&m.version))
                    .or_else(|| key.current_material().filter(|m| m.material_id == *id))
                    .cloned()
                    .ok_or_else(|| {
                        KmsError::IncorrectKeyMaterial(format!(
                            "Key material {id} is not key material of {}.",
                            key.arn()
                        ))
                    })?,
                (None, None) => key.material(prev.version).cloned().ok_or_else(|| {
                    KmsError::KmsInternal("The key's material is unknown.".into())
                })?,
            };
            Some((info, pending.is_some()))
        }
        _ => None,
    };
    Ok(target)
}

/// The material version an import writes, checked against what was imported before: (its
/// info, whether it waits for rotation, whether its material is still in the keystore).
fn material_version(
    key: &KeySnapshot,
    previous: Option<&crate::domain::key::ImportedMaterial>,
    target: Option<(MaterialInfo, bool)>,
    print: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(MaterialInfo, bool, bool), KmsError> {
    let internal = |_| KmsError::KmsInternal("Key material sealing failed.".into());
    let answer = match (previous, target) {
        (Some(prev), Some((info, true))) => {
            let expected = prev.pending.as_ref().map(|p| p.fingerprint.as_str());
            if expected != Some(print) {
                return Err(not_previous(key));
            }
            (info, true, true)
        }
        (Some(prev), Some((info, false))) => {
            let version = prev.versions.get(&info.version);
            let expected = version
                .map(|v| v.fingerprint.as_str())
                .or((info.version == prev.version).then_some(prev.fingerprint.as_str()));
            if expected != Some(print) {
                return Err(not_previous(key));
            }
            let present = match version {
                Some(v) => v.present,
                None => prev.present,
            };
            (info, false, present)
        }
        (Some(prev), None) => {
            // NEW_KEY_MATERIAL into a key with material: a further version, pending rotation.
            let known =
                prev.fingerprint == print || prev.versions.values().any(|v| v.fingerprint == print);
            if known {
                return Err(KmsError::IncorrectKeyMaterial(format!(
                    "The key material is already associated with {}; import it with ImportType \
                     EXISTING_KEY_MATERIAL.",
                    key.arn()
                )));
            }
            let version = key.materials.iter().map(|m| m.version).max().unwrap_or(0) + 1;
            let info = MaterialInfo {
                version,
                material_id: hex::encode(random_public(32).map_err(internal)?),
                created_at: now,
                rotation_type: None,
            };
            (info, true, false)
        }
        (None, _) => {
            let info = MaterialInfo {
                version: 1,
                material_id: hex::encode(random_public(32).map_err(internal)?),
                created_at: now,
                rotation_type: None,
            };
            (info, false, false)
        }
    };
    Ok(answer)
}

/// The error for material that is not the material imported before.
fn not_previous(key: &KeySnapshot) -> KmsError {
    KmsError::IncorrectKeyMaterial(format!(
        "The key material is not the key material that was previously imported into {}.",
        key.arn()
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteImportedKeyMaterialRequest {
    key_id: String,
    key_material_id: Option<String>,
}

/// DeleteImportedKeyMaterial: destroy the sealed material now (crypto-shredding) and put the key
/// back in PendingImport; the same material can be imported again.
pub async fn delete_imported_key_material(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DeleteImportedKeyMaterialRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    check_external(&key)?;
    let current = key.current_material().map(|m| m.material_id.clone());
    if let Some(id) = &req.key_material_id {
        if Some(id) != current.as_ref() {
            return Err(KmsError::NotFound(format!(
                "Key material {id} does not exist for {}.",
                key.arn()
            )));
        }
    }
    let mut body = json!({ "KeyId": key.arn() });
    if let Some(id) = &current {
        set(&mut body, "KeyMaterialId", json!(id));
    }
    if !key.imported.as_ref().is_some_and(|i| i.present) {
        // Nothing to delete (PendingImport): no effect, as in AWS.
        return Ok(Outcome::reply(body));
    }
    let events = destroy_imported_material(&key, false, state.clock.now());
    let mut outcome = key_change(&key, events, body)?;
    outcome.unit.destroy_materials.push(key.material_owner());
    Ok(outcome)
}

/// The events that record the destruction of a key's imported material; the caller's unit also
/// destroys the sealed material (`CommitUnit::destroy_materials`), so both happen in one commit.
pub fn destroy_imported_material(
    key: &KeySnapshot,
    expired: bool,
    now: DateTime<Utc>,
) -> Vec<KeyEvent> {
    let versions = key.stored_material_versions();
    vec![
        KeyEvent::ImportedKeyMaterialDeleted {
            schema: 1,
            expired,
            at: now,
        },
        KeyEvent::KeyMaterialDestroyed {
            schema: 1,
            versions,
            at: now,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_rules_follow_aws() {
        let now = Utc::now();
        let later = (now + Duration::hours(1)).timestamp() as f64;
        let earlier = (now - Duration::hours(1)).timestamp() as f64;
        let rows: &[(Option<&str>, Option<f64>, Option<&str>)] = &[
            (None, None, None),
            (None, Some(later), Some("KEY_MATERIAL_EXPIRES")),
            (
                Some("KEY_MATERIAL_EXPIRES"),
                Some(later),
                Some("KEY_MATERIAL_EXPIRES"),
            ),
            (Some("KEY_MATERIAL_EXPIRES"), None, None),
            (Some("KEY_MATERIAL_EXPIRES"), Some(earlier), None),
            (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(later), None),
            (
                Some("KEY_MATERIAL_DOES_NOT_EXPIRE"),
                None,
                Some("KEY_MATERIAL_DOES_NOT_EXPIRE"),
            ),
            (Some("SOMETIMES"), None, None),
        ];
        for (model, valid_to, expected) in rows {
            let got = expiration(*model, *valid_to, now).ok().map(|(m, _)| m);
            assert_eq!(got.as_deref(), *expected, "{model:?} {valid_to:?}");
        }
    }

    #[test]
    fn wrapping_algorithms_round_trip_their_codes_and_refuse_the_rest() {
        for name in [
            "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256",
            "RSA_AES_KEY_WRAP_SHA_1",
            "RSA_AES_KEY_WRAP_SHA_256",
        ] {
            let a = WrappingAlgorithm::parse(name).unwrap();
            assert_eq!(WrappingAlgorithm::from_code(a.code()), Some(a));
        }
        assert!(matches!(
            WrappingAlgorithm::parse("RSAES_PKCS1_V1_5"),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            WrappingAlgorithm::parse("SM2PKE"),
            Err(KmsError::UnsupportedOperation(_))
        ));
    }

    #[test]
    fn fingerprints_depend_on_key_and_material() {
        let a = SecretBytes::new(vec![1; 32]);
        let b = SecretBytes::new(vec![2; 32]);
        assert_eq!(fingerprint("k1", &a), fingerprint("k1", &a));
        assert_ne!(fingerprint("k1", &a), fingerprint("k1", &b));
        assert_ne!(fingerprint("k1", &a), fingerprint("k2", &a));
    }
}
