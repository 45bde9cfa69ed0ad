//! Multi-Region keys through aws-sdk-kms on both stores: create, replicate, cross-Region
//! decrypt, shared rotation, UpdatePrimaryRegion, the deletion order of a primary and its
//! replicas, the transient states, and the multi-Region condition keys.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, MultiRegionKeyType, Tag};
use common::{code, code_and_message, StoreKind, TestServer, ACCESS_KEY, SECRET_KEY};

const DAY: i64 = 86_400;
const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const SOUTH: &str = "ap-south-1";

fn client_in(server: &TestServer, region: &str) -> aws_sdk_kms::Client {
    server.client_as(ACCESS_KEY, SECRET_KEY, region)
}

async fn new_primary(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .multi_region(true)
        .send()
        .await
        .expect("create a multi-Region key")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
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

/// Wait until the key leaves its transient state (the scheduler ends it right after the commit).
async fn settled(client: &aws_sdk_kms::Client, key: &str) -> KeyState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = state_of(client, key).await;
        if !matches!(state, KeyState::Creating | KeyState::Updating) {
            return state;
        }
        assert!(Instant::now() < deadline, "{key} stayed {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn replicate(client: &aws_sdk_kms::Client, key: &str, region: &str) {
    client
        .replicate_key()
        .key_id(key)
        .replica_region(region)
        .send()
        .await
        .expect("replicate");
}

async fn encrypt(client: &aws_sdk_kms::Client, key: &str, data: &[u8]) -> Blob {
    client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(data.to_vec()))
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .unwrap()
        .clone()
}

/// Decrypt without naming the key: the ciphertext names it. Returns (plaintext, key ARN).
async fn decrypt(client: &aws_sdk_kms::Client, blob: &Blob) -> (Vec<u8>, String) {
    let out = client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("decrypt");
    (
        out.plaintext().unwrap().as_ref().to_vec(),
        out.key_id().unwrap().to_string(),
    )
}

async fn replicate_and_decrypt_across_regions(store: StoreKind) {
    let mut server = TestServer::start(store);
    let (east, west) = (client_in(&server, EAST), client_in(&server, WEST));

    let created = east
        .create_key()
        .multi_region(true)
        .description("primary")
        .send()
        .await
        .unwrap();
    let meta = created.key_metadata().unwrap();
    let id = meta.key_id().to_string();
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    assert!(id[4..]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(meta.multi_region(), Some(true));
    let config = meta.multi_region_configuration().expect("configuration");
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Primary)
    );
    assert_eq!(config.primary_key().unwrap().region(), Some(EAST));
    assert!(config.replica_keys().is_empty());

    let blob = encrypt(&east, &id, b"made in the east").await;

    let replicated = east
        .replicate_key()
        .key_id(&id)
        .replica_region(WEST)
        .description("replica")
        .tags(
            Tag::builder()
                .tag_key("site")
                .tag_value("dublin")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("replicate");
    let replica = replicated.replica_key_metadata().unwrap();
    let west_arn = format!("arn:aws:kms:{WEST}:111122223333:key/{id}");
    assert_eq!(replica.arn(), Some(west_arn.as_str()));
    assert_eq!(replica.key_id(), id);
    assert_eq!(replica.key_state(), Some(&KeyState::Creating));
    assert_eq!(replica.description(), Some("replica"));
    let config = replica.multi_region_configuration().unwrap();
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    assert_eq!(config.primary_key().unwrap().region(), Some(EAST));
    assert_eq!(config.replica_keys().len(), 1);
    assert_eq!(config.replica_keys()[0].arn(), Some(west_arn.as_str()));
    assert!(replicated.replica_policy().unwrap().contains("kms:*"));
    assert_eq!(replicated.replica_tags()[0].tag_value(), "dublin");

    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    // A ciphertext of one Region decrypts in the other with that Region's key, both ways.
    let (plain, by) = decrypt(&west, &blob).await;
    assert_eq!(plain, b"made in the east");
    assert_eq!(by, west_arn);
    let from_west = encrypt(&west, &id, b"made in the west").await;
    assert_eq!(decrypt(&east, &from_west).await.0, b"made in the west");

    // The primary now lists its replica; each Region lists its own key once.
    let primary = east.describe_key().key_id(&id).send().await.unwrap();
    let config = primary
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    assert_eq!(config.replica_keys()[0].region(), Some(WEST));
    for (client, region) in [(&east, EAST), (&west, WEST)] {
        let keys = client.list_keys().send().await.unwrap();
        let arns: Vec<_> = keys.keys().iter().filter_map(|k| k.key_arn()).collect();
        assert_eq!(
            arns,
            vec![format!("arn:aws:kms:{region}:111122223333:key/{id}").as_str()]
        );
    }
    // Properties that are not shared differ per Region.
    let west_meta = west.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        west_meta.key_metadata().unwrap().description(),
        Some("replica")
    );
    let tags = east.list_resource_tags().key_id(&id).send().await.unwrap();
    assert!(tags.tags().is_empty());
    west.create_alias()
        .alias_name("alias/west-only")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let east_aliases = east.list_aliases().key_id(&id).send().await.unwrap();
    assert!(east_aliases.aliases().is_empty());
    west.disable_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        code(
            &west
                .encrypt()
                .key_id(&id)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
                .unwrap_err()
        ),
        "DisabledException"
    );
    encrypt(&east, &id, b"the primary is still enabled").await;
    west.enable_key().key_id(&id).send().await.unwrap();

    // Errors: one replica per Region, only primaries replicate, only multi-Region keys.
    let again = east
        .replicate_key()
        .key_id(&id)
        .replica_region(WEST)
        .send()
        .await;
    assert_eq!(code(&again.unwrap_err()), "AlreadyExistsException");
    let from_replica = west
        .replicate_key()
        .key_id(&id)
        .replica_region(SOUTH)
        .send()
        .await;
    assert_eq!(
        code(&from_replica.unwrap_err()),
        "UnsupportedOperationException"
    );
    let single = east.create_key().send().await.unwrap();
    let single_id = single.key_metadata().unwrap().key_id();
    let (c, m) = code_and_message(
        &east
            .replicate_key()
            .key_id(single_id)
            .replica_region(WEST)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(c, "UnsupportedOperationException");
    assert!(m.contains("is not a multi-Region key"), "{m}");
    let same_region = east
        .replicate_key()
        .key_id(&id)
        .replica_region(EAST)
        .send()
        .await;
    assert_eq!(code(&same_region.unwrap_err()), "ValidationException");
    assert!(single_id.len() == 36 && !single_id.starts_with("mrk-"));

    // Rotation is shared: changed on the primary only, seen and used by the replica.
    let on_replica = west.rotate_key_on_demand().key_id(&id).send().await;
    assert_eq!(
        code(&on_replica.unwrap_err()),
        "UnsupportedOperationException"
    );
    let on_replica = west.enable_key_rotation().key_id(&id).send().await;
    assert_eq!(
        code(&on_replica.unwrap_err()),
        "UnsupportedOperationException"
    );
    east.enable_key_rotation().key_id(&id).send().await.unwrap();
    east.rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let status = west
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    let rotations = west.list_key_rotations().key_id(&id).send().await.unwrap();
    assert_eq!(
        rotations.rotations().len(),
        1,
        "the replica lists the primary's rotation"
    );
    let rotated = encrypt(&east, &id, b"after rotation").await;
    assert_eq!(decrypt(&west, &rotated).await.0, b"after rotation");
    assert_eq!(decrypt(&west, &blob).await.0, b"made in the east");

    // Everything holds after a restart (replayed from the events or loaded from a snapshot).
    server.restart();
    let (east, west) = (client_in(&server, EAST), client_in(&server, WEST));
    assert_eq!(decrypt(&west, &rotated).await.0, b"after rotation");
    assert_eq!(decrypt(&east, &from_west).await.0, b"made in the west");
    let config = west.describe_key().key_id(&id).send().await.unwrap();
    let config = config
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    let (ok, report) = server.trent(&["replay", "--verify"]);
    assert!(ok, "replay --verify: {report}");
}

async fn update_primary_region_swaps_primary_and_replica(store: StoreKind) {
    let server = TestServer::start(store);
    let (east, west, south) = (
        client_in(&server, EAST),
        client_in(&server, WEST),
        client_in(&server, SOUTH),
    );
    let id = new_primary(&east).await;
    replicate(&east, &id, WEST).await;
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);

    // Both keys must be usable: a disabled replica cannot become the primary.
    west.disable_key().key_id(&id).send().await.unwrap();
    let disabled = east
        .update_primary_region()
        .key_id(&id)
        .primary_region(WEST)
        .send()
        .await;
    assert_eq!(code(&disabled.unwrap_err()), "DisabledException");
    west.enable_key().key_id(&id).send().await.unwrap();
    let nowhere = east
        .update_primary_region()
        .key_id(&id)
        .primary_region(SOUTH)
        .send()
        .await;
    assert_eq!(code(&nowhere.unwrap_err()), "NotFoundException");
    let from_replica = west
        .update_primary_region()
        .key_id(&id)
        .primary_region(EAST)
        .send()
        .await;
    assert_eq!(
        code(&from_replica.unwrap_err()),
        "UnsupportedOperationException"
    );

    east.update_primary_region()
        .key_id(&id)
        .primary_region(WEST)
        .send()
        .await
        .expect("update primary region");
    // Both keys return to the state they had before the transient Updating state.
    assert_eq!(settled(&east, &id).await, KeyState::Enabled);
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    let kind = |client: aws_sdk_kms::Client| {
        let id = id.clone();
        async move {
            let out = client.describe_key().key_id(&id).send().await.unwrap();
            let config = out
                .key_metadata()
                .unwrap()
                .multi_region_configuration()
                .unwrap()
                .clone();
            (
                config.multi_region_key_type().unwrap().clone(),
                config.primary_key().unwrap().region().unwrap().to_string(),
            )
        }
    };
    assert_eq!(
        kind(east.clone()).await,
        (MultiRegionKeyType::Replica, WEST.to_string())
    );
    assert_eq!(
        kind(west.clone()).await,
        (MultiRegionKeyType::Primary, WEST.to_string())
    );
    let back = east
        .update_primary_region()
        .key_id(&id)
        .primary_region(WEST)
        .send()
        .await;
    assert_eq!(code(&back.unwrap_err()), "UnsupportedOperationException");

    // Now only the new primary replicates and rotates.
    let old = east
        .replicate_key()
        .key_id(&id)
        .replica_region(SOUTH)
        .send()
        .await;
    assert_eq!(code(&old.unwrap_err()), "UnsupportedOperationException");
    replicate(&west, &id, SOUTH).await;
    assert_eq!(settled(&south, &id).await, KeyState::Enabled);
    let out = south.describe_key().key_id(&id).send().await.unwrap();
    let config = out
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    let replicas: Vec<_> = config
        .replica_keys()
        .iter()
        .filter_map(|k| k.region())
        .collect();
    assert_eq!(replicas, vec![SOUTH, EAST]);
    let blob = encrypt(&south, &id, b"three regions").await;
    assert_eq!(decrypt(&east, &blob).await.0, b"three regions");
    // The primary change reached the third Region's key too.
    west.rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let rotations = south.list_key_rotations().key_id(&id).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
}

async fn a_primary_is_deleted_after_its_replicas(store: StoreKind) {
    let server = TestServer::start_with_test_clock(store);
    let (east, west) = (client_in(&server, EAST), client_in(&server, WEST));
    let id = new_primary(&east).await;
    replicate(&east, &id, WEST).await;
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    let blob = encrypt(&east, &id, b"kept until the end").await;

    let scheduled = east
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(
        scheduled.key_state(),
        Some(&KeyState::PendingReplicaDeletion)
    );
    assert_eq!(
        scheduled.deletion_date(),
        None,
        "no date while replicas remain"
    );
    let meta = east.describe_key().key_id(&id).send().await.unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(meta.key_state(), Some(&KeyState::PendingReplicaDeletion));
    assert_eq!(meta.pending_deletion_window_in_days(), Some(7));
    assert_eq!(meta.deletion_date(), None);
    let (c, m) = code_and_message(
        &east
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(c, "KMSInvalidStateException");
    assert!(m.ends_with("is pending replica deletion."), "{m}");
    // The replica still works on its own; waiting does not start the primary's window.
    assert_eq!(decrypt(&west, &blob).await.0, b"kept until the end");
    server.advance_clock(40 * DAY).await;
    server.scheduler_tick().await;
    assert_eq!(state_of(&east, &id).await, KeyState::PendingReplicaDeletion);

    // Cancel and schedule again: the wait is the same.
    east.cancel_key_deletion().key_id(&id).send().await.unwrap();
    assert_eq!(state_of(&east, &id).await, KeyState::Disabled);
    east.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    west.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(state_of(&west, &id).await, KeyState::PendingDeletion);
    server.advance_clock(8 * DAY).await;
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["deleted"],
        serde_json::json!([id.clone()]),
        "{report}"
    );
    assert!(
        report["shredded"].as_array().unwrap().is_empty(),
        "a replica shares its material: {report}"
    );
    let gone = west.describe_key().key_id(&id).send().await;
    assert_eq!(code(&gone.unwrap_err()), "NotFoundException");
    // The last replica is gone: the primary's own waiting period starts now.
    let meta = east.describe_key().key_id(&id).send().await.unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(meta.key_state(), Some(&KeyState::PendingDeletion));
    let date = meta.deletion_date().expect("a deletion date now").secs();
    let config = meta.multi_region_configuration().unwrap();
    assert!(config.replica_keys().is_empty());
    server.advance_clock(6 * DAY).await;
    server.scheduler_tick().await;
    assert_eq!(state_of(&east, &id).await, KeyState::PendingDeletion);
    server.advance_clock(2 * DAY).await;
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["shredded"],
        serde_json::json!([id.clone()]),
        "{report}"
    );
    let gone = east.describe_key().key_id(&id).send().await;
    assert_eq!(code(&gone.unwrap_err()), "NotFoundException");
    assert!(date > 0);

    // A Region whose replica was deleted can hold a new replica of another key id; and a
    // deleted replica's Region takes a replica again while its primary lives.
    let id = new_primary(&east).await;
    replicate(&east, &id, WEST).await;
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    west.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let pending = east
        .replicate_key()
        .key_id(&id)
        .replica_region(WEST)
        .send()
        .await;
    assert_eq!(code(&pending.unwrap_err()), "AlreadyExistsException");
    server.advance_clock(8 * DAY).await;
    server.scheduler_tick().await;
    replicate(&east, &id, WEST).await;
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    let blob = encrypt(&east, &id, b"second replica").await;
    assert_eq!(decrypt(&west, &blob).await.0, b"second replica");
}

/// A key policy that allows the account everything and denies `action` when `condition` holds.
fn policy_denying(action: &str, condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
  {{"Sid":"All","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},
  {{"Sid":"Deny","Effect":"Deny","Principal":"*","Action":"{action}","Resource":"*","Condition":{condition}}}
]}}"#
    )
}

async fn multi_region_condition_keys(store: StoreKind) {
    let server = TestServer::start(store);
    let (east, west) = (client_in(&server, EAST), client_in(&server, WEST));
    let id = new_primary(&east).await;
    // kms:ReplicaRegion: no replica in ap-south-1.
    east.put_key_policy()
        .key_id(&id)
        .policy(policy_denying(
            "kms:ReplicateKey",
            r#"{"StringEquals":{"kms:ReplicaRegion":"ap-south-1"}}"#,
        ))
        .send()
        .await
        .unwrap();
    let denied = east
        .replicate_key()
        .key_id(&id)
        .replica_region(SOUTH)
        .send()
        .await;
    assert_eq!(code(&denied.unwrap_err()), "AccessDeniedException");
    // kms:MultiRegionKeyType: the replica's own policy keeps replicas from encrypting.
    east.replicate_key()
        .key_id(&id)
        .replica_region(WEST)
        .policy(policy_denying(
            "kms:Encrypt",
            r#"{"StringEquals":{"kms:MultiRegionKeyType":"REPLICA"}}"#,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(settled(&west, &id).await, KeyState::Enabled);
    let denied = west
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await;
    assert_eq!(code(&denied.unwrap_err()), "AccessDeniedException");
    let blob = encrypt(&east, &id, b"primary encrypts").await;
    assert_eq!(decrypt(&west, &blob).await.0, b"primary encrypts");
    // kms:PrimaryRegion: the primary cannot move to eu-west-1.
    east.put_key_policy()
        .key_id(&id)
        .policy(policy_denying(
            "kms:UpdatePrimaryRegion",
            r#"{"StringEquals":{"kms:PrimaryRegion":"eu-west-1"}}"#,
        ))
        .send()
        .await
        .unwrap();
    let denied = east
        .update_primary_region()
        .key_id(&id)
        .primary_region(WEST)
        .send()
        .await;
    assert_eq!(code(&denied.unwrap_err()), "AccessDeniedException");
    // kms:MultiRegion: a policy that denies Decrypt with multi-Region keys only.
    let single = east.create_key().send().await.unwrap();
    let single = single.key_metadata().unwrap().key_id().to_string();
    for key in [&id, &single] {
        east.put_key_policy()
            .key_id(key)
            .policy(policy_denying(
                "kms:Decrypt",
                r#"{"Bool":{"kms:MultiRegion":"true"}}"#,
            ))
            .send()
            .await
            .unwrap();
    }
    let multi_blob = encrypt(&east, &id, b"m").await;
    let single_blob = encrypt(&east, &single, b"s").await;
    let denied = east
        .decrypt()
        .ciphertext_blob(multi_blob)
        .encryption_context("purpose", "test")
        .send()
        .await;
    assert_eq!(code(&denied.unwrap_err()), "AccessDeniedException");
    assert_eq!(decrypt(&east, &single_blob).await.0, b"s");
}

on_both_stores!(
    replicate_and_decrypt_across_regions,
    update_primary_region_swaps_primary_and_replica,
    a_primary_is_deleted_after_its_replicas,
    multi_region_condition_keys,
);
