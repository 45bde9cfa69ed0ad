//! Who is calling: SigV4 verification of an HTTP request against the permanent access keys of the
//! identity file and the STS session credentials, giving the verified signature and the principal.
//! One function for the three protocols on the listener (KMS, CloudTrail, STS).

use std::cell::RefCell;
use std::sync::Arc;

use crate::auth::identity::Principal;
use crate::auth::session::{self, SessionClaims, SessionError};
use crate::auth::sigv4::{self, SigV4Error, SignedRequest, UnrecognizedClient, VerifiedSignature};
use crate::edge::Request;
use crate::state::AppState;

/// Where and when a request comes from, for the global condition keys.
pub fn origin_of(req: &Request, state: &AppState, region: &str) -> crate::authorize::Origin {
    crate::authorize::Origin {
        source_ip: req.peer_ip,
        secure_transport: state.secure_transport,
        region: region.to_string(),
        user_agent: req.header("user-agent").map(str::to_string),
        now: state.clock.now(),
        // Signed, as every x-amz-* header must be; `request_for` reads them only for service
        // principals, so no other caller can claim to act for a resource.
        source_arn: req.header("x-amz-source-arn").map(str::to_string),
        source_account: req.header("x-amz-source-account").map(str::to_string),
    }
}

/// An authenticated caller.
pub struct Caller {
    /// What the signature established (access key, region, signing time).
    pub signature: VerifiedSignature,
    /// The principal behind the access key (a user, a root user or a role session), shared.
    pub principal: Arc<Principal>,
    /// Its CloudTrail `userIdentity`.
    pub user_identity: Arc<serde_json::Value>,
}

fn unrecognized(reason: UnrecognizedClient) -> SigV4Error {
    SigV4Error::UnrecognizedClient(reason)
}

/// Verify `req` as a SigV4 request for `service` and name its principal. Session tokens expire by
/// the domain clock; signing times are checked against the wall clock.
pub fn authenticate(state: &AppState, req: &Request, service: &str) -> Result<Caller, SigV4Error> {
    let signed = SignedRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
        body: &req.body,
    };
    let now = state.clock.now();
    let session: RefCell<Option<SessionClaims>> = RefCell::new(None);
    let lookup = |access_key: &str, token: Option<&str>| match token {
        None => state
            .identities
            .secret_for(access_key)
            .ok_or(unrecognized(UnrecognizedClient::UnknownAccessKey)),
        Some(token) => {
            let claims =
                session::open(&state.root_key, access_key, token, now).map_err(|e| match e {
                    SessionError::Expired => SigV4Error::ExpiredToken,
                    SessionError::Invalid => unrecognized(UnrecognizedClient::InvalidSecurityToken),
                })?;
            let secret = claims.secret.clone();
            *session.borrow_mut() = Some(claims);
            Ok(secret)
        }
    };
    let signature = sigv4::verify(
        &signed,
        service,
        &|region| state.regions.serves(region),
        &lookup,
        state.wall_clock.now(),
    )?;
    let (principal, user_identity) = match session.into_inner() {
        None => state
            .identities
            .signer(&signature.access_key_id)
            .ok_or(unrecognized(UnrecognizedClient::UnknownAccessKey))?,
        // A session of a role (or user) that the identity file no longer defines is not a valid
        // token.
        Some(claims) => match claims.kind {
            session::SessionKind::AssumedRole => state.identities.session_principal(
                &claims.role_arn,
                &claims.session_name,
                &signature.access_key_id,
                claims.issued_at(),
                claims.expires_at(),
            ),
            session::SessionKind::UserSession => state.identities.user_session_principal(
                &claims.role_arn,
                &signature.access_key_id,
                claims.issued_at(),
            ),
        }
        .map(|principal| {
            let user_identity = Arc::new(principal.user_identity());
            (Arc::new(principal), user_identity)
        })
        .ok_or(unrecognized(UnrecognizedClient::InvalidSecurityToken))?,
    };
    Ok(Caller {
        signature,
        principal,
        user_identity,
    })
}
