//! Cedar source text helpers: string literals and `like` patterns, escaped exactly once here;
//! and [`Reads`], what a generated condition reads from the request context.

use crate::pattern::Piece;

/// A Cedar string literal (with quotes) holding `s` verbatim.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// A Cedar `like` pattern literal; only `*` is a wildcard (callers never pass `?`).
pub(crate) fn like(pieces: &[Piece]) -> String {
    let mut out = String::from("\"");
    for p in pieces {
        match p {
            Piece::Star => out.push('*'),
            Piece::Lit('*') => out.push_str("\\*"),
            Piece::Lit(c) => push_escaped(&mut out, *c),
            Piece::One => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// A Cedar set literal of string literals.
pub(crate) fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(string).collect();
    format!("[{}]", items.join(", "))
}

/// `base has "key"` with an escaped attribute name.
pub(crate) fn has(base: &str, key: &str) -> String {
    format!("({base} has {})", string(key))
}

/// `base["key"]`.
pub(crate) fn get(base: &str, key: &str) -> String {
    format!("{base}[{}]", string(key))
}

/// The top-level context attributes the generated Cedar text may read, in bit order.
pub(crate) const TOP: [&str; 11] = [
    "s",
    "b",
    "n",
    "d",
    "ip",
    "p",
    "r",
    "action",
    "ec",
    "ec_applies",
    "checks",
];

/// The records keyed by condition key (`TOP[0..5]`), read only through `has` and `[...]`.
pub(crate) const KEYED: usize = 5;

/// What one compiled Cedar policy reads from the context, found once at compile time so that the
/// evaluator builds only that part of the context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    /// Bit `i`: the policy reads `context.TOP[i]`.
    pub top: u16,
    /// Keys of the keyed records the policy tests: (record index in `TOP`, lower-cased key).
    pub keys: Vec<(usize, String)>,
    /// Bit `i` (`i < KEYED`): the text accesses record `TOP[i]` in a way not accounted for by
    /// `keys`, so every key of that record must be present (as before any pruning).
    pub all_keys: u16,
}

impl Reads {
    /// Everything: the whole context as the reference layout builds it.
    pub(crate) fn everything() -> Self {
        Self {
            top: (1 << TOP.len()) - 1,
            keys: Vec::new(),
            all_keys: (1 << KEYED) - 1,
        }
    }

    /// Scan `text` (one policy's Cedar source) for context accesses. `tracked` are the keyed
    /// accesses the compiler knows it emitted (as `has("context.R", key)` / `get(...)`); any other
    /// access to a keyed record, or any access to `context` that is not `context.NAME`, makes the
    /// answer conservative (the record's every key, or everything). A key that occurs inside a
    /// string literal can only make the answer larger, never smaller, so the scan is safe.
    pub(crate) fn scan(text: &str, tracked: &[(usize, String)]) -> Self {
        let mut rest = text.to_string();
        let mut keys = Vec::new();
        for (rec, key) in tracked {
            let base = format!("context.{}", TOP[*rec]);
            for form in [
                format!("{base} has {}", string(key)),
                format!("{base}[{}]", string(key)),
            ] {
                if rest.contains(&form) {
                    rest = rest.replace(&form, "");
                }
            }
            if !keys.contains(&(*rec, key.clone())) {
                keys.push((*rec, key.clone()));
            }
        }
        let mut reads = Self {
            top: 0,
            keys,
            all_keys: 0,
        };
        // Every occurrence of `context` must be `context.NAME` with a known NAME.
        for (at, _) in text.match_indices("context") {
            if !starts_token(text, at) {
                continue;
            }
            let after = &text[at + "context".len()..];
            let Some(field) = after.strip_prefix('.') else {
                return Self::everything();
            };
            let name_len = field.find(|c| !is_ident(c)).unwrap_or(field.len());
            match TOP.iter().position(|t| *t == &field[..name_len]) {
                Some(i) => reads.top |= 1 << i,
                None => return Self::everything(),
            }
        }
        // Keyed records accessed other than through the tracked forms.
        for (i, name) in TOP.iter().enumerate().take(KEYED) {
            let base = format!("context.{name}");
            let untracked = rest.match_indices(&base).any(|(at, _)| {
                starts_token(&rest, at) && !rest[at + base.len()..].starts_with(is_ident)
            });
            if untracked {
                reads.all_keys |= 1 << i;
            }
        }
        reads
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether the word at byte `at` of `text` is not the tail of a longer identifier.
fn starts_token(text: &str, at: usize) -> bool {
    !text[..at].ends_with(is_ident)
}
