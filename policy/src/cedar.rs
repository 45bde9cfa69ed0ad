//! Cedar source text helpers: string literals and `like` patterns, escaped exactly once here.

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
