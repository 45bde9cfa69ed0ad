//! SigV4 request verification, header form only (`Authorization: AWS4-HMAC-SHA256 ...`).
//!
//! Owns: parsing the `Authorization` header, rebuilding the canonical request and the string to
//! sign exactly as AWS SDKs do for services other than S3, the 5-minute clock window, the
//! credential-scope checks, and the constant-time signature comparison. Every failure is a
//! [`SigV4Error`] whose `Display` is the message AWS sends for the same failure.
//!
//! Must never: do I/O, know about an HTTP framework, keep a secret beyond the call, or put a secret,
//! a signing key or the signature it computed into an error or a log line. Presigned URLs
//! (query-string authentication) are not supported. Session credentials (STS) are: the caller's
//! credential lookup receives the `X-Amz-Security-Token` with the access key id and answers with
//! the secret or the error (invalid or expired token).

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::borrow::Cow;
use std::fmt::Write as _;

use aws_lc_rs::{digest, hmac};
use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, TimeDelta, Timelike, Utc};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

/// The only signing algorithm accepted.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
const TERMINATOR: &str = "aws4_request";
/// How far the signing time may be from the server's clock, either way (AWS's window).
const MAX_SKEW_MINUTES: i64 = 5;
/// RFC 3986 unreserved characters stay; everything else is percent-encoded (upper-case hex).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`UNRESERVED`], but path separators stay.
const PATH_UNRESERVED: &AsciiSet = &UNRESERVED.remove(b'/');

/// The parts of an HTTP request that SigV4 covers.
pub struct SignedRequest<'a> {
    /// The HTTP method, as received (e.g. "POST").
    pub method: &'a str,
    /// The raw path as received, still percent-encoded, e.g. "/".
    pub path: &'a str,
    /// The raw query string without '?', may be "".
    pub query: &'a str,
    /// Header names as received (any case) and values as received; a repeated header appears as
    /// repeated entries. A request over HTTP/2 must carry its `:authority` here as `host`.
    pub headers: &'a [(String, String)],
    /// The request body.
    pub body: &'a [u8],
}

/// What a verified signature establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The access key id whose secret produced the signature.
    pub access_key_id: String,
    /// The region of the credential scope (one the caller serves).
    pub region: String,
    /// The service of the credential scope (the expected one).
    pub service: String,
    /// When the client signed the request (`X-Amz-Date`, or `Date`).
    pub signed_at: DateTime<Utc>,
}

/// Why a request failed SigV4 verification: one variant per AWS error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header, or one that is not an AWS4 signature.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or the date header is incomplete or malformed.
    #[error("{0}")]
    IncompleteSignature(IncompleteSignature),
    /// The signature is well formed but does not authenticate this request now.
    #[error("{0}")]
    InvalidSignature(InvalidSignature),
    /// The access key id, or the security token, is not recognised.
    #[error("{0}")]
    UnrecognizedClient(UnrecognizedClient),
    /// The session token is authentic but its credentials have expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
}

/// The reasons AWS answers `IncompleteSignatureException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncompleteSignature {
    /// Parameters absent or empty (`SignedHeaders` may be empty), or neither date header present.
    #[error("{}", missing_parameters_message(self))]
    MissingParameters {
        /// `Credential` is absent or empty.
        credential: bool,
        /// `Signature` is absent or empty.
        signature: bool,
        /// `SignedHeaders` is absent.
        signed_headers: bool,
        /// Neither `X-Amz-Date` nor `Date` is present.
        date: bool,
        /// The `Authorization` header, echoed as AWS does.
        authorization: String,
    },
    /// A component after the algorithm has no '='.
    #[error("'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'.")]
    NotKeyValuePair {
        /// The offending component.
        token: String,
        /// The `Authorization` header, echoed as AWS does.
        authorization: String,
    },
    /// A parameter appears twice (Trent's own message: AWS's is not known).
    #[error("Authorization header has more than one '{0}' parameter.")]
    DuplicateParameter(&'static str),
    /// `X-Amz-Date` (or `Date`) cannot be read as a time.
    #[error("Date must be in ISO-8601 'basic format'. Got '{0}'. See http://en.wikipedia.org/wiki/ISO_8601")]
    MalformedDate(String),
    /// The algorithm is not `AWS4-HMAC-SHA256`.
    #[error("Unsupported AWS 'algorithm': '{0}' (only AWS4-HMAC-SHA256 for now). ")]
    UnsupportedAlgorithm(String),
    /// The credential is not `keyid/date/region/service/term`.
    #[error("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{0}'")]
    MalformedCredential(String),
}

/// The reasons AWS answers `InvalidSignatureException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSignature {
    /// The request carries both query-string and header authentication.
    #[error(
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )]
    BothQueryAndHeader,
    /// Signed more than 5 minutes before `now`.
    #[error("Signature expired: {} is now earlier than {} ({} - 5 min.)", amz_time(*.signed_at), amz_time(*.now - skew()), amz_time(*.now))]
    Expired {
        /// When the request says it was signed.
        signed_at: DateTime<Utc>,
        /// The server's clock, to the second.
        now: DateTime<Utc>,
    },
    /// Signed more than 5 minutes after `now`.
    #[error("Signature not yet current: {} is still later than {} ({} + 5 min.)", amz_time(*.signed_at), amz_time(*.now + skew()), amz_time(*.now))]
    NotYetCurrent {
        /// When the request says it was signed.
        signed_at: DateTime<Utc>,
        /// The server's clock, to the second.
        now: DateTime<Utc>,
    },
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// `X-Amz-Target` is present but not signed (Trent's rule, worded after AWS's host message).
    #[error("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")]
    TargetNotSigned,
    /// Other `x-amz-*` headers are present but not signed (lower-cased names, sorted).
    #[error(
        "There were headers present in the request which were not signed: {}",
        .0.join(", ")
    )]
    HeadersNotSigned(Vec<String>),
    /// The credential scope names another region, service, terminator or date.
    #[error("{}", scope_message(self))]
    WrongScope {
        /// The scope's region, when it is not served.
        region: Option<String>,
        /// The expected service, when the scope names another.
        service: Option<String>,
        /// The scope's terminator, when it is not `aws4_request`.
        terminator: Option<String>,
        /// The scope's date, when it is not the signing time's date.
        date: Option<String>,
        /// When the request says it was signed.
        signed_at: DateTime<Utc>,
    },
    /// The signature is not the one the secret gives for this request (or the payload hash header
    /// does not match the body).
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
}

/// The reasons AWS answers `UnrecognizedClientException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnrecognizedClient {
    /// No secret is known for the access key id.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The `X-Amz-Security-Token` is not a session token of this access key id.
    #[error("The security token included in the request is invalid")]
    InvalidSecurityToken,
}

/// Looks up the secret of an access key id, given the request's session token if it has one.
pub type CredentialLookup<'a> =
    dyn Fn(&str, Option<&str>) -> Result<Zeroizing<String>, SigV4Error> + 'a;

/// Verify a SigV4-signed request and say who signed it, for which region and service, and when.
///
/// Checks run in the order AWS runs them, so the first failure is the one AWS would report:
/// header presence and shape, date, clock window, signed `host`, algorithm, credential shape and
/// scope, access key and session token (through `credentials`), and last the signature.
pub fn verify(
    req: &SignedRequest<'_>,
    expected_service: &str,
    region_is_served: &dyn Fn(&str) -> bool,
    credentials: &CredentialLookup<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedSignature, SigV4Error> {
    let incomplete = |e| Err(SigV4Error::IncompleteSignature(e));
    let invalid = |e| Err(SigV4Error::InvalidSignature(e));

    let Some(authorization) = header_value(req.headers, "authorization") else {
        return Err(SigV4Error::MissingAuthenticationToken);
    };
    if query_pairs(req.query).any(|(name, _)| name == b"X-Amz-Algorithm".as_slice()) {
        return invalid(InvalidSignature::BothQueryAndHeader);
    }
    if !authorization.starts_with("AWS4-") {
        return Err(SigV4Error::MissingAuthenticationToken);
    }
    let auth = match parse_authorization(&authorization) {
        Ok(auth) => auth,
        Err(e) => return incomplete(e),
    };

    let amz_date = header_value(req.headers, "x-amz-date").filter(|v| !v.is_empty());
    let http_date = header_value(req.headers, "date").filter(|v| !v.is_empty());
    let from_amz_date = amz_date.is_some();
    let credential = auth.credential.filter(|v| !v.is_empty());
    let signature = auth.signature.filter(|v| !v.is_empty());
    let date_value = amz_date.or(http_date);
    let (Some(credential), Some(signature), Some(signed_headers), Some(date_value)) = (
        credential,
        signature,
        auth.signed_headers,
        date_value.clone(),
    ) else {
        return incomplete(IncompleteSignature::MissingParameters {
            credential: credential.is_none(),
            signature: signature.is_none(),
            signed_headers: auth.signed_headers.is_none(),
            date: date_value.is_none(),
            authorization: authorization.to_string(),
        });
    };

    let signed_at = signing_time(&date_value, from_amz_date, now)?;
    let signed_names = check_signed_headers(req, signed_headers)?;
    if auth.algorithm != ALGORITHM {
        return incomplete(IncompleteSignature::UnsupportedAlgorithm(
            auth.algorithm.to_owned(),
        ));
    }

    let scope = match split_credential(credential) {
        Some(scope) => scope,
        None => {
            return incomplete(IncompleteSignature::MalformedCredential(
                credential.to_owned(),
            ))
        }
    };
    let signed_amz = amz_time(signed_at);
    check_scope(
        &scope,
        signed_at,
        &signed_amz,
        expected_service,
        region_is_served,
    )?;

    let token = header_value(req.headers, "x-amz-security-token");
    let secret = credentials(scope.access_key_id, token.as_deref())?;
    check_signature(req, &signed_names, &scope, &signed_amz, signature, &secret)?;
    drop(secret);
    Ok(VerifiedSignature {
        access_key_id: scope.access_key_id.to_owned(),
        region: scope.region.to_owned(),
        service: scope.service.to_owned(),
        signed_at,
    })
}

/// When the request was signed (`X-Amz-Date`, or else `Date`), inside the clock window.
fn signing_time(
    date_value: &str,
    from_amz_date: bool,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, SigV4Error> {
    let parsed = if from_amz_date {
        parse_amz_date(date_value)
    } else {
        parse_http_date(date_value)
    };
    let Some(signed_at) = parsed else {
        return Err(SigV4Error::IncompleteSignature(
            IncompleteSignature::MalformedDate(date_value.to_owned()),
        ));
    };
    let now = now.trunc_subsecs(0);
    if signed_at < now - skew() {
        return Err(SigV4Error::InvalidSignature(InvalidSignature::Expired {
            signed_at,
            now,
        }));
    }
    if signed_at > now + skew() {
        return Err(SigV4Error::InvalidSignature(
            InvalidSignature::NotYetCurrent { signed_at, now },
        ));
    }
    Ok(signed_at)
}

/// The signed header names (lower case), which must cover `host`, `x-amz-target` when present,
/// and every other `x-amz-*` header.
fn check_signed_headers(
    req: &SignedRequest<'_>,
    signed_headers: &str,
) -> Result<Vec<String>, SigV4Error> {
    let invalid = |e| Err(SigV4Error::InvalidSignature(e));
    let signed_names: Vec<String> = signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if !signed_names.iter().any(|n| n == "host") {
        return invalid(InvalidSignature::HostNotSigned);
    }
    if header_value(req.headers, "x-amz-target").is_some()
        && !signed_names.iter().any(|n| n == "x-amz-target")
    {
        return invalid(InvalidSignature::TargetNotSigned);
    }
    let unsigned = unsigned_amz_headers(req.headers, &signed_names);
    if !unsigned.is_empty() {
        return invalid(InvalidSignature::HeadersNotSigned(unsigned));
    }
    Ok(signed_names)
}

/// The credential scope names a served region, this service, `aws4_request` and the signing
/// date; every part that does not is reported.
/// `signed_amz` is `signed_at` in `X-Amz-Date` form, whose first eight characters are the date.
fn check_scope(
    scope: &CredentialScope<'_>,
    signed_at: DateTime<Utc>,
    signed_amz: &str,
    expected_service: &str,
    region_is_served: &dyn Fn(&str) -> bool,
) -> Result<(), SigV4Error> {
    let signing_date = signed_amz.get(..8).unwrap_or_default();
    let region = (!region_is_served(scope.region)).then(|| scope.region.to_owned());
    let service = (scope.service != expected_service).then(|| expected_service.to_owned());
    let terminator = (scope.terminator != TERMINATOR).then(|| scope.terminator.to_owned());
    let date = (scope.date != signing_date).then(|| scope.date.to_owned());
    if region.is_some() || service.is_some() || terminator.is_some() || date.is_some() {
        return Err(SigV4Error::InvalidSignature(InvalidSignature::WrongScope {
            region,
            service,
            terminator,
            date,
            signed_at,
        }));
    }
    Ok(())
}

/// Recompute the signature with `secret` and compare in constant time. Every failure here is the
/// same `Mismatch`, whatever its cause. `signed_amz` is the signing time in `X-Amz-Date` form.
fn check_signature(
    req: &SignedRequest<'_>,
    signed_names: &[String],
    scope: &CredentialScope<'_>,
    signed_amz: &str,
    signature: &str,
    secret: &str,
) -> Result<(), SigV4Error> {
    let mismatch = || SigV4Error::InvalidSignature(InvalidSignature::Mismatch);
    let body_hash = hex::encode(digest::digest(&digest::SHA256, req.body));
    if header_value(req.headers, "x-amz-content-sha256").is_some_and(|claimed| claimed != body_hash)
    {
        return Err(mismatch());
    }
    let names: Vec<&str> = signed_names.iter().map(String::as_str).collect();
    let canonical = canonical_request(req, &names, &body_hash).ok_or_else(mismatch)?;
    let to_sign = string_to_sign(signed_amz, &scope.scope(), &canonical);
    let provided = hex::decode(signature).map_err(|_| mismatch())?;
    let key = signing_key(secret, scope.date, scope.region, scope.service);
    hmac::verify(&key, to_sign.as_bytes(), &provided).map_err(|_| mismatch())
}

/// The parameters of an `Authorization` header, not yet checked.
struct AuthorizationParts<'h> {
    algorithm: &'h str,
    credential: Option<&'h str>,
    signed_headers: Option<&'h str>,
    signature: Option<&'h str>,
}

/// Split `ALGORITHM k=v, k=v, ...` the way AWS does: components separated by ',' or ' ', each
/// after the first a key=value pair; unknown keys are ignored.
fn parse_authorization(header: &str) -> Result<AuthorizationParts<'_>, IncompleteSignature> {
    let mut tokens = header.split([',', ' ']).filter(|t| !t.is_empty());
    let mut parts = AuthorizationParts {
        algorithm: tokens.next().unwrap_or_default(),
        credential: None,
        signed_headers: None,
        signature: None,
    };
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Err(IncompleteSignature::NotKeyValuePair {
                token: token.to_owned(),
                authorization: header.to_owned(),
            });
        };
        let (slot, name) = match key {
            "Credential" => (&mut parts.credential, "Credential"),
            "SignedHeaders" => (&mut parts.signed_headers, "SignedHeaders"),
            "Signature" => (&mut parts.signature, "Signature"),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(IncompleteSignature::DuplicateParameter(name));
        }
    }
    Ok(parts)
}

/// The five elements of `Credential=keyid/date/region/service/term`.
struct CredentialScope<'c> {
    access_key_id: &'c str,
    date: &'c str,
    region: &'c str,
    service: &'c str,
    terminator: &'c str,
}

impl CredentialScope<'_> {
    /// `date/region/service/term`, as it appears in the string to sign.
    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// Split a credential into its five elements; trailing empty elements are dropped first, as AWS
/// (Java's `String.split`) does.
fn split_credential(credential: &str) -> Option<CredentialScope<'_>> {
    let mut elements: Vec<&str> = credential.split('/').collect();
    while elements.last() == Some(&"") {
        elements.pop();
    }
    match elements[..] {
        [access_key_id, date, region, service, terminator] => Some(CredentialScope {
            access_key_id,
            date,
            region,
            service,
            terminator,
        }),
        _ => None,
    }
}

/// The canonical request: method, canonical URI, canonical query, canonical headers, signed header
/// list and payload hash. `None` when a signed header is absent from the request.
fn canonical_request(
    req: &SignedRequest<'_>,
    signed_names: &[&str],
    payload_hash: &str,
) -> Option<String> {
    let mut out = String::with_capacity(512);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed_names {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(req.headers, name)?);
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in signed_names.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(payload_hash);
    Some(out)
}

/// The path with dot segments resolved and empty segments removed (as SDKs do for services other
/// than S3), then every byte but unreserved ones and '/' percent-encoded. The raw path is already
/// encoded once on the wire, so this is the "encode twice" of the specification.
fn canonical_uri(raw_path: &str) -> Cow<'static, str> {
    if raw_path == "/" {
        return Cow::Borrowed("/");
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    Cow::Owned(percent_encode(path.as_bytes(), PATH_UNRESERVED).to_string())
}

/// Each name and value percent-decoded, then RFC 3986-encoded, then sorted by name and value.
fn canonical_query(raw_query: &str) -> String {
    if raw_query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .map(|(name, value)| {
            (
                percent_encode(&name, UNRESERVED).to_string(),
                percent_encode(&value, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let encoded: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    encoded.join("&")
}

/// The decoded `(name, value)` pairs of a raw query string; '+' is a literal plus.
fn query_pairs(raw_query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    raw_query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (
            percent_decode(name.as_bytes()).collect(),
            percent_decode(value.as_bytes()).collect(),
        )
    })
}

/// A header's canonical value: every occurrence (name compared case-insensitively) trimmed, inner
/// runs of spaces collapsed to one, and occurrences joined with ','. `None` when absent.
/// The `x-amz-*` headers present but not in `SignedHeaders`: each must be signed, or a party on
/// the path could add or change it. The session token is the one exception, as in AWS's own
/// SigV4 test suite (`post-sts-header-after`): it is bound to its access key id, so it cannot be
/// swapped for another.
fn unsigned_amz_headers(headers: &[(String, String)], signed: &[String]) -> Vec<String> {
    let is_amz = |n: &str| {
        n.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
            && !n.eq_ignore_ascii_case("x-amz-security-token")
    };
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| is_amz(n) && !signed.iter().any(|s| s.eq_ignore_ascii_case(n)))
        .map(str::to_ascii_lowercase)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<Cow<'h, str>> {
    let mut joined: Option<Cow<'h, str>> = None;
    for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        let value = trim_all(value);
        match joined.as_mut() {
            None => joined = Some(value),
            Some(j) => {
                let j = j.to_mut();
                j.push(',');
                j.push_str(&value);
            }
        }
    }
    joined
}

/// Trim a header value and collapse inner runs of spaces and tabs to one space (borrowed when
/// there is nothing to trim or collapse, as for nearly every header).
fn trim_all(value: &str) -> Cow<'_, str> {
    let is_blank = |b: u8| b == b' ' || b == b'\t';
    let bytes = value.as_bytes();
    let untouched = bytes.first().is_none_or(|&b| !is_blank(b))
        && bytes.last().is_none_or(|&b| !is_blank(b))
        && !bytes
            .windows(2)
            .any(|w| matches!(w, [a, b] if is_blank(*a) && (is_blank(*b) || *a == b'\t')));
    if untouched {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `AWS4-HMAC-SHA256\n<time>\n<scope>\n<hex sha256 of the canonical request>`.
fn string_to_sign(amz_time: &str, scope: &str, canonical_request: &str) -> String {
    let hashed = digest::digest(&digest::SHA256, canonical_request.as_bytes());
    let mut out = String::with_capacity(ALGORITHM.len() + amz_time.len() + scope.len() + 67);
    for part in [ALGORITHM, amz_time, scope] {
        out.push_str(part);
        out.push('\n');
    }
    out.push_str(&hex::encode(hashed));
    out
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, &k_secret);
    for part in [date, region, service, TERMINATOR] {
        let tag = Zeroizing::new(hmac::sign(&key, part.as_bytes()).as_ref().to_vec());
        key = hmac::Key::new(hmac::HMAC_SHA256, &tag);
    }
    key
}

/// Parse `X-Amz-Date` strictly: `YYYYMMDDTHHMMSSZ`, nothing more, nothing less.
fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    let b = value.as_bytes();
    let shape_ok = b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    // Every byte is an ASCII digit where a number is read.
    let number = |from: usize, to: usize| {
        b.get(from..to)?
            .iter()
            .try_fold(0u32, |n, d| Some(n * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(4, 6)?, number(6, 8)?)?
        .and_hms_opt(number(9, 11)?, number(11, 13)?, number(13, 15)?)
        .map(|t| t.and_utc())
}

/// Parse an HTTP `Date` header (IMF-fixdate, e.g. "Mon, 09 Sep 2011 23:36:00 GMT").
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The clock window, each way.
fn skew() -> TimeDelta {
    TimeDelta::minutes(MAX_SKEW_MINUTES)
}

/// A time in `X-Amz-Date` form (`YYYYMMDDTHHMMSSZ`), for messages and the string to sign,
/// written without a format string.
fn amz_time(t: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(16);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    out
}

/// AWS's message for missing parameters: one sentence per missing item, then the header.
fn missing_parameters_message(e: &IncompleteSignature) -> String {
    let IncompleteSignature::MissingParameters {
        credential,
        signature,
        signed_headers,
        date,
        authorization,
    } = e
    else {
        return String::new();
    };
    let mut message = String::new();
    for (missing, name) in [
        (credential, "Credential"),
        (signature, "Signature"),
        (signed_headers, "SignedHeaders"),
    ] {
        if *missing {
            message.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if *date {
        message.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    message.push_str("Authorization=");
    message.push_str(authorization);
    message
}

/// AWS's message for a wrong credential scope: one sentence per wrong element, in AWS's order.
fn scope_message(e: &InvalidSignature) -> String {
    let InvalidSignature::WrongScope {
        region,
        service,
        terminator,
        date,
        signed_at,
    } = e
    else {
        return String::new();
    };
    let mut message = String::new();
    if let Some(region) = region {
        message.push_str(&format!(
            "Credential should be scoped to a valid region, not '{region}'. "
        ));
    }
    if let Some(service) = service {
        message.push_str(&format!(
            "Credential should be scoped to correct service: '{service}'. "
        ));
    }
    if let Some(terminator) = terminator {
        message.push_str(&format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        ));
    }
    if let Some(date) = date {
        message.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}', from '{}'. ",
            signed_at.format("%Y%m%d"),
            amz_time(*signed_at)
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- AWS's published SigV4 test suite (aws-sig-v4-test-suite, as kept in botocore's
    // tests/unit/auth/aws4_testsuite): credentials AKIDEXAMPLE, region us-east-1, service
    // "service", signed at 20150830T123600Z, host example.amazonaws.com. Each vector's
    // Authorization header is the published one; the verifier must accept it.

    const SUITE_KEY_ID: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_TIME: &str = "20150830T123600Z";
    const SUITE_CREDENTIAL: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    /// One vector: the request (besides Host and X-Amz-Date) and its published signature.
    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    }

    const fn get(
        name: &'static str,
        path: &'static str,
        query: &'static str,
        signature: &'static str,
    ) -> Vector {
        Vector {
            name,
            method: "GET",
            path,
            query,
            headers: &[],
            body: "",
            signed_headers: "host;x-amz-date",
            signature,
        }
    }

    const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    const SUITE: &[Vector] = &[
        get("get-vanilla", "/", "", VANILLA),
        get("get-vanilla-empty-query-key", "/", "Param1=value1", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
        get("get-vanilla-query-order-key-case", "/", "Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        get("get-vanilla-query-order-key", "/", "Param1=value2&Param1=Value1", "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        get("get-vanilla-query-order-value", "/", "Param1=value2&Param1=value1", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        get("get-vanilla-query-order-encoded", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1", "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
        get(
            "get-vanilla-query-unreserved",
            "/",
            "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        ),
        // The suite writes the query as "ሴ=bar"; on the wire it arrives percent-encoded.
        get("get-vanilla-utf8-query", "/", "%E1%88%B4=bar", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        get("get-unreserved", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        // The suite's paths are unencoded and encoded once; a wire path is encoded once more.
        get("get-utf8", "/ሴ", "", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        get("get-space", "/example space/", "", "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        get("get-special-character", "/example/$delete", "", "a853c9b21b528b19643d00910d35b83a10c366a10833ceefb45edd6c80e40f27"),
        // normalize-path/
        get("get-relative", "/example/..", "", VANILLA),
        get("get-relative-relative", "/example1/example2/../..", "", VANILLA),
        get("get-slash", "//", "", VANILLA),
        get("get-slash-dot-slash", "/./", "", VANILLA),
        get("get-slash-pointless-dot", "/./example", "", "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"),
        get("get-slashes", "//example//", "", "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
        Vector {
            headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
            signed_headers: "host;my-header1;x-amz-date",
            ..get("get-header-key-duplicate", "/", "", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea")
        },
        // The suite folds "value1\n  value2\n     value3"; unfolded, each fold is spaces.
        Vector {
            headers: &[("My-Header1", "value1   value2      value3")],
            signed_headers: "host;my-header1;x-amz-date",
            ..get("get-header-value-multiline", "/", "", "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd")
        },
        Vector {
            headers: &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
            signed_headers: "host;my-header1;x-amz-date",
            ..get("get-header-value-order", "/", "", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01")
        },
        Vector {
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            ..get("get-header-value-trim", "/", "", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736")
        },
        Vector { method: "POST", ..get("post-vanilla", "/", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") },
        Vector { method: "POST", ..get("post-vanilla-query", "/", "Param1=value1", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11") },
        Vector {
            method: "POST",
            headers: &[("My-Header1", "value1")],
            signed_headers: "host;my-header1;x-amz-date",
            ..get("post-header-key-sort", "/", "", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c")
        },
        Vector {
            method: "POST",
            headers: &[("My-Header1", "VALUE1")],
            signed_headers: "host;my-header1;x-amz-date",
            ..get("post-header-value-case", "/", "", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d")
        },
        Vector {
            method: "POST",
            headers: &[("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            signed_headers: "content-type;host;x-amz-date",
            ..get("post-x-www-form-urlencoded", "/", "", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        },
        Vector {
            method: "POST",
            headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8")],
            body: "Param1=value1",
            signed_headers: "content-type;host;x-amz-date",
            ..get("post-x-www-form-urlencoded-parameters", "/", "", "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe")
        },
    ];

    fn suite_headers(v: &Vector, signature: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("X-Amz-Date".to_owned(), SUITE_TIME.to_owned()),
        ];
        headers.extend(
            v.headers
                .iter()
                .map(|(n, val)| ((*n).to_owned(), (*val).to_owned())),
        );
        headers.push((
            "Authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={SUITE_CREDENTIAL}, SignedHeaders={}, Signature={signature}",
                v.signed_headers
            ),
        ));
        headers
    }

    fn verify_suite(
        v: &Vector,
        headers: &[(String, String)],
    ) -> Result<VerifiedSignature, SigV4Error> {
        let req = SignedRequest {
            method: v.method,
            path: v.path,
            query: v.query,
            headers,
            body: v.body.as_bytes(),
        };
        verify(
            &req,
            "service",
            &|region| region == "us-east-1",
            &|id, token| match token {
                None if id == SUITE_KEY_ID => Ok(Zeroizing::new(SUITE_SECRET.to_owned())),
                Some(STS_TOKEN) if id == SUITE_KEY_ID => {
                    Ok(Zeroizing::new(SUITE_SECRET.to_owned()))
                }
                Some(_) => Err(SigV4Error::UnrecognizedClient(
                    UnrecognizedClient::InvalidSecurityToken,
                )),
                None => Err(SigV4Error::UnrecognizedClient(
                    UnrecognizedClient::UnknownAccessKey,
                )),
            },
            time(SUITE_TIME),
        )
    }

    fn time(amz_date: &str) -> DateTime<Utc> {
        parse_amz_date(amz_date).expect("test time")
    }

    #[test]
    fn accepts_every_published_suite_vector() {
        for v in SUITE {
            let verified = verify_suite(v, &suite_headers(v, v.signature))
                .unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(
                verified,
                VerifiedSignature {
                    access_key_id: SUITE_KEY_ID.to_owned(),
                    region: "us-east-1".to_owned(),
                    service: "service".to_owned(),
                    signed_at: time(SUITE_TIME),
                },
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn rejects_every_suite_vector_with_another_vectors_signature() {
        for (i, v) in SUITE.iter().enumerate() {
            let other = SUITE
                .iter()
                .cycle()
                .skip(i + 1)
                .find(|o| o.signature != v.signature)
                .expect("vector");
            assert_eq!(
                verify_suite(v, &suite_headers(v, other.signature)),
                Err(SigV4Error::InvalidSignature(InvalidSignature::Mismatch)),
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn builds_the_published_canonical_requests_and_string_to_sign() {
        let vanilla = &SUITE[0];
        let headers = suite_headers(vanilla, VANILLA);
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            canonical_request(&req, &["host", "x-amz-date"], EMPTY_HASH).expect("creq"),
            format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_HASH}")
        );

        let post = SignedRequest {
            method: "POST",
            ..req
        };
        let creq = canonical_request(&post, &["host", "x-amz-date"], EMPTY_HASH).expect("creq");
        assert_eq!(
            string_to_sign(SUITE_TIME, "20150830/us-east-1/service/aws4_request", &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
        );

        let form = SUITE
            .iter()
            .find(|v| v.name == "post-x-www-form-urlencoded")
            .expect("vector");
        let headers = suite_headers(form, form.signature);
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"Param1=value1",
        };
        let body_hash = hex::encode(digest::digest(&digest::SHA256, req.body));
        assert_eq!(
            canonical_request(&req, &["content-type", "host", "x-amz-date"], &body_hash).expect("creq"),
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
    }

    #[test]
    fn verifies_the_s3_documentation_example_with_a_payload_hash_header() {
        // "Signature Calculations for the Authorization Header", GET Object example (S3's docs).
        let headers: Vec<(String, String)> = [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_HASH),
            ("x-amz-date", "20130524T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        let req = SignedRequest {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            body: b"",
        };
        let verified = verify(
            &req,
            "s3",
            &|r| r == "us-east-1",
            &permanent_key_only,
            time("20130524T000000Z"),
        );
        assert_eq!(verified.map(|v| v.service), Ok("s3".to_owned()));
    }

    #[test]
    fn session_tokens_reach_the_credential_lookup_signed_or_not() {
        let before = Vector {
            method: "POST",
            headers: &[("X-Amz-Security-Token", STS_TOKEN)],
            signed_headers: "host;x-amz-date;x-amz-security-token",
            ..get(
                "post-sts-header-before",
                "/",
                "",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            )
        };
        let accepted = |r: Result<VerifiedSignature, SigV4Error>| r.map(|v| v.access_key_id);
        assert_eq!(
            accepted(verify_suite(
                &before,
                &suite_headers(&before, before.signature)
            )),
            Ok(SUITE_KEY_ID.to_owned())
        );
        // post-sts-header-after: the token travels unsigned.
        let after = Vector {
            method: "POST",
            headers: &[("X-Amz-Security-Token", STS_TOKEN)],
            ..get(
                "post-sts-header-after",
                "/",
                "",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            )
        };
        assert_eq!(
            accepted(verify_suite(
                &after,
                &suite_headers(&after, after.signature)
            )),
            Ok(SUITE_KEY_ID.to_owned())
        );
        let foreign = Vector {
            headers: &[("X-Amz-Security-Token", "another-token")],
            ..after
        };
        assert_eq!(
            verify_suite(&foreign, &suite_headers(&foreign, foreign.signature)),
            Err(SigV4Error::UnrecognizedClient(
                UnrecognizedClient::InvalidSecurityToken
            ))
        );
        let tampered = Vector {
            body: "x",
            ..before
        };
        assert_eq!(
            verify_suite(&tampered, &suite_headers(&tampered, tampered.signature)),
            Err(SigV4Error::InvalidSignature(InvalidSignature::Mismatch))
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed_borrowing_when_they_can() {
        for (raw, want, borrowed) in [
            ("plain", "plain", true),
            ("a b", "a b", true),
            ("", "", true),
            (" a", "a", false),
            ("a ", "a", false),
            ("a  b", "a b", false),
            ("a\tb", "a b", false),
            ("a \t b", "a b", false),
            ("\t", "", false),
        ] {
            let trimmed = trim_all(raw);
            assert_eq!(trimmed, want, "{raw:?}");
            assert_eq!(matches!(trimmed, Cow::Borrowed(_)), borrowed, "{raw:?}");
        }
    }

    #[test]
    fn amz_dates_parse_only_when_they_name_a_real_second() {
        let t = parse_amz_date("20261207T235959Z").unwrap();
        assert_eq!(amz_time(t), "20261207T235959Z");
        assert_eq!(t.format("%Y%m%dT%H%M%SZ").to_string(), amz_time(t));
        for bad in [
            "20261307T000000Z",
            "20260230T000000Z",
            "20261207T240000Z",
            "20261207T236000Z",
            "20261207T000000",
            "2026120T000000Z0",
            "20261207 000000Z",
            "+0261207T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_uri_double_encodes_the_wire_path() {
        for (raw, canonical) in [
            ("", "/"),
            ("/", "/"),
            ("/example%20space/", "/example%2520space/"),
            ("/a%2Fb", "/a%252Fb"),
            ("/a/b/", "/a/b/"),
            ("/a/./b/../c", "/a/c"),
            ("/..", "/"),
            ("/a b+c", "/a%20b%2Bc"),
        ] {
            assert_eq!(canonical_uri(raw), canonical, "{raw:?}");
        }
    }

    #[test]
    fn canonical_query_decodes_then_encodes_and_sorts() {
        for (raw, canonical) in [
            ("", ""),
            ("b&a=1", "a=1&b="),
            ("a=1&a=1", "a=1&a=1"),
            ("a=10&a=9", "a=10&a=9"),
            ("q=a+b", "q=a%2Bb"),
            ("q=a%20b&&", "q=a%20b"),
            ("a=1=2", "a=1%3D2"),
            ("x=a.b&x=a%2fb", "x=a%2Fb&x=a.b"),
        ] {
            assert_eq!(canonical_query(raw), canonical, "{raw:?}");
        }
    }

    // ----- Negative cases, against a KMS request signed by the inverse of `verify` (only the
    // suite above keeps that signer honest).

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SIGNED_AT: &str = "20260101T000000Z";
    const CREDENTIAL: &str = "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms/aws4_request";
    const SIGNED: &str = "content-type;host;x-amz-date;x-amz-target";

    /// A request under test and the server's clock.
    struct Case {
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: DateTime<Utc>,
    }

    impl Case {
        /// An Encrypt request, correctly signed, verified at the signing time.
        fn kms() -> Self {
            let mut case = Case {
                method: "POST".to_owned(),
                path: "/".to_owned(),
                query: String::new(),
                headers: [
                    ("Host", "kms.us-east-1.amazonaws.com"),
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("X-Amz-Target", "TrentService.Encrypt"),
                    ("X-Amz-Date", SIGNED_AT),
                ]
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
                body: br#"{"KeyId":"alias/app","Plaintext":"aGVsbG8="}"#.to_vec(),
                now: time(SIGNED_AT),
            };
            case.sign(SECRET, CREDENTIAL, SIGNED);
            case
        }

        fn request(&self) -> SignedRequest<'_> {
            SignedRequest {
                method: &self.method,
                path: &self.path,
                query: &self.query,
                headers: &self.headers,
                body: &self.body,
            }
        }

        fn set(&mut self, name: &str, value: &str) {
            self.remove(name);
            self.headers.push((name.to_owned(), value.to_owned()));
        }

        fn remove(&mut self, name: &str) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }

        fn edit_authorization(&mut self, edit: impl FnOnce(&str) -> String) {
            let edited = edit(&self.authorization());
            self.set("Authorization", &edited);
        }

        fn authorization(&self) -> String {
            header_value(&self.headers, "authorization")
                .expect("authorization")
                .into_owned()
        }

        /// The signature this secret gives for the request as it stands.
        /// `None` when the request lacks a signed header or a date to sign with.
        fn signature(&self, secret: &str, credential: &str, signed: &str) -> Option<String> {
            let scope = split_credential(credential)?;
            let names: Vec<&str> = signed.split(';').collect();
            let body_hash = hex::encode(digest::digest(&digest::SHA256, &self.body));
            let creq = canonical_request(&self.request(), &names, &body_hash)?;
            let signed_at = header_value(&self.headers, "x-amz-date")
                .and_then(|d| parse_amz_date(&d))
                .or_else(|| {
                    header_value(&self.headers, "date").and_then(|d| parse_http_date(&d))
                })?;
            let to_sign = string_to_sign(&amz_time(signed_at), &scope.scope(), &creq);
            let key = signing_key(secret, scope.date, scope.region, scope.service);
            Some(hex::encode(hmac::sign(&key, to_sign.as_bytes())))
        }

        /// Sign the request as it stands, replacing any Authorization header.
        fn sign(&mut self, secret: &str, credential: &str, signed: &str) {
            let signature = self
                .signature(secret, credential, signed)
                .expect("signable request");
            self.set(
                "Authorization",
                &format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"),
            );
        }

        fn verify(&self) -> Result<VerifiedSignature, SigV4Error> {
            verify(
                &self.request(),
                "kms",
                &|region| region == "us-east-1" || region == "eu-west-1",
                &permanent_key_only,
                self.now,
            )
        }
    }

    /// The credential lookup of a deployment with one permanent key and no sessions.
    fn permanent_key_only(id: &str, token: Option<&str>) -> Result<Zeroizing<String>, SigV4Error> {
        match token {
            None if id == KEY_ID => Ok(Zeroizing::new(SECRET.to_owned())),
            None => Err(SigV4Error::UnrecognizedClient(
                UnrecognizedClient::UnknownAccessKey,
            )),
            Some(_) => Err(SigV4Error::UnrecognizedClient(
                UnrecognizedClient::InvalidSecurityToken,
            )),
        }
    }

    fn incomplete(e: IncompleteSignature) -> Result<(), SigV4Error> {
        Err(SigV4Error::IncompleteSignature(e))
    }

    fn invalid(e: InvalidSignature) -> Result<(), SigV4Error> {
        Err(SigV4Error::InvalidSignature(e))
    }

    fn wrong_scope(
        region: Option<&str>,
        service: Option<&str>,
        terminator: Option<&str>,
        date: Option<&str>,
    ) -> Result<(), SigV4Error> {
        invalid(InvalidSignature::WrongScope {
            region: region.map(str::to_owned),
            service: service.map(str::to_owned),
            terminator: terminator.map(str::to_owned),
            date: date.map(str::to_owned),
            signed_at: time(SIGNED_AT),
        })
    }

    fn missing(
        credential: bool,
        signature: bool,
        signed_headers: bool,
        date: bool,
        case: &Case,
    ) -> Result<(), SigV4Error> {
        incomplete(IncompleteSignature::MissingParameters {
            credential,
            signature,
            signed_headers,
            date,
            authorization: case.authorization(),
        })
    }

    fn not_key_value(token: &str, case: &Case) -> Result<(), SigV4Error> {
        incomplete(IncompleteSignature::NotKeyValuePair {
            token: token.to_owned(),
            authorization: case.authorization(),
        })
    }

    const MISMATCH: Result<(), SigV4Error> =
        Err(SigV4Error::InvalidSignature(InvalidSignature::Mismatch));
    const OK: Result<(), SigV4Error> = Ok(());

    /// One negative (or positive) case: what is done to a freshly signed request, and the outcome.
    type Row = (
        &'static str,
        fn(&mut Case),
        fn(&Case) -> Result<(), SigV4Error>,
    );

    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        ("valid request", |_| {}, |_| OK),
        ("header names in any case", |c| c.headers.iter_mut().for_each(|(n, _)| *n = n.to_ascii_uppercase()), |_| OK),
        ("unsigned header added", |c| c.set("User-Agent", "aws-cli/2"), |_| OK),
        ("no Authorization header", |c| c.remove("Authorization"), |_| Err(SigV4Error::MissingAuthenticationToken)),
        ("Basic scheme", |c| c.set("Authorization", "Basic dXNlcjpwYXNz"), |_| Err(SigV4Error::MissingAuthenticationToken)),
        ("bare AWS4", |c| c.set("Authorization", "AWS4"), |_| Err(SigV4Error::MissingAuthenticationToken)),
        ("nothing after AWS4-", |c| c.set("Authorization", "AWS4-"), |c| missing(true, true, true, false, c)),
        ("no Credential", |c| c.edit_authorization(|a| a.replace(&format!("Credential={CREDENTIAL}, "), "")), |c| missing(true, false, false, false, c)),
        ("empty Signature", |c| c.edit_authorization(|a| format!("{}Signature=", &a[..a.find("Signature=").expect("signature")])), |c| missing(false, true, false, false, c)),
        ("no SignedHeaders", |c| c.edit_authorization(|a| a.replace(&format!("SignedHeaders={SIGNED}, "), "")), |c| missing(false, false, true, false, c)),
        ("no date header", |c| c.remove("X-Amz-Date"), |c| missing(false, false, false, true, c)),
        ("component without equal sign", |c| c.edit_authorization(|a| format!("{a}, extra")), |c| not_key_value("extra", c)),
        ("two Authorization headers", |c| { let a = c.authorization(); c.headers.push(("Authorization".to_owned(), a)) }, |c| not_key_value("AWS4-HMAC-SHA256", c)),
        ("duplicate Credential", |c| c.edit_authorization(|a| format!("{a}, Credential={CREDENTIAL}")), |_| incomplete(IncompleteSignature::DuplicateParameter("Credential"))),
        ("X-Amz-Date not ISO 8601 basic", |c| c.set("X-Amz-Date", "2026-01-01T00:00:00Z"), |_| incomplete(IncompleteSignature::MalformedDate("2026-01-01T00:00:00Z".to_owned()))),
        ("Date header instead of X-Amz-Date", |c| { c.remove("X-Amz-Date"); c.set("Date", "Thu, 01 Jan 2026 00:00:00 GMT"); c.sign(SECRET, CREDENTIAL, "content-type;date;host;x-amz-target") }, |_| OK),
        ("unsupported algorithm", |c| c.edit_authorization(|a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")), |_| incomplete(IncompleteSignature::UnsupportedAlgorithm("AWS4-HMAC-SHA512".to_owned()))),
        ("credential with four elements", |c| c.edit_authorization(|a| a.replace("/aws4_request", "")), |_| incomplete(IncompleteSignature::MalformedCredential("AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms".to_owned()))),
        ("credential with a trailing slash", |c| c.sign(SECRET, &format!("{CREDENTIAL}/"), SIGNED), |_| OK),
        ("unknown access key id", |c| c.sign(SECRET, "AKIDUNKNOWN/20260101/us-east-1/kms/aws4_request", SIGNED), |_| Err(SigV4Error::UnrecognizedClient(UnrecognizedClient::UnknownAccessKey))),
        ("wrong secret", |c| c.sign("not-the-secret", CREDENTIAL, SIGNED), |_| MISMATCH),
        ("tampered body", |c| c.body.push(b' '), |_| MISMATCH),
        ("tampered signed header", |c| c.set("X-Amz-Target", "TrentService.ScheduleKeyDeletion"), |_| MISMATCH),
        ("tampered host", |c| c.set("Host", "kms.eu-west-1.amazonaws.com"), |_| MISMATCH),
        ("tampered method", |c| c.method = "PUT".to_owned(), |_| MISMATCH),
        ("tampered path", |c| c.path = "/other".to_owned(), |_| MISMATCH),
        ("tampered query", |c| c.query = "a=b".to_owned(), |_| MISMATCH),
        ("signed header absent", |c| c.remove("Content-Type"), |_| MISMATCH),
        ("signature not hex", |c| c.edit_authorization(|a| format!("{}Signature={}", &a[..a.find("Signature=").expect("signature")], "z".repeat(64))), |_| MISMATCH),
        ("signature truncated", |c| c.edit_authorization(|a| a[..a.len() - 2].to_owned()), |_| MISMATCH),
        ("signature in upper-case hex", |c| c.edit_authorization(|a| { let at = a.find("Signature=").expect("signature"); format!("{}{}", &a[..at], a[at..].to_ascii_uppercase().replacen("SIGNATURE=", "Signature=", 1)) }), |_| OK),
        ("host not signed", |c| c.sign(SECRET, CREDENTIAL, "content-type;x-amz-date;x-amz-target"), |_| invalid(InvalidSignature::HostNotSigned)),
        ("x-amz-target not signed", |c| c.sign(SECRET, CREDENTIAL, "content-type;host;x-amz-date"), |_| invalid(InvalidSignature::TargetNotSigned)),
        ("x-amz-date not signed", |c| c.sign(SECRET, CREDENTIAL, "content-type;host;x-amz-target"), |_| invalid(InvalidSignature::HeadersNotSigned(vec!["x-amz-date".into()]))),
        ("an added x-amz header not signed", |c| { c.set("X-Amz-Extra", "1"); c.sign(SECRET, CREDENTIAL, SIGNED) }, |_| invalid(InvalidSignature::HeadersNotSigned(vec!["x-amz-extra".into()]))),
        ("wrong service", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request", SIGNED), |_| wrong_scope(None, Some("kms"), None, None)),
        ("unserved region", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/us-west-2/kms/aws4_request", SIGNED), |_| wrong_scope(Some("us-west-2"), None, None, None)),
        ("another served region", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/kms/aws4_request", SIGNED), |_| OK),
        ("wrong terminator", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms/aws5_request", SIGNED), |_| wrong_scope(None, None, Some("aws5_request"), None)),
        ("scope date not the X-Amz-Date date", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20251231/us-east-1/kms/aws4_request", SIGNED), |_| wrong_scope(None, None, None, Some("20251231"))),
        ("everything wrong in the scope", |c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20251231/mars-1/sqs/x", SIGNED), |_| wrong_scope(Some("mars-1"), Some("kms"), Some("x"), Some("20251231"))),
        ("clock 5 min after signing", |c| c.now += TimeDelta::minutes(5), |_| OK),
        ("clock 5 min 0.9 s after signing", |c| c.now += TimeDelta::milliseconds(300_900), |_| OK),
        ("clock 5 min 1 s after signing", |c| c.now += TimeDelta::seconds(301), |c| invalid(InvalidSignature::Expired { signed_at: time(SIGNED_AT), now: c.now })),
        ("clock 5 min before signing", |c| c.now -= TimeDelta::minutes(5), |_| OK),
        ("clock 5 min 1 s before signing", |c| c.now -= TimeDelta::seconds(301), |c| invalid(InvalidSignature::NotYetCurrent { signed_at: time(SIGNED_AT), now: c.now })),
        ("payload hash header equal to the body's", |c| { let h = hex::encode(digest::digest(&digest::SHA256, &c.body)); c.set("X-Amz-Content-Sha256", &h); c.sign(SECRET, CREDENTIAL, "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target") }, |_| OK),
        ("payload hash header not the body's", |c| { c.set("X-Amz-Content-Sha256", EMPTY_HASH); c.sign(SECRET, CREDENTIAL, "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target") }, |_| MISMATCH),
        ("unsigned payload", |c| c.set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"), |_| invalid(InvalidSignature::HeadersNotSigned(vec!["x-amz-content-sha256".into()]))),
        ("query-string and header authentication", |c| c.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned(), |_| invalid(InvalidSignature::BothQueryAndHeader)),
        ("security token", |c| { c.set("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLE"); c.sign(SECRET, CREDENTIAL, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target") }, |_| Err(SigV4Error::UnrecognizedClient(UnrecognizedClient::InvalidSecurityToken))),
    ];

    #[test]
    fn each_case_gives_exactly_its_outcome() {
        for (name, mutate, expected) in ROWS {
            let mut case = Case::kms();
            mutate(&mut case);
            assert_eq!(case.verify().map(|_| ()), expected(&case), "{name}");
        }
    }

    #[test]
    fn a_verified_request_says_who_signed_it_where_and_when() {
        assert_eq!(
            Case::kms().verify(),
            Ok(VerifiedSignature {
                access_key_id: KEY_ID.to_owned(),
                region: "us-east-1".to_owned(),
                service: "kms".to_owned(),
                signed_at: time(SIGNED_AT),
            })
        );
    }

    /// What is done to a freshly signed request, the AWS error code and the exact AWS message.
    type MessageRow = (fn(&mut Case), &'static str, &'static str);

    #[rustfmt::skip]
    const MESSAGES: &[MessageRow] = &[
        (|c| c.remove("Authorization"), "MissingAuthenticationTokenException", "Request is missing Authentication Token"),
        (|c| { c.set("Authorization", "AWS4-"); c.remove("X-Amz-Date") }, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-"),
        (|c| c.set("Authorization", "AWS4-HMAC-SHA256 Credential= AKID/20260101/us-east-1/kms/aws4_request"), "IncompleteSignatureException", "'AKID/20260101/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= AKID/20260101/us-east-1/kms/aws4_request'."),
        (|c| c.set("X-Amz-Date", "201"), "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601"),
        (|c| c.edit_authorization(|a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA25")), "IncompleteSignatureException", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "),
        (|c| c.edit_authorization(|a| a.replace("/aws4_request", "")), "IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms'"),
        (|c| c.query = "X-Amz-Algorithm=x".to_owned(), "InvalidSignatureException", "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."),
        (|c| c.now += TimeDelta::minutes(10), "InvalidSignatureException", "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.)"),
        (|c| c.now -= TimeDelta::minutes(10), "InvalidSignatureException", "Signature not yet current: 20260101T000000Z is still later than 20251231T235500Z (20251231T235000Z + 5 min.)"),
        (|c| c.sign(SECRET, CREDENTIAL, "content-type;x-amz-date;x-amz-target"), "InvalidSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        (|c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request", SIGNED), "InvalidSignatureException", "Credential should be scoped to correct service: 'kms'. "),
        (|c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20260101/us-west-2/kms/aws4_request", SIGNED), "InvalidSignatureException", "Credential should be scoped to a valid region, not 'us-west-2'. "),
        (|c| c.sign(SECRET, "AKIAIOSFODNN7EXAMPLE/20251231/mars-1/sqs/x", SIGNED), "InvalidSignatureException", "Credential should be scoped to a valid region, not 'mars-1'. Credential should be scoped to correct service: 'kms'. Credential should be scoped with a valid terminator: 'aws4_request', not 'x'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20251231' != '20260101', from '20260101T000000Z'. "),
        (|c| c.sign(SECRET, "AKIDUNKNOWN/20260101/us-east-1/kms/aws4_request", SIGNED), "UnrecognizedClientException", "The security token included in the request is invalid."),
        (|c| c.body.clear(), "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."),
        (|c| { c.set("X-Amz-Security-Token", "t"); c.sign(SECRET, CREDENTIAL, SIGNED) }, "UnrecognizedClientException", "The security token included in the request is invalid"),
    ];

    /// The AWS code a KMS client sees for each variant (the service's mapping is in trent-model).
    fn code_of(e: &SigV4Error) -> &'static str {
        match e {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::InvalidSignature(_) => "InvalidSignatureException",
            SigV4Error::UnrecognizedClient(_) => "UnrecognizedClientException",
            SigV4Error::ExpiredToken => "ExpiredTokenException",
        }
    }

    #[test]
    fn messages_are_the_ones_aws_sends() {
        for (mutate, code, message) in MESSAGES {
            let mut case = Case::kms();
            mutate(&mut case);
            let e = case.verify().expect_err(message);
            assert_eq!((code_of(&e), e.to_string().as_str()), (*code, *message));
        }
    }

    #[test]
    fn no_error_reveals_the_secret_or_the_signature_it_computed() {
        for (name, mutate, _) in ROWS {
            let mut case = Case::kms();
            mutate(&mut case);
            let computed = case.signature(SECRET, CREDENTIAL, SIGNED);
            if let Err(e) = case.verify() {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(SECRET), "{name}");
                if let Some(computed) = computed {
                    let echoed_by_client = header_value(&case.headers, "authorization")
                        .is_some_and(|a| a.contains(&computed));
                    assert!(echoed_by_client || !shown.contains(&computed), "{name}");
                }
            }
        }
    }
}
