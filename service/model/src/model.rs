//! Input validation against the KMS API model's constraints.
//!
//! `service/model/kms-model.json` holds the constraints of botocore's KMS model (required members,
//! lengths, ranges, enums, patterns; no documentation), extracted by `scripts/extract-kms-model.py`.
//! `Model::validate` walks a request body against its input shape and reports every violation in
//! AWS's wording ("1 validation error detected: Value ... at 'keySpec' failed to satisfy
//! constraint: ..."); JSON values of the wrong type are a `SerializationException` as in AWS.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::error::KmsError;
use super::operation::Operation;

const MODEL_JSON: &str = include_str!("../kms-model.json");

#[derive(Debug, Deserialize)]
struct RawModel {
    operations: BTreeMap<String, RawOperation>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Debug, Deserialize)]
struct RawOperation {
    input: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    pattern: Option<String>,
    #[serde(default)]
    members: BTreeMap<String, String>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

/// The loaded model: operations' input shapes and every shape's constraints.
pub struct Model {
    operations: BTreeMap<String, Option<String>>,
    shapes: HashMap<String, RawShape>,
    patterns: HashMap<String, Regex>,
}

impl Model {
    /// The model embedded in the binary, parsed once.
    pub fn get() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(Model::load)
    }

    #[allow(clippy::expect_used)] // the embedded model is checked by unit tests; it cannot vary
    fn load() -> Model {
        let raw: RawModel = serde_json::from_str(MODEL_JSON).expect("embedded KMS model parses");
        let mut patterns = HashMap::new();
        for (name, shape) in &raw.shapes {
            if let Some(p) = &shape.pattern {
                let re = Regex::new(&java_pattern_to_rust(p)).expect("model pattern compiles");
                patterns.insert(name.clone(), re);
            }
        }
        Model {
            operations: raw
                .operations
                .into_iter()
                .map(|(k, v)| (k, v.input))
                .collect(),
            shapes: raw.shapes,
            patterns,
        }
    }

    /// The names of the operations in the model.
    pub fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    /// Validate a request body for `op`; `Ok` means it satisfies every constraint of the model.
    pub fn validate(&self, op: Operation, body: &Value) -> Result<(), KmsError> {
        let Some(Some(input)) = self.operations.get(op.name()) else {
            return Ok(());
        };
        let mut walk = Walk {
            model: self,
            violations: Vec::new(),
        };
        walk.value(input, body, "")?;
        match walk.violations.len() {
            0 => Ok(()),
            1 => Err(KmsError::Validation(format!(
                "1 validation error detected: {}",
                walk.violations.concat()
            ))),
            n => Err(KmsError::Validation(format!(
                "{n} validation errors detected: {}",
                walk.violations.join("; ")
            ))),
        }
    }
}

/// botocore patterns are Java regular expressions matched against the whole value.
fn java_pattern_to_rust(p: &str) -> String {
    let re = Regex::new(r"\\u([0-9A-Fa-f]{4})").unwrap_or_else(|_| unreachable!());
    let converted = re.replace_all(p, r"\x{$1}");
    format!("^(?:{converted})$")
}

/// The member name as AWS writes it in validation messages (lower camel case).
fn wire_path(parent: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    if parent.is_empty() {
        camel
    } else {
        format!("{parent}.{camel}")
    }
}

struct Walk<'m> {
    model: &'m Model,
    violations: Vec<String>,
}

/// How many bytes the base64 text `s` decodes to, or None when it is not valid base64: exactly
/// what a whole decode with the standard engine accepts (whole quads, at most two `=` and only at
/// the end, unused bits of the last character zero). It reads the text without decoding it: a
/// blob may be a plaintext, which is decoded once, by the handler, and left nowhere else.
fn decoded_len(s: &str) -> Option<usize> {
    // base64-simd's check accepts what its decoder accepts (the same texts as the base64 crate's
    // standard engine: `wire::b64`, and the test below), in vector steps.
    let text = s.as_bytes();
    base64_simd::STANDARD.check(text).ok()?;
    base64_simd::STANDARD.decoded_length(text).ok()
}

impl Walk<'_> {
    fn value(&mut self, shape_name: &str, value: &Value, path: &str) -> Result<(), KmsError> {
        let Some(shape) = self.model.shapes.get(shape_name) else {
            return Ok(());
        };
        if value.is_null() {
            return Ok(());
        }
        match shape.kind.as_str() {
            "structure" => self.structure(shape, value, path),
            "string" => {
                let s = value.as_str().ok_or_else(|| type_error(value, "String"))?;
                self.string(shape_name, shape, s, path);
                Ok(())
            }
            "blob" => {
                let s = value.as_str().ok_or_else(|| type_error(value, "Blob"))?;
                let len = decoded_len(s).ok_or_else(|| {
                    KmsError::Serialization(format!(
                        "Invalid base64 value for the member at '{path}'"
                    ))
                })?;
                self.length(shape, len, None, path);
                Ok(())
            }
            "integer" | "long" => {
                let n = value.as_i64().ok_or_else(|| type_error(value, "Integer"))?;
                self.range(shape, n, path);
                Ok(())
            }
            "boolean" => {
                value
                    .as_bool()
                    .ok_or_else(|| type_error(value, "Boolean"))?;
                Ok(())
            }
            "timestamp" => {
                if !(value.is_number() || value.is_string()) {
                    return Err(type_error(value, "Timestamp"));
                }
                Ok(())
            }
            "list" => {
                let items = value.as_array().ok_or_else(|| type_error(value, "List"))?;
                self.length(shape, items.len(), None, path);
                if let Some(member) = &shape.member {
                    for (i, item) in items.iter().enumerate() {
                        self.value(member, item, &format!("{path}.{}.member", i + 1))?;
                    }
                }
                Ok(())
            }
            "map" => {
                let entries = value.as_object().ok_or_else(|| type_error(value, "Map"))?;
                self.length(shape, entries.len(), None, path);
                for (k, v) in entries {
                    if let Some(key_shape) = &shape.key {
                        self.value(key_shape, &Value::String(k.clone()), path)?;
                    }
                    if let Some(value_shape) = &shape.value {
                        if v.is_null() {
                            return Err(type_error(v, "String"));
                        }
                        self.value(value_shape, v, path)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn structure(&mut self, shape: &RawShape, value: &Value, path: &str) -> Result<(), KmsError> {
        let obj = value
            .as_object()
            .ok_or_else(|| type_error(value, "Structure"))?;
        for req in &shape.required {
            if obj.get(req).is_none_or(Value::is_null) {
                self.violations.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    wire_path(path, req)
                ));
            }
        }
        for (member, member_shape) in &shape.members {
            if let Some(v) = obj.get(member) {
                self.value(member_shape, v, &wire_path(path, member))?;
            }
        }
        Ok(())
    }

    fn string(&mut self, shape_name: &str, shape: &RawShape, s: &str, path: &str) {
        let shown = format!("Value '{s}' at '{path}'");
        if let Some(values) = &shape.enum_values {
            if !values.iter().any(|v| v == s) {
                let listed = aws_enum_order(shape_name, values)
                    .map(|order| order.join(", "))
                    .unwrap_or_else(|| values.join(", "));
                self.violations.push(format!(
                    "{shown} failed to satisfy constraint: Member must satisfy enum value set: [{listed}]"
                ));
                return;
            }
        }
        self.length(shape, s.chars().count(), Some(&shown), path);
        if let (Some(re), Some(p)) = (self.model.patterns.get(shape_name), &shape.pattern) {
            if !re.is_match(s) {
                self.violations.push(format!(
                    "{shown} failed to satisfy constraint: Member must satisfy regular expression pattern: {p}"
                ));
            }
        }
    }

    fn length(&mut self, shape: &RawShape, len: usize, shown: Option<&str>, path: &str) {
        let len = len as i64;
        let shown = shown
            .map(str::to_string)
            .unwrap_or_else(|| format!("Value at '{path}'"));
        if let Some(min) = shape.min.filter(|m| len < *m) {
            self.violations.push(format!(
                "{shown} failed to satisfy constraint: Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(max) = shape.max.filter(|m| len > *m) {
            self.violations.push(format!(
                "{shown} failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
    }

    fn range(&mut self, shape: &RawShape, n: i64, path: &str) {
        if let Some(min) = shape.min.filter(|m| n < *m) {
            self.violations.push(format!(
                "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            ));
        }
        if let Some(max) = shape.max.filter(|m| n > *m) {
            self.violations.push(format!(
                "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
            ));
        }
    }
}

fn type_error(value: &Value, expected: &str) -> KmsError {
    let found = match value {
        Value::Null => "NULL_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    };
    KmsError::Serialization(format!("{found} can not be converted to {expected}"))
}

/// The order AWS lists an enum's values in a ValidationException, where it was recorded and the
/// set is still the model's (AWS's order is not the model's: it comes from a hash set). Other
/// enums are listed in model order.
fn aws_enum_order(shape_name: &str, values: &[String]) -> Option<&'static [&'static str]> {
    const MAC_ALGORITHMS: &[&str] = &[
        "HMAC_SHA_384",
        "HMAC_SHA_256",
        "HMAC_SHA_224",
        "HMAC_SHA_512",
    ];
    let order = match shape_name {
        "MacAlgorithmSpec" => MAC_ALGORITHMS,
        _ => return None,
    };
    let same_set =
        order.len() == values.len() && order.iter().all(|o| values.iter().any(|v| v == o));
    same_set.then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn check(op: Operation, body: Value) -> Result<(), KmsError> {
        Model::get().validate(op, &body)
    }

    #[test]
    fn valid_requests_pass() {
        assert_eq!(check(Operation::CreateKey, json!({})), Ok(()));
        assert_eq!(
            check(
                Operation::Encrypt,
                json!({"KeyId": "alias/x", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b"}})
            ),
            Ok(())
        );
    }

    #[test]
    fn violations_use_aws_wording() {
        let cases: &[(Operation, Value, &str)] = &[
            (
                Operation::CreateKey,
                json!({"KeySpec": "AES_999"}),
                "1 validation error detected: Value 'AES_999' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, HMAC_224, HMAC_256, HMAC_384, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, ECC_NIST_EDWARDS25519, ML_KEM_512, ML_KEM_768, ML_KEM_1024]",
            ),
            (
                Operation::Encrypt,
                json!({"KeyId": "k"}),
                "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
            ),
            (
                Operation::GenerateRandom,
                json!({"NumberOfBytes": 0}),
                "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
            (
                Operation::ListKeys,
                json!({"Limit": 1001, "Marker": ""}),
                "2 validation errors detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000; Value '' at 'marker' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ),
            (
                Operation::CreateKey,
                json!({"Tags": [{"TagKey": "", "TagValue": "v"}]}),
                "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ),
            (
                Operation::GetKeyPolicy,
                json!({"KeyId": "k", "PolicyName": "bad name"}),
                "1 validation error detected: Value 'bad name' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+",
            ),
        ];
        for (op, body, message) in cases {
            assert_eq!(
                check(*op, body.clone()),
                Err(KmsError::Validation(message.to_string())),
                "{op:?} {body}"
            );
        }
    }

    #[test]
    fn oversize_plaintext_is_measured_after_base64() {
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 4097]);
        let err = check(Operation::Encrypt, json!({"KeyId": "k", "Plaintext": big})).unwrap_err();
        assert_eq!(
            err,
            KmsError::Validation("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into())
        );
    }

    #[test]
    fn blob_lengths_are_counted_as_a_whole_decode_counts_them() {
        let engine = base64::engine::general_purpose::STANDARD;
        for n in [0usize, 1, 2, 3, 767, 768, 769, 1535, 1536, 4096, 6000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(decoded_len(&engine.encode(&bytes)), Some(n), "{n} bytes");
        }
        let whole = engine.encode(vec![1u8; 2000]);
        let mut cases: Vec<String> = vec![
            "@@@@".into(),
            "AAA".into(),
            "AA=A".into(),
            "AB==".into(), // non-zero trailing bits
            format!("{}AA==", &whole[..1020]) + &whole[1024..],
            format!("{}=", &whole[..whole.len() - 1]),
            format!("{whole} "),
        ];
        // Padding that ends a chunk but not the text.
        let padded = engine.encode(vec![2u8; 766]);
        assert!(padded.ends_with("=="));
        cases.push(format!("{padded}{}", engine.encode(vec![3u8; 30])));
        for case in cases {
            assert_eq!(
                decoded_len(&case),
                engine.decode(&case).ok().map(|b| b.len()),
                "{case:?}"
            );
        }
        // Every text of up to 4 characters over a few characters of each kind (valid ones with
        // zero and non-zero unused bits, padding, and ones outside the alphabet), and longer
        // ones made of those, agree with the engine.
        let symbols = [
            "A", "B", "C", "I", "Q", "g", "w", "/", "+", "=", "-", "_", " ", "\n", "é",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| symbols.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        for (i, t) in texts.iter().enumerate() {
            for case in [t.clone(), format!("{}{t}", &whole[..8 * (i % 3)])] {
                assert_eq!(
                    decoded_len(&case),
                    engine.decode(&case).ok().map(|b| b.len()),
                    "{case:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_json_types_are_serialization_errors() {
        let err = check(Operation::GenerateRandom, json!({"NumberOfBytes": "12"})).unwrap_err();
        assert_eq!(err.aws_type(), "SerializationException");
        let err = check(
            Operation::Encrypt,
            json!({"KeyId": "k", "Plaintext": "@@@"}),
        )
        .unwrap_err();
        assert_eq!(err.aws_type(), "SerializationException");
    }
}
