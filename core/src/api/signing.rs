//! API-key request signing as `ApiServer.verifyRequest` does it, plus the signature-version-3
//! expiry check.
//!
//! The string to sign is every parameter but `signature`, names as received sorted in Java
//! order, values re-encoded as `java.net.URLEncoder` does with `+` turned into `%20`, joined
//! with `&`, and then lower-cased as a whole. The signature is base64(HMAC-SHA1(secret, that)).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// How far ahead `expires` may be when timestamps are enforced.
pub const MAX_EXPIRES_AHEAD_MINUTES: i64 = 15;

/// The strict canonical string, exactly as the Java server builds it.
pub fn canonical(pairs: &[(String, String)]) -> String {
    let mut entries = signed_entries(pairs);
    sort_strict(&mut entries);
    join(&entries, false)
}

/// Every parameter but `signature`, each name once with its last value, in order of first
/// appearance: the server reads a name → value map, so a name sent twice counts once.
fn signed_entries(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut entries: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    // A few names are looked up in place; many go through a map, so that a request with
    // thousands of parameters costs no quadratic time.
    let mut index: Option<HashMap<&str, usize>> = (pairs.len() > 32).then(HashMap::new);
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("signature") {
            continue;
        }
        let found = match &index {
            Some(map) => map.get(name.as_str()).copied(),
            None => entries.iter().position(|(n, _)| n == name),
        };
        match found {
            Some(i) => entries[i].1 = value,
            None => {
                if let Some(map) = &mut index {
                    map.insert(name, entries.len());
                }
                entries.push((name, value));
            }
        }
    }
    entries
}

/// Java's String.compareTo order: by UTF-16 code unit, which for ASCII is byte order.
fn sort_strict(entries: &mut [(&str, &str)]) {
    if entries.iter().all(|(n, _)| n.is_ascii()) {
        entries.sort_by_key(|(n, _)| *n);
    } else {
        entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    }
}

/// Libcloud's order: names compared after lower-casing; equal ones keep their order.
fn sort_lowered(entries: &mut [(&str, &str)]) {
    if entries.iter().all(|(n, _)| n.is_ascii()) {
        entries.sort_by(|(a, _), (b, _)| {
            a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
        });
    } else {
        entries.sort_by_cached_key(|(n, _)| n.to_lowercase().encode_utf16().collect::<Vec<_>>());
    }
}

/// `name=value` pairs joined with `&`, values encoded, the whole lower-cased.
fn join(entries: &[(&str, &str)], tilde_raw: bool) -> String {
    let mut out = String::with_capacity(entries.iter().map(|(n, v)| n.len() + 3 * v.len() + 2).sum());
    for (i, (name, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        url_encode(&mut out, value, tilde_raw);
    }
    if out.is_ascii() {
        out.make_ascii_lowercase();
        out
    } else {
        out.to_lowercase()
    }
}

/// `URLEncoder.encode(v, "UTF-8").replace("+", "%20")`.
fn url_encode(out: &mut String, value: &str, tilde_raw: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b'~' if tilde_raw => out.push('~'),
            b' ' => out.push_str("%20"),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// base64(HMAC-SHA1(secret, canonical)), standard alphabet with padding.
pub fn sign(secret: &str, canonical: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(canonical.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` (already URL-decoded) signs `pairs` with `secret`. Besides the strict
/// form this accepts the two mistakes real clients make (raw `~`; names sorted after
/// lower-casing) and both together, since a request signed that way is still proof of the key.
pub fn verify(pairs: &[(String, String)], signature: &str, secret: &str) -> bool {
    let mut strict = signed_entries(pairs);
    let mut lowered = strict.clone();
    sort_strict(&mut strict);
    sort_lowered(&mut lowered);
    // A variant that cannot change the string is not built: the order only when the two
    // sorts differ, the raw `~` only when a value holds one.
    let orders: &[&[(&str, &str)]] = if lowered == strict { &[&strict] } else { &[&strict, &lowered] };
    let tildes: &[bool] = if strict.iter().any(|(_, v)| v.contains('~')) { &[false, true] } else { &[false] };
    let mut candidates: Vec<String> = Vec::with_capacity(4);
    for order in orders {
        for &tilde_raw in tildes {
            let c = join(order, tilde_raw);
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
    }
    // Every candidate is compared, so the time taken does not tell which one matched.
    candidates.iter().fold(false, |ok, c| ok | bool::from(sign(secret, c).as_bytes().ct_eq(signature.as_bytes())))
}

/// The last value of a parameter whose name matches case-insensitively.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Signature version 3: when `signatureVersion` is exactly `3`, `expires` must be present,
/// parse, and not be in the past; otherwise 401. Other requests have no time limit.
pub fn check_expiry(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<(), ApiError> {
    if param(pairs, "signatureversion") != Some("3") {
        return Ok(());
    }
    expires(pairs, now).map(|_| ())
}

/// The stricter check of `enforce.post.requests.and.timestamps`: version 3 is required and
/// `expires` may be at most [`MAX_EXPIRES_AHEAD_MINUTES`] ahead.
pub fn check_expiry_enforced(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<(), ApiError> {
    if param(pairs, "signatureversion") != Some("3") {
        return Err(ApiError::unauthorized());
    }
    let at = expires(pairs, now)?;
    if at > now + Duration::minutes(MAX_EXPIRES_AHEAD_MINUTES) {
        return Err(ApiError::unauthorized());
    }
    Ok(())
}

fn expires(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let at = param(pairs, "expires").and_then(parse_tz_date).ok_or_else(ApiError::unauthorized)?;
    if at < now {
        return Err(ApiError::unauthorized());
    }
    Ok(at)
}

/// Parses the date forms `DateUtil.parseTZDateString` accepts:
/// `yyyy-MM-ddTHH:mm[:ss[.fraction]]` followed by `Z`, `±HH:MM`, `±HH:MM:SS`, `±HHMM`, `±HH`,
/// or the old `Z±HHMM`. That is the union of Java's formats (ISO offset date-time, ISO instant,
/// `…ssZ`, the `.SSSSSS` variants and `'Z'Z`), a little more lenient in how they combine.
pub fn parse_tz_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let d = b.get(from..from + len)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));

    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':')) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 2)?, num(8, 2)?)?;
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    let mut pos = 16;
    let (mut second, mut nanos) = (0, 0);
    if at(pos, b':') {
        second = num(pos + 1, 2)?;
        pos += 3;
        if at(pos, b'.') {
            let digits = b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            nanos = num(pos + 1, digits)? * 10u32.pow(9 - digits as u32);
            pos += 1 + digits;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = parse_offset(&s[pos..])?;
    let local = date.and_time(time);
    Some(offset.from_local_datetime(&local).single()?.with_timezone(&Utc))
}

fn parse_offset(z: &str) -> Option<FixedOffset> {
    if z.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    // `'Z'Z`: a literal Z, then the real offset as ±HHMM.
    let (z, compact_only) = match z.strip_prefix(['Z', 'z']) {
        Some(rest) => (rest, true),
        None => (z, false),
    };
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &z[1..];
    if !body.is_ascii() {
        return None;
    }
    let digits = |s: &str| -> Option<i32> {
        if s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let (h, m, sec) = match (body.len(), compact_only) {
        (4, _) => (digits(&body[..2])?, digits(&body[2..])?, 0),
        (2, false) => (digits(body)?, 0, 0),
        (5, false) if &body[2..3] == ":" => (digits(&body[..2])?, digits(&body[3..])?, 0),
        (8, false) if &body[2..3] == ":" && &body[5..6] == ":" => {
            (digits(&body[..2])?, digits(&body[3..5])?, digits(&body[6..])?)
        }
        _ => return None,
    };
    if h > 18 || m > 59 || sec > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60 + sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const DOC_KEY: &str = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg";
    const DOC_SECRET: &str = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ";

    #[test]
    fn docs_vector() {
        let p = pairs(&[("command", "listUsers"), ("response", "json"), ("apikey", DOC_KEY)]);
        let c = canonical(&p);
        assert_eq!(
            c,
            "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg&command=listusers&response=json"
        );
        assert_eq!(sign(DOC_SECRET, &c), "TTpdDq/7j/J58XCRHomKoQXEQds=");
        assert!(verify(&p, "TTpdDq/7j/J58XCRHomKoQXEQds=", DOC_SECRET));
        assert!(!verify(&p, "TTpdDq/7j/J58XCRHomKoQXEQds=", "other"));
    }

    #[test]
    fn v3_vector() {
        let p = pairs(&[
            ("apiKey", "KEY"),
            ("command", "listZones"),
            ("response", "json"),
            ("signatureVersion", "3"),
            ("expires", "2030-01-01T00:00:00+0000"),
        ]);
        let c = canonical(&p);
        assert_eq!(
            c,
            "apikey=key&command=listzones&expires=2030-01-01t00%3a00%3a00%2b0000&response=json&signatureversion=3"
        );
        assert_eq!(sign("SECRET", &c), "5Rv1j2g0zpFsbziV2b79kZX5Sq8=");
    }

    #[test]
    fn deploy_vector() {
        let p = pairs(&[
            ("apiKey", "KEY"),
            ("command", "deployVirtualMachine"),
            ("response", "json"),
            ("serviceofferingid", "a"),
            ("templateid", "b"),
            ("zoneid", "c"),
            ("displayname", "my vm*1"),
            ("userdata", "SGk="),
        ]);
        let c = canonical(&p);
        assert_eq!(
            c,
            "apikey=key&command=deployvirtualmachine&displayname=my%20vm*1&response=json\
             &serviceofferingid=a&templateid=b&userdata=sgk%3d&zoneid=c"
        );
        assert_eq!(sign("SECRET", &c), "VFAkEH96gJJxlLWtRHR1eE1dKrM=");
        // The signature parameter itself, in any case, is left out.
        let mut with_sig = p.clone();
        with_sig.push(("Signature".into(), "VFAkEH96gJJxlLWtRHR1eE1dKrM=".into()));
        assert_eq!(canonical(&with_sig), c);
        assert!(verify(&with_sig, "VFAkEH96gJJxlLWtRHR1eE1dKrM=", "SECRET"));
    }

    #[test]
    fn a_repeated_name_counts_once_with_its_last_value() {
        let p = pairs(&[("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(canonical(&p), "a=2&b=3");
        // Past the size where names are looked up through a map, the result is the same.
        let mut many: Vec<(String, String)> = (0..40).map(|i| (format!("n{i:02}"), "x".to_owned())).collect();
        many.push(("n05".into(), "last".into()));
        let c = canonical(&many);
        assert!(c.starts_with("n00=x&n01=x&n02=x&n03=x&n04=x&n05=last&n06=x"), "{c}");
        assert_eq!(c.matches("n05=").count(), 1);
    }

    #[test]
    fn encoding_matches_java() {
        let p = pairs(&[("a", "~/+=[]'(!) é*-._")]);
        assert_eq!(canonical(&p), "a=%7e%2f%2b%3d%5b%5d%27%28%21%29%20%c3%a9*-._");
        // Names are not encoded, and sorting is by code unit before lower-casing:
        // upper case sorts before `_`, which sorts before lower case.
        let p = pairs(&[("b", "1"), ("details[0].key", "k"), ("Zed", "2"), ("_x", "3")]);
        assert_eq!(canonical(&p), "zed=2&_x=3&b=1&details[0].key=k");
    }

    #[test]
    fn apikey_name_case_does_not_matter_for_the_string() {
        let a = canonical(&pairs(&[("apiKey", "K"), ("command", "listZones")]));
        let b = canonical(&pairs(&[("APIKEY", "K"), ("command", "listZones")]));
        let c = canonical(&pairs(&[("apikey", "K"), ("command", "listZones")]));
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn lenient_variants() {
        // A Python/Go client leaves `~` raw.
        let p = pairs(&[("apiKey", "K"), ("command", "listZones"), ("name", "a~b")]);
        let raw_tilde = "apikey=k&command=listzones&name=a~b";
        assert_ne!(canonical(&p), raw_tilde);
        assert!(verify(&p, &sign("S", raw_tilde), "S"));
        assert!(verify(&p, &sign("S", &canonical(&p)), "S"));

        // Libcloud sorts names after lower-casing them; the order differs here because `T` < `a`
        // but `t` > `a`.
        let p = pairs(&[
            ("apiKey", "K"),
            ("command", "deployVirtualMachine"),
            ("ipToNetworkList[0].ip", "10.0.0.5"),
            ("ipaddress", "x~y"),
        ]);
        let strict = canonical(&p);
        assert_eq!(strict, "apikey=k&command=deployvirtualmachine&iptonetworklist[0].ip=10.0.0.5&ipaddress=x%7ey");
        let lowered = "apikey=k&command=deployvirtualmachine&ipaddress=x%7ey&iptonetworklist[0].ip=10.0.0.5";
        let both = "apikey=k&command=deployvirtualmachine&ipaddress=x~y&iptonetworklist[0].ip=10.0.0.5";
        for s in [strict.as_str(), lowered, both] {
            assert!(verify(&p, &sign("S", s), "S"), "{s}");
        }
        assert!(!verify(&p, &sign("S", "apikey=k"), "S"));
        assert!(!verify(&p, "", "S"));
    }

    #[test]
    fn a_mangled_signature_fails() {
        let p = pairs(&[("command", "listUsers"), ("response", "json"), ("apikey", DOC_KEY)]);
        // What a client that forgets to percent-encode the signature ends up sending, e.g. a raw
        // `+` that the server decodes to a space.
        let broken = "TTpdDq/7j/J58XCRHomKoQXEQds=".replace('/', " ");
        assert!(!verify(&p, &broken, DOC_SECRET));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn tz_date_formats() {
        let expect = at("2030-01-01T00:00:00Z");
        for s in [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00+0000",
            "2030-01-01T00:00:00.000000Z",
            "2030-01-01T00:00:00.000000+0000",
            "2030-01-01T00:00:00.000000+00",
            "2030-01-01T00:00:00Z+0000",
            "2030-01-01T00:00Z",
            "2030-01-01T01:00:00+01:00",
            "2030-01-01T01:00:00+0100",
            "2029-12-31T19:00:00-0500",
            "2029-12-31T19:00:00Z-0500",
            "2030-01-01T05:30:00.000000+0530",
            "2030-01-01T00:00:00+00:00:00",
        ] {
            assert_eq!(parse_tz_date(s), Some(expect), "{s}");
        }
        assert_eq!(parse_tz_date("2030-01-01T00:00:00.123456Z"), Some(expect + Duration::microseconds(123_456)));
        for s in [
            "",
            "2030-01-01",
            "2030-01-01 00:00:00Z",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00+",
            "2030-01-01T00:00:00+0",
            "2030-01-01T00:00:00Z+00:00",
            "2030-13-01T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:00:60Z",
            "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00.1234567890Z",
            "2030-01-01T00:00:00+19:00",
            "2030-01-01T00:00:00 +0000",
            "+030-01-01T00:00:00Z",
            "2030-01-01T00:00:00+aé00",
            "2030-01-01T00:00:00+é",
            "２030-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_tz_date(s), None, "{s}");
        }
    }

    #[test]
    fn expiry() {
        let now = at("2029-06-01T12:00:00Z");
        let v3 = |expires: Option<&str>| {
            let mut p = pairs(&[("command", "listZones"), ("signatureVersion", "3")]);
            if let Some(e) = expires {
                p.push(("Expires".into(), e.into()));
            }
            p
        };
        assert!(check_expiry(&v3(Some("2030-01-01T00:00:00+0000")), now).is_ok());
        assert!(check_expiry(&v3(Some("2029-06-01T12:00:00Z")), now).is_ok());
        for bad in [None, Some("2029-06-01T11:59:59Z"), Some("tomorrow")] {
            let e = check_expiry(&v3(bad), now).unwrap_err();
            assert_eq!(e, ApiError::unauthorized(), "{bad:?}");
        }
        // The name matches in any case; the value must be exactly "3".
        let p = pairs(&[("SIGNATUREVERSION", "3")]);
        assert!(check_expiry(&p, now).is_err());
        for version in ["2", "03", " 3"] {
            let p = pairs(&[("signatureVersion", version), ("expires", "1999-01-01T00:00:00Z")]);
            assert!(check_expiry(&p, now).is_ok(), "{version}");
        }
        assert!(check_expiry(&pairs(&[("command", "listZones")]), now).is_ok());
    }

    #[test]
    fn enforced_expiry() {
        let now = at("2029-06-01T12:00:00Z");
        let p = |v: &str, e: &str| pairs(&[("signatureversion", v), ("expires", e)]);
        assert!(check_expiry_enforced(&p("3", "2029-06-01T12:15:00Z"), now).is_ok());
        assert!(check_expiry_enforced(&p("3", "2029-06-01T12:15:01Z"), now).is_err());
        assert!(check_expiry_enforced(&p("3", "2029-06-01T11:00:00Z"), now).is_err());
        assert!(check_expiry_enforced(&p("2", "2029-06-01T12:05:00Z"), now).is_err());
    }
}
