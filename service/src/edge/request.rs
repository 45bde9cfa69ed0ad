//! A request and a response as the pipeline sees them, without any HTTP framework: the server
//! turns its framework's request into a `Request` and writes a `Response` back.

use std::net::IpAddr;

/// One HTTP request on the API listener. Its body may hold a plaintext and its headers a
/// session token: `Debug` shows the method, path, header names and body length only.
#[derive(Clone, Default)]
pub struct Request {
    /// The HTTP method.
    pub method: String,
    /// The path, as sent.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The headers in their order, names in lower case; values that are not UTF-8 are read lossily
    /// (a signature over them then fails, as it should).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address, if known.
    pub peer_ip: Option<IpAddr>,
}

impl Request {
    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times a header occurs.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(k, _)| k == name).count()
    }

    /// The record's `sourceIPAddress`.
    pub fn source_ip(&self) -> String {
        self.peer_ip.map(|ip| ip.to_string()).unwrap_or_default()
    }

    /// The record's `userAgent`: the `User-Agent` header (empty when absent), followed by
    /// `X-Amz-User-Agent` when the client sends one that says more. Browsers do not let a page
    /// set `User-Agent`, so the console (like AWS's SDK for JavaScript) names itself there.
    pub fn user_agent(&self) -> String {
        let agent = self.header("user-agent").unwrap_or_default();
        match self.header("x-amz-user-agent") {
            Some(sdk) if !sdk.is_empty() && !agent.contains(sdk) => {
                if agent.is_empty() {
                    sdk.to_string()
                } else {
                    format!("{agent} {sdk}")
                }
            }
            _ => agent.to_string(),
        }
    }
}

/// The answer to a request. Its body may hold a plaintext: `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The `x-amzn-RequestId`.
    pub request_id: String,
    /// The body.
    pub body: String,
}

/// A request's body may hold a plaintext (in base64): it is overwritten before it is freed.
impl Drop for Request {
    fn drop(&mut self) {
        trent_crypto::secret::wipe_bytes(&mut self.body);
    }
}

/// A response's body may hold a plaintext, a data key or session credentials: it is
/// overwritten before it is freed (the server takes it out to send, see `trent-server`).
impl Drop for Response {
    fn drop(&mut self) {
        trent_crypto::secret::wipe_text(&mut self.body);
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .field("peer_ip", &self.peer_ip)
            .finish()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_by_name_and_counted() {
        let mut req = Request::default();
        req.headers = vec![
            ("x-amz-target".into(), "a".into()),
            ("user-agent".into(), "cli".into()),
            ("x-amz-target".into(), "b".into()),
        ];
        req.peer_ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(req.header("x-amz-target"), Some("a"));
        assert_eq!(req.header_count("x-amz-target"), 2);
        assert_eq!(req.header("host"), None);
        assert_eq!(
            (req.source_ip().as_str(), req.user_agent().as_str()),
            ("127.0.0.1", "cli")
        );
        assert_eq!(Request::default().user_agent(), "");
    }

    #[test]
    fn user_agent_adds_what_x_amz_user_agent_says() {
        let with = |headers: &[(&str, &str)]| {
            let mut req = Request::default();
            req.headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            req
        };
        assert_eq!(
            with(&[
                ("user-agent", "Mozilla/5.0"),
                ("x-amz-user-agent", "trent-console/0.1")
            ])
            .user_agent(),
            "Mozilla/5.0 trent-console/0.1"
        );
        assert_eq!(
            with(&[("x-amz-user-agent", "trent-console/0.1")]).user_agent(),
            "trent-console/0.1"
        );
        assert_eq!(
            with(&[
                ("user-agent", "sdk/1 os/linux"),
                ("x-amz-user-agent", "sdk/1")
            ])
            .user_agent(),
            "sdk/1 os/linux"
        );
    }

    #[test]
    fn debug_shows_no_body_and_no_header_value() {
        let mut req = Request::default();
        req.headers = vec![("x-amz-security-token".into(), "token-value".into())];
        req.body = b"plaintext-value".to_vec();
        let resp = Response {
            status: 200,
            content_type: "application/x-amz-json-1.1",
            request_id: "r".into(),
            body: "plaintext-value".into(),
        };
        let shown = format!("{req:?} {resp:?}");
        assert!(
            !shown.contains("token-value") && !shown.contains("plaintext-value"),
            "{shown}"
        );
        assert!(
            shown.contains("x-amz-security-token") && shown.contains("body_len: 15"),
            "{shown}"
        );
    }
}
