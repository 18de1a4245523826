//! Request parameters: form/query decoding, case-insensitive lookup, `name[i].field` maps and the
//! typed getters the command table binds with. Behaviour follows CloudStack's dispatcher
//! (`ParamUnpackWorker`, `ParamProcessWorker`, `BaseListCmd`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::error::ApiError;
use super::signing::parse_tz_date;

/// Largest `pagesize` a caller may ask for (`default.page.size`).
pub const DEFAULT_MAX_PAGE_SIZE: u32 = 500;

/// Default maximum length of a string parameter (`@Parameter(length = 255)`).
pub const DEFAULT_MAX_LENGTH: usize = 255;

/// The one parameter whose value may hold control characters (it carries a rule script).
const CONTROL_CHAR_EXEMPT: &str = "activationrule";

/// One map parameter: index → field (case kept) → value.
pub type ParamMap = BTreeMap<u32, BTreeMap<String, String>>;

/// Every map parameter of a request, by lower-cased name.
pub type Maps = BTreeMap<String, ParamMap>;

/// Decodes `application/x-www-form-urlencoded` text (or a query string) as Java's `URLDecoder`
/// with UTF-8 does: `+` is a space and runs of `%XX` are UTF-8 bytes (bad UTF-8 becomes U+FFFD).
/// Names are kept as sent and pairs keep their order; empty segments and empty names are dropped.
pub fn decode_form(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    decode_form_bytes(raw.as_bytes())
}

/// [`decode_form`] for a body that may not be valid UTF-8.
pub fn decode_form_bytes(raw: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for segment in raw.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &b""[..]),
        };
        let name = decode_component(name)?;
        if name.is_empty() {
            continue;
        }
        out.push((name, decode_component(value)?));
    }
    Ok(out)
}

fn decode_component(raw: &[u8]) -> Result<String, ApiError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| Some(hex_digit(h[0])? << 4 | hex_digit(h[1])?));
                let Some(b) = hex else {
                    let end = (i + 3).min(raw.len());
                    return Err(ApiError::param_error(format!(
                        "Unable to decode request parameters: invalid escape \"{}\"",
                        String::from_utf8_lossy(&raw[i..end])
                    )));
                };
                bytes.push(b);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The parameters of one request.
#[derive(Debug, Clone)]
pub struct Params {
    /// Every pair as received (query first, then body): the signature is computed over these.
    raw: Vec<(String, String)>,
    /// Lower-cased name → value; a later duplicate replaces an earlier one.
    values: HashMap<String, String>,
    /// Parsed map parameters, or the 430 the first malformed name gives.
    maps: Result<Maps, ApiError>,
    /// Whether the request came as an HTTP POST: some limits differ (userdata).
    posted: bool,
}

impl Params {
    /// Merges query-string pairs and form-body pairs, as the servlet's parameter map does.
    pub fn new(query: Vec<(String, String)>, body: Vec<(String, String)>) -> Self {
        let mut raw = query;
        raw.extend(body);
        Self::from_pairs(raw)
    }

    pub fn from_pairs(raw: Vec<(String, String)>) -> Self {
        let values = raw.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();
        let maps = parse_maps(&raw);
        Params { raw, values, maps, posted: false }
    }

    /// The same parameters, marked as sent by an HTTP POST (`posted`) or not.
    pub fn with_post(mut self, posted: bool) -> Self {
        self.posted = posted;
        self
    }

    /// Whether the request came as an HTTP POST.
    pub fn posted(&self) -> bool {
        self.posted
    }

    /// Every (name, value) pair as received, for signature checking.
    pub fn raw(&self) -> &[(String, String)] {
        &self.raw
    }

    /// The value of a parameter; the name is matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        // The server's own lookups use lower-case names: no allocation for them.
        if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
            return self.values.get(&name.to_lowercase()).map(String::as_str);
        }
        self.values.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The `command` value, case kept (command names are case-sensitive).
    pub fn command(&self) -> Option<&str> {
        self.get("command")
    }

    /// The checks CloudStack applies to every request before binding: no control characters in
    /// values (431) and well-formed `name[index].field` names (430).
    pub fn validate(&self) -> Result<(), ApiError> {
        for (name, value) in &self.raw {
            if name.eq_ignore_ascii_case(CONTROL_CHAR_EXEMPT) {
                continue;
            }
            if value.bytes().any(is_forbidden_control) {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter {name}: control characters are not allowed"
                )));
            }
        }
        self.maps.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// All map parameters (`details[0].key=…`), or the 430 for the first malformed name.
    pub fn maps(&self) -> Result<&Maps, ApiError> {
        self.maps.as_ref().map_err(Clone::clone)
    }

    /// One map parameter by name (case-insensitive); `None` when it was not sent.
    pub fn map(&self, name: &str) -> Result<Option<&ParamMap>, ApiError> {
        Ok(self.maps()?.get(&name.to_lowercase()))
    }

    /// A string, rejected (431) when longer than `max_len` UTF-16 units, as Java counts.
    pub fn string(&self, name: &str, max_len: usize) -> Result<Option<String>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if v.encode_utf16().count() > max_len {
            return Err(ApiError::invalid_param(format!(
                "Value greater than max allowed length {max_len} for param: {name}"
            )));
        }
        Ok(Some(v.to_owned()))
    }

    /// Java `Boolean.valueOf`: `true` in any case is true, every other value is false.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        Ok(self.get(name).map(|v| v.eq_ignore_ascii_case("true")))
    }

    /// A 64-bit integer (`Long.valueOf`: optional sign, decimal digits).
    pub fn long(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        java_integer(v).map(Some).ok_or_else(|| self.bad_value(name, v))
    }

    /// A 32-bit integer. A blank value counts as not sent, as CloudStack's INTEGER binding does.
    pub fn int(&self, name: &str) -> Result<Option<i32>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if v.trim().is_empty() {
            return Ok(None);
        }
        java_integer(v).and_then(|n| i32::try_from(n).ok()).map(Some).ok_or_else(|| self.bad_value(name, v))
    }

    /// A UUID, which must be lower case (the server compares stored UUIDs as strings).
    pub fn uuid(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if !is_uuid(v) {
            return Err(bad_uuid(name, v));
        }
        Ok(Some(v.to_owned()))
    }

    /// Comma-separated UUIDs; blank entries are skipped.
    pub fn uuid_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !is_uuid(token) {
                return Err(bad_uuid(name, token));
            }
            out.push(token.to_owned());
        }
        Ok(Some(out))
    }

    /// Comma-separated strings; empty entries are skipped, as Java's `StringTokenizer` does.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        Ok(self.get(name).map(|v| v.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect()))
    }

    /// A `yyyy-MM-dd` date.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map(Some).map_err(|_| bad_date(name, v))
    }

    /// `yyyy-MM-dd HH:mm:ss`, or a plain `yyyy-MM-dd` taken as midnight (the event and usage
    /// commands accept both).
    pub fn date_time(&self, name: &str) -> Result<Option<NaiveDateTime>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S") {
            return Ok(Some(t));
        }
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|d| Some(d.and_time(chrono::NaiveTime::MIN)))
            .map_err(|_| bad_date(name, v))
    }

    /// A date with a time zone, in any form `expires` accepts.
    pub fn tz_date(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        parse_tz_date(v).map(Some).ok_or_else(|| bad_date(name, v))
    }

    /// Turns an optional getter into a required one, with CloudStack's missing-parameter 431.
    /// `cmd_lower` is the lower-cased command name, e.g.
    /// `p.required("stopvirtualmachine", "id", Params::uuid)`.
    pub fn required<T>(
        &self,
        cmd_lower: &str,
        name: &str,
        getter: impl FnOnce(&Self, &str) -> Result<Option<T>, ApiError>,
    ) -> Result<T, ApiError> {
        getter(self, name)?.ok_or_else(|| ApiError::missing_param(cmd_lower, name))
    }

    /// `page` and `pagesize` with the default maximum page size.
    pub fn page(&self) -> Result<Option<(u32, u32)>, ApiError> {
        self.page_with_max(DEFAULT_MAX_PAGE_SIZE)
    }

    /// `(page, pagesize)` when the caller asked for one page; `None` for everything (neither
    /// given, or `pagesize=-1`). Pages start at 1.
    pub fn page_with_max(&self, max_page_size: u32) -> Result<Option<(u32, u32)>, ApiError> {
        let page = self.int("page")?;
        let size = self.int("pagesize")?;
        match (page, size) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err(ApiError::param_error("\"pagesize\" parameter is required when \"page\" is specified"))
            }
            (_, Some(s)) if i64::from(s) > i64::from(max_page_size) => Err(ApiError::invalid_param(format!(
                "Page size can't exceed max allowed page size value: {max_page_size}"
            ))),
            (None, Some(-1)) => Ok(None),
            (Some(_), Some(-1)) => {
                Err(ApiError::invalid_param("Can't specify page parameter when pagesize is -1 (Unlimited)"))
            }
            (None, Some(_)) => {
                Err(ApiError::param_error("\"page\" parameter is required when \"pagesize\" is specified"))
            }
            (Some(p), Some(s)) => {
                if s < 1 {
                    return Err(ApiError::invalid_param(format!(
                        "Invalid value {s} for parameter pagesize: must be -1 or at least 1"
                    )));
                }
                if p < 1 {
                    return Err(ApiError::invalid_param(format!(
                        "Invalid value {p} for parameter page: pages start at 1"
                    )));
                }
                // Both are positive here, so the casts cannot wrap.
                Ok(Some((p as u32, s as u32)))
            }
        }
    }

    /// The 431 for a value that does not parse as its declared type, worded as CloudStack does.
    fn bad_value(&self, name: &str, value: &str) -> ApiError {
        ApiError::param_error(match self.command() {
            Some(cmd) => format!(
                "Unable to execute API command {} due to invalid value {value} for parameter {name}",
                cmd.to_lowercase()
            ),
            None => format!("Invalid value {value} for parameter {name}"),
        })
    }
}

/// ASCII 0–9, 11, 12, 14–31 and 127; LF and CR stay allowed.
fn is_forbidden_control(b: u8) -> bool {
    (b < 32 && b != b'\n' && b != b'\r') || b == 127
}

/// `Long.parseLong`: an optional `+`/`-` then at least one decimal digit, nothing else.
fn java_integer(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, lower case only.
pub fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

fn bad_uuid(name: &str, value: &str) -> ApiError {
    ApiError::invalid_param(format!(
        "Invalid parameter {name} value={value} due to incorrect long value format, or entity \
         does not exist or due to incorrect parameter annotation for the field in api cmd class."
    ))
}

fn bad_date(name: &str, value: &str) -> ApiError {
    ApiError::param_error(format!(
        "Unable to parse date {value} for parameter {name}, please pass dates in the format \
         mentioned in the api documentation"
    ))
}

/// Collects every `name[index].field` pair. A name with `[` at position 0 is an ordinary
/// parameter, as in CloudStack.
fn parse_maps(raw: &[(String, String)]) -> Result<Maps, ApiError> {
    let mut maps = Maps::new();
    for (key, value) in raw {
        let Some(open) = key.find('[') else {
            continue;
        };
        if open == 0 {
            continue;
        }
        let (name, index, field) = split_map_key(key, open).ok_or_else(|| {
            ApiError::malformed(format!(
                "Unable to decode parameter {key}; if specifying an object array, please use \
                 parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup"
            ))
        })?;
        maps.entry(name.to_lowercase()).or_default().entry(index).or_default().insert(field.to_owned(), value.clone());
    }
    Ok(maps)
}

/// Splits `name[index].field`; `None` for any other shape (a second `[` or `]`, no `]`, a `.`
/// before the `]`, anything between `]` and `.`, an index that is not a number, an empty field).
fn split_map_key(key: &str, open: usize) -> Option<(&str, u32, &str)> {
    let rest = &key[open + 1..];
    let close = rest.find(']')?;
    let (index, tail) = (&rest[..close], &rest[close + 1..]);
    if index.contains('[') || tail.contains(['[', ']']) || index.contains('.') {
        return None;
    }
    let field = tail.strip_prefix('.')?;
    if field.is_empty() || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&key[..open], index.parse().ok()?, field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ErrorCode;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn params(list: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs(list))
    }

    #[test]
    fn decodes_like_java_urldecoder() {
        let got = decode_form("command=listZones&name=a+b%20c&x=%E2%82%AC&flag&&y=1%2B1=2").unwrap();
        assert_eq!(
            got,
            pairs(&[("command", "listZones"), ("name", "a b c"), ("x", "€"), ("flag", ""), ("y", "1+1=2"),])
        );
        // Names are decoded too and keep their case.
        let got = decode_form("details%5B0%5D.Key=v&apiKey=K").unwrap();
        assert_eq!(got, pairs(&[("details[0].Key", "v"), ("apiKey", "K")]));
        // A lone bad byte becomes U+FFFD rather than failing.
        assert_eq!(decode_form("a=%FF").unwrap(), pairs(&[("a", "\u{FFFD}")]));
        assert!(decode_form("").unwrap().is_empty());
        assert!(decode_form("=x").unwrap().is_empty());
    }

    #[test]
    fn bad_escapes_are_431() {
        for bad in ["a=%", "a=%4", "a=%G1", "a=%+1", "a%zz=1"] {
            let e = decode_form(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::ParamError, "{bad}");
            assert!(e.text.contains("invalid escape"), "{}", e.text);
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_last_wins() {
        let p = Params::new(pairs(&[("zoneId", "a"), ("command", "listZones")]), pairs(&[("ZONEID", "b")]));
        assert_eq!(p.get("zoneid"), Some("b"));
        assert_eq!(p.get("ZoneId"), Some("b"));
        assert_eq!(p.command(), Some("listZones"));
        assert_eq!(p.get("missing"), None);
        // The raw list keeps everything, in order, with names as sent.
        assert_eq!(p.raw(), &pairs(&[("zoneId", "a"), ("command", "listZones"), ("ZONEID", "b")])[..]);
    }

    #[test]
    fn control_characters() {
        for bad in ["a\tb", "a\0", "\x0b", "\x0c", "\x1f", "x\x7f"] {
            let p = params(&[("name", bad)]);
            let e = p.validate().unwrap_err();
            assert_eq!(e.code, ErrorCode::ParamError);
            assert_eq!(e.text, "Invalid value of parameter name: control characters are not allowed");
        }
        assert!(params(&[("name", "line1\r\nline2 é")]).validate().is_ok());
        assert!(params(&[("activationRule", "a\tb\x01")]).validate().is_ok());
    }

    #[test]
    fn map_parameters() {
        let p = params(&[
            ("details[0].cpuNumber", "2"),
            ("Details[0].memory", "512"),
            ("details[1].key", "k"),
            ("tags[10].key", "t"),
            ("tags[2].value", "v"),
            ("[0].x", "ordinary"),
        ]);
        p.validate().unwrap();
        let maps = p.maps().unwrap();
        assert_eq!(maps.len(), 2);
        let details = &maps["details"];
        assert_eq!(details[&0]["cpuNumber"], "2");
        assert_eq!(details[&0]["memory"], "512");
        assert_eq!(details[&1]["key"], "k");
        let tags = p.map("TAGS").unwrap().unwrap();
        assert_eq!(tags.keys().copied().collect::<Vec<_>>(), vec![2, 10]);
        assert!(p.map("other").unwrap().is_none());
        assert_eq!(p.get("[0].x"), Some("ordinary"));
    }

    #[test]
    fn malformed_map_parameters_are_430() {
        for key in [
            "a[0][1].x",
            "a[0.x",
            "a[0]",
            "a[0].",
            "a[x].y",
            "a[].y",
            "a[-1].y",
            "a[0]]. y",
            "a[0.1].y",
            "a[0]z.y",
            "a[99999999999].y",
        ] {
            let p = params(&[(key, "v")]);
            let e = p.validate().unwrap_err();
            assert_eq!(e.code, ErrorCode::MalformedParameter, "{key}");
            assert!(e.text.contains(key), "{}", e.text);
            assert!(p.maps().is_err());
        }
    }

    #[test]
    fn typed_getters() {
        let p = params(&[
            ("command", "listZones"),
            ("t1", "TRUE"),
            ("t2", "True"),
            ("f1", "yes"),
            ("f2", "1"),
            ("n", "-42"),
            ("plus", "+7"),
            ("bad", "4x"),
            ("big", "3000000000"),
            ("blank", ""),
            ("name", "héllo"),
        ]);
        assert_eq!(p.bool("t1").unwrap(), Some(true));
        assert_eq!(p.bool("t2").unwrap(), Some(true));
        assert_eq!(p.bool("f1").unwrap(), Some(false));
        assert_eq!(p.bool("f2").unwrap(), Some(false));
        assert_eq!(p.bool("none").unwrap(), None);
        assert_eq!(p.long("n").unwrap(), Some(-42));
        assert_eq!(p.long("plus").unwrap(), Some(7));
        assert_eq!(p.long("big").unwrap(), Some(3_000_000_000));
        assert_eq!(p.int("n").unwrap(), Some(-42));
        assert_eq!(p.int("blank").unwrap(), None);
        let e = p.int("big").unwrap_err();
        assert_eq!(e.code, ErrorCode::ParamError);
        let e = p.long("bad").unwrap_err();
        assert_eq!(e.text, "Unable to execute API command listzones due to invalid value 4x for parameter bad");
        assert!(p.long("blank").is_err());
        assert_eq!(p.string("name", 5).unwrap().as_deref(), Some("héllo"));
        let e = p.string("name", 4).unwrap_err();
        assert_eq!(e.text, "Value greater than max allowed length 4 for param: name");
        assert_eq!(p.string("none", 5).unwrap(), None);
    }

    #[test]
    fn uuids() {
        let id = "3f6c0b1e-8a4d-4c2b-9f1a-0123456789ab";
        let p = params(&[
            ("id", id),
            ("upper", "3F6C0B1E-8A4D-4C2B-9F1A-0123456789AB"),
            ("num", "12"),
            ("ids", &format!("{id},, {id} ,")),
            ("badids", &format!("{id},nope")),
        ]);
        assert_eq!(p.uuid("ID").unwrap().as_deref(), Some(id));
        assert_eq!(p.uuid("none").unwrap(), None);
        for name in ["upper", "num"] {
            let e = p.uuid(name).unwrap_err();
            assert_eq!(e.code, ErrorCode::ParamError);
            assert_eq!(e.cs_code, Some(4350));
            assert!(e.text.starts_with(&format!("Invalid parameter {name} value=")));
            assert!(e.text.ends_with("for the field in api cmd class."));
        }
        assert_eq!(p.uuid_list("ids").unwrap().unwrap(), vec![id, id]);
        let e = p.uuid_list("badids").unwrap_err();
        assert!(e.text.starts_with("Invalid parameter badids value=nope "));
        assert!(!is_uuid("3f6c0b1e-8a4d-4c2b-9f1a-0123456789a"));
        assert!(!is_uuid("3f6c0b1e+8a4d-4c2b-9f1a-0123456789ab"));
    }

    #[test]
    fn lists() {
        let p = params(&[("l", "a,,b, c,"), ("e", "")]);
        assert_eq!(p.list("l").unwrap().unwrap(), vec!["a", "b", " c"]);
        assert!(p.list("e").unwrap().unwrap().is_empty());
        assert_eq!(p.list("none").unwrap(), None);
    }

    #[test]
    fn dates() {
        let p = params(&[
            ("d", "2024-05-01"),
            ("dt", "2024-05-01 10:20:30"),
            ("tz", "2024-05-01T10:20:30+0200"),
            ("bad", "2024-13-01"),
        ]);
        assert_eq!(p.date("d").unwrap(), NaiveDate::from_ymd_opt(2024, 5, 1));
        assert!(p.date("dt").is_err());
        assert_eq!(p.date_time("dt").unwrap().unwrap().to_string(), "2024-05-01 10:20:30");
        assert_eq!(p.date_time("d").unwrap().unwrap().to_string(), "2024-05-01 00:00:00");
        assert_eq!(p.tz_date("tz").unwrap().unwrap().to_rfc3339(), "2024-05-01T08:20:30+00:00");
        let e = p.date("bad").unwrap_err();
        assert_eq!(e.code, ErrorCode::ParamError);
        assert!(e.text.starts_with("Unable to parse date 2024-13-01"));
    }

    #[test]
    fn required_getters() {
        let p = params(&[("id", "3f6c0b1e-8a4d-4c2b-9f1a-0123456789ab")]);
        assert!(p.required("stopvirtualmachine", "id", Params::uuid).is_ok());
        let e = p.required("listtemplates", "templatefilter", |p, n| p.string(n, 255)).unwrap_err();
        assert_eq!(e.text, "Unable to execute API command listtemplates due to missing parameter templatefilter");
        assert_eq!(e.code, ErrorCode::ParamError);
        assert_eq!(e.cs_code, Some(9999));
        // A present but invalid value reports the value, not a missing parameter.
        let p = params(&[("id", "x")]);
        let e = p.required("stopvirtualmachine", "id", Params::uuid).unwrap_err();
        assert!(e.text.starts_with("Invalid parameter id"));
    }

    #[test]
    fn pagination() {
        let page = |list: &[(&str, &str)]| params(list).page();
        assert_eq!(page(&[]).unwrap(), None);
        assert_eq!(page(&[("page", "2"), ("pagesize", "50")]).unwrap(), Some((2, 50)));
        assert_eq!(page(&[("Page", "1"), ("PageSize", "500")]).unwrap(), Some((1, 500)));
        assert_eq!(page(&[("pagesize", "-1")]).unwrap(), None);

        let err = |list: &[(&str, &str)]| page(list).unwrap_err();
        assert_eq!(err(&[("pagesize", "10")]).text, "\"page\" parameter is required when \"pagesize\" is specified");
        assert_eq!(err(&[("page", "1")]).text, "\"pagesize\" parameter is required when \"page\" is specified");
        assert_eq!(
            err(&[("page", "1"), ("pagesize", "501")]).text,
            "Page size can't exceed max allowed page size value: 500"
        );
        assert_eq!(
            err(&[("page", "1"), ("pagesize", "-1")]).text,
            "Can't specify page parameter when pagesize is -1 (Unlimited)"
        );
        for bad in [
            &[("page", "0"), ("pagesize", "10")][..],
            &[("page", "-3"), ("pagesize", "10")],
            &[("page", "1"), ("pagesize", "0")],
            &[("page", "1"), ("pagesize", "-2")],
            &[("page", "x"), ("pagesize", "10")],
        ] {
            assert_eq!(err(bad).code, ErrorCode::ParamError, "{bad:?}");
        }
        assert_eq!(
            params(&[("page", "1"), ("pagesize", "20")]).page_with_max(10).unwrap_err().text,
            "Page size can't exceed max allowed page size value: 10"
        );
    }
}
