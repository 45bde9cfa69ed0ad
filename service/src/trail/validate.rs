//! `trent trail validate DIR`: checks an export directory with nothing but its files, like
//! `aws cloudtrail validate-logs`. Every digest's signature (string-to-sign as CloudTrail defines
//! it) and location, every chain link, every listed log file's SHA-256; and what no digest
//! accounts for: deleted digests or log files, added log files, records present twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::digest::{signature_object, string_to_sign, DigestFile};
use super::layout::{gunzip, list_objects, sha256_hex, PUBLIC_KEY_DIR};
use super::signing::{fingerprint, parse_public_pem, verify_hex};
use super::state::ExportState;

/// What a file is in the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A digest file (`CloudTrail-Digest/`).
    Digest,
    /// A log file (`CloudTrail/`).
    Log,
    /// Anything else under `AWSLogs/`.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Digest => "digest",
            FileKind::Log => "log",
            FileKind::Other => "file",
        })
    }
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVerdict {
    /// Digest or log file.
    pub kind: FileKind,
    /// Its object path under the export directory.
    pub object: String,
    /// `None` when valid, else why not.
    pub problem: Option<String>,
}

/// The outcome of validating a directory.
#[derive(Debug, Clone, Default)]
pub struct ValidationReport {
    /// One verdict per file found or expected, digests first.
    pub files: Vec<FileVerdict>,
    /// Problems that are not about a single file (forks, records present twice).
    pub problems: Vec<String>,
    /// Records in the valid log files.
    pub records: u64,
    /// Fingerprints of the public keys used.
    pub keys: Vec<String>,
}

impl ValidationReport {
    /// Whether everything checked out.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && self.files.iter().all(|f| f.problem.is_none())
    }

    fn count(&self, kind: FileKind) -> (usize, usize) {
        let all = self.files.iter().filter(|f| f.kind == kind);
        let valid = all.clone().filter(|f| f.problem.is_none()).count();
        (valid, all.count() - valid)
    }

    fn verdict(&mut self, kind: FileKind, object: &str, problem: Option<String>) {
        self.files.push(FileVerdict {
            kind,
            object: object.to_string(),
            problem,
        });
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.files {
            match &v.problem {
                None => writeln!(f, "VALID   {} {}", v.kind, v.object)?,
                Some(p) => writeln!(f, "INVALID {} {}: {p}", v.kind, v.object)?,
            }
        }
        for p in &self.problems {
            writeln!(f, "INVALID {p}")?;
        }
        let (dv, di) = self.count(FileKind::Digest);
        let (lv, li) = self.count(FileKind::Log);
        write!(
            f,
            "trail validate: {} digest files ({dv} valid, {di} invalid), {} log files ({lv} valid, {li} invalid), {} records; public keys {}: {}",
            dv + di,
            lv + li,
            self.records,
            self.keys.join(", "),
            if self.is_valid() { "VALID" } else { "INVALID" }
        )
    }
}

/// A digest whose signature and location verified.
struct GoodDigest {
    digest: DigestFile,
    hash: String,
    signature: String,
}

/// Validate the export directory `dir`. With `public_key` (a PEM or DER file), only that key is
/// trusted; otherwise the keys published in `dir/trent-digest-public-keys/`.
pub fn validate(dir: &Path, public_key: Option<&Path>) -> std::io::Result<ValidationReport> {
    let mut report = ValidationReport::default();
    let keys = load_keys(dir, public_key, &mut report)?;
    report.keys = keys.keys().cloned().collect();

    let layout = sort_objects(dir, &mut report);
    let mut digests = check_digests(dir, &layout.digests, &keys, &mut report);
    check_chains(&layout.digests, &mut digests, &mut report);
    check_newest_digests(dir, &mut report);
    check_log_files(dir, &digests, &layout.logs, &mut report);
    report
        .files
        .sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
    report
        .files
        .dedup_by(|a, b| a.kind == b.kind && a.object == b.object);
    Ok(report)
}

/// The digest and log files found under `AWSLogs/`.
struct Layout {
    /// Digest files (`CloudTrail-Digest/*.json.gz`).
    digests: BTreeSet<String>,
    /// Log files (`CloudTrail/*.json.gz`).
    logs: BTreeSet<String>,
}

/// Where each log file is listed: for each log object, the valid digests listing it and the
/// SHA-256 each gives it.
type Listings = HashMap<String, Vec<(String, String)>>;

/// Sort the files under `AWSLogs/` into digests and log files; report signature files whose
/// digest is gone and anything that is not part of the layout.
fn sort_objects(dir: &Path, report: &mut ValidationReport) -> Layout {
    let mut layout = Layout {
        digests: BTreeSet::new(),
        logs: BTreeSet::new(),
    };
    for object in &list_objects(dir, "AWSLogs", "") {
        if object.contains("/CloudTrail-Digest/") && object.ends_with(".json.gz") {
            layout.digests.insert(object.clone());
        } else if object.contains("/CloudTrail-Digest/") && object.ends_with(".json.gz.sig") {
            let digest = object.trim_end_matches(".sig");
            if !dir.join(digest).exists() {
                report.verdict(
                    FileKind::Digest,
                    digest,
                    Some("missing (deleted): its signature file is still there".into()),
                );
            }
        } else if object.contains("/CloudTrail/") && object.ends_with(".json.gz") {
            layout.logs.insert(object.clone());
        } else {
            report.verdict(
                FileKind::Other,
                object,
                Some("not part of the CloudTrail layout".into()),
            );
        }
    }
    layout
}

/// Check each digest on its own (readable, at the location it was signed for, signature valid),
/// giving each a verdict; returns the ones that passed.
fn check_digests(
    dir: &Path,
    digest_paths: &BTreeSet<String>,
    keys: &BTreeMap<String, Vec<u8>>,
    report: &mut ValidationReport,
) -> BTreeMap<String, GoodDigest> {
    let mut digests = BTreeMap::new();
    for object in digest_paths {
        match check_digest(dir, object, keys) {
            Ok(good) => {
                report.verdict(FileKind::Digest, object, None);
                digests.insert(object.clone(), good);
            }
            Err(problem) => report.verdict(FileKind::Digest, object, Some(problem)),
        }
    }
    digests
}

/// Check the digest chains: every previous digest present and linked by hash, signature and
/// time. Digests that do not chain become invalid and leave `digests`; a trail with more than one
/// chain start is a problem.
fn check_chains(
    digest_paths: &BTreeSet<String>,
    digests: &mut BTreeMap<String, GoodDigest>,
    report: &mut ValidationReport,
) {
    let mut chain_problems: Vec<(String, String)> = Vec::new();
    let mut starts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (object, good) in digests.iter() {
        let d = &good.digest;
        let trail = format!("{}/{}", d.aws_account_id, trail_region(object));
        let Some(prev_object) = &d.previous_digest_s3_object else {
            starts.entry(trail).or_default().push(object.clone());
            continue;
        };
        if !digest_paths.contains(prev_object) {
            report.verdict(
                FileKind::Digest,
                prev_object,
                Some(format!(
                    "missing (deleted): a gap in the digest chain, named as previous digest by {object}"
                )),
            );
            continue;
        }
        let Some(prev) = digests.get(prev_object) else {
            continue; // already reported invalid
        };
        if let Some(problem) = link_problem(d, prev_object, prev) {
            chain_problems.push((object.clone(), problem));
        }
    }
    for (object, problem) in chain_problems {
        if let Some(v) = report.files.iter_mut().find(|v| v.object == object) {
            v.problem = Some(problem);
        }
        digests.remove(&object);
    }
    report_forks(&starts, report);
}

/// Why digest `d` does not chain to its previous digest `prev` (at `prev_object`), if it does not.
fn link_problem(d: &DigestFile, prev_object: &str, prev: &GoodDigest) -> Option<String> {
    let mut wrong = Vec::new();
    if d.previous_digest_hash_value.as_deref() != Some(prev.hash.as_str()) {
        wrong.push("previousDigestHashValue");
    }
    if d.previous_digest_signature.as_deref() != Some(prev.signature.as_str()) {
        wrong.push("previousDigestSignature");
    }
    if d.digest_start_time != prev.digest.digest_end_time {
        wrong.push("digestStartTime");
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "does not chain to previous digest {prev_object}: {} differ",
            wrong.join(", ")
        )
    })
}

/// Report each trail (`ACCOUNT/REGION`) whose digests start more than one chain.
fn report_forks(starts: &BTreeMap<String, Vec<String>>, report: &mut ValidationReport) {
    for (trail, s) in starts {
        if s.len() > 1 {
            report.problems.push(format!(
                "trail {trail}: {} separate digest chains start at {} (the trail was exported again from scratch)",
                s.len(),
                s.join(", ")
            ));
        }
    }
}

/// The newest digest of each trail, according to the export state, must be there.
fn check_newest_digests(dir: &Path, report: &mut ValidationReport) {
    let Ok(state) = ExportState::load(dir) else {
        return;
    };
    for head in state.committed.trails.values() {
        if !dir.join(&head.digest_s3_object).exists()
            && !report
                .files
                .iter()
                .any(|v| v.object == head.digest_s3_object)
        {
            report.verdict(
                FileKind::Digest,
                &head.digest_s3_object,
                Some("missing (deleted): the newest digest of its trail according to the export state".into()),
            );
        }
    }
}

/// Check the log files: each one listed by a valid digest present and matching its hash, none
/// unlisted, no record twice; counts the records of the valid ones.
fn check_log_files(
    dir: &Path,
    digests: &BTreeMap<String, GoodDigest>,
    log_paths: &BTreeSet<String>,
    report: &mut ValidationReport,
) {
    let listed = listings(digests);
    let mut seen_events: HashMap<String, String> = HashMap::new();
    let mut expected: Vec<_> = listed.iter().collect();
    expected.sort_by_key(|(object, _)| *object);
    for (object, by) in expected {
        let present = log_paths.contains(object);
        let problem = check_listed_log(dir, object, by, present, &mut seen_events, report);
        report.verdict(FileKind::Log, object, problem);
    }
    for object in log_paths {
        if !listed.contains_key(object) {
            report.verdict(
                FileKind::Log,
                object,
                Some("not listed in any valid digest (added, or the digest that lists it was deleted or altered)".into()),
            );
        }
    }
}

/// Which valid digests list each log file, with the hash each gives it.
fn listings(digests: &BTreeMap<String, GoodDigest>) -> Listings {
    let mut listed = Listings::new();
    for (object, good) in digests {
        for entry in &good.digest.log_files {
            listed
                .entry(entry.s3_object.clone())
                .or_default()
                .push((object.clone(), entry.hash_value.clone()));
        }
    }
    listed
}

/// Check one listed log file (`present` when it is in the directory) against the digests `by`
/// that list it; when it is valid, count its records. Returns its problem, if any.
fn check_listed_log(
    dir: &Path,
    object: &str,
    by: &[(String, String)],
    present: bool,
    seen_events: &mut HashMap<String, String>,
    report: &mut ValidationReport,
) -> Option<String> {
    let first_digest = by.first().map_or("", |(d, _)| d.as_str());
    let mut problems = Vec::new();
    if by.len() > 1 {
        problems.push(format!(
            "listed by {} digests ({})",
            by.len(),
            by.iter()
                .map(|(d, _)| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !present {
        problems.push(format!(
            "missing (deleted): listed in digest {first_digest}"
        ));
    } else {
        match std::fs::read(dir.join(object)).map(|b| gunzip(&b)) {
            Err(e) => problems.push(format!("unreadable: {e}")),
            Ok(Err(_)) => problems.push(format!(
                "not intact gzip (modified after digest {first_digest})"
            )),
            Ok(Ok(content)) => {
                let actual = sha256_hex(&content);
                for (digest_object, hash) in by {
                    if &actual != hash {
                        problems.push(format!(
                            "content does not match its SHA-256 in digest {digest_object} (modified, replaced or swapped)"
                        ));
                    }
                }
                if problems.is_empty() {
                    count_records(object, &content, seen_events, report);
                }
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn trail_region(object: &str) -> &str {
    object.split('/').nth(3).unwrap_or_default()
}

fn check_digest(
    dir: &Path,
    object: &str,
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<GoodDigest, String> {
    let bytes = std::fs::read(dir.join(object)).map_err(|e| format!("unreadable: {e}"))?;
    let content = gunzip(&bytes).map_err(|_| "not intact gzip (modified)".to_string())?;
    let digest: DigestFile = serde_json::from_slice(&content)
        .map_err(|e| format!("not a digest file (modified): {e}"))?;
    if digest.digest_s3_object != object {
        return Err(format!(
            "signed for location {} (moved, renamed or swapped)",
            digest.digest_s3_object
        ));
    }
    let signature = std::fs::read_to_string(dir.join(signature_object(object)))
        .map_err(|_| format!("signature file {} missing", signature_object(object)))?
        .trim()
        .to_string();
    let key = keys
        .get(&digest.digest_public_key_fingerprint)
        .ok_or_else(|| {
            format!(
                "no trusted public key with fingerprint {}",
                digest.digest_public_key_fingerprint
            )
        })?;
    let hash = sha256_hex(&content);
    if !verify_hex(key, string_to_sign(&digest, &hash).as_bytes(), &signature) {
        return Err("signature does not verify (digest or its signature altered)".into());
    }
    Ok(GoodDigest {
        digest,
        hash,
        signature,
    })
}

fn count_records(
    object: &str,
    content: &[u8],
    seen: &mut HashMap<String, String>,
    report: &mut ValidationReport,
) {
    #[derive(serde::Deserialize)]
    struct LogFile {
        #[serde(rename = "Records")]
        records: Vec<EventId>,
    }
    #[derive(serde::Deserialize)]
    struct EventId {
        #[serde(rename = "eventID")]
        event_id: Option<String>,
    }
    let Ok(file) = serde_json::from_slice::<LogFile>(content) else {
        report
            .problems
            .push(format!("log {object}: not a CloudTrail log file"));
        return;
    };
    for r in file.records {
        report.records += 1;
        if let Some(id) = r.event_id {
            if let Some(first) = seen.insert(id.clone(), object.to_string()) {
                report.problems.push(format!(
                    "record {id} appears twice: in {first} and {object}"
                ));
            }
        }
    }
}

fn load_keys(
    dir: &Path,
    pinned: Option<&Path>,
    report: &mut ValidationReport,
) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut keys = BTreeMap::new();
    if let Some(path) = pinned {
        let bytes = std::fs::read(path)?;
        let der = std::str::from_utf8(&bytes)
            .ok()
            .and_then(parse_public_pem)
            .unwrap_or(bytes);
        keys.insert(fingerprint(&der), der);
        return Ok(keys);
    }
    let key_dir: PathBuf = dir.join(PUBLIC_KEY_DIR);
    for object in list_objects(dir, PUBLIC_KEY_DIR, ".pem") {
        let name = object.rsplit('/').next().unwrap_or_default();
        let Some(der) = std::fs::read_to_string(dir.join(&object))
            .ok()
            .and_then(|t| parse_public_pem(&t))
        else {
            report.verdict(
                FileKind::Other,
                &object,
                Some("not a PEM public key".into()),
            );
            continue;
        };
        let fp = fingerprint(&der);
        if name != format!("{fp}.pem") {
            report.verdict(
                FileKind::Other,
                &object,
                Some(format!("its fingerprint is {fp}, not its name")),
            );
            continue;
        }
        keys.insert(fp, der);
    }
    if keys.is_empty() {
        report.problems.push(format!(
            "no public key in {} (and none given with --public-key)",
            key_dir.display()
        ));
    }
    Ok(keys)
}
