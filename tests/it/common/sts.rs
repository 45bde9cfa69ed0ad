//! STS from the outside: form-encoded query-protocol calls signed with AWS's own signer, the bits
//! of their XML answers, and aws-sdk-kms clients that sign with session credentials.

use std::time::SystemTime;

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};

/// Temporary credentials from an AssumeRole answer.
#[derive(Debug, Clone)]
pub struct Session {
    /// `ASIA...`
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
}

/// The text of the first `<name>` element of `xml` (no unescaping: the tests' values need none).
pub fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// The session in an AssumeRole answer.
pub fn session_of(xml: &str) -> Session {
    Session {
        access_key_id: element(xml, "AccessKeyId").expect("AccessKeyId"),
        secret_access_key: element(xml, "SecretAccessKey").expect("SecretAccessKey"),
        session_token: element(xml, "SessionToken").expect("SessionToken"),
    }
}

/// POST a form body to the listener as STS, signed by (access key, secret, session token).
/// Returns the status and the body text.
pub async fn call(
    endpoint: &str,
    form: &[(&str, &str)],
    credentials: (&str, &str, Option<&str>),
    region: &str,
) -> (u16, String) {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let headers = vec![(
        "content-type".to_string(),
        "application/x-www-form-urlencoded; charset=utf-8".to_string(),
    )];
    let resp = super::signed_post(
        endpoint,
        headers,
        body.as_bytes(),
        Some(credentials),
        region,
        "sts",
        SystemTime::now(),
    )
    .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An aws-sdk-kms client that signs with a role session.
pub fn kms_client(endpoint: &str, session: &Session, region: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            session.access_key_id.clone(),
            session.secret_access_key.clone(),
            Some(session.session_token.clone()),
            None,
            "test",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}
