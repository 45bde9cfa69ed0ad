//! JSON text written from a `serde_json::Value` byte for byte as serde_json writes it (compact,
//! the same escapes), but faster on the long strings Trent's bodies and records carry: a string
//! is scanned in 32-byte blocks (vector compares) for the few bytes JSON escapes, and the runs
//! between them are copied whole, where serde_json looks every byte up in a table. Members are
//! written as stored or sorted by key (the audit chain's canonical form).

use serde_json::Value;

/// The order object members are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// As the value holds them.
    AsStored,
    /// Sorted by key (bytewise), at every depth: the canonical form.
    Sorted,
}

/// Where the text goes: a growable byte buffer. `reserve` is called before each append with the
/// bytes about to be written, so a buffer that must not leave copies behind (a body holding a
/// plaintext in base64) can wipe its old allocation when it moves.
pub trait Sink {
    /// Make room for `additional` more bytes.
    fn reserve(&mut self, additional: usize);
    /// Append `bytes`.
    fn append(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }
    fn append(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Append `value` to `out` as compact JSON, its object members in `order`.
pub fn write_value<S: Sink>(out: &mut S, value: &Value, order: Members) {
    match value {
        Value::Null => put(out, b"null"),
        Value::Bool(true) => put(out, b"true"),
        Value::Bool(false) => put(out, b"false"),
        Value::Number(n) => {
            // Numbers are rare in bodies and records; serde_json's own text for them.
            let text = n.to_string();
            put(out, text.as_bytes());
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            put(out, b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                write_value(out, item, order);
            }
            put(out, b"]");
        }
        Value::Object(members) => {
            put(out, b"{");
            let mut write_member = |i: usize, key: &str, member: &Value| {
                if i > 0 {
                    put(out, b",");
                }
                write_str(out, key);
                put(out, b":");
                write_value(out, member, order);
            };
            match order {
                Members::AsStored => {
                    for (i, (key, member)) in members.iter().enumerate() {
                        write_member(i, key, member);
                    }
                }
                Members::Sorted => {
                    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
                    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (i, (key, member)) in sorted.into_iter().enumerate() {
                        write_member(i, key, member);
                    }
                }
            }
            put(out, b"}");
        }
    }
}

/// Append `s` as a JSON string literal, escaped as serde_json escapes it: `"` and `\` with a
/// backslash, the control characters below U+0020 as `\b \t \n \f \r` or `\u00XX` (lowercase
/// hex), everything else (DEL and non-ASCII included) as it is.
pub fn write_str<S: Sink>(out: &mut S, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.append(b"\"");
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        if let Some(run) = bytes.get(start..at) {
            put(out, run);
        }
        if let Some(&byte) = bytes.get(at) {
            write_escape(out, byte);
        }
        start = at + 1;
    }
    if let Some(run) = bytes.get(start..) {
        put(out, run);
    }
    put(out, b"\"");
}

/// Append `bytes`, having made room for them.
fn put<S: Sink>(out: &mut S, bytes: &[u8]) {
    out.reserve(bytes.len());
    out.append(bytes);
}

/// Whether JSON escapes `byte` (without branches, so that block tests vectorize).
fn escaped(byte: u8) -> bool {
    (byte < 0x20) | (byte == b'"') | (byte == b'\\')
}

/// The index of the first byte at or after `from` that JSON escapes. Blocks of 32 bytes are
/// tested whole, with no exit inside a block, a loop the compiler turns into vector compares.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const BLOCK: usize = 32;
    let rest = bytes.get(from..)?;
    let mut blocks = rest.chunks_exact(BLOCK);
    let mut offset = from;
    for block in blocks.by_ref() {
        let any = block.iter().fold(false, |any, &b| any | escaped(b));
        if any {
            return block.iter().position(|&b| escaped(b)).map(|i| offset + i);
        }
        offset += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(|&b| escaped(b))
        .map(|i| offset + i)
}

/// Append the escape of one byte `escaped` accepts.
fn write_escape<S: Sink>(out: &mut S, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => put(out, b"\\\""),
        b'\\' => put(out, b"\\\\"),
        0x08 => put(out, b"\\b"),
        0x09 => put(out, b"\\t"),
        0x0a => put(out, b"\\n"),
        0x0c => put(out, b"\\f"),
        0x0d => put(out, b"\\r"),
        other => {
            let hex = |nibble: u8| HEX.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0');
            put(out, &[b'\\', b'u', b'0', b'0', hex(other >> 4), hex(other)]);
        }
    }
}

/// `value` as compact JSON text, its object members in `order`.
pub fn to_text(value: &Value, order: Members) -> String {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value, order);
    // Only whole UTF-8 strings and ASCII are written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every byte value in every position of a word, and strings of many lengths.
    fn samples() -> Vec<String> {
        let mut out = vec![
            String::new(),
            "plain".into(),
            "quote \" back \\ tab \t nul \u{0} é \u{2028} 🔑 del \u{7f}".into(),
        ];
        for c in 0u8..0x80 {
            for len in [1usize, 7, 8, 9, 15, 16, 17, 40] {
                for at in [0, len / 2, len - 1] {
                    let mut s = vec![b'a'; len];
                    if let Some(slot) = s.get_mut(at) {
                        *slot = c;
                    }
                    out.push(String::from_utf8(s).unwrap());
                }
            }
        }
        out.push("x".repeat(5000) + "\n" + &"y".repeat(3));
        out
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in samples() {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let v = json!({
            "b": [1, -7, 1.5, 18446744073709551615u64, true, false, null, {"z": "\u{1}", "a": []}],
            "a": {"d": "x\"y", "c": {}},
            "é": "🔑"
        });
        assert_eq!(
            to_text(&v, Members::AsStored),
            serde_json::to_string(&v).unwrap()
        );
        assert_eq!(
            to_text(&v, Members::Sorted),
            r#"{"a":{"c":{},"d":"x\"y"},"b":[1,-7,1.5,18446744073709551615,true,false,null,{"a":[],"z":"\u0001"}],"é":"🔑"}"#
        );
    }
}
