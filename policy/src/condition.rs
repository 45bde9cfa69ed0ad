//! Condition operators: parsing their names, validating their values, compiling them to Cedar
//! where Cedar can say them directly, and evaluating them natively where it cannot.
//!
//! The semantics live here once: a key absent from the request (or present with no value) gives
//! `true` for `...IfExists`, negated operators and `ForAllValues:`, `false` otherwise; `Null`
//! tests presence; several policy values are OR (NOR for negated operators); a request key with
//! several values matches a plain or `ForAnyValue:` operator when any value does, and a
//! `ForAllValues:` operator when every value does. Plain numeric, date and IP operators compare a
//! single-valued key (a multi-valued key does not match them; use a set qualifier).

use serde_json::Value;

use crate::cedar;
use crate::pattern::{arn_match, glob, literal, pieces, variable_names, Piece};
use crate::request::AccessRequest;
use crate::value::{parse_date, Cidr, ContextValue};

/// A comparison of the numeric and date families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }

    fn cedar(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The operator family, which fixes how one request value is compared with one policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Str,
    StrIgnoreCase,
    StrLike,
    Arn,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Null,
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name such as `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub family: Family,
    pub negated: bool,
    pub if_exists: bool,
    pub qualifier: Qualifier,
}

/// Parse an operator name; the error says why it is not one.
pub(crate) fn parse_operator(name: &str) -> Result<Operator, String> {
    let (qualifier, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else {
        (Qualifier::None, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    use Cmp::*;
    let (family, negated) = match base {
        "StringEquals" => (Family::Str, false),
        "StringNotEquals" => (Family::Str, true),
        "StringEqualsIgnoreCase" => (Family::StrIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Family::StrIgnoreCase, true),
        "StringLike" => (Family::StrLike, false),
        "StringNotLike" => (Family::StrLike, true),
        "ArnEquals" | "ArnLike" => (Family::Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Family::Arn, true),
        "NumericEquals" => (Family::Numeric(Eq), false),
        "NumericNotEquals" => (Family::Numeric(Eq), true),
        "NumericLessThan" => (Family::Numeric(Lt), false),
        "NumericLessThanEquals" => (Family::Numeric(Le), false),
        "NumericGreaterThan" => (Family::Numeric(Gt), false),
        "NumericGreaterThanEquals" => (Family::Numeric(Ge), false),
        "DateEquals" => (Family::Date(Eq), false),
        "DateNotEquals" => (Family::Date(Eq), true),
        "DateLessThan" => (Family::Date(Lt), false),
        "DateLessThanEquals" => (Family::Date(Le), false),
        "DateGreaterThan" => (Family::Date(Gt), false),
        "DateGreaterThanEquals" => (Family::Date(Ge), false),
        "Bool" => (Family::Bool, false),
        "BinaryEquals" => (Family::Binary, false),
        "IpAddress" => (Family::Ip, false),
        "NotIpAddress" => (Family::Ip, true),
        "Null" => (Family::Null, false),
        _ => return Err(format!("'{name}' is not a condition operator")),
    };
    if family == Family::Null && (if_exists || qualifier != Qualifier::None) {
        return Err(format!(
            "'{name}': Null takes neither IfExists nor a set qualifier"
        ));
    }
    Ok(Operator {
        family,
        negated,
        if_exists,
        qualifier,
    })
}

/// One (operator, key, values) triple of a statement's `Condition`.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    op: Operator,
    /// The key lower-cased (AWS compares key names case-insensitively).
    pub key: String,
    values: Vec<String>,
    /// Whether the values use policy variables (2012-10-17 string and ARN operators).
    variables: bool,
}

impl Condition {
    /// Validate and build a condition; the error says what is wrong with the values.
    pub(crate) fn new(
        op_name: &str,
        key: &str,
        raw: &Value,
        variables_enabled: bool,
    ) -> Result<Self, String> {
        let op = parse_operator(op_name)?;
        let items: Vec<&Value> = match raw {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        if items.is_empty() {
            return Err("has no values".into());
        }
        let mut values = Vec::with_capacity(items.len());
        for v in items {
            values.push(match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err("values must be strings, numbers or booleans".into()),
            });
        }
        let string_like = matches!(
            op.family,
            Family::Str | Family::StrIgnoreCase | Family::StrLike | Family::Arn
        );
        let mut variables = false;
        for v in &values {
            let bad = |what: &str| Err(format!("'{v}' is not {what}"));
            match op.family {
                Family::Numeric(_) if v.trim().parse::<f64>().is_err() => return bad("a number"),
                Family::Date(_) if parse_date(v).is_none() => return bad("a date"),
                Family::Ip if Cidr::parse(v).is_none() => {
                    return bad("an IP address or CIDR block")
                }
                Family::Bool | Family::Null
                    if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
                {
                    return bad("true or false")
                }
                _ => {}
            }
            if string_like && variables_enabled && crate::pattern::has_variables(v) {
                variable_names(v)?;
                variables = true;
            }
        }
        Ok(Self {
            op,
            key: key.to_lowercase(),
            values,
            variables,
        })
    }

    /// The condition keys referenced by policy variables in the values.
    pub(crate) fn variable_keys(&self) -> Vec<String> {
        if !self.variables {
            return Vec::new();
        }
        self.values
            .iter()
            .flat_map(|v| variable_names(v).unwrap_or_default())
            .collect()
    }

    fn missing_result(&self) -> bool {
        self.op.if_exists
            || match self.op.qualifier {
                Qualifier::ForAllValues => true,
                Qualifier::ForAnyValue => false,
                Qualifier::None => self.op.negated,
            }
    }

    /// Evaluate natively against a request (the predicate path).
    pub(crate) fn holds(&self, req: &AccessRequest) -> bool {
        let vals = req.context_values(&self.key);
        if self.op.family == Family::Null {
            let present = vals.is_some();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") != present);
        }
        let Some(vals) = vals else {
            return self.missing_result();
        };
        let single_only = self.op.qualifier == Qualifier::None
            && matches!(
                self.op.family,
                Family::Numeric(_) | Family::Date(_) | Family::Ip
            );
        if single_only && vals.len() != 1 {
            return self.op.negated;
        }
        let lookup = |name: &str| req.variable(name);
        let resolved: Vec<Vec<Piece>> = self
            .values
            .iter()
            .filter_map(|v| pieces(v, self.variables, &lookup))
            .collect();
        let m = |v: &ContextValue| self.matches_any(v, &resolved) != self.op.negated;
        match self.op.qualifier {
            Qualifier::ForAllValues => vals.iter().all(m),
            _ => vals.iter().any(m),
        }
    }

    fn matches_any(&self, v: &ContextValue, resolved: &[Vec<Piece>]) -> bool {
        let text = v.as_text();
        resolved.iter().any(|p| {
            let lit = literal(p);
            match self.op.family {
                Family::Str | Family::Binary => text == lit,
                Family::StrIgnoreCase => text.to_lowercase() == lit.to_lowercase(),
                Family::StrLike => glob(p, &text, false),
                Family::Arn => arn_match(p, &text),
                Family::Numeric(c) => match (v.as_number(), lit.trim().parse::<f64>()) {
                    (Some(a), Ok(b)) => c.apply(a, b),
                    _ => false,
                },
                Family::Date(c) => match (v.as_date(), parse_date(&lit)) {
                    (Some(a), Some(b)) => c.apply(a, b),
                    _ => false,
                },
                Family::Bool => v.as_bool() == Some(lit.eq_ignore_ascii_case("true")),
                Family::Ip => match (Cidr::parse(&lit), v.as_ip()) {
                    (Some(c), Some(ip)) => c.contains(ip),
                    _ => false,
                },
                Family::Null => false,
            }
        })
    }

    /// The keyed context records (index in [`cedar::TOP`]) and key that [`Self::cedar`] tests:
    /// `s` for presence (and string values), plus the record of the typed reading it compares.
    pub(crate) fn cedar_reads(&self) -> Vec<(usize, String)> {
        let typed = match self.op.family {
            Family::Bool => Some(1),
            Family::Numeric(_) => Some(2),
            Family::Date(_) => Some(3),
            Family::Ip => Some(4),
            _ => None,
        };
        std::iter::once(0)
            .chain(typed)
            .map(|rec| (rec, self.key.clone()))
            .collect()
    }

    /// The Cedar expression for this condition, or `None` when it must be a native predicate
    /// (case-insensitive and wildcard matching, ARNs, policy variables, set qualifiers on typed
    /// values, non-integer numbers). Every attribute access is guarded by `has`.
    pub(crate) fn cedar(&self) -> Option<String> {
        if self.variables {
            return None;
        }
        let k = &self.key;
        let present = cedar::has("context.s", k);
        let values = &self.values;
        let neg = self.op.negated;
        let body = match (self.op.family, self.op.qualifier) {
            (Family::Null, _) => return Some(null_test(&present, values)),
            (Family::Str | Family::Binary, q) => string_test(k, values, q, neg),
            (Family::Bool, Qualifier::None) => bool_test(k, values),
            (Family::Numeric(c), Qualifier::None) => {
                let ints: Option<Vec<i64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
                typed("context.n", k, c, &ints?, neg)
            }
            (Family::Date(c), Qualifier::None) => {
                let ms: Option<Vec<i64>> = values.iter().map(|v| parse_date(v)).collect();
                typed("context.d", k, c, &ms?, neg)
            }
            (Family::Ip, Qualifier::None) => ip_test(k, values, neg),
            _ => return None,
        };
        Some(if self.missing_result() {
            format!("(!{present} || {body})")
        } else {
            format!("({present} && {body})")
        })
    }
}

/// The whole Cedar test of a `Null` condition: `present` negated for each `true` value, as is
/// for each other value, OR'd.
fn null_test(present: &str, values: &[String]) -> String {
    let tests: Vec<String> = values
        .iter()
        .map(|v| {
            if v.eq_ignore_ascii_case("true") {
                format!("!{present}")
            } else {
                present.to_string()
            }
        })
        .collect();
    format!("({})", tests.join(" || "))
}

/// The Cedar body of a string (or binary) equality condition on `key`: a set test between the
/// request's string values and `values`, chosen by the qualifier and negation.
fn string_test(key: &str, values: &[String], qualifier: Qualifier, negated: bool) -> String {
    let s = cedar::get("context.s", key);
    let v = cedar::string_set(values.iter().map(String::as_str));
    match (qualifier, negated) {
        (Qualifier::ForAllValues, false) => format!("{v}.containsAll({s})"),
        (Qualifier::ForAllValues, true) => format!("!{s}.containsAny({v})"),
        (_, false) => format!("{s}.containsAny({v})"),
        (_, true) => format!("!{v}.containsAll({s})"),
    }
}

/// The Cedar body of a `Bool` condition on `key`: the boolean reading is present and is one of
/// the (lower-cased) `values`.
fn bool_test(key: &str, values: &[String]) -> String {
    let lower: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
    format!(
        "({} && {}.containsAny({}))",
        cedar::has("context.b", key),
        cedar::get("context.b", key),
        cedar::string_set(lower.iter().map(String::as_str))
    )
}

/// The Cedar body of an IP condition on `key`: the IP reading is present and in one of the
/// ranges of `values` (negated for `NotIpAddress`).
fn ip_test(key: &str, values: &[String], negated: bool) -> String {
    let ranges: Vec<String> = values
        .iter()
        .filter_map(|v| Cidr::parse(v))
        .map(|c| {
            format!(
                "{}.isInRange(ip({}))",
                cedar::get("context.ip", key),
                cedar::string(&c.to_string())
            )
        })
        .collect();
    let inner = format!(
        "({} && ({}))",
        cedar::has("context.ip", key),
        ranges.join(" || ")
    );
    if negated {
        format!("!{inner}")
    } else {
        inner
    }
}

fn typed(base: &str, key: &str, c: Cmp, values: &[i64], negated: bool) -> String {
    let t = cedar::get(base, key);
    let alts: Vec<String> = values
        .iter()
        .map(|v| format!("{t} {} {v}", c.cedar()))
        .collect();
    let inner = format!("({} && ({}))", cedar::has(base, key), alts.join(" || "));
    if negated {
        format!("!{inner}")
    } else {
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = parse_operator("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(op.family, Family::StrLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.qualifier, Qualifier::ForAllValues);
        assert_eq!(parse_operator("NotIpAddress").unwrap().family, Family::Ip);
        for bad in [
            "StringEqual",
            "stringequals",
            "NullIfExists",
            "ForAnyValue:Null",
            "Foo:Bool",
        ] {
            assert!(parse_operator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_validated() {
        let bad = [
            ("NumericLessThan", "ten"),
            ("DateGreaterThan", "someday"),
            ("IpAddress", "10.0.0.0/99"),
            ("Bool", "yes"),
            ("Null", "maybe"),
        ];
        for (op, v) in bad {
            assert!(
                Condition::new(op, "k", &Value::String(v.into()), true).is_err(),
                "{op} {v}"
            );
        }
        assert!(Condition::new("StringLike", "k", &Value::String("${x".into()), true).is_err());
    }
}
