//! The throughput benchmark's load generator: a request rendered once to its HTTP/1.1 bytes
//! (signed, when it is a KMS call) and written as is, again and again, over a keep-alive
//! connection of its own per task. Per call it costs one write, one or two reads and a header
//! parse (httparse), where a general HTTP client (reqwest on hyper) copied the header map, built
//! a request, went through its pool and a body stream: 62 us of CPU per no-op call measured on
//! this 2-core machine, on the cores the server under test shares. The server's answer is read
//! by its `Content-Length` (every answer of Trent's carries one).

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request to replay: where it goes and its whole HTTP/1.1 text.
#[derive(Clone)]
pub struct Raw {
    /// `host:port`.
    pub addr: String,
    /// Request line, headers and body.
    pub bytes: bytes::Bytes,
}

impl Raw {
    /// A request to `addr` with `method`, `path`, `headers` (`host` and `content-length` are
    /// added) and `body`.
    pub fn new(
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Raw {
        let mut text = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
        for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if method != "GET" || !body.is_empty() {
            text.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body);
        Raw {
            addr: addr.to_string(),
            bytes: bytes.into(),
        }
    }
}

/// An answer: its status and body.
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// One task's keep-alive connections, one per server address, opened on first use and again
/// after the server closed one.
#[derive(Default)]
pub struct Connections {
    open: HashMap<String, Connection>,
}

impl Connections {
    /// Send `request` and read its answer (one attempt on a fresh connection after a stale one
    /// failed before any byte of the answer came).
    pub async fn send(&mut self, request: &Raw) -> Result<Answer, String> {
        if let Some(conn) = self.open.get_mut(&request.addr) {
            match conn.exchange(&request.bytes).await {
                Ok(answer) => return Ok(answer),
                Err(broken) => {
                    self.open.remove(&request.addr);
                    if let Broken::During(e) = broken {
                        return Err(e);
                    }
                }
            }
        }
        let mut conn = Connection::open(&request.addr).await?;
        let answer = conn.exchange(&request.bytes).await.map_err(|e| match e {
            Broken::BeforeAnswer(e) | Broken::During(e) => e,
        })?;
        self.open.insert(request.addr.clone(), conn);
        Ok(answer)
    }
}

/// How an exchange failed.
enum Broken {
    /// The connection failed before any byte of the answer (a closed idle connection).
    BeforeAnswer(String),
    /// It failed part-way, or the answer could not be read.
    During(String),
}

/// One keep-alive connection and the bytes read past the last answer.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: &str) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
        })
    }

    /// Write `request`, read one answer.
    async fn exchange(&mut self, request: &[u8]) -> Result<Answer, Broken> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| Broken::BeforeAnswer(e.to_string()))?;
        self.buffer.clear();
        let (status, head_len, body_len) = loop {
            if self.fill().await? == 0 {
                return Err(if self.buffer.is_empty() {
                    Broken::BeforeAnswer("connection closed".into())
                } else {
                    Broken::During("connection closed in an answer's head".into())
                });
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let length: usize = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                        .ok_or_else(|| Broken::During("answer without content-length".into()))?;
                    break (response.code.unwrap_or(0), head_len, length);
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(Broken::During(format!("bad answer: {e}"))),
            }
        };
        while self.buffer.len() < head_len + body_len {
            if self.fill().await? == 0 {
                return Err(Broken::During(
                    "connection closed in an answer's body".into(),
                ));
            }
        }
        Ok(Answer {
            status,
            body: self.buffer[head_len..head_len + body_len].to_vec(),
        })
    }

    /// Read what the socket has into the buffer; how many bytes came.
    async fn fill(&mut self) -> Result<usize, Broken> {
        let start = self.buffer.len();
        self.buffer.resize(start + 16 * 1024, 0);
        let read = self.stream.read(&mut self.buffer[start..]).await;
        self.buffer.truncate(start + *read.as_ref().unwrap_or(&0));
        read.map_err(|e| match start {
            0 => Broken::BeforeAnswer(e.to_string()),
            _ => Broken::During(e.to_string()),
        })
    }
}
