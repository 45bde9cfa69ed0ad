//! `trent trail export`: audit records after the saved resume point become gzip log files, then
//! one signed digest per account and region, then the new resume point. Refuses to go on when
//! the store no longer continues the chain it exported before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::digest::{string_to_sign, DigestFile, LogFileEntry, HASH_ALGORITHM};
use super::layout::{
    gunzip, gzip, sha256_hex, slice_of, write_atomic, TrailId, PUBLIC_KEY_DIR, TMP_DIR,
};
use super::signing::{DigestKey, SIGNATURE_ALGORITHM};
use super::state::{ExportState, PendingDigest, PendingRun, Position, TrailHead};
use super::TrailError;
use crate::audit::chain::link;
use crate::audit::record::cloudtrail_time;
use crate::store::{SharedStore, StoredAuditRecord};

/// How many audit records are read from the store at a time.
const PAGE: i64 = 1000;

/// What an export run is told.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The export directory (the local "bucket").
    pub out: PathBuf,
    /// The private digest key (PKCS#8 DER), created 0600 on first use.
    pub key_file: PathBuf,
    /// The trail name in digest file names.
    pub trail_name: String,
    /// At most this many records per log file (a file also never spans two 5-minute slices).
    pub max_records_per_file: usize,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Records written to log files.
    pub records: u64,
    /// Log files written.
    pub log_files: usize,
    /// Digest files written.
    pub digests: usize,
    /// The last exported audit sequence after the run.
    pub last_sequence: i64,
    /// Whether the run first finished a run that had stopped midway.
    pub finished_interrupted_run: bool,
    /// Fingerprint of the digest key.
    pub key_fingerprint: String,
}

/// A log file being filled.
struct OpenFile {
    slice: DateTime<Utc>,
    first_sequence: i64,
    records: Vec<String>,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
}

/// Export every record after the saved resume point of `opts.out`; `now` ends the digests' period.
pub async fn export(
    store: &SharedStore,
    opts: &ExportOptions,
    now: DateTime<Utc>,
) -> Result<ExportReport, TrailError> {
    let out = &opts.out;
    let bucket = prepare_dir(out)?;
    let key = publish_key(out, &opts.key_file)?;
    let mut report = ExportReport {
        key_fingerprint: key.fingerprint(),
        ..Default::default()
    };

    let mut state = ExportState::load(out)?;
    if let Some(pending) = state.pending.take() {
        finish(out, &mut state, pending)?;
        report.finished_interrupted_run = true;
    }
    let mut position = state.committed.clone();
    check_anchor(store, &position).await?;

    let written = write_log_files(
        store,
        out,
        &bucket,
        opts.max_records_per_file,
        &mut position,
    )
    .await?;
    report.records = written.records;
    report.log_files = written.files.values().map(Vec::len).sum();
    report.last_sequence = position.last_sequence;
    if report.records == 0 {
        return Ok(report);
    }

    // One digest per known trail, all ending at the same second, after every previous end.
    let trails = digest_trails(&position, &written.files);
    let end = earliest_end(now, written.newest_event, &position);
    let end = unused_end(out, &opts.trail_name, &trails, end);
    let digests = sign_digests(
        &key,
        &bucket,
        &opts.trail_name,
        end,
        trails,
        written.files,
        &mut position,
    )?;
    report.digests = digests.len();
    let pending = PendingRun {
        next: position,
        digests,
    };
    commit_run(out, &mut state, pending)?;
    Ok(report)
}

/// Create the export directory `out` if need be, and remove what an interrupted atomic write
/// left behind (never renamed into place). Returns the bucket name: its canonical path.
fn prepare_dir(out: &Path) -> Result<String, TrailError> {
    std::fs::create_dir_all(out).map_err(|e| TrailError::io(out, e))?;
    let bucket = std::fs::canonicalize(out)
        .map_err(|e| TrailError::io(out, e))?
        .display()
        .to_string();
    match std::fs::remove_dir_all(out.join(TMP_DIR)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(TrailError::io(&out.join(TMP_DIR), e))
        }
        _ => {}
    }
    Ok(bucket)
}

/// Load (or create) the digest key at `key_file` and publish its public key in `out`, unless
/// already there.
fn publish_key(out: &Path, key_file: &Path) -> Result<DigestKey, TrailError> {
    let key = DigestKey::load_or_create(key_file)?;
    let pem_object = format!("{PUBLIC_KEY_DIR}/{}.pem", key.fingerprint());
    if !out.join(&pem_object).exists() {
        write_atomic(out, &pem_object, key.public_pem().as_bytes())?;
    }
    Ok(key)
}

/// What the log files of one run came to.
#[derive(Default)]
struct Written {
    /// The log files written, by trail, in order.
    files: BTreeMap<TrailId, Vec<LogFileEntry>>,
    /// The newest event time of the records written.
    newest_event: Option<DateTime<Utc>>,
    /// Records written.
    records: u64,
}

/// The log files of one run while they are being written.
struct LogWriter<'a> {
    out: &'a Path,
    bucket: &'a str,
    /// At most this many records per file (at least 1).
    max_records: usize,
    /// The file being filled, per trail.
    open: BTreeMap<TrailId, OpenFile>,
    written: Written,
}

/// Write every audit record of the store after `position` to log files, advancing `position`
/// past each one; each record must continue the chain.
async fn write_log_files(
    store: &SharedStore,
    out: &Path,
    bucket: &str,
    max_records_per_file: usize,
    position: &mut Position,
) -> Result<Written, TrailError> {
    let mut writer = LogWriter {
        out,
        bucket,
        max_records: max_records_per_file.max(1),
        open: BTreeMap::new(),
        written: Written::default(),
    };
    loop {
        let page = store.read_audit(position.last_sequence, PAGE).await?;
        let full = page.len() as i64 == PAGE;
        for r in page {
            writer.add(position, r)?;
        }
        if !full {
            break;
        }
    }
    writer.close()
}

impl LogWriter<'_> {
    /// Add the record `r`, which must continue the chain from `position`, to its trail's log file
    /// (first writing that file when `r` would not fit in it), then advance `position` to it.
    fn add(&mut self, position: &mut Position, r: StoredAuditRecord) -> Result<(), TrailError> {
        check_link(position, &r)?;
        let trail = TrailId::of_record_text(&r.record).map_err(|e| {
            TrailError::Diverged(format!("audit record {} is not JSON: {e}", r.sequence))
        })?;
        let slice = slice_of(r.event_time);
        let cut = self
            .open
            .get(&trail)
            .is_some_and(|f| f.slice != slice || f.records.len() >= self.max_records);
        if cut {
            if let Some(f) = self.open.remove(&trail) {
                self.write(trail.clone(), f)?;
            }
        }
        let f = self.open.entry(trail).or_insert_with(|| OpenFile {
            slice,
            first_sequence: r.sequence,
            records: Vec::new(),
            oldest: r.event_time,
            newest: r.event_time,
        });
        f.records.push(r.record);
        f.oldest = f.oldest.min(r.event_time);
        f.newest = f.newest.max(r.event_time);
        self.written.newest_event = self.written.newest_event.max(Some(r.event_time));
        position.last_sequence = r.sequence;
        position.last_record_hash = r.hash;
        self.written.records += 1;
        Ok(())
    }

    /// Write the log file `f` of `trail` and note it.
    fn write(&mut self, trail: TrailId, f: OpenFile) -> Result<(), TrailError> {
        let entry = write_log_file(self.out, self.bucket, &trail, f)?;
        self.written.files.entry(trail).or_default().push(entry);
        Ok(())
    }

    /// Write the files still open, in trail order.
    fn close(mut self) -> Result<Written, TrailError> {
        for (trail, f) in std::mem::take(&mut self.open) {
            self.write(trail, f)?;
        }
        Ok(self.written)
    }
}

/// The trails that get a digest: every one with a digest before, and every one with new log
/// files; sorted.
fn digest_trails(
    position: &Position,
    files: &BTreeMap<TrailId, Vec<LogFileEntry>>,
) -> Vec<TrailId> {
    let mut trails: Vec<TrailId> = position
        .trails
        .values()
        .map(|h| TrailId {
            account: h.account.clone(),
            region: h.region.clone(),
        })
        .collect();
    trails.extend(files.keys().cloned());
    trails.sort();
    trails.dedup();
    trails
}

/// The earliest end for this run's digests: `now` or the newest event, whichever is later (to
/// the second), and after every previous digest's end.
fn earliest_end(
    now: DateTime<Utc>,
    newest_event: Option<DateTime<Utc>>,
    position: &Position,
) -> DateTime<Utc> {
    let mut end = truncate_to_second(now).max(truncate_to_second(newest_event.unwrap_or(now)));
    for head in position.trails.values() {
        if let Some(prev_end) = parse_time(&head.digest_end_time) {
            end = end.max(prev_end + Duration::seconds(1));
        }
    }
    end
}

/// The first second from `end` on at which none of the `trails` already has a digest in `out`
/// (say, of an earlier export from scratch): a digest already there is never replaced.
fn unused_end(
    out: &Path,
    trail_name: &str,
    trails: &[TrailId],
    mut end: DateTime<Utc>,
) -> DateTime<Utc> {
    while trails
        .iter()
        .any(|t| out.join(t.digest_object(trail_name, end)).exists())
    {
        end += Duration::seconds(1);
    }
    end
}

/// Sign one digest per trail in `trails`, ending at `end`, listing its new log files from
/// `files`; each becomes its trail's newest digest in `position`.
fn sign_digests(
    key: &DigestKey,
    bucket: &str,
    trail_name: &str,
    end: DateTime<Utc>,
    trails: Vec<TrailId>,
    mut files: BTreeMap<TrailId, Vec<LogFileEntry>>,
    position: &mut Position,
) -> Result<Vec<PendingDigest>, TrailError> {
    let mut digests = Vec::new();
    for trail in trails {
        let listed = files.remove(&trail).unwrap_or_default();
        let previous = position.trails.get(&trail.key());
        let (digest, pending) =
            sign_digest(key, bucket, trail_name, &trail, end, previous, listed)?;
        position
            .trails
            .insert(trail.key(), head_of(&trail, bucket, &digest, &pending));
        digests.push(pending);
    }
    Ok(digests)
}

/// The trail head that the signed `digest` (written as `pending`) of `trail` makes.
fn head_of(
    trail: &TrailId,
    bucket: &str,
    digest: &DigestFile,
    pending: &PendingDigest,
) -> TrailHead {
    TrailHead {
        account: trail.account.clone(),
        region: trail.region.clone(),
        digest_s3_bucket: bucket.to_string(),
        digest_s3_object: digest.digest_s3_object.clone(),
        digest_end_time: digest.digest_end_time.clone(),
        digest_hash_value: sha256_hex(pending.content.as_bytes()),
        digest_signature: pending.signature.clone(),
    }
}

/// Journal the run `pending` in the export state first (from then on a crash is finished by the
/// next run, never redone), then write its digests and commit it.
fn commit_run(out: &Path, state: &mut ExportState, pending: PendingRun) -> Result<(), TrailError> {
    state.pending = Some(pending.clone());
    state.save(out)?;
    state.pending = None;
    finish(out, state, pending)
}

/// The previous run's last record must still be in the store with the hash it was exported with.
async fn check_anchor(store: &SharedStore, position: &Position) -> Result<(), TrailError> {
    if position.last_sequence == 0 {
        return Ok(());
    }
    let found = store.read_audit(position.last_sequence - 1, 1).await?;
    match found.first() {
        Some(r) if r.sequence == position.last_sequence => {
            if r.hash != position.last_record_hash {
                return Err(TrailError::Diverged(format!(
                    "audit record {} no longer has the chain hash it was exported with: the audit table was rewritten after export",
                    r.sequence
                )));
            }
            if link(&r.prev_hash, &r.record) != r.hash {
                return Err(TrailError::Diverged(format!(
                    "audit record {} does not match its hash: the record was altered after export",
                    r.sequence
                )));
            }
            Ok(())
        }
        _ => Err(TrailError::Diverged(format!(
            "audit record {} (the last one exported) is missing from the store",
            position.last_sequence
        ))),
    }
}

/// Each new record must continue the chain from the last exported one.
fn check_link(position: &Position, r: &StoredAuditRecord) -> Result<(), TrailError> {
    let expected = position.last_sequence + 1;
    if r.sequence != expected {
        return Err(TrailError::Diverged(format!(
            "expected audit record {expected}, the store returned {}",
            r.sequence
        )));
    }
    if r.prev_hash != position.last_record_hash {
        return Err(TrailError::Diverged(format!(
            "audit record {} does not link to the last exported record (prev_hash differs): the audit table was rewritten",
            r.sequence
        )));
    }
    if link(&r.prev_hash, &r.record) != r.hash {
        return Err(TrailError::Diverged(format!(
            "audit record {} does not match its hash: the record was altered",
            r.sequence
        )));
    }
    Ok(())
}

/// Write one log file; its name depends only on its trail and first record, so a run redone
/// after a crash rewrites the same files instead of adding new ones.
fn write_log_file(
    out: &Path,
    bucket: &str,
    trail: &TrailId,
    f: OpenFile,
) -> Result<LogFileEntry, TrailError> {
    let mut content =
        String::with_capacity(f.records.iter().map(|r| r.len() + 1).sum::<usize>() + 16);
    content.push_str("{\"Records\":[");
    for (i, r) in f.records.iter().enumerate() {
        if i > 0 {
            content.push(',');
        }
        content.push_str(r);
    }
    content.push_str("]}");
    let unique = &sha256_hex(format!("{}/{}", trail.key(), f.first_sequence).as_bytes())[..16];
    let object = trail.log_object(f.slice, unique);
    write_atomic(out, &object, &gzip(content.as_bytes()))?;
    Ok(LogFileEntry {
        s3_bucket: bucket.to_string(),
        s3_object: object,
        hash_value: sha256_hex(content.as_bytes()),
        hash_algorithm: HASH_ALGORITHM.to_string(),
        newest_event_time: cloudtrail_time(f.newest),
        oldest_event_time: cloudtrail_time(f.oldest),
    })
}

#[allow(clippy::too_many_arguments)]
fn sign_digest(
    key: &DigestKey,
    bucket: &str,
    trail_name: &str,
    trail: &TrailId,
    end: DateTime<Utc>,
    previous: Option<&TrailHead>,
    log_files: Vec<LogFileEntry>,
) -> Result<(DigestFile, PendingDigest), TrailError> {
    let newest = log_files.iter().map(|f| f.newest_event_time.clone()).max();
    let oldest = log_files.iter().map(|f| f.oldest_event_time.clone()).min();
    let end_text = cloudtrail_time(end);
    let start = match previous {
        Some(p) => p.digest_end_time.clone(),
        None => oldest.clone().unwrap_or_else(|| end_text.clone()),
    };
    let digest = DigestFile {
        aws_account_id: trail.account.clone(),
        digest_start_time: start,
        digest_end_time: end_text,
        digest_s3_bucket: bucket.to_string(),
        digest_s3_object: trail.digest_object(trail_name, end),
        digest_public_key_fingerprint: key.fingerprint(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.to_string(),
        newest_event_time: newest,
        oldest_event_time: oldest,
        previous_digest_s3_bucket: previous.map(|p| p.digest_s3_bucket.clone()),
        previous_digest_s3_object: previous.map(|p| p.digest_s3_object.clone()),
        previous_digest_hash_value: previous.map(|p| p.digest_hash_value.clone()),
        previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.to_string()),
        previous_digest_signature: previous.map(|p| p.digest_signature.clone()),
        log_files,
    };
    let content = serde_json::to_string(&digest)
        .map_err(|e| TrailError::Corrupt(format!("cannot encode a digest: {e}")))?;
    let signature =
        key.sign_hex(string_to_sign(&digest, &sha256_hex(content.as_bytes())).as_bytes())?;
    let pending = PendingDigest {
        object: digest.digest_s3_object.clone(),
        content,
        signature,
    };
    Ok((digest, pending))
}

/// Write a journaled run's digests (idempotent), then commit its position.
fn finish(out: &Path, state: &mut ExportState, run: PendingRun) -> Result<(), TrailError> {
    for d in &run.digests {
        // A journaled digest may already be written; any other file there is never replaced.
        if let Ok(existing) = std::fs::read(out.join(&d.object)) {
            if gunzip(&existing).ok().as_deref() != Some(d.content.as_bytes()) {
                return Err(TrailError::Corrupt(format!(
                    "refusing to replace the digest {} already in {}",
                    d.object,
                    out.display()
                )));
            }
        }
        write_atomic(out, &d.object, &gzip(d.content.as_bytes()))?;
        write_atomic(
            out,
            &super::digest::signature_object(&d.object),
            format!("{}\n", d.signature).as_bytes(),
        )?;
    }
    state.committed = run.next;
    state.pending = None;
    state.save(out)
}

fn truncate_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
