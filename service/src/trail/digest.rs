//! The digest file: CloudTrail's field set, and the string its signature covers. No I/O.

use serde::{Deserialize, Serialize};

/// The hash algorithm named in digests (`hashAlgorithm`, `previousDigestHashAlgorithm`).
pub const HASH_ALGORITHM: &str = "SHA-256";

/// A digest file's content, field for field as CloudTrail writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    /// The account whose log files the digest covers.
    pub aws_account_id: String,
    /// Start of the period covered (the previous digest's end).
    pub digest_start_time: String,
    /// End of the period covered; also in the file name.
    pub digest_end_time: String,
    /// Where the digest was written (the export directory's absolute path).
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    /// The digest's own object path under the bucket.
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    /// Fingerprint of the public key that verifies the signature.
    pub digest_public_key_fingerprint: String,
    /// `SHA256withRSA`.
    pub digest_signature_algorithm: String,
    /// Newest event time over the listed log files (null when none are listed).
    pub newest_event_time: Option<String>,
    /// Oldest event time over the listed log files (null when none are listed).
    pub oldest_event_time: Option<String>,
    /// Bucket of the previous digest (null for the first digest of a trail).
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    /// Object path of the previous digest.
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    /// Hex SHA-256 of the previous digest's uncompressed content.
    pub previous_digest_hash_value: Option<String>,
    /// `SHA-256` when there is a previous digest.
    pub previous_digest_hash_algorithm: Option<String>,
    /// The previous digest's signature (hex).
    pub previous_digest_signature: Option<String>,
    /// The log files delivered in the period.
    pub log_files: Vec<LogFileEntry>,
}

/// One log file listed in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    /// Bucket (the export directory's absolute path).
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    /// Object path of the log file.
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    /// Hex SHA-256 of the log file's uncompressed content.
    pub hash_value: String,
    /// `SHA-256`.
    pub hash_algorithm: String,
    /// Newest `eventTime` in the file.
    pub newest_event_time: String,
    /// Oldest `eventTime` in the file.
    pub oldest_event_time: String,
}

/// CloudTrail's data-signing string: the digest's end time, `bucket/object`, the hex SHA-256 of
/// its uncompressed content and the previous digest's signature (`null` for the first digest),
/// one per line.
pub fn string_to_sign(digest: &DigestFile, content_sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time,
        digest.digest_s3_bucket,
        digest.digest_s3_object,
        content_sha256_hex,
        digest
            .previous_digest_signature
            .as_deref()
            .unwrap_or("null")
    )
}

/// The sidecar holding a digest's signature (what S3 keeps as `x-amz-meta-signature`).
pub fn signature_object(digest_object: &str) -> String {
    format!("{digest_object}.sig")
}
