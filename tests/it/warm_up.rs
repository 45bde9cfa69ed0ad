//! Serving while the read model warms up: a server started with its warm-up held
//! (`--test-hold-warm-up`) answers calls that name their keys from those keys' own streams, makes
//! every call that needs the whole model wait for it, and follows other replicas' changes to the
//! keys it loaded and to those it has not.

use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;

use crate::common;
use common::{code, new_key, StoreKind, TestServer};

/// Allows everything to the account, but denies Encrypt through a key that has the alias
/// `alias/blocked`: deciding needs every alias of the key.
const ALIAS_TESTING_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"Account","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"Blocked","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*",
  "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/blocked"}}}]}"#;

async fn encrypt(client: &aws_sdk_kms::Client, key: &str) -> Result<Vec<u8>, String> {
    client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"warm".to_vec()))
        .send()
        .await
        .map(|o| o.ciphertext_blob().unwrap().as_ref().to_vec())
        .map_err(|e| code(&e))
}

/// Encrypt with `key` through `client` until it answers `expected` (another replica's change
/// reaches this one through its follower), for at most ten seconds.
async fn until_encrypt_says(client: &aws_sdk_kms::Client, key: &str, expected: &str) {
    for _ in 0..200 {
        if encrypt(client, key).await.err().as_deref() == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Encrypt with {key} never answered {expected}");
}

async fn release(server: &TestServer) {
    let url = format!("{}/_trent/test/warm-up/release", server.endpoint());
    let r = common::http().post(url).send().await.expect("release");
    assert!(r.status().is_success(), "release: {}", r.status());
}

async fn keys_named_by_a_call_serve_while_the_model_warms_up(store: StoreKind) {
    let mut first = TestServer::start(store);
    let c = first.client();
    let named = new_key(&c).await;
    c.create_alias()
        .alias_name("alias/warm")
        .target_key_id(&named)
        .send()
        .await
        .unwrap();
    let described = new_key(&c).await;
    let untouched = new_key(&c).await;
    let mrk = c
        .create_key()
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let blob = encrypt(&c, &named).await.unwrap();
    assert!(first.terminate().success());

    let warming = first.another_on_same_store_with(&[
        "--test-clock",
        "--scheduler-interval",
        "3600",
        "--test-hold-warm-up",
    ]);
    let w = warming.client();
    // Calls that name their keys answer at once: by alias, by a ciphertext's embedded key id,
    // by key id.
    encrypt(&w, "alias/warm").await.unwrap();
    let plain = w
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"warm");
    let meta = w.describe_key().key_id(&described).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
    let err = w
        .describe_key()
        .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");

    // Calls that need the whole model (a list, a key change, a multi-Region key) wait for it.
    let list = tokio::spawn({
        let w = w.clone();
        async move { w.list_keys().send().await.map_err(|e| code(&e)) }
    });
    let disable = tokio::spawn({
        let (w, key) = (w.clone(), described.clone());
        async move {
            w.disable_key()
                .key_id(&key)
                .send()
                .await
                .map_err(|e| code(&e))
        }
    });
    let multi_region = tokio::spawn({
        let (w, key) = (w.clone(), mrk.clone());
        async move { encrypt(&w, &key).await }
    });

    let mut alias_testing = None;
    if store == StoreKind::Postgres {
        // Another replica changes a key this one loaded and one it has not, and adds a key.
        let other = warming.another_on_same_store_with(&[]);
        let o = other.client();
        o.disable_key().key_id(&named).send().await.unwrap();
        o.disable_key().key_id(&untouched).send().await.unwrap();
        let added = new_key(&o).await;
        until_encrypt_says(&w, "alias/warm", "DisabledException").await;
        assert_eq!(
            encrypt(&w, &untouched).await.err().as_deref(),
            Some("DisabledException")
        );
        encrypt(&w, &added).await.unwrap();
        o.enable_key().key_id(&named).send().await.unwrap();
        let mut enabled = false;
        for _ in 0..200 {
            if encrypt(&w, &named).await.is_ok() {
                enabled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            enabled,
            "the re-enabled key never served on the warming replica"
        );

        // The alias this replica holds is retargeted, by the other, to a key it has not loaded:
        // every call through the alias answers with the old target or, once this replica
        // follows, with the new one (loaded then), never NotFound.
        let later = new_key(&o).await;
        o.update_alias()
            .alias_name("alias/warm")
            .target_key_id(&later)
            .send()
            .await
            .unwrap();
        let mut followed = false;
        for _ in 0..200 {
            let used = w
                .encrypt()
                .key_id("alias/warm")
                .plaintext(Blob::new(b"warm".to_vec()))
                .send()
                .await
                .map(|o| o.key_id().unwrap_or_default().to_string())
                .map_err(|e| code(&e))
                .expect("Encrypt through the alias");
            if used.ends_with(&later) {
                followed = true;
                break;
            }
            assert!(
                used.ends_with(&named),
                "{used} is neither target of the alias"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(followed, "the retarget never reached the warming replica");

        // A key this replica holds gets, through the other, a policy that tests its aliases:
        // only the full model knows them, so calls on it wait, and then answer as it decides.
        o.create_alias()
            .alias_name("alias/blocked")
            .target_key_id(&added)
            .send()
            .await
            .unwrap();
        o.put_key_policy()
            .key_id(&added)
            .policy(ALIAS_TESTING_POLICY)
            .send()
            .await
            .unwrap();
        for _ in 0..100 {
            let call = tokio::spawn({
                let (w, key) = (w.clone(), added.clone());
                async move { encrypt(&w, &key).await }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !call.is_finished() {
                alias_testing = Some(call);
                break;
            }
            call.await
                .unwrap()
                .expect("Encrypt under the policy before the change reached this replica");
        }
        assert!(
            alias_testing.is_some(),
            "the policy change never reached the warming replica"
        );
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !list.is_finished(),
        "ListKeys answered from a warming model"
    );
    assert!(!disable.is_finished(), "DisableKey ran on a warming model");
    assert!(
        !multi_region.is_finished(),
        "a multi-Region key was used from a warming model"
    );

    release(&warming).await;
    let listed = list.await.unwrap().expect("ListKeys after the warm-up");
    let ids: Vec<&str> = listed.keys().iter().filter_map(|k| k.key_id()).collect();
    for key in [&named, &described, &untouched, &mrk] {
        assert!(ids.contains(&key.as_str()), "{key} missing from {ids:?}");
    }
    disable
        .await
        .unwrap()
        .expect("DisableKey after the warm-up");
    if let Some(call) = alias_testing {
        assert_eq!(
            call.await.unwrap().err().as_deref(),
            Some("AccessDeniedException"),
            "the key's alias is denied by its policy"
        );
    }
    multi_region
        .await
        .unwrap()
        .expect("the multi-Region key after the warm-up");
    assert_eq!(
        encrypt(&w, &described).await.err().as_deref(),
        Some("DisabledException")
    );
    let expected_untouched = if store == StoreKind::Postgres {
        Some("DisabledException")
    } else {
        None
    };
    assert_eq!(
        encrypt(&w, &untouched).await.err().as_deref(),
        expected_untouched
    );
}

on_both_stores!(keys_named_by_a_call_serve_while_the_model_warms_up);
