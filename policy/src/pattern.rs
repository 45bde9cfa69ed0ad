//! IAM wildcard patterns (`*`, `?`), ARN matching, and policy variables (`${aws:username}`).
//!
//! Pure string logic, shared by the compiler (to decide what Cedar can say directly) and by the
//! predicates evaluated natively per request. Nothing here knows about Cedar.

/// One element of a pattern after policy variables are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A character matched literally (including `*`, `?`, `$` from `${*}`, `${?}`, `${$}`).
    Lit(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Whether `value` contains a policy variable (`${...}`); only meaningful in 2012-10-17 policies.
pub(crate) fn has_variables(value: &str) -> bool {
    value.contains("${")
}

/// Check the `${...}` syntax of `value`, returning the variable names it references.
pub(crate) fn variable_names(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("'{value}' has an unterminated policy variable"))?;
        let (name, _) = split_default(&after[..end]);
        if !matches!(name, "*" | "?" | "$") {
            if name.is_empty() {
                return Err(format!("'{value}' has an empty policy variable"));
            }
            names.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `aws:PrincipalTag/team, 'none'` -> (`aws:PrincipalTag/team`, Some(`none`)).
fn split_default(inner: &str) -> (&str, Option<&str>) {
    match inner.split_once(',') {
        Some((name, default)) => {
            let d = default.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(d);
            (name.trim(), Some(d))
        }
        None => (inner.trim(), None),
    }
}

/// Turn a policy value into pieces, resolving variables through `lookup` (a single-valued key).
///
/// `variables` is false for 2008-10-17 policies, where `${` is plain text. Returns `None` when a
/// variable has no value and no default: AWS then treats the value as matching nothing.
pub(crate) fn pieces(
    value: &str,
    variables: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<Piece>> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    loop {
        let next = if variables { rest.find("${") } else { None };
        let (plain, tail) = match next {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        out.extend(plain.chars().map(|c| match c {
            '*' => Piece::Star,
            '?' => Piece::One,
            c => Piece::Lit(c),
        }));
        let Some(tail) = tail else { break };
        let end = tail.find('}')?;
        let (name, default) = split_default(&tail[..end]);
        match name {
            "*" | "?" | "$" => out.extend(name.chars().map(Piece::Lit)),
            _ => {
                let v = lookup(name).or_else(|| default.map(str::to_string))?;
                out.extend(v.chars().map(Piece::Lit));
            }
        }
        rest = &tail[end + 1..];
    }
    Some(out)
}

/// The pieces read as a literal string (`*` and `?` stand for themselves).
pub(crate) fn literal(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(c) => *c,
            Piece::Star => '*',
            Piece::One => '?',
        })
        .collect()
}

/// Match `text` against `pattern`, optionally ignoring case.
pub(crate) fn glob(pattern: &[Piece], text: &str, ignore_case: bool) -> bool {
    let text: Vec<char> = if ignore_case {
        text.to_lowercase().chars().collect()
    } else {
        text.chars().collect()
    };
    let lower: Vec<Piece>;
    let pattern = if ignore_case {
        lower = pattern
            .iter()
            .map(|p| match p {
                Piece::Lit(c) => Piece::Lit(c.to_lowercase().next().unwrap_or(*c)),
                other => *other,
            })
            .collect();
        &lower[..]
    } else {
        pattern
    };
    glob_chars(pattern, &text)
}

/// [`glob`] on text already split into characters, case-sensitively (no allocation).
pub(crate) fn glob_chars(pattern: &[Piece], text: &[char]) -> bool {
    // Iterative wildcard matching with one backtrack point (linear in practice).
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Piece::Star) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Piece::One) => {
                p += 1;
                t += 1;
            }
            Some(Piece::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == Piece::Star)
}

/// Plain-string convenience for [`glob`] (no variables).
pub(crate) fn glob_str(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p = pieces(pattern, false, &|_| None).unwrap_or_default();
    glob(&p, text, ignore_case)
}

/// Match an ARN against an ARN pattern as `ArnLike` and the `Resource` element do: each of the six
/// colon-separated parts separately (the last part is the rest of the ARN), case-sensitively.
pub(crate) fn arn_match(pattern: &[Piece], arn: &str) -> bool {
    if pattern == [Piece::Star] {
        return true;
    }
    let parts = split_pieces(pattern);
    let arn_parts: Vec<&str> = arn.splitn(6, ':').collect();
    if arn_parts.len() != 6 {
        return glob(pattern, arn, false);
    }
    if parts.len() != 6 {
        return false;
    }
    parts.iter().zip(arn_parts).all(|(p, a)| glob(p, a, false))
}

fn split_pieces(pattern: &[Piece]) -> Vec<Vec<Piece>> {
    let mut parts = vec![Vec::new()];
    for p in pattern {
        if *p == Piece::Lit(':') && parts.len() < 6 {
            parts.push(Vec::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(*p);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Piece> {
        pieces(s, true, &|name| {
            (name == "aws:username").then(|| "bob".to_string())
        })
        .unwrap()
    }

    #[test]
    fn wildcards() {
        let cases = [
            ("kms:*", "kms:Encrypt", false, true),
            ("kms:?ncrypt", "kms:Encrypt", false, true),
            ("kms:?ncrypt", "kms:ReEncrypt", false, false),
            ("KMS:ENCRYPT", "kms:encrypt", true, true),
            ("KMS:ENCRYPT", "kms:encrypt", false, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("*", "", false, true),
            ("?", "", false, false),
            ("home/${aws:username}/*", "home/bob/x", false, true),
            ("home/${aws:username}/*", "home/alice/x", false, false),
            ("literal${*}", "literal*", false, true),
            ("literal${*}", "literalX", false, false),
            ("a${?}", "a?", false, true),
            ("cost${$}", "cost$", false, true),
        ];
        for (pat, text, ic, want) in cases {
            assert_eq!(glob(&p(pat), text, ic), want, "{pat} vs {text}");
        }
    }

    #[test]
    fn variables_with_defaults_and_missing() {
        let look = |n: &str| (n == "aws:username").then(|| "bob".to_string());
        assert_eq!(
            literal(&pieces("${aws:PrincipalTag/team, 'none'}", true, &look).unwrap()),
            "none"
        );
        assert!(pieces("${aws:PrincipalTag/team}", true, &look).is_none());
        assert_eq!(
            literal(&pieces("${aws:username}", false, &look).unwrap()),
            "${aws:username}"
        );
        assert!(variable_names("x${aws:username").is_err());
        assert_eq!(
            variable_names("${aws:username}/${*}").unwrap(),
            vec!["aws:username"]
        );
    }

    #[test]
    fn arn_parts_are_matched_separately() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/abc";
        assert!(arn_match(&p("arn:aws:kms:*:111122223333:key/*"), arn));
        assert!(arn_match(&p("arn:aws:kms:us-east-?:*:key/abc"), arn));
        assert!(!arn_match(&p("arn:aws:kms:*:444455556666:key/*"), arn));
        // `*` in the region part does not swallow the account part.
        assert!(!arn_match(&p("arn:aws:kms:*:key/abc"), arn));
        assert!(arn_match(&p("*"), arn));
    }
}
