//! The key lifecycle through aws-sdk-kms on both stores: aliases, tags, enable/disable, deletion
//! windows with the service's scheduled deletion, rotation (automatic and on demand), and
//! crypto-shredding, with time moved by the server's test clock instead of sleeping.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{IncludeKeyMaterial, KeyState, Tag};
use common::db::Db;
use common::{code, new_key, StoreKind, TestServer};

const DAY: i64 = 86_400;

async fn encrypt(client: &aws_sdk_kms::Client, key: &str, data: &[u8]) -> Blob {
    client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(data.to_vec()))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn state_of(client: &aws_sdk_kms::Client, key: &str) -> KeyState {
    client
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

fn service_events(records: &[serde_json::Value], name: &str, key: &str) -> usize {
    records
        .iter()
        .filter(|r| {
            r["eventType"] == "AwsServiceEvent"
                && r["eventName"] == name
                && r["resources"][0]["ARN"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(key))
        })
        .count()
}

async fn aliases(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let k1 = new_key(&client).await;
    let k2 = new_key(&client).await;
    client
        .create_alias()
        .alias_name("alias/app")
        .target_key_id(&k1)
        .send()
        .await
        .expect("create alias");

    // The alias works wherever a KeyId does, as a name and as an ARN.
    let arn = format!(
        "arn:aws:kms:{}:{}:alias/app",
        common::REGION,
        common::ACCOUNT
    );
    for id in ["alias/app", arn.as_str()] {
        let d = client
            .describe_key()
            .key_id(id)
            .send()
            .await
            .expect("describe by alias");
        assert_eq!(d.key_metadata().unwrap().key_id(), k1);
    }
    let blob = encrypt(&client, "alias/app", b"x").await;
    let dec = client
        .decrypt()
        .ciphertext_blob(blob)
        .key_id("alias/app")
        .send()
        .await
        .expect("decrypt");
    assert!(dec.key_id().unwrap().ends_with(&k1));

    let err = client
        .create_alias()
        .alias_name("alias/app")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AlreadyExistsException");
    let err = client
        .create_alias()
        .alias_name("alias/aws/mine")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidAliasNameException");
    let err = client
        .create_alias()
        .alias_name("noprefix")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "as AWS answers a name without alias/"
    );
    let err = client
        .create_alias()
        .alias_name("alias/bad name")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = client
        .create_alias()
        .alias_name("alias/x")
        .target_key_id("alias/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    // The same name in another region is another alias.
    let eu = server.client_as(common::ACCESS_KEY, common::SECRET_KEY, "eu-west-1");
    let eu_key = new_key(&eu).await;
    eu.create_alias()
        .alias_name("alias/app")
        .target_key_id(&eu_key)
        .send()
        .await
        .expect("same name, other region");

    client
        .create_alias()
        .alias_name("alias/other")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap();
    let all = client.list_aliases().send().await.unwrap();
    let names: Vec<_> = all
        .aliases()
        .iter()
        .map(|a| a.alias_name().unwrap().to_string())
        .collect();
    assert_eq!(names, ["alias/app", "alias/other"]);
    let of_k2 = client.list_aliases().key_id(&k2).send().await.unwrap();
    assert_eq!(of_k2.aliases().len(), 1);
    assert_eq!(of_k2.aliases()[0].target_key_id(), Some(k2.as_str()));
    let page = client.list_aliases().limit(1).send().await.unwrap();
    assert!(page.truncated());
    let rest = client
        .list_aliases()
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.aliases()[0].alias_name(), Some("alias/other"));

    client
        .update_alias()
        .alias_name("alias/app")
        .target_key_id(&k2)
        .send()
        .await
        .expect("update");
    let d = client
        .describe_key()
        .key_id("alias/app")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), k2);

    client
        .delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .expect("delete");
    let err = client
        .describe_key()
        .key_id("alias/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    let err = client
        .delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    // A deleted name can be created again.
    client
        .create_alias()
        .alias_name("alias/app")
        .target_key_id(&k1)
        .send()
        .await
        .expect("re-create");
}

async fn tags_and_description(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = new_key(&client).await;
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    client
        .tag_resource()
        .key_id(&key)
        .tags(tag("b", "2"))
        .tags(tag("a", "1"))
        .send()
        .await
        .expect("tag");
    client
        .tag_resource()
        .key_id(&key)
        .tags(tag("a", "one"))
        .send()
        .await
        .expect("retag");
    let listed = client
        .list_resource_tags()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let pairs: Vec<_> = listed
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("a".to_string(), "one".to_string()),
            ("b".to_string(), "2".to_string())
        ]
    );
    let page = client
        .list_resource_tags()
        .key_id(&key)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert!(page.truncated());
    let rest = client
        .list_resource_tags()
        .key_id(&key)
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags()[0].tag_key(), "b");

    client
        .untag_resource()
        .key_id(&key)
        .tag_keys("a")
        .tag_keys("absent")
        .send()
        .await
        .expect("untag");
    let listed = client
        .list_resource_tags()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.tags().len(), 1);

    let err = client
        .tag_resource()
        .key_id(&key)
        .tags(tag("aws:reserved", "x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TagException");
    let mut many = client.tag_resource().key_id(&key);
    for i in 0..50 {
        many = many.tags(tag(&format!("k{i}"), "v"));
    }
    let err = many.send().await.unwrap_err();
    assert_eq!(code(&err), "TagException", "51 tags in all must be refused");

    client
        .update_key_description()
        .key_id(&key)
        .description("new words")
        .send()
        .await
        .unwrap();
    let d = client.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("new words"));
}

async fn enable_and_disable(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = new_key(&client).await;
    let blob = encrypt(&client, &key, b"before").await;
    client
        .disable_key()
        .key_id(&key)
        .send()
        .await
        .expect("disable");
    client
        .disable_key()
        .key_id(&key)
        .send()
        .await
        .expect("disabling twice changes nothing");
    assert_eq!(state_of(&client, &key).await, KeyState::Disabled);
    let err = client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    let err = client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    client
        .enable_key()
        .key_id(&key)
        .send()
        .await
        .expect("enable");
    assert_eq!(state_of(&client, &key).await, KeyState::Enabled);
    client
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after enable");
}

async fn scheduled_deletion_and_crypto_shredding(store: StoreKind) {
    let server = TestServer::start_with_test_clock(store);
    let client = server.client();
    let key = new_key(&client).await;
    client
        .create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    let blob = encrypt(&client, &key, b"secret").await;

    for days in [6, 31] {
        let err = client
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(days)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ValidationException", "{days} days");
    }
    let scheduled = client
        .schedule_key_deletion()
        .key_id(&key)
        .send()
        .await
        .expect("schedule");
    assert_eq!(
        scheduled.pending_window_in_days(),
        Some(30),
        "default window"
    );
    assert_eq!(scheduled.key_state(), Some(&KeyState::PendingDeletion));
    let err = client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    client
        .cancel_key_deletion()
        .key_id(&key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(
        state_of(&client, &key).await,
        KeyState::Disabled,
        "a cancelled deletion leaves the key disabled"
    );
    let err = client
        .cancel_key_deletion()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");

    let scheduled = client
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let deletion = scheduled.deletion_date().unwrap().secs();
    let described = client.describe_key().key_id(&key).send().await.unwrap();
    let meta = described.key_metadata().unwrap();
    assert_eq!(meta.deletion_date().map(|d| d.secs()), Some(deletion));
    assert_eq!(meta.pending_deletion_window_in_days(), Some(7));

    server.advance_clock(7 * DAY - 1).await;
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["deleted"],
        serde_json::json!([]),
        "deleted a second early"
    );
    assert_eq!(state_of(&client, &key).await, KeyState::PendingDeletion);

    server.advance_clock(2).await;
    let report = server.scheduler_tick().await;
    assert_eq!(report["deleted"], serde_json::json!([key]));
    assert_eq!(report["shredded"], serde_json::json!([key]));
    let again = server.scheduler_tick().await;
    assert_eq!(again["deleted"], serde_json::json!([]), "deleted twice");

    let err = client.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    let err = client
        .describe_key()
        .key_id("alias/doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "NotFoundException",
        "the key's alias went with it"
    );
    assert!(client.list_keys().send().await.unwrap().keys().is_empty());
    let err = client
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");

    let db = Db::open(&server).await;
    assert_eq!(
        db.material_rows(&key).await,
        0,
        "sealed material left in the keystore"
    );
    let records = db.audit_records().await;
    assert_eq!(service_events(&records, "DeleteKey", &key), 1);
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "{out}");
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "{out}");
}

async fn rotation(store: StoreKind) {
    let server = TestServer::start_with_test_clock(store);
    let client = server.client();
    let key = new_key(&client).await;
    let before = encrypt(&client, &key, b"old material").await;
    let first_material = client
        .decrypt()
        .ciphertext_blob(before.clone())
        .send()
        .await
        .unwrap()
        .key_material_id()
        .unwrap()
        .to_string();

    let err = client
        .enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(89)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    client
        .enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .expect("enable rotation");
    let status = client
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert!(status.next_rotation_date().is_some());

    server.advance_clock(90 * DAY - 60).await;
    assert_eq!(
        server.scheduler_tick().await["rotated"],
        serde_json::json!([])
    );
    server.advance_clock(120).await;
    assert_eq!(
        server.scheduler_tick().await["rotated"],
        serde_json::json!([key])
    );
    assert_eq!(
        server.scheduler_tick().await["rotated"],
        serde_json::json!([]),
        "rotated twice"
    );

    // Old ciphertexts still decrypt; new ones use the new material.
    let old = client
        .decrypt()
        .ciphertext_blob(before.clone())
        .send()
        .await
        .expect("old ciphertext");
    assert_eq!(old.plaintext().unwrap().as_ref(), b"old material");
    assert_eq!(old.key_material_id(), Some(first_material.as_str()));
    let after = encrypt(&client, &key, b"new material").await;
    let new = client
        .decrypt()
        .ciphertext_blob(after)
        .send()
        .await
        .unwrap();
    assert_ne!(new.key_material_id(), Some(first_material.as_str()));
    let described = client.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().current_key_material_id(),
        new.key_material_id()
    );

    client
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("on demand");
    let rotations = client
        .list_key_rotations()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let types: Vec<_> = rotations
        .rotations()
        .iter()
        .map(|r| r.rotation_type().unwrap().as_str().to_string())
        .collect();
    assert_eq!(types, ["AUTOMATIC", "ON_DEMAND"]);
    let all = client
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    assert_eq!(all.rotations().len(), 3);
    let current: Vec<_> = all
        .rotations()
        .iter()
        .filter(|r| r.key_material_state().map(|s| s.as_str()) == Some("CURRENT"))
        .collect();
    assert_eq!(current.len(), 1);
    client
        .decrypt()
        .ciphertext_blob(before)
        .send()
        .await
        .expect("oldest ciphertext after two rotations");

    // One on-demand rotation so far; AWS allows 25 per key.
    for _ in 0..24 {
        client
            .rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .expect("on demand");
    }
    let err = client
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "LimitExceededException",
        "the 26th on-demand rotation"
    );

    client
        .disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let status = client
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());

    let db = Db::open(&server).await;
    let records = db.audit_records().await;
    assert_eq!(service_events(&records, "RotateKey", &key), 1);
}

async fn crash_between_deletion_event_and_shredding(store: StoreKind) {
    let mut server = TestServer::start_with_test_clock(store);
    let client = server.client();
    let key = new_key(&client).await;
    client
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    // The hook is read from the environment by a new process, whose test clock starts at the wall
    // clock, so the clock moves past the waiting period only there: moved in this process, its
    // own scheduler could delete the key (a tick at start that runs late on a loaded machine)
    // before the restart, and the crash would never come.
    server.set_env("TRENT_TEST_CRASH_AFTER", Some("deletion-event"));
    server.start_again();
    server.advance_clock(8 * DAY).await;
    let url = format!("{}/_trent/test/scheduler/tick", server.endpoint());
    let crashed = common::http().post(url).send().await;
    assert!(crashed.is_err(), "the tick should have crashed the server");
    let status = server.wait_exit();
    assert!(!status.success());

    let db = Db::open(&server).await;
    assert_eq!(
        db.material_rows(&key).await,
        1,
        "the crash came before shredding"
    );

    server.set_env("TRENT_TEST_CRASH_AFTER", None);
    server.start_again();
    // The scheduler's first pass after the restart (at start, or this one) finishes the job.
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["deleted"],
        serde_json::json!([]),
        "the deletion was already committed"
    );
    assert_eq!(db.material_rows(&key).await, 0);
    let records = db.audit_records().await;
    assert_eq!(
        service_events(&records, "DeleteKey", &key),
        1,
        "DeleteKey audited exactly once"
    );
    let err = server
        .client()
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

on_both_stores!(
    aliases,
    tags_and_description,
    enable_and_disable,
    scheduled_deletion_and_crypto_shredding,
    rotation,
    crash_between_deletion_event_and_shredding,
);

/// Two server processes on one PostgreSQL database race for the same scheduled deletion: it
/// happens once, with one DeleteKey record.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_delete_a_key_once() {
    let first = TestServer::start_with_test_clock(StoreKind::Postgres);
    let second = first.another_on_same_store();
    let client = first.client();
    let key = new_key(&client).await;
    client
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    first.advance_clock(8 * DAY).await;
    second.advance_clock(8 * DAY).await;
    let (a, b) = tokio::join!(first.scheduler_tick(), second.scheduler_tick());
    let deleted = a["deleted"].as_array().unwrap().len() + b["deleted"].as_array().unwrap().len();
    assert_eq!(deleted, 1, "reports: {a} {b}");
    let db = Db::open(&first).await;
    assert_eq!(
        service_events(&db.audit_records().await, "DeleteKey", &key),
        1
    );
    assert_eq!(db.material_rows(&key).await, 0);
    // The process that lost the race sees the deletion too.
    let err = second
        .client()
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

/// Two server processes on one PostgreSQL database behind, say, a load balancer: a key or alias
/// created through one is usable through the other at once (the second catches up on a miss
/// instead of answering NotFoundException until its next follow).
#[tokio::test(flavor = "multi_thread")]
async fn replicas_read_each_others_new_keys_at_once() {
    let first = TestServer::start(StoreKind::Postgres);
    let second = first.another_on_same_store();
    let (a, b) = (first.client(), second.client());
    for round in 0..5 {
        let key = new_key(&a).await;
        let alias = format!("alias/replica-{round}");
        a.create_alias()
            .alias_name(&alias)
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
        b.encrypt()
            .key_id(&alias)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"r".to_vec()))
            .send()
            .await
            .expect("the other replica knows the new key and alias");
    }
    // A key that exists nowhere is still NotFoundException.
    let err = b
        .describe_key()
        .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

/// Replicas follow each other's changes at once (PostgreSQL LISTEN/NOTIFY), not at their next poll:
/// a key disabled through one replica is refused by the other a moment later.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_follow_changes_by_notification() {
    let first = TestServer::start(StoreKind::Postgres);
    let second = first.another_on_same_store();
    let (a, b) = (first.client(), second.client());
    let key = new_key(&a).await;
    let encrypt = || {
        b.encrypt()
            .key_id(&key)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"n".to_vec()))
            .send()
    };
    encrypt().await.expect("enabled");
    for _ in 0..3 {
        a.disable_key().key_id(&key).send().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let err = encrypt().await.unwrap_err();
        assert_eq!(
            code(&err),
            "DisabledException",
            "the other replica saw the change"
        );
        a.enable_key().key_id(&key).send().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        encrypt().await.expect("and sees it enabled again");
    }
}
