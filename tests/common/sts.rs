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
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{endpoint}/");
    let host = endpoint.trim_start_matches("http://").to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
    ];
    let (ak, sk, token) = credentials;
    let identity =
        aws_credential_types::Credentials::new(ak, sk, token.map(str::to_string), None, "test")
            .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    let mut req = reqwest::Client::new().post(&url).body(body);
    for (k, v) in &headers {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.expect("request sent");
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
