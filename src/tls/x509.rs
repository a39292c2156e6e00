//! A summary of an X.509 certificate for logs and `/readyz`: serial, subject, expiry.
//!
//! Only the few fields needed are read, straight from the DER (RFC 5280 §4.1):
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! tbsCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER,
//!     signature AlgorithmIdentifier, issuer Name, validity SEQUENCE { notBefore, notAfter },
//!     subject Name, ... }
//! ```
//!
//! This checks nothing: rustls validates certificates. Every read is bounds-checked, so a
//! damaged file gives an error, never a panic; a certificate this cannot summarise is still
//! served, only logged without its details.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The serial number in hex, as `openssl x509 -serial` shows it.
    pub serial: String,
    /// The subject's common attributes, `CN=..., O=...`; empty if it has none of them.
    pub subject: String,
    pub not_after: OffsetDateTime,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;

/// Attribute types shown in the subject (OID 2.5.4.x), in the order they are named.
const ATTRIBUTES: &[(u8, &str)] = &[
    (3, "CN"),
    (11, "OU"),
    (10, "O"),
    (7, "L"),
    (8, "ST"),
    (6, "C"),
];

impl Summary {
    pub fn parse(der: &[u8]) -> Result<Self, &'static str> {
        let (cert, _) = element(der, SEQUENCE)?;
        let (tbs, _) = element(cert, SEQUENCE)?;
        let mut rest = tbs;
        if rest.first() == Some(&VERSION) {
            rest = element(rest, VERSION)?.1;
        }
        let (serial, rest) = element(rest, INTEGER)?;
        let (_signature, rest) = element(rest, SEQUENCE)?;
        let (_issuer, rest) = element(rest, SEQUENCE)?;
        let (validity, rest) = element(rest, SEQUENCE)?;
        let (subject, _) = element(rest, SEQUENCE)?;
        let (_, _not_before, after) = any(validity)?;
        let (tag, not_after, _) = any(after)?;
        Ok(Summary {
            serial: serial_hex(serial),
            subject: name(subject)?,
            not_after: time_of(tag, not_after)?,
        })
    }
}

/// A DER INTEGER's bytes as `openssl x509 -serial` shows them: uppercase hex without the
/// sign byte or leading zeros.
fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    hex::encode_upper(&bytes[first..])
}

/// The next element, of any tag: (tag, content, what follows).
fn any(der: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let (&tag, rest) = der.split_first().ok_or("truncated")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not used in certificates");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err("unsupported length");
        }
        let bytes = rest.get(..n).ok_or("truncated length")?;
        let len = bytes.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    let content = rest.get(..len).ok_or("truncated content")?;
    Ok((tag, content, &rest[len..]))
}

/// The next element, which must have `tag`: (content, what follows).
fn element(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), &'static str> {
    let (t, content, rest) = any(der)?;
    if t != tag {
        return Err("unexpected element");
    }
    Ok((content, rest))
}

/// `CN=..., O=...` from a Name (a SEQUENCE of SETs of {type, value}).
fn name(mut rdns: &[u8]) -> Result<String, &'static str> {
    let mut found: Vec<(usize, String)> = Vec::new();
    // A certificate's name has a handful of attributes; the bound only guards the loop.
    for _ in 0..64 {
        if rdns.is_empty() {
            break;
        }
        let (set, rest) = element(rdns, SET)?;
        rdns = rest;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (attr, rest) = element(attrs, SEQUENCE)?;
            attrs = rest;
            let (oid, value) = element(attr, OID)?;
            let (_, text, _) = any(value)?;
            if let [0x55, 0x04, n] = oid {
                if let Some(i) = ATTRIBUTES.iter().position(|(k, _)| k == n) {
                    found.push((i, String::from_utf8_lossy(text).into_owned()));
                }
            }
        }
    }
    found.sort_by_key(|(i, _)| *i);
    Ok(found
        .iter()
        .map(|(i, v)| format!("{}={v}", ATTRIBUTES[*i].1))
        .collect::<Vec<_>>()
        .join(", "))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn time_of(tag: u8, text: &[u8]) -> Result<OffsetDateTime, &'static str> {
    let text = std::str::from_utf8(text).map_err(|_| "time is not text")?;
    let digits = text.strip_suffix('Z').ok_or("time is not in UTC")?;
    let num = |range: std::ops::Range<usize>| -> Result<u32, &'static str> {
        digits
            .get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("bad time")
    };
    let (year, at) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(0..2)? as i32;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (num(0..4)? as i32, 4),
        _ => return Err("unsupported time"),
    };
    let month = Month::try_from(num(at..at + 2)? as u8).map_err(|_| "bad month")?;
    let date = Date::from_calendar_date(year, month, num(at + 2..at + 4)? as u8)
        .map_err(|_| "bad date")?;
    let time = Time::from_hms(
        num(at + 4..at + 6)? as u8,
        num(at + 6..at + 8)? as u8,
        num(at + 8..at + 10)? as u8,
    )
    .map_err(|_| "bad time of day")?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert(cn: &str, serial: u64, not_after: OffsetDateTime) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        p.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_serial_subject_and_expiry() {
        let when = time::macros::datetime!(2031-02-03 04:05:06 UTC);
        let s = Summary::parse(&cert("collector.acme.test", 0x1234, when)).unwrap();
        assert_eq!(s.subject, "CN=collector.acme.test, O=Acme");
        assert_eq!(s.serial, "1234");
        // A serial whose top bit is set has a sign byte in DER; it is not shown.
        let s = Summary::parse(&cert("x", 0xa1, when)).unwrap();
        assert_eq!(s.serial, "A1");
        assert_eq!(s.not_after, when);
        // After 2049 the expiry is a GeneralizedTime.
        let late = time::macros::datetime!(2061-12-31 23:59:59 UTC);
        assert_eq!(Summary::parse(&cert("x", 7, late)).unwrap().not_after, late);
    }

    #[test]
    fn damaged_certificates_are_errors_not_panics() {
        let good = cert("x", 1, time::macros::datetime!(2030-01-01 0:00 UTC));
        for cut in 0..good.len() {
            let _ = Summary::parse(&good[..cut]);
        }
        for i in 0..good.len().min(400) {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = Summary::parse(&bad);
        }
        assert!(Summary::parse(b"").is_err());
        assert!(Summary::parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
