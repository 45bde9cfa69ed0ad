//! Typed decoding of request bodies and encoding of blobs (base64, as the AWS JSON protocol sends
//! them). Secret blobs decode straight into `SecretBytes`.

use serde::de::DeserializeOwned;
use serde::Deserializer;

use super::error::KmsError;
use super::json_out::{write_value, Members, Sink};
use trent_crypto::secret::{wipe_bytes, wipe_text, SecretBytes};

/// Decode a validated body into a typed request.
pub fn decode<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, KmsError> {
    T::deserialize(body).map_err(|e| KmsError::Serialization(e.to_string()))
}

/// Base64 text of bytes. base64-simd writes the same text as the base64 crate's `STANDARD`
/// (padded) and accepts and refuses the same inputs, several times faster on the kilobytes of a
/// ciphertext or plaintext.
pub fn b64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Base64 text decoded as it is deserialized: from the text the deserializer lends (a parsed
/// body's string) without a copy of it, or from a copy that is wiped after.
struct Base64Text;

impl<'de> serde::de::Visitor<'de> for Base64Text {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        base64_simd::STANDARD
            .decode_to_vec(text.as_bytes())
            .map_err(|_| E::custom("invalid base64 blob"))
    }

    fn visit_string<E: serde::de::Error>(self, mut text: String) -> Result<Vec<u8>, E> {
        let decoded = self.visit_str(&text);
        wipe_text(&mut text);
        decoded
    }
}

/// Deserialize a base64 blob that is a secret (plaintext, key material).
pub fn secret_blob<'de, D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
    d.deserialize_str(Base64Text).map(SecretBytes::new)
}

/// Overwrite every string in `value` (members' values and array items, at any depth) with
/// zeros before it is dropped: a request or response body may hold a plaintext or a data key in
/// base64, or session credentials.
pub fn wipe_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => wipe_text(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        serde_json::Value::Object(members) => members.values_mut().for_each(wipe_strings),
        _ => {}
    }
}

/// The JSON text of `value`, written through a buffer that wipes what it leaves behind when it
/// grows: `to_string` grows its buffer by reallocation, which frees partial copies of the text (a
/// plaintext or a data key in base64, say) without wiping them.
pub fn json_text(value: &serde_json::Value) -> String {
    /// A byte buffer that wipes its old allocation whenever it moves to a bigger one.
    struct WipingBuf(Vec<u8>);
    impl Sink for WipingBuf {
        fn reserve(&mut self, additional: usize) {
            let needed = self.0.len() + additional;
            if needed > self.0.capacity() {
                let mut bigger = Vec::with_capacity(needed.max(2 * self.0.capacity()));
                bigger.extend_from_slice(&self.0);
                wipe_bytes(&mut self.0);
                self.0 = bigger;
            }
        }
        fn append(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }
    // Sized for the text up front, so that a body with a large blob is not copied on the way.
    let mut buf = WipingBuf(Vec::with_capacity(text_len_estimate(value)));
    write_value(&mut buf, value, Members::AsStored);
    // Only whole UTF-8 strings and ASCII are written.
    String::from_utf8(std::mem::take(&mut buf.0)).unwrap_or_else(|e| {
        wipe_bytes(&mut e.into_bytes());
        String::new()
    })
}

/// About how long `value`'s JSON text is: exact for strings without escapes, a little over for
/// numbers, under for strings that need escapes (the buffer then grows as it must).
fn text_len_estimate(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => {
            let commas = items.len().saturating_sub(1);
            2 + commas + items.iter().map(text_len_estimate).sum::<usize>()
        }
        Value::Object(members) => {
            let commas = members.len().saturating_sub(1);
            2 + commas
                + members
                    .iter()
                    .map(|(k, v)| k.len() + 3 + text_len_estimate(v))
                    .sum::<usize>()
        }
    }
}

/// A parsed request body whose strings are wiped when it is dropped (`wipe_strings`); it reads
/// as the `serde_json::Value` it holds.
#[derive(Debug, Default)]
pub struct RequestJson(pub serde_json::Value);

impl std::ops::Deref for RequestJson {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl Drop for RequestJson {
    fn drop(&mut self) {
        wipe_strings(&mut self.0);
    }
}

/// Deserialize a base64 blob that is not secret (ciphertexts, public keys).
pub fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_str(Base64Text)
}

/// Set member `key` of a JSON object to `value` (a target that is not an object is left as it
/// is): the panic-free form of `target[key] = value`.
pub fn set(target: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(map) = target.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

/// JSON null, for lookups that find nothing.
static NULL: serde_json::Value = serde_json::Value::Null;

/// The member of `value` at `path` (object keys, outermost first), or null: the panic-free form
/// of `value["a"]["b"]`.
pub fn field<'a>(value: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .unwrap_or(&NULL)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wiping_leaves_no_string_behind() {
        let mut body = serde_json::json!({
            "Plaintext": "c2VjcmV0", "Nested": {"List": ["a", 1, {"Token": "t"}]}, "N": 3
        });
        wipe_strings(&mut body);
        assert_eq!(
            body,
            serde_json::json!({"Plaintext": "", "Nested": {"List": ["", 1, {"Token": ""}]}, "N": 3})
        );
        let big = serde_json::json!({"Plaintext": "A".repeat(5000), "KeyId": "k\"q"});
        assert_eq!(json_text(&big), big.to_string());
        let held = RequestJson(serde_json::json!({"KeyId": "k"}));
        assert_eq!(held["KeyId"], "k");
    }

    #[test]
    fn the_text_estimate_fits_a_body_without_escapes() {
        let body = serde_json::json!({
            "CiphertextBlob": "A".repeat(5600), "KeyId": "arn:aws:kms:us-east-1:1:key/k",
            "List": ["a", "b", {"c": "d"}], "On": true, "Off": false, "None": null, "N": 12345
        });
        let text = json_text(&body);
        assert_eq!(text, body.to_string());
        let estimate = text_len_estimate(&body);
        assert!(estimate >= text.len(), "{estimate} < {}", text.len());
        assert!(
            estimate <= text.len() + 64,
            "{estimate} far over {}",
            text.len()
        );
        let strings_only = serde_json::json!({"a": ["bc", {"d": "e"}], "f": "g"});
        assert_eq!(
            text_len_estimate(&strings_only),
            strings_only.to_string().len()
        );
    }

    use serde_json::json;

    use super::*;

    #[test]
    fn blobs_decode_from_a_parsed_body_and_from_text() {
        #[derive(serde::Deserialize)]
        struct Both {
            #[serde(deserialize_with = "secret_blob")]
            secret: SecretBytes,
            #[serde(deserialize_with = "blob")]
            public: Vec<u8>,
        }
        let body = json!({"secret": "c2VjcmV0", "public": "AQID"});
        let from_value: Both = decode(&body).unwrap();
        assert_eq!(from_value.secret.as_slice(), b"secret");
        assert_eq!(from_value.public, [1, 2, 3]);
        let from_text: Both = serde_json::from_str(&body.to_string()).unwrap();
        assert_eq!(from_text.secret.as_slice(), b"secret");
        // Escaped text reaches the visitor as an owned copy.
        let escaped: Both =
            serde_json::from_str(r#"{"secret": "c2Vj\u0063mV0", "public": "AQID"}"#).unwrap();
        assert_eq!(escaped.secret.as_slice(), b"secret");
        for bad in [
            json!({"secret": "c2V", "public": "AQID"}),
            json!({"secret": 5, "public": "AQID"}),
        ] {
            assert!(matches!(
                decode::<Both>(&bad),
                Err(KmsError::Serialization(_))
            ));
        }
    }

    #[test]
    fn blobs_decode_and_encode_as_the_base64_crate_does() {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD;
        let inputs = [
            "", "QQ==", "QUI=", "QUJD", "QR==", "QUJ=", "QQ", "QQ=", "Q===", "QQ==QQ==", " QQ==",
            "QQ==\n", "QU-D", "QU_D", "QUJDRA==", "////", "++++", "AAAA====", "=",
        ];
        for text in inputs {
            let ours = decode::<Wrapped>(&json!({ "b": text })).ok().map(|w| w.b);
            assert_eq!(ours, reference.decode(text).ok(), "{text:?}");
        }
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(b64(&bytes), reference.encode(&bytes));
        }
    }

    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "blob")]
        b: Vec<u8>,
    }

    #[test]
    fn set_and_field_never_panic() {
        let mut object = json!({"a": {"b": 1}});
        set(&mut object, "c", json!(2));
        assert_eq!(object, json!({"a": {"b": 1}, "c": 2}));
        let mut not_object = json!([1]);
        set(&mut not_object, "c", json!(2));
        assert_eq!(not_object, json!([1]), "a non-object is left as it is");
        assert_eq!(field(&object, &["a", "b"]), &json!(1));
        assert!(field(&object, &["a", "x", "y"]).is_null());
        assert!(field(&not_object, &["a"]).is_null());
        assert_eq!(field(&object, &[]), &object);
    }
}
