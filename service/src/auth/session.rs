//! STS session credentials: issuing temporary credentials (`ASIA...` access key id, secret, session
//! token) and reading a session back from its token on every request.
//!
//! The session token is self-contained: the session's claims (role, session name, times, who
//! assumed it, and the secret) sealed under the root key with AES-256-GCM, the access key id and
//! the expiry bound in as associated data. Nothing is stored, so every replica that shares the root
//! key accepts the session, a restart does not end it, and nobody without the root key can forge
//! or alter one (ARCHITECTURE.md, "Session credentials").
//!
//! Must never: put the secret or the token's plaintext into an error, a log line or an audit record.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::keyring::RootKeyring;
use crate::crypto::root_key::SealPurpose;
use crate::crypto::secret::SecretBytes;
use crate::crypto::{random_public, random_secret, CryptoError};

/// The first bytes of every session token (format version 1).
const TOKEN_MAGIC: &[u8; 4] = b"TSS1";
/// Magic and the big-endian expiry in epoch milliseconds.
const TOKEN_HEADER_LEN: usize = 12;
/// The alphabet of access key ids after `ASIA` (AWS uses upper-case base32).
const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Which STS operation made the credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    /// AssumeRole: a session of the role `role_arn` names.
    #[default]
    AssumedRole,
    /// GetSessionToken: temporary credentials of the user (or root user) `role_arn` names.
    UserSession,
}

/// What a session token carries, sealed.
#[derive(Serialize, Deserialize)]
pub struct SessionClaims {
    /// What the credentials stand for.
    #[serde(default)]
    pub kind: SessionKind,
    /// The assumed role's ARN; for a user session, the user's (or root's) ARN.
    pub role_arn: String,
    /// The session name chosen by the caller.
    pub session_name: String,
    /// The ARN of the principal that called AssumeRole.
    pub source_arn: String,
    /// When the credentials were issued, epoch milliseconds.
    pub issued_ms: i64,
    /// When they expire, epoch milliseconds.
    pub expires_ms: i64,
    /// The secret access key of the session.
    pub secret: Zeroizing<String>,
}

impl SessionClaims {
    /// Issue time as a date.
    pub fn issued_at(&self) -> DateTime<Utc> {
        millis(self.issued_ms)
    }

    /// Expiry as a date.
    pub fn expires_at(&self) -> DateTime<Utc> {
        millis(self.expires_ms)
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Temporary credentials as STS returns them.
pub struct IssuedCredentials {
    /// `ASIA` and 16 characters.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token (base64).
    pub session_token: String,
    /// When they expire.
    pub expiration: DateTime<Utc>,
}

/// Why a session token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a token Trent issued for this access key id (or altered, or sealed by another root key).
    #[error("invalid session token")]
    Invalid,
    /// Authentic, but past its expiry.
    #[error("expired session token")]
    Expired,
}

/// The root-key binding of a token: its access key id and expiry.
fn binding(access_key_id: &str, expires_ms: i64) -> String {
    format!("sts-session/{access_key_id}/{expires_ms}")
}

/// A fresh access key id for a session.
fn session_access_key_id() -> Result<String, CryptoError> {
    let tail: String = random_public(16)?
        .iter()
        .filter_map(|b| {
            KEY_ID_ALPHABET
                .get(usize::from(*b) % KEY_ID_ALPHABET.len())
                .map(|c| *c as char)
        })
        .collect();
    Ok(format!("ASIA{tail}"))
}

/// Issue credentials of `kind` for `role_arn` (a role, or for a user session the user) with
/// session name `session_name`, requested by `source_arn` at `now`, valid for `duration_seconds`.
pub fn issue(
    root_key: &RootKeyring,
    kind: SessionKind,
    role_arn: &str,
    session_name: &str,
    source_arn: &str,
    now: DateTime<Utc>,
    duration_seconds: i64,
) -> Result<IssuedCredentials, CryptoError> {
    let access_key_id = session_access_key_id()?;
    let secret = Zeroizing::new(STANDARD.encode(random_secret(30)?.as_slice()));
    let expiration = now + chrono::Duration::seconds(duration_seconds);
    let claims = SessionClaims {
        kind,
        role_arn: role_arn.to_string(),
        session_name: session_name.to_string(),
        source_arn: source_arn.to_string(),
        issued_ms: now.timestamp_millis(),
        expires_ms: expiration.timestamp_millis(),
        secret: secret.clone(),
    };
    let plaintext = SecretBytes::new(serde_json::to_vec(&claims).map_err(|_| CryptoError::Seal)?);
    let sealed = root_key.seal_token(
        SealPurpose::SessionToken,
        &binding(&access_key_id, claims.expires_ms),
        &plaintext,
    )?;
    let mut token = TOKEN_MAGIC.to_vec();
    token.extend_from_slice(&claims.expires_ms.to_be_bytes());
    token.extend_from_slice(&sealed);
    Ok(IssuedCredentials {
        access_key_id,
        secret_access_key: secret,
        session_token: STANDARD.encode(token),
        expiration,
    })
}

/// Read the session of `access_key_id` from `token`, at `now`.
pub fn open(
    root_key: &RootKeyring,
    access_key_id: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<SessionClaims, SessionError> {
    let bytes = STANDARD
        .decode(token.trim())
        .map_err(|_| SessionError::Invalid)?;
    if bytes.len() <= TOKEN_HEADER_LEN || bytes.get(..4) != Some(TOKEN_MAGIC.as_slice()) {
        return Err(SessionError::Invalid);
    }
    let (header, sealed) = bytes.split_at(TOKEN_HEADER_LEN);
    let expiry: [u8; 8] = header
        .get(4..)
        .and_then(|e| e.try_into().ok())
        .ok_or(SessionError::Invalid)?;
    let expires_ms = i64::from_be_bytes(expiry);
    let plaintext = root_key
        .open_token(
            SealPurpose::SessionToken,
            &binding(access_key_id, expires_ms),
            sealed,
        )
        .map_err(|_| SessionError::Invalid)?;
    let claims: SessionClaims =
        serde_json::from_slice(plaintext.as_slice()).map_err(|_| SessionError::Invalid)?;
    if claims.expires_ms != expires_ms {
        return Err(SessionError::Invalid);
    }
    // Authentic, so the expiry is the one Trent wrote.
    if now.timestamp_millis() >= expires_ms {
        return Err(SessionError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crypto::root_key::RootKey;

    fn root() -> RootKeyring {
        RootKeyring::single(RootKey::from_bytes(&SecretBytes::new(vec![7u8; 32])).unwrap())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/auditor";
    const CAROL: &str = "arn:aws:iam::444455556666:user/carol";

    /// carol's session "audit" of the auditor role, issued now for `seconds`.
    fn auditor_session(key: &RootKeyring, seconds: i64) -> IssuedCredentials {
        issue(
            key,
            SessionKind::AssumedRole,
            ROLE,
            "audit",
            CAROL,
            now(),
            seconds,
        )
        .unwrap()
    }

    #[test]
    fn issued_sessions_open_until_they_expire() {
        let key = root();
        let c = auditor_session(&key, 900);
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        assert_eq!(c.secret_access_key.len(), 40);
        assert_eq!(c.expiration, now() + chrono::Duration::seconds(900));
        let claims = open(&key, &c.access_key_id, &c.session_token, now()).unwrap();
        assert_eq!(claims.role_arn, ROLE);
        assert_eq!(claims.session_name, "audit");
        assert_eq!(claims.source_arn, CAROL);
        assert_eq!(*claims.secret, *c.secret_access_key);
        assert_eq!(claims.issued_at(), now());
        let later = now() + chrono::Duration::seconds(899);
        assert!(open(&key, &c.access_key_id, &c.session_token, later).is_ok());
        let expired = now() + chrono::Duration::seconds(900);
        assert_eq!(
            open(&key, &c.access_key_id, &c.session_token, expired).err(),
            Some(SessionError::Expired)
        );
    }

    #[test]
    fn tokens_are_bound_to_their_key_and_root_key_and_cannot_be_altered() {
        let key = root();
        let c = auditor_session(&key, 3600);
        let other = auditor_session(&key, 3600);
        let invalid = Some(SessionError::Invalid);
        // Another session's access key id with this token.
        assert_eq!(
            open(&key, &other.access_key_id, &c.session_token, now()).err(),
            invalid
        );
        // Another root key.
        let foreign =
            RootKeyring::single(RootKey::from_bytes(&SecretBytes::new(vec![8u8; 32])).unwrap());
        assert_eq!(
            open(&foreign, &c.access_key_id, &c.session_token, now()).err(),
            invalid
        );
        // A stretched expiry in the header.
        let mut bytes = STANDARD.decode(&c.session_token).unwrap();
        bytes[11] ^= 1;
        assert_eq!(
            open(&key, &c.access_key_id, &STANDARD.encode(&bytes), now()).err(),
            invalid
        );
        // A flipped ciphertext bit, garbage, and a permanent key's absent token shape.
        let mut bytes = STANDARD.decode(&c.session_token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            open(&key, &c.access_key_id, &STANDARD.encode(&bytes), now()).err(),
            invalid
        );
        for garbage in ["", "not base64!", "VFNTMQ==", "FwoGZXIvYXdzEXAMPLE"] {
            assert_eq!(open(&key, &c.access_key_id, garbage, now()).err(), invalid);
        }
    }

    #[test]
    fn the_kind_travels_sealed() {
        let key = root();
        let alice = "arn:aws:iam::111122223333:user/alice";
        let c = issue(&key, SessionKind::UserSession, alice, "", alice, now(), 900).unwrap();
        let claims = open(&key, &c.access_key_id, &c.session_token, now()).unwrap();
        assert_eq!(
            (claims.kind, claims.role_arn.as_str()),
            (SessionKind::UserSession, alice)
        );
        let role = auditor_session(&key, 900);
        let claims = open(&key, &role.access_key_id, &role.session_token, now()).unwrap();
        assert_eq!(claims.kind, SessionKind::AssumedRole);
    }

    #[test]
    fn the_token_does_not_carry_the_secret_in_the_clear() {
        let key = root();
        let c = auditor_session(&key, 3600);
        let bytes = STANDARD.decode(&c.session_token).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(c.secret_access_key.as_str()));
        assert!(!text.contains("auditor"));
    }
}
