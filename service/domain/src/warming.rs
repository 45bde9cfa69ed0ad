//! The read model while it warms up: keys and aliases loaded from their own streams on first use.
//!
//! A server starts serving before its whole model is loaded. Until the full model (the newest
//! snapshot plus the events after it, loaded in the background) takes its place, the model holds
//! only the single-Region keys and the aliases that requests asked for, each made from its own
//! stream's events (`adopt_stream`). Committed events keep arriving in sequence order meanwhile:
//! one for a held key or alias applies as usual; one it already holds (its load read ahead of the
//! model) is passed over; one for anything not held is remembered by stream and version, so that
//! a load which read its stream before that event is refused as stale and read again. What a
//! warming model cannot answer (lists, multi-Region keys, custom key stores, anything over all
//! keys) waits for the full model; the service decides which calls may run early.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use trent_store::StoredEvent;

use crate::events::AliasEvent;
use crate::read_model::{ProjectionError, ReadModel};

/// What `adopt_stream` did with a stream's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// The model now holds what the stream makes (or already held it, or as much as it is newer).
    Held,
    /// An event of the stream newer than the ones read arrived meanwhile: read the stream again.
    Stale,
}

/// What a warming model knows beyond the keys and aliases it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warming {
    /// Per stream of anything not held, the highest version of the events passed over.
    passed_over: HashMap<String, i64>,
    /// Streams read and found empty (no such key or alias yet): held at version 0, so that a
    /// "not found" is an answer and a later creation applies.
    absent: HashSet<String>,
}

impl ReadModel {
    /// An empty model that loads keys and aliases on first use, positioned after the store's
    /// newest event (`last_sequence`), whose later events it follows.
    pub fn warming(last_sequence: i64) -> Self {
        ReadModel {
            last_sequence,
            warming: Some(Warming::default()),
            ..ReadModel::default()
        }
    }

    /// Whether the model holds every key and alias (false while it warms up).
    pub fn is_complete(&self) -> bool {
        self.warming.is_none()
    }

    /// Whether the model holds the stream's key or alias (always, once complete).
    pub fn holds_stream(&self, stream: &str) -> bool {
        self.is_complete() || self.held_version(stream).is_some()
    }

    /// The stream version of the key or alias held for `stream`, if one is (0: known absent).
    fn held_version(&self, stream: &str) -> Option<i64> {
        let held = if let Some(identity) = stream.strip_prefix("key/") {
            self.keys.get(identity).map(|k| k.stream_version)
        } else if stream.starts_with("alias/") {
            self.alias_versions.get(stream).copied()
        } else {
            None
        };
        held.or_else(|| {
            self.warming
                .as_ref()
                .filter(|w| w.absent.contains(stream))
                .map(|_| 0)
        })
    }

    /// Apply one event while warming up (see the module comment). An event that does not apply
    /// to what is held drops it, so that its next use reads it again from the store.
    pub(crate) fn apply_while_warming(
        &mut self,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let held = self.held_version(&event.stream);
        match held {
            Some(version) if event.version <= version => Ok(()),
            Some(version) if event.version == version + 1 => {
                let applied = if event.stream.starts_with("alias/") {
                    self.apply_alias(event)
                } else {
                    self.apply_key(event)
                };
                if let Some(warming) = &mut self.warming {
                    warming.absent.remove(&event.stream);
                }
                if applied.is_err() {
                    self.forget(&event.stream);
                    self.pass_over(event);
                }
                applied
            }
            _ => {
                self.forget(&event.stream);
                self.pass_over(event);
                Ok(())
            }
        }
    }

    /// Remember that an event of a stream not held went by.
    fn pass_over(&mut self, event: &StoredEvent) {
        if let Some(warming) = &mut self.warming {
            let version = warming.passed_over.entry(event.stream.clone()).or_insert(0);
            *version = (*version).max(event.version);
        }
    }

    /// Stop holding the key or alias of a stream.
    fn forget(&mut self, stream: &str) {
        if let Some(warming) = &mut self.warming {
            warming.absent.remove(stream);
        }
        if let Some(identity) = stream.strip_prefix("key/") {
            self.keys.remove(identity);
        } else if stream.starts_with("alias/") {
            self.alias_versions.remove(stream);
            if let Some(at) = AliasEvent::parse_stream(stream) {
                self.aliases.remove(&at);
            }
        }
    }

    /// Hold the single-Region key or the alias that `events` (every event of `stream`, in version
    /// order, read from the store) make. Stale when an event of the stream newer than the last
    /// one read was passed over meanwhile; a complete model holds everything already. A
    /// multi-Region key's stream is refused: its keys share events across Regions' streams and
    /// load with the full model.
    pub fn adopt_stream(
        &mut self,
        stream: &str,
        events: &[StoredEvent],
    ) -> Result<Adopted, ProjectionError> {
        let Some(warming) = &self.warming else {
            return Ok(Adopted::Held);
        };
        let loaded = events.last().map_or(0, |e| e.version);
        if warming.passed_over.get(stream).is_some_and(|v| *v > loaded) {
            return Ok(Adopted::Stale);
        }
        if events.iter().any(|e| e.stream != stream) {
            return Err(ProjectionError::Inconsistent {
                sequence: self.last_sequence,
                message: format!("events of another stream given as {stream}"),
            });
        }
        if stream
            .strip_prefix("key/")
            .is_some_and(|id| id.contains('/'))
        {
            return Err(ProjectionError::Inconsistent {
                sequence: self.last_sequence,
                message: format!("{stream} is a multi-Region key's: it loads with the model"),
            });
        }
        if self.held_version(stream).is_some_and(|v| v >= loaded) {
            return Ok(Adopted::Held);
        }
        if loaded == 0 {
            if let Some(warming) = &mut self.warming {
                warming.absent.insert(stream.to_string());
            }
            return Ok(Adopted::Held);
        }
        let mut own = ReadModel::default();
        for event in events {
            own.apply(event)?;
        }
        if let Some(identity) = stream.strip_prefix("key/") {
            if let Some(key) = own.keys.remove(identity) {
                self.keys.insert(identity.to_string(), key);
            }
        } else if stream.starts_with("alias/") {
            self.forget(stream);
            self.alias_versions.insert(stream.to_string(), loaded);
            if let Some(at) = AliasEvent::parse_stream(stream) {
                if let Some(entry) = own.aliases.remove(&at) {
                    self.aliases.insert(at, entry);
                }
            }
        }
        Ok(Adopted::Held)
    }

    /// Move the full model into this warming one's place, if both stand at the same sequence
    /// (true); otherwise leave both as they are (it has events to catch up on, or this one has).
    pub fn complete_with(&mut self, full: &mut ReadModel) -> bool {
        if self.is_complete() || !full.is_complete() || full.last_sequence != self.last_sequence {
            return false;
        }
        *self = std::mem::take(full);
        true
    }

    /// The keys held, shared (for tests and diagnostics).
    pub fn held_key(&self, identity: &str) -> Option<Arc<crate::key::KeySnapshot>> {
        self.keys.get(identity).cloned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::events::KeyEvent;
    use crate::key::KeyState;
    use crate::read_model::tests::{created, stored};

    fn key_event(seq: i64, id: &str, version: i64, event: KeyEvent) -> StoredEvent {
        stored(
            seq,
            &format!("key/{id}"),
            version,
            serde_json::to_value(event).unwrap(),
        )
    }

    fn disabled(seq: i64, id: &str, version: i64) -> StoredEvent {
        let at = Utc::now();
        key_event(seq, id, version, KeyEvent::KeyDisabled { schema: 1, at })
    }

    fn enabled(seq: i64, id: &str, version: i64) -> StoredEvent {
        let at = Utc::now();
        key_event(seq, id, version, KeyEvent::KeyEnabled { schema: 1, at })
    }

    fn alias(seq: i64, name: &str, target: &str, version: i64) -> StoredEvent {
        let e = if version == 1 {
            AliasEvent::AliasCreated {
                schema: 1,
                account: "1".into(),
                region: "us-east-1".into(),
                name: name.into(),
                target_key_id: target.into(),
                at: Utc::now(),
            }
        } else {
            AliasEvent::AliasRetargeted {
                schema: 1,
                target_key_id: target.into(),
                at: Utc::now(),
            }
        };
        stored(
            seq,
            &AliasEvent::stream_for("1", "us-east-1", name),
            version,
            serde_json::to_value(e).unwrap(),
        )
    }

    /// The whole log, applied in order to a complete model, is what a warming model that loads
    /// on first use must agree with.
    fn log() -> Vec<StoredEvent> {
        vec![
            created(1, "a", "1"),
            created(2, "b", "1"),
            alias(3, "alias/x", "a", 1),
            disabled(4, "a", 2),
            alias(5, "alias/x", "b", 2),
            enabled(6, "a", 3),
            disabled(7, "b", 2),
        ]
    }

    fn of_stream(events: &[StoredEvent], stream: &str, until: i64) -> Vec<StoredEvent> {
        events
            .iter()
            .filter(|e| e.stream == stream && e.sequence <= until)
            .cloned()
            .collect()
    }

    #[test]
    fn a_key_loaded_on_first_use_follows_later_events_like_the_full_model() {
        let all = log();
        let mut full = ReadModel::default();
        for e in &all {
            full.apply(e).unwrap();
        }
        // Warming from sequence 3: keys load from their streams as read then.
        let mut warm = ReadModel::warming(3);
        assert!(!warm.is_complete());
        assert!(warm.live_key("us-east-1", "a").is_none());
        assert_eq!(
            warm.adopt_stream("key/a", &of_stream(&all, "key/a", 3))
                .unwrap(),
            Adopted::Held
        );
        assert_eq!(
            warm.live_key("us-east-1", "a").unwrap().state,
            KeyState::Enabled
        );
        for e in &all[3..] {
            warm.apply(e).unwrap();
        }
        assert_eq!(warm.last_sequence(), 7);
        assert_eq!(
            warm.live_key("us-east-1", "a").unwrap(),
            full.live_key("us-east-1", "a").unwrap()
        );
        // "b" was never loaded: its events went by, and it is not held.
        assert!(warm.live_key("us-east-1", "b").is_none());
        assert!(!warm.holds_stream("key/b"));
    }

    #[test]
    fn a_load_that_read_before_a_passed_over_event_is_stale_and_a_fresh_one_holds() {
        let all = log();
        let mut warm = ReadModel::warming(3);
        // The request read key/b's stream at sequence 3; event 7 (b disabled) was applied
        // before it took the lock.
        let early = of_stream(&all, "key/b", 3);
        for e in &all[3..] {
            warm.apply(e).unwrap();
        }
        assert_eq!(warm.adopt_stream("key/b", &early).unwrap(), Adopted::Stale);
        assert!(warm.live_key("us-east-1", "b").is_none());
        let fresh = of_stream(&all, "key/b", 7);
        assert_eq!(warm.adopt_stream("key/b", &fresh).unwrap(), Adopted::Held);
        assert_eq!(
            warm.live_key("us-east-1", "b").unwrap().state,
            KeyState::Disabled
        );
    }

    #[test]
    fn a_load_that_read_ahead_of_the_model_is_not_applied_twice() {
        let all = log();
        let mut warm = ReadModel::warming(3);
        // Read at sequence 7 (committed, not yet applied here): the model then applies 4..7.
        assert_eq!(
            warm.adopt_stream("key/a", &of_stream(&all, "key/a", 7))
                .unwrap(),
            Adopted::Held
        );
        let held = warm.live_key("us-east-1", "a").unwrap().clone();
        assert_eq!(held.stream_version, 3);
        for e in &all[3..] {
            warm.apply(e).unwrap();
        }
        assert_eq!(warm.live_key("us-east-1", "a").unwrap(), &held);
    }

    #[test]
    fn aliases_load_from_their_stream_and_follow_retargeting() {
        let all = log();
        let mut warm = ReadModel::warming(3);
        let stream = AliasEvent::stream_for("1", "us-east-1", "alias/x");
        assert!(warm.alias("1", "us-east-1", "alias/x").is_none());
        warm.adopt_stream(&stream, &of_stream(&all, &stream, 3))
            .unwrap();
        assert_eq!(
            warm.alias("1", "us-east-1", "alias/x")
                .unwrap()
                .target_key_id,
            "a"
        );
        for e in &all[3..] {
            warm.apply(e).unwrap();
        }
        assert_eq!(
            warm.alias("1", "us-east-1", "alias/x")
                .unwrap()
                .target_key_id,
            "b"
        );
        // A name never written is held as absent ("not found" is an answer), and its creation
        // then applies.
        let none = AliasEvent::stream_for("1", "us-east-1", "alias/none");
        assert_eq!(warm.adopt_stream(&none, &[]).unwrap(), Adopted::Held);
        assert!(warm.holds_stream(&none));
        assert!(warm.alias("1", "us-east-1", "alias/none").is_none());
        warm.apply(&alias(8, "alias/none", "a", 1)).unwrap();
        assert_eq!(
            warm.alias("1", "us-east-1", "alias/none")
                .unwrap()
                .target_key_id,
            "a"
        );
    }

    #[test]
    fn a_key_read_as_absent_is_created_by_its_first_event() {
        let mut warm = ReadModel::warming(7);
        assert!(!warm.holds_stream("key/c"));
        assert_eq!(warm.adopt_stream("key/c", &[]).unwrap(), Adopted::Held);
        assert!(warm.holds_stream("key/c"));
        assert!(warm.live_key("us-east-1", "c").is_none());
        warm.apply(&created(8, "c", "1")).unwrap();
        assert_eq!(warm.live_key("us-east-1", "c").unwrap().stream_version, 1);
        // An absent stream whose creation went by before the read is stale, not absent.
        let mut warm = ReadModel::warming(7);
        warm.apply(&created(8, "d", "1")).unwrap();
        assert_eq!(warm.adopt_stream("key/d", &[]).unwrap(), Adopted::Stale);
    }

    #[test]
    fn an_event_out_of_step_with_a_held_key_drops_it_for_a_fresh_load() {
        let all = log();
        let mut warm = ReadModel::warming(3);
        warm.adopt_stream("key/a", &of_stream(&all, "key/a", 3))
            .unwrap();
        // Version 3 without version 2: what is held cannot be brought up to date in place.
        warm.apply(&all[5]).unwrap();
        assert!(warm.live_key("us-east-1", "a").is_none());
        assert_eq!(
            warm.adopt_stream("key/a", &of_stream(&all, "key/a", 3))
                .unwrap(),
            Adopted::Stale
        );
    }

    #[test]
    fn the_full_model_takes_over_only_at_the_same_sequence_and_multi_region_streams_wait_for_it() {
        let all = log();
        let mut full = ReadModel::default();
        for e in &all[..5] {
            full.apply(e).unwrap();
        }
        let mut warm = ReadModel::warming(3);
        assert!(
            warm.to_image().is_err(),
            "a warming model is never snapshotted"
        );
        let mut full = full;
        assert!(!warm.complete_with(&mut full));
        for e in &all[3..5] {
            warm.apply(e).unwrap();
        }
        assert!(warm.complete_with(&mut full));
        assert!(warm.is_complete());
        assert_eq!(warm.key_count(), 2);
        assert!(warm
            .adopt_stream("key/us-east-1/mrk-1", &[])
            .is_ok_and(|a| a == Adopted::Held));
        let mut warming = ReadModel::warming(0);
        let mut mrk = created(1, "mrk-1", "1");
        mrk.stream = "key/us-east-1/mrk-1".into();
        assert!(warming.adopt_stream("key/us-east-1/mrk-1", &[mrk]).is_err());
    }
}
