//! Compiled key policies as the read model holds them: compiled to Cedar once, when the policy
//! event is applied, and shared between snapshots. Identical policy texts (every key an account
//! creates with the default policy) compile once and share one compiled policy, through a
//! process-wide table of weak references that forgets policies no key holds any more.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

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

/// Compiled policies by their text, held weakly.
#[derive(Default)]
struct CompiledByText {
    by_text: HashMap<String, Weak<CompiledPolicy>>,
    /// The size at which dead entries are swept next.
    sweep_at: usize,
}

static COMPILED: LazyLock<Mutex<CompiledByText>> = LazyLock::new(Default::default);

/// Compile a key policy text, or share the compiled policy of an identical text; the error is
/// AWS's `MalformedPolicyDocumentException`.
pub fn compile_key_policy(text: &str) -> Result<SharedPolicy, KmsError> {
    let known = COMPILED
        .lock()
        .ok()
        .and_then(|c| c.by_text.get(text).and_then(Weak::upgrade));
    if let Some(policy) = known {
        return Ok(SharedPolicy(policy));
    }
    // Compiled outside the lock: two threads may compile the same new text once each.
    let policy = CompiledPolicy::from_text(text, PolicyKind::KeyPolicy, "key-policy")
        .map(Arc::new)
        .map_err(|e| KmsError::MalformedPolicyDocument(format!("The policy is malformed: {e}")))?;
    if let Ok(mut c) = COMPILED.lock() {
        c.by_text.insert(text.to_string(), Arc::downgrade(&policy));
        if c.by_text.len() >= c.sweep_at {
            c.by_text.retain(|_, p| p.strong_count() > 0);
            c.sweep_at = (2 * c.by_text.len()).max(64);
        }
    }
    Ok(SharedPolicy(policy))
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

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]}"#;

    #[test]
    fn identical_texts_share_one_compiled_policy_while_it_is_held() {
        let a = compile_key_policy(POLICY).unwrap();
        let b = compile_key_policy(POLICY).unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let other = compile_key_policy(&POLICY.replace("\"S\"", "\"T\"")).unwrap();
        assert!(!Arc::ptr_eq(&a.0, &other.0));
        assert!(compile_key_policy("{").is_err());
    }
}
