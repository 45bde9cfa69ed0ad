//! `trent-policy`: AWS IAM-style JSON policies (key policies, identity policies) and grants,
//! compiled once to Cedar and evaluated per request with AWS KMS's decision logic.
//!
//! This crate depends on nothing in the service and does no I/O. Data flows through the modules
//! in this order: `document` parses and validates a policy; `compile` turns it into a Cedar policy
//! set (with `condition`, `pattern` and `value` for what Cedar cannot say directly); `grant`
//! compiles grants; `request` is the per-call question; `evaluate` runs the sets and `decision`
//! combines their answers as AWS does and words the `AccessDeniedException` message.

mod cedar;
mod compile;
mod condition;
mod decision;
mod document;
mod evaluate;
mod grant;
mod pattern;
mod request;
mod value;

pub use compile::{CompiledPolicy, StatementRef};
pub use decision::{access_denied_message, decide, Basis, Decision, PolicyType, SourceAnswers};
pub use document::{
    Effect, PolicyDocument, PolicyError, PolicyKind, Statement, StringOrList, MAX_KEY_POLICY_BYTES,
};
pub use evaluate::{authorize, Evaluation};
pub use grant::{Grant, GrantConstraints, GrantIndex, GrantOperation};
pub use request::{AccessRequest, AccessRequestBuilder, Principal, PrincipalType, Resource};
pub use value::ContextValue;
