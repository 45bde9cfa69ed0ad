//! Compiled key policies as the read model holds them: compiled to Cedar once, when the policy
//! event is applied, and shared between snapshots.

use std::sync::Arc;

use trent_model::KmsError;
use trent_policy::{CompiledPolicy, PolicyKind};

/// A compiled policy shared between snapshots; equal when their Cedar text is equal.
#[derive(Clone)]
pub struct SharedPolicy(pub Arc<CompiledPolicy>);

impl PartialEq for SharedPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.0.cedar_text() == other.0.cedar_text()
    }
}

impl std::fmt::Debug for SharedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedPolicy({})", self.0.source())
    }
}

/// Compile a key policy text; the error is AWS's `MalformedPolicyDocumentException`.
pub fn compile_key_policy(text: &str) -> Result<SharedPolicy, KmsError> {
    CompiledPolicy::from_text(text, PolicyKind::KeyPolicy, "key-policy")
        .map(|p| SharedPolicy(Arc::new(p)))
        .map_err(|e| KmsError::MalformedPolicyDocument(format!("The policy is malformed: {e}")))
}

/// The policy that stands in for "no resource policy" on operations that take no key (CreateKey,
/// ListKeys, ListAliases, GenerateRandom): it delegates everything to the account's IAM, so the
/// caller's identity policies decide, as AWS does for these operations.
pub fn account_delegation(account: &str) -> Result<SharedPolicy, KmsError> {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"AccountIAM","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"*","Resource":"*"}}]}}"#
    );
    compile_key_policy(&text)
}
