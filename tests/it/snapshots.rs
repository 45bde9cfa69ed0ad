//! Read-model snapshots: a server started from a snapshot plus the events after it serves exactly
//! what a full replay serves, `trent replay --verify` checks that equality, and a snapshot the
//! store altered is passed over (start-up falls back to replaying every event).

use std::time::{Duration, Instant};

use aws_sdk_kms::types::{GrantOperation, Tag};
use common::db::Db;
use common::{StoreKind, TestServer};

use crate::common;

/// Everything the API shows about the account's keys, as one comparable text.
async fn visible_state(server: &TestServer) -> String {
    let client = server.client();
    let mut out = Vec::new();
    let keys = client.list_keys().limit(1000).send().await.unwrap();
    for k in keys.keys() {
        let id = k.key_id().unwrap();
        let meta = client.describe_key().key_id(id).send().await.unwrap();
        let m = meta.key_metadata().unwrap();
        let tags = client.list_resource_tags().key_id(id).send().await.unwrap();
        let policy = client
            .get_key_policy()
            .key_id(id)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap_or_default()
            .to_string();
        let grants = client.list_grants().key_id(id).send().await.unwrap();
        out.push(format!(
            "{id} {:?} {:?} {:?} {:?} tags={:?} policy={policy} grants={:?}",
            m.key_state(),
            m.description(),
            m.deletion_date(),
            m.key_spec(),
            tags.tags()
                .iter()
                .map(|t| (t.tag_key(), t.tag_value()))
                .collect::<Vec<_>>(),
            grants
                .grants()
                .iter()
                .map(|g| (g.grant_id(), g.grantee_principal(), g.operations()))
                .collect::<Vec<_>>(),
        ));
    }
    let aliases = client.list_aliases().send().await.unwrap();
    for a in aliases.aliases() {
        out.push(format!("{:?} -> {:?}", a.alias_name(), a.target_key_id()));
    }
    out.sort();
    out.join("\n")
}

/// Some calls that append events of every kind the read model projects; returns a key id.
async fn make_history(server: &TestServer, round: usize) -> String {
    let client = server.client();
    let key = client
        .create_key()
        .description(format!("round {round}"))
        .tags(
            Tag::builder()
                .tag_key("round")
                .tag_value(round.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id = key.key_metadata().unwrap().key_id().to_string();
    client
        .create_alias()
        .alias_name(format!("alias/round-{round}"))
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    client
        .tag_resource()
        .key_id(&id)
        .tags(
            Tag::builder()
                .tag_key("extra")
                .tag_value("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
        .create_grant()
        .key_id(&id)
        .grantee_principal(format!("arn:aws:iam::{}:root", common::ACCOUNT))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    client
        .update_key_description()
        .key_id(&id)
        .description(format!("round {round}, edited"))
        .send()
        .await
        .unwrap();
    client.disable_key().key_id(&id).send().await.unwrap();
    client
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    id
}

/// `trent replay --verify` until it names a snapshot (the scheduler takes them), at most 30 s.
fn wait_for_snapshot(server: &TestServer) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = server.trent(&["replay", "--verify"]);
        assert!(ok, "replay --verify failed: {out}");
        if out.contains("snapshot at sequence") {
            return out;
        }
        assert!(Instant::now() < deadline, "no snapshot was taken: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The `N` of "plus N later events" in a verify line.
fn later_events(out: &str) -> Vec<i64> {
    out.lines()
        .filter_map(|l| l.split(" plus ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

async fn start_up_from_a_snapshot_and_later_events_equals_a_full_replay(store: StoreKind) {
    let mut server = TestServer::start_with(
        store,
        &["--snapshot-every", "5", "--scheduler-interval", "1"],
    );
    for round in 0..3 {
        make_history(&server, round).await;
    }
    let first = wait_for_snapshot(&server);
    // Events after the snapshot: the restart must replay them on top of it.
    server.kill9();
    server.start_again();
    let later_key = make_history(&server, 3).await;
    let before = visible_state(&server).await;
    assert!(before.contains(&later_key), "{before}");
    server.kill9();

    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "replay --verify failed: {out}\n(before: {first})");
    assert!(
        later_events(&out).iter().any(|n| *n > 0),
        "the newest snapshot should be older than the last events: {out}"
    );
    server.start_again();
    assert_eq!(visible_state(&server).await, before);

    // A graceful stop takes a snapshot of everything: nothing is left to replay.
    assert!(server.terminate().success());
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "{out}");
    assert_eq!(later_events(&out).first(), Some(&0), "{out}");

    // A snapshot relabelled as covering other events does not open; verify names it, and start-up
    // passes it over for a full replay that still serves everything.
    let db = Db::open(&server).await;
    db.execute("UPDATE read_model_snapshots SET sequence = sequence + 1000000")
        .await
        .unwrap();
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(!ok, "a relabelled snapshot passed verification: {out}");
    assert!(out.contains("does not load"), "{out}");
    server.start_again();
    assert_eq!(visible_state(&server).await, before);
}

on_both_stores!(start_up_from_a_snapshot_and_later_events_equals_a_full_replay);

/// A snapshot interval below one event is refused at start, naming the flag.
#[test]
fn a_snapshot_interval_below_one_event_is_refused() {
    let data = tempfile::tempdir().unwrap();
    for value in ["0", "-5"] {
        let args: Vec<String> = [
            "serve",
            "--data-dir",
            &data.path().join("data").display().to_string(),
            &format!("--snapshot-every={value}"),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let exited = common::run_trent_until_exit(&args, &[]);
        assert!(
            exited.status.is_some_and(|s| !s.success()),
            "refused: {}",
            exited.stderr
        );
        assert!(
            exited.stderr.contains("--snapshot-every"),
            "{}",
            exited.stderr
        );
    }
}
