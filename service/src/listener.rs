//! The API listener's protocols (KMS, CloudTrail, STS and Trent's policy simulator): which one a request speaks, and its handling through the one
//! pipeline (`edge::pipeline`). The server (actix-web) calls `handle` or `refuse_unread`.

use crate::edge::{kms, pipeline, Request};

/// The protocols of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The KMS API (AWS JSON 1.1).
    Kms,
    /// CloudTrail's LookupEvents (AWS JSON 1.1 with CloudTrail's target prefix).
    CloudTrail,
    /// STS (the query protocol: form-encoded body, no `X-Amz-Target`).
    Sts,
    /// Trent's policy simulator for key policy changes (`crate::policy_change`).
    PolicySimulator,
}

/// Which protocol a request speaks.
pub fn protocol_of(req: &Request) -> Listener {
    match req.header("x-amz-target") {
        Some(t) if t.starts_with(crate::cloudtrail::TARGET_PREFIX) => Listener::CloudTrail,
        Some(t) if t.starts_with(crate::policy_change::TARGET_PREFIX) => Listener::PolicySimulator,
        Some(_) => Listener::Kms,
        None if req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) =>
        {
            Listener::Sts
        }
        None => Listener::Kms,
    }
}

/// Handle one request with the protocol it speaks.
pub async fn handle(state: &crate::state::AppState, req: &Request) -> pipeline::Handled {
    match protocol_of(req) {
        Listener::Kms => pipeline::handle(&kms::Kms, state, req).await,
        Listener::CloudTrail => pipeline::handle(&crate::cloudtrail::CloudTrail, state, req).await,
        Listener::Sts => pipeline::handle(&crate::sts::Sts, state, req).await,
        Listener::PolicySimulator => {
            pipeline::handle(&crate::policy_change::PolicySimulator, state, req).await
        }
    }
}

/// Refuse a request whose body could not be read, in the shape of the protocol it speaks.
pub async fn refuse_unread(
    state: &crate::state::AppState,
    req: &Request,
    error: crate::protocol::AwsError,
) -> pipeline::Handled {
    match protocol_of(req) {
        Listener::Kms => pipeline::refuse_unread(&kms::Kms, state, req, error).await,
        Listener::CloudTrail => {
            pipeline::refuse_unread(&crate::cloudtrail::CloudTrail, state, req, error).await
        }
        Listener::Sts => pipeline::refuse_unread(&crate::sts::Sts, state, req, error).await,
        Listener::PolicySimulator => {
            pipeline::refuse_unread(&crate::policy_change::PolicySimulator, state, req, error).await
        }
    }
}
