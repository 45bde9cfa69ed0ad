//! Which check wins when several apply (issue 13, part 1): for every operation that takes a key,
//! the key's state is checked first, then its usage, then its spec, then what the request asks
//! of it (algorithm, constraints). One table: each row is a request on a key that fails more
//! than one check, and the error of the first check in that order.

use serde_json::{json, Value};

use crate::common::{StoreKind, TestServer};
use crate::fidelity::{call, key_id};

/// A key made with `body`, disabled when `disabled`.
async fn key(server: &TestServer, body: Value, disabled: bool) -> String {
    let id = key_id(server, body).await;
    if disabled {
        call(server, "TrentService.DisableKey", &json!({"KeyId": id})).await;
    }
    id
}

async fn the_first_failing_check_decides_state_usage_spec_constraints(store: StoreKind) {
    let server = TestServer::start(store);
    let sign = json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"});
    let rsa_sign = json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"});
    let hmac = json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"});
    let sym = json!({});
    let disabled_sign = key(&server, sign.clone(), true).await;
    let disabled_hmac = key(&server, hmac.clone(), true).await;
    let disabled_sym = key(&server, sym.clone(), true).await;
    let disabled_rsa_sign = key(&server, rsa_sign, true).await;
    let sign_key = key(&server, sign.clone(), false).await;
    let sym_key = key(&server, sym.clone(), false).await;
    let pt = "aGVsbG8=";
    let rows: Vec<(&str, &str, Value, &str)> = vec![
        // State before usage.
        (
            "Encrypt",
            "disabled signing key",
            json!({"KeyId": disabled_sign, "Plaintext": pt}),
            "DisabledException",
        ),
        (
            "GenerateDataKey",
            "disabled signing key",
            json!({"KeyId": disabled_sign, "KeySpec": "AES_256"}),
            "DisabledException",
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            "disabled HMAC key",
            json!({"KeyId": disabled_hmac, "KeySpec": "AES_256"}),
            "DisabledException",
        ),
        (
            "GenerateDataKeyPair",
            "disabled signing key",
            json!({"KeyId": disabled_sign, "KeyPairSpec": "ECC_NIST_P256"}),
            "DisabledException",
        ),
        (
            "Sign",
            "disabled symmetric key",
            json!({"KeyId": disabled_sym, "Message": pt, "SigningAlgorithm": "ECDSA_SHA_256"}),
            "DisabledException",
        ),
        (
            "Verify",
            "disabled symmetric key",
            json!({"KeyId": disabled_sym, "Message": pt, "Signature": pt, "SigningAlgorithm": "ECDSA_SHA_256"}),
            "DisabledException",
        ),
        (
            "GenerateMac",
            "disabled signing key",
            json!({"KeyId": disabled_sign, "Message": pt, "MacAlgorithm": "HMAC_SHA_256"}),
            "DisabledException",
        ),
        (
            "VerifyMac",
            "disabled symmetric key",
            json!({"KeyId": disabled_sym, "Message": pt, "Mac": pt, "MacAlgorithm": "HMAC_SHA_256"}),
            "DisabledException",
        ),
        (
            "DeriveSharedSecret",
            "disabled signing key",
            json!({"KeyId": disabled_sign, "KeyAgreementAlgorithm": "ECDH", "PublicKey": pt}),
            "DisabledException",
        ),
        (
            "GetPublicKey",
            "disabled symmetric key",
            json!({"KeyId": disabled_sym}),
            "DisabledException",
        ),
        // State before spec.
        (
            "RotateKeyOnDemand",
            "disabled RSA key",
            json!({"KeyId": disabled_rsa_sign}),
            "DisabledException",
        ),
        (
            "EnableKeyRotation",
            "disabled RSA key",
            json!({"KeyId": disabled_rsa_sign}),
            "DisabledException",
        ),
        // Usage before the request's algorithm.
        (
            "Encrypt",
            "signing key, RSA algorithm",
            json!({"KeyId": sign_key, "Plaintext": pt, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            "InvalidKeyUsageException",
        ),
        (
            "Sign",
            "symmetric key, ECDSA algorithm",
            json!({"KeyId": sym_key, "Message": pt, "SigningAlgorithm": "ECDSA_SHA_256"}),
            "InvalidKeyUsageException",
        ),
    ];
    let mut wrong = Vec::new();
    for (operation, what, body, expected) in rows {
        let resp = call(&server, &format!("TrentService.{operation}"), &body).await;
        if resp.error_type() != expected {
            wrong.push(format!(
                "{operation} on a {what}: expected {expected}, got {} {}",
                resp.error_type(),
                resp.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

on_both_stores!(the_first_failing_check_decides_state_usage_spec_constraints,);
