//! CloudTrail's bucket layout on a local directory: object paths of log and digest files, their
//! times, gzip, SHA-256, and atomic file writes. Pure path arithmetic plus small file helpers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::protocol::wire::field;
use crate::protocol::wire::set;
use aws_lc_rs::digest;
use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::TrailError;

/// The folder, under the export directory, that holds the published digest public keys.
pub const PUBLIC_KEY_DIR: &str = "trent-digest-public-keys";
/// The export state file, under the export directory.
pub const STATE_FILE: &str = ".trent-export.json";
/// Scratch space for atomic writes, under the export directory.
pub const TMP_DIR: &str = ".trent-tmp";
/// The account used for records without a well-formed `recipientAccountId`.
pub const UNATTRIBUTED_ACCOUNT: &str = "000000000000";
/// The region used for records without a well-formed `awsRegion`.
pub const UNKNOWN_REGION: &str = "unknown-region";

/// One trail of the layout: the log files and digests of an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrailId {
    /// 12-digit account id.
    pub account: String,
    /// Region name.
    pub region: String,
}

impl TrailId {
    /// The trail a CloudTrail record belongs to (`recipientAccountId`, `awsRegion`); values that
    /// are not safe path components fall back to fixed names.
    pub fn of_record(record: &serde_json::Value) -> Self {
        let account = record["recipientAccountId"]
            .as_str()
            .or_else(|| field(record, &["userIdentity", "accountId"]).as_str())
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(UNATTRIBUTED_ACCOUNT);
        let region = record["awsRegion"]
            .as_str()
            .filter(|r| is_region(r))
            .unwrap_or(UNKNOWN_REGION);
        TrailId {
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    /// The trail of a record given as JSON text (parses only the fields that route it).
    pub fn of_record_text(text: &str) -> serde_json::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Identity {
            #[serde(rename = "accountId")]
            account_id: Option<serde_json::Value>,
        }
        #[derive(serde::Deserialize)]
        struct Routing {
            #[serde(rename = "recipientAccountId")]
            recipient: Option<serde_json::Value>,
            #[serde(rename = "awsRegion")]
            region: Option<serde_json::Value>,
            #[serde(rename = "userIdentity")]
            identity: Option<Identity>,
        }
        let r: Routing = serde_json::from_str(text)?;
        let mut v = serde_json::json!({
            "recipientAccountId": r.recipient,
            "awsRegion": r.region,
        });
        if let Some(id) = r.identity {
            set(
                &mut v,
                "userIdentity",
                serde_json::json!({ "accountId": id.account_id }),
            );
        }
        Ok(Self::of_record(&v))
    }

    /// The key of this trail in the export state: `ACCOUNT/REGION`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }

    /// Object path of a log file whose records start in `slice` (`unique` tells files apart).
    pub fn log_object(&self, slice: DateTime<Utc>, unique: &str) -> String {
        format!(
            "AWSLogs/{a}/CloudTrail/{r}/{date}/{a}_CloudTrail_{r}_{t}_{unique}.json.gz",
            a = self.account,
            r = self.region,
            date = slice.format("%Y/%m/%d"),
            t = slice.format("%Y%m%dT%H%MZ"),
        )
    }

    /// Object path of the digest file of trail `trail_name` ending at `end`.
    pub fn digest_object(&self, trail_name: &str, end: DateTime<Utc>) -> String {
        format!(
            "AWSLogs/{a}/CloudTrail-Digest/{r}/{date}/{a}_CloudTrail-Digest_{r}_{trail_name}_{r}_{t}.json.gz",
            a = self.account,
            r = self.region,
            date = end.format("%Y/%m/%d"),
            t = end.format("%Y%m%dT%H%M%SZ"),
        )
    }
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !r.starts_with('-')
}

/// The start of the 5-minute slice holding `t`: log files never span two slices.
pub fn slice_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(300), 0).unwrap_or(t)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Gzip `bytes` (no file name, modification time 0: the same input gives the same file).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 6), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Decompress a gzip file's bytes; an error means the file is not intact gzip.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 8);
    GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// Write `contents` to `root/object` atomically: a temporary file in `root/.trent-tmp`, synced,
/// then renamed into place.
pub fn write_atomic(root: &Path, object: &str, contents: &[u8]) -> Result<(), TrailError> {
    let target = root.join(object);
    let tmp_dir = root.join(TMP_DIR);
    std::fs::create_dir_all(&tmp_dir).map_err(|e| TrailError::io(&tmp_dir, e))?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrailError::io(dir, e))?;
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tmp_dir.join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // The rename is durable only once its directory is.
        match target.parent() {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TrailError::io(&target, e)
    })
}

/// Every file under `root/sub` whose name ends with `suffix`, as object paths relative to `root`
/// (with `/` separators), sorted.
pub fn list_objects(root: &Path, sub: &str, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.join(sub)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if rel.ends_with(suffix) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn paths_follow_cloudtrail_layout() {
        let t = TrailId {
            account: "111122223333".into(),
            region: "us-east-2".into(),
        };
        let when = Utc.with_ymd_and_hms(2015, 8, 17, 15, 1, 31).unwrap();
        assert_eq!(
            t.digest_object("trent", when),
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_trent_us-east-2_20150817T150131Z.json.gz"
        );
        assert_eq!(
            t.log_object(slice_of(when), "0123456789abcdef"),
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1500Z_0123456789abcdef.json.gz"
        );
    }

    #[test]
    fn unsafe_account_and_region_fall_back() {
        let r = serde_json::json!({"awsRegion": "../../etc", "recipientAccountId": "x/y"});
        let t = TrailId::of_record(&r);
        assert_eq!(t.account, UNATTRIBUTED_ACCOUNT);
        assert_eq!(t.region, UNKNOWN_REGION);
    }

    #[test]
    fn routing_from_text_matches_routing_from_value() {
        for text in [
            r#"{"awsRegion":"eu-west-1","recipientAccountId":"111122223333","x":[1,{"y":2}]}"#,
            r#"{"awsRegion":"us-east-1","userIdentity":{"accountId":"444455556666","type":"IAMUser"}}"#,
            r#"{"awsRegion":7,"recipientAccountId":null}"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                TrailId::of_record_text(text).unwrap(),
                TrailId::of_record(&v)
            );
        }
    }

    #[test]
    fn gzip_round_trips() {
        assert_eq!(gunzip(&gzip(b"hello")).unwrap(), b"hello");
        assert!(gunzip(b"not gzip").is_err());
    }
}
