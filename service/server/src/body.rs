//! Reading a request body: bounded, into one buffer sized by its declared length; every buffer of
//! ours that held part of it is wiped (a body may hold a plaintext). The chunks actix-web hands
//! over come from its own read buffer, which is not ours to wipe.
//!
//! actix-web's own collector (`Payload::to_bytes_limited`) starts every body with a 32 KiB
//! buffer, which the pipeline then had to wipe whole on drop: about seven times the bytes of an
//! Encrypt of 4 KiB, on every call.

use std::future::poll_fn;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::web;
use futures_core::Stream;
use trent_service::crypto::secret::wipe_bytes;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed or the framing was invalid.
    Unreadable(PayloadError),
}

/// What is reserved first for a body that does not declare its length (chunked transfer).
const UNDECLARED_START: usize = 8 * 1024;

/// The most reserved up front on a declared length: a larger body grows as its bytes arrive, so
/// a client that declares a megabyte and sends nothing holds no more than this.
const DECLARED_START_MAX: usize = 64 * 1024;

/// Read the whole body of a request that declared `declared` bytes (its Content-Length, if any),
/// refusing more than `limit`; the declared length only sizes the first buffer. A buffer
/// outgrown while reading is wiped before it is freed, and so is the partial body of a refused or
/// failed read.
pub async fn read_body(
    declared: Option<usize>,
    limit: usize,
    mut payload: web::Payload,
) -> Result<Vec<u8>, BodyError> {
    // A body declared too large is still read up to the limit before it is refused, as one found
    // too large is: answering at once, with most of it unread, makes the server close the
    // connection under the client's feet, which can then lose the answer to a reset.
    let start = declared
        .filter(|n| *n <= limit)
        .map_or(UNDECLARED_START, |n| n.min(DECLARED_START_MAX));
    let mut body = Vec::with_capacity(start);
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                wipe_bytes(&mut body);
                return Err(BodyError::Unreadable(e));
            }
        };
        let wanted = body.len() + chunk.len();
        if wanted > limit {
            wipe_bytes(&mut body);
            return Err(BodyError::TooLarge);
        }
        if wanted > body.capacity() {
            let mut grown = Vec::with_capacity(wanted.max(2 * body.capacity()).min(limit));
            grown.extend_from_slice(&body);
            wipe_bytes(&mut body);
            body = grown;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The Content-Length a request declares, if it declares a valid one.
pub fn declared_length(req: &actix_web::HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::{Context, Poll};

    use actix_web::web::Bytes;
    use actix_web::FromRequest;

    use super::*;

    /// A body arriving in the given chunks, as a chunked (undeclared-length) request's does.
    struct Chunks(VecDeque<Result<Bytes, PayloadError>>);

    impl Stream for Chunks {
        type Item = Result<Bytes, PayloadError>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    async fn payload_of(chunks: Vec<Result<Bytes, PayloadError>>) -> web::Payload {
        let (req, _) = actix_web::test::TestRequest::default().to_http_parts();
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(Chunks(chunks.into()));
        let mut payload = actix_web::dev::Payload::Stream { payload: stream };
        web::Payload::from_request(&req, &mut payload)
            .await
            .expect("a payload")
    }

    fn chunk(byte: u8, len: usize) -> Result<Bytes, PayloadError> {
        Ok(Bytes::from(vec![byte; len]))
    }

    #[actix_web::test]
    async fn a_body_of_many_chunks_is_read_whole_past_its_first_buffer() {
        let chunks = (0..5u8).map(|i| chunk(i, 5_000)).collect();
        let body = read_body(None, 1 << 20, payload_of(chunks).await)
            .await
            .unwrap();
        let expected: Vec<u8> = (0..5u8).flat_map(|i| vec![i; 5_000]).collect();
        assert_eq!(body, expected);
    }

    #[actix_web::test]
    async fn a_body_declared_larger_than_the_first_buffer_grows_as_it_arrives() {
        let chunks = (0..3u8).map(|i| chunk(i, 30_000)).collect();
        let body = read_body(Some(90_000), 1 << 20, payload_of(chunks).await)
            .await
            .unwrap();
        let expected: Vec<u8> = (0..3u8).flat_map(|i| vec![i; 30_000]).collect();
        assert_eq!(body, expected);
    }

    #[actix_web::test]
    async fn a_body_over_the_limit_is_refused_whatever_it_declares() {
        let chunks = vec![chunk(1, 8_000), chunk(2, 8_000)];
        let found = read_body(None, 12_000, payload_of(chunks).await).await;
        assert!(matches!(found, Err(BodyError::TooLarge)), "{found:?}");
        let chunks = vec![chunk(1, 8_000), chunk(2, 8_000)];
        let declared = read_body(Some(16_000), 12_000, payload_of(chunks).await).await;
        assert!(matches!(declared, Err(BodyError::TooLarge)), "{declared:?}");
        let at_limit = read_body(
            Some(12_000),
            12_000,
            payload_of(vec![chunk(3, 12_000)]).await,
        )
        .await
        .unwrap();
        assert_eq!(at_limit.len(), 12_000);
    }

    #[actix_web::test]
    async fn a_failing_connection_is_an_unreadable_body() {
        let chunks = vec![chunk(1, 100), Err(PayloadError::Incomplete(None))];
        let read = read_body(Some(200), 1 << 20, payload_of(chunks).await).await;
        assert!(matches!(read, Err(BodyError::Unreadable(_))), "{read:?}");
    }
}
