//! Request context values and the typed readings that condition operators need (numbers, dates,
//! IP addresses and CIDR ranges, booleans). Pure parsing; no policy logic.

use std::net::IpAddr;

/// One value of a condition key in a request context.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// A string (also the form in which ARNs, base64 binaries and most KMS keys travel).
    String(String),
    /// An integer (`kms:RotationPeriodInDays`, `aws:EpochTime`, ...).
    Long(i64),
    /// A boolean (`aws:SecureTransport`, `kms:BypassPolicyLockoutSafetyCheck`, ...).
    Bool(bool),
    /// An instant, in milliseconds since the Unix epoch (`aws:CurrentTime`).
    Date(i64),
    /// An IP address (`aws:SourceIp`).
    Ip(IpAddr),
}

impl ContextValue {
    /// The value as text, as AWS compares it with string operators.
    pub fn as_text(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Long(n) => n.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Date(ms) => format_date(*ms),
            Self::Ip(ip) => ip.to_string(),
        }
    }

    /// The value as a number, if it is one.
    pub(crate) fn as_number(&self) -> Option<f64> {
        match self {
            Self::Long(n) => Some(*n as f64),
            Self::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
    }

    /// The value as an integer, if it is one (the form Cedar compares).
    pub(crate) fn as_long(&self) -> Option<i64> {
        match self {
            Self::Long(n) => Some(*n),
            Self::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
    }

    /// The value as an instant in epoch milliseconds, if it reads as a date.
    pub(crate) fn as_date(&self) -> Option<i64> {
        match self {
            Self::Date(ms) => Some(*ms),
            Self::Long(secs) => secs.checked_mul(1000),
            Self::String(s) => parse_date(s),
            _ => None,
        }
    }

    /// The value as a boolean, if it reads as one (`true`/`false`, any case).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Self::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// The value as an IP address, if it is one.
    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_string())
    }
}

impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for ContextValue {
    fn from(n: i64) -> Self {
        Self::Long(n)
    }
}

impl From<IpAddr> for ContextValue {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

/// Read a date as AWS accepts it in conditions: ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`,
/// with fractions or an offset) or epoch seconds. Returns epoch milliseconds.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok()?.checked_mul(1000);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        let t = s.strip_suffix('Z').unwrap_or(s);
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Some(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// An IP range from a policy (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parse a CIDR block or a single address.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in this range (an IPv4 address is never in an IPv6 range, as in Cedar).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_forms_aws_accepts() {
        let noon = 1_706_702_400_000; // 2024-01-31T12:00:00Z
        assert_eq!(parse_date("2024-01-31T12:00:00Z"), Some(noon));
        assert_eq!(parse_date("2024-01-31T12:00:00.000Z"), Some(noon));
        assert_eq!(parse_date("2024-01-31T14:00:00+02:00"), Some(noon));
        assert_eq!(parse_date("2024-01-31T12:00:00"), Some(noon));
        assert_eq!(parse_date("1706702400"), Some(noon));
        assert_eq!(parse_date("2024-01-31"), Some(noon - 12 * 3_600_000));
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        let one = Cidr::parse("203.0.113.7").unwrap();
        assert_eq!(one.prefix, 32);
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("not-an-ip").is_none());
    }
}
