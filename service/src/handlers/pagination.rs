//! Pagination as every KMS list operation does it: `Limit`, an opaque `Marker`, and a response
//! with `Truncated` and, when truncated, `NextMarker`.

use base64::Engine;
use serde_json::{json, Value};

use crate::protocol::wire::set;
use crate::protocol::KmsError;

/// Decode a marker issued by `encode_marker` into the position it names.
pub fn decode_marker(marker: &str) -> Result<String, KmsError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| KmsError::InvalidMarker(format!("Invalid marker '{marker}'")))
}

/// An opaque marker for a position (the sort key of the last item returned).
pub fn encode_marker(position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

/// The response body of one page: `items` (already positioned after the marker, in order) cut at
/// `limit`, rendered under `list_name`, with `Truncated` and `NextMarker` from `position`.
pub fn page<T>(
    items: impl Iterator<Item = T>,
    limit: usize,
    list_name: &str,
    position: impl Fn(&T) -> String,
    render: impl Fn(&T) -> Value,
) -> Value {
    let mut taken: Vec<T> = items.take(limit + 1).collect();
    let truncated = taken.len() > limit;
    taken.truncate(limit);
    let mut body =
        json!({ list_name: taken.iter().map(&render).collect::<Vec<_>>(), "Truncated": truncated });
    if truncated {
        if let Some(last) = taken.last() {
            set(
                &mut body,
                "NextMarker",
                json!(encode_marker(&position(last))),
            );
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_at_the_limit_and_point_after_the_last_item() {
        let body = page(1..=5, 2, "N", |n| n.to_string(), |n| json!(n));
        assert_eq!(body["N"], json!([1, 2]));
        assert_eq!(body["Truncated"], true);
        assert_eq!(
            decode_marker(body["NextMarker"].as_str().unwrap()).unwrap(),
            "2"
        );
        let last = page(4..=5, 2, "N", |n| n.to_string(), |n| json!(n));
        assert_eq!(last["Truncated"], false);
        assert!(last.get("NextMarker").is_none());
        assert!(matches!(
            decode_marker("%%%"),
            Err(KmsError::InvalidMarker(_))
        ));
    }
}
