//! A driver's per-pool or per-host settings: the `details` an operator gives, checked
//! against the JSON Schema the driver's `describe()` returns and handed to the driver as
//! the query string of the pool or host URL (the WIT has no other place for them).
//!
//! The schema subset understood: an object's `properties`, each with `type` (string,
//! integer, number or boolean), `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `pattern` (a regular expression the value must contain a match of, as JSON Schema
//! reads it), `default`, `title`/`description`; the object's `required`. Keys the schema does not
//! name are refused.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why the details do not fit the driver's schema. Each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("Unknown detail {key}: {driver} takes {known}")]
    Unknown { key: String, driver: String, known: String },
    #[error("Missing detail {key}: {driver} requires it")]
    Missing { key: String, driver: String },
    #[error("Invalid detail {key}={value}: {why}")]
    Invalid { key: String, value: String, why: String },
}

/// The schema's properties, if it declares any.
fn properties(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty())
}

/// A JSON value as the text it would have in a URL query (`"a"` → `a`, `5` → `5`).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks one value against its property; the value in canonical form.
fn check_value(key: &str, value: &str, prop: &Value) -> Result<String, SettingsError> {
    let invalid = |why: String| SettingsError::Invalid { key: key.to_owned(), value: value.to_owned(), why };
    let kind = prop.get("type").and_then(Value::as_str).unwrap_or("string");
    let number = |v: &str| -> Option<f64> { v.trim().parse::<f64>().ok().filter(|n| n.is_finite()) };
    let canonical = match kind {
        "integer" => value.trim().parse::<i64>().map_err(|_| invalid("must be a whole number".into()))?.to_string(),
        "number" => {
            number(value).ok_or_else(|| invalid("must be a number".into()))?;
            value.trim().to_owned()
        }
        "boolean" => match value.trim().to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => v.to_owned(),
            _ => return Err(invalid("must be true or false".into())),
        },
        _ => value.to_owned(),
    };
    if matches!(kind, "integer" | "number") {
        let n = number(&canonical).unwrap_or_default();
        if let Some(min) = prop.get("minimum").and_then(Value::as_f64).filter(|m| n < *m) {
            return Err(invalid(format!("must be at least {}", num_text(min))));
        }
        if let Some(max) = prop.get("maximum").and_then(Value::as_f64).filter(|m| n > *m) {
            return Err(invalid(format!("must be at most {}", num_text(max))));
        }
    }
    if kind == "string" {
        let len = canonical.chars().count() as u64;
        if let Some(min) = prop.get("minLength").and_then(Value::as_u64).filter(|m| len < *m) {
            return Err(invalid(format!("must be at least {min} characters")));
        }
        if let Some(max) = prop.get("maxLength").and_then(Value::as_u64).filter(|m| len > *m) {
            return Err(invalid(format!("must be at most {max} characters")));
        }
        if let Some(pattern) = prop.get("pattern").and_then(Value::as_str) {
            let re = regex::Regex::new(pattern)
                .map_err(|_| invalid(format!("the schema's pattern {pattern} is not valid")))?;
            if !re.is_match(&canonical) {
                return Err(invalid(format!("must match {pattern}")));
            }
        }
    }
    if let Some(choices) = prop.get("enum").and_then(Value::as_array) {
        let texts: Vec<String> = choices.iter().map(as_text).collect();
        if !texts.contains(&canonical) {
            return Err(invalid(format!("must be one of {}", texts.join(", "))));
        }
    }
    Ok(canonical)
}

/// A bound as written in a message: whole numbers without a trailing `.0`.
fn num_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

/// Percent-encodes a query key or value: unreserved characters stay, the rest is `%XX`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` (and `+` as a space) in a query key or value.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a URL's query string, decoded.
pub fn query_pairs(url: &str) -> BTreeMap<String, String> {
    let Some((_, query)) = url.split_once('?') else {
        return BTreeMap::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Checks `details` against `driver`'s `schema` and returns the URL the driver is given:
/// `url` with the details in its query string (keys sorted, percent-encoded). A value equal
/// to the property's default is left out, as is a default not given: a driver reads a
/// missing key as its default. Query keys already in `url` that the schema names are
/// checked as details are; others are the URL's own and kept. Without details the URL is
/// returned as it was (after the checks, so a required setting is still asked for).
pub fn apply(
    driver: &str,
    schema: &Value,
    url: &str,
    details: &BTreeMap<String, String>,
) -> Result<String, SettingsError> {
    let Some(props) = properties(schema) else {
        return match details.keys().next() {
            Some(key) => {
                Err(SettingsError::Unknown { key: key.clone(), driver: driver.to_owned(), known: "no settings".into() })
            }
            None => Ok(url.to_owned()),
        };
    };
    let mut merged = query_pairs(url);
    for (key, value) in details {
        if !props.contains_key(key) {
            let known: Vec<&str> = props.keys().map(String::as_str).collect();
            return Err(SettingsError::Unknown {
                key: key.clone(),
                driver: driver.to_owned(),
                known: known.join(", "),
            });
        }
        merged.insert(key.clone(), value.clone());
    }
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    for key in required {
        let given = merged.get(key).is_some_and(|v| !v.is_empty());
        let defaulted = props.get(key).and_then(|p| p.get("default")).is_some();
        if !given && !defaulted {
            return Err(SettingsError::Missing { key: key.to_owned(), driver: driver.to_owned() });
        }
    }
    for (key, value) in merged.iter_mut() {
        if let Some(prop) = props.get(key) {
            *value = check_value(key, value, prop)?;
        }
    }
    if details.is_empty() {
        return Ok(url.to_owned());
    }
    merged.retain(|key, value| {
        let default = props.get(key).and_then(|p| p.get("default")).map(as_text);
        default.as_deref() != Some(value.as_str())
    });
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    if merged.is_empty() {
        return Ok(base.to_owned());
    }
    let query: Vec<String> = merged.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    Ok(format!("{base}?{}", query.join("&")))
}

/// Whether `schema` is one the server can check details against (see the module's doc):
/// the number of settings it declares, or what is wrong with it.
pub fn check_schema(schema: &Value) -> Result<usize, String> {
    if !schema.is_object() {
        return Err(format!("config-schema must be a JSON object (\"{{}}\" for none), not {schema}"));
    }
    let props = match schema.get("properties") {
        None => return Ok(0),
        Some(Value::Object(p)) => p,
        Some(other) => return Err(format!("config-schema properties must be an object, not {other}")),
    };
    for (key, prop) in props {
        let kind = prop.get("type").map(|t| t.as_str().unwrap_or("")).unwrap_or("string");
        if !matches!(kind, "string" | "integer" | "number" | "boolean") {
            return Err(format!(
                "config-schema property {key}: type {} is not one of string, integer, number, boolean",
                prop["type"]
            ));
        }
        if prop.get("enum").is_some_and(|e| !e.is_array()) {
            return Err(format!("config-schema property {key}: enum must be an array"));
        }
        if let Some(p) = prop.get("pattern") {
            let valid = p.as_str().is_some_and(|p| regex::Regex::new(p).is_ok());
            if !valid {
                return Err(format!("config-schema property {key}: pattern {p} is not a valid regular expression"));
            }
        }
        if let Some(d) = prop.get("default") {
            check_value(key, &as_text(d), prop).map_err(|e| format!("config-schema default: {e}"))?;
        }
    }
    let required = schema.get("required").map(|r| r.as_array().ok_or("config-schema required must be an array"));
    for key in required.transpose()?.into_iter().flatten() {
        match key.as_str() {
            Some(k) if props.contains_key(k) => {}
            _ => return Err(format!("config-schema requires {key}, which is not among its properties")),
        }
    }
    Ok(props.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "quota-mib": {"type": "integer", "minimum": 1, "maximum": 1048576, "title": "Quota (MiB)"},
                "layout": {"type": "string", "enum": ["flat", "nested"], "default": "flat"},
                "ratio": {"type": "number", "minimum": 0.5},
                "sparse": {"type": "boolean", "default": true},
                "label": {"type": "string", "maxLength": 4},
                "pool": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}
            },
            "required": ["quota-mib"]
        })
    }

    fn d(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn good_details_become_the_sorted_query() {
        let url =
            apply("p", &schema(), "file:///x", &d(&[("quota-mib", "64"), ("layout", "nested"), ("label", "a b")]));
        assert_eq!(url.unwrap(), "file:///x?label=a%20b&layout=nested&quota-mib=64");
        // Defaults are left out; the URL's own query keys stay; a detail overrides the URL.
        let url = apply("p", &schema(), "nfs://h/e?quota-mib=5&v=3", &d(&[("quota-mib", "7"), ("sparse", "TRUE")]));
        assert_eq!(url.unwrap(), "nfs://h/e?quota-mib=7&v=3");
        assert_eq!(apply("p", &schema(), "file:///x?quota-mib=3", &d(&[])).unwrap(), "file:///x?quota-mib=3");
        assert_eq!(query_pairs("a://b/c?x=%2Fy+z&w"), d(&[("x", "/y z"), ("w", "")]));
    }

    #[test]
    fn bad_details_name_the_field_and_why() {
        let err = |pairs: &[(&str, &str)]| apply("p", &schema(), "file:///x", &d(pairs)).unwrap_err().to_string();
        assert_eq!(err(&[("quota-mib", "0")]), "Invalid detail quota-mib=0: must be at least 1");
        assert_eq!(err(&[("quota-mib", "2x")]), "Invalid detail quota-mib=2x: must be a whole number");
        assert_eq!(
            err(&[("quota-mib", "1"), ("layout", "deep")]),
            "Invalid detail layout=deep: must be one of flat, nested"
        );
        assert_eq!(err(&[("quota-mib", "1"), ("ratio", "0.1")]), "Invalid detail ratio=0.1: must be at least 0.5");
        assert_eq!(err(&[("quota-mib", "1"), ("sparse", "yes")]), "Invalid detail sparse=yes: must be true or false");
        assert_eq!(
            err(&[("quota-mib", "1"), ("label", "toolong")]),
            "Invalid detail label=toolong: must be at most 4 characters"
        );
        assert_eq!(
            err(&[("quota-mib", "1"), ("pool", "Tank 1")]),
            "Invalid detail pool=Tank 1: must match ^[a-z][a-z0-9-]*$"
        );
        assert_eq!(
            apply("p", &schema(), "file:///x", &d(&[("quota-mib", "1"), ("pool", "tank-1")])).unwrap(),
            "file:///x?pool=tank-1&quota-mib=1"
        );
        assert_eq!(
            err(&[("colour", "red")]),
            "Unknown detail colour: p takes quota-mib, layout, ratio, sparse, label, pool"
        );
        assert_eq!(err(&[("layout", "flat")]), "Missing detail quota-mib: p requires it");
        assert_eq!(err(&[]), "Missing detail quota-mib: p requires it");
    }

    #[test]
    fn schemas_the_server_can_check() {
        assert_eq!(check_schema(&schema()), Ok(6));
        assert_eq!(
            check_schema(&json!({"properties": {"x": {"pattern": "(["}}})).unwrap_err(),
            "config-schema property x: pattern \"([\" is not a valid regular expression"
        );
        assert_eq!(check_schema(&json!({})), Ok(0));
        let bad = |v: Value| check_schema(&v).unwrap_err();
        assert_eq!(bad(json!("x")), "config-schema must be a JSON object (\"{}\" for none), not \"x\"");
        assert_eq!(
            bad(json!({"properties": {"m": {"type": "array"}}})),
            "config-schema property m: type \"array\" is not one of string, integer, number, boolean"
        );
        assert_eq!(
            bad(json!({"properties": {"n": {"type": "integer", "default": 0, "minimum": 1}}})),
            "config-schema default: Invalid detail n=0: must be at least 1"
        );
        assert_eq!(
            bad(json!({"properties": {}, "required": ["z"]})),
            "config-schema requires \"z\", which is not among its properties"
        );
    }

    #[test]
    fn a_driver_without_settings_takes_none() {
        assert_eq!(apply("nfs", &json!({}), "nfs://h/e?x=1", &d(&[])).unwrap(), "nfs://h/e?x=1");
        let e = apply("nfs", &json!({}), "nfs://h/e", &d(&[("x", "1")])).unwrap_err();
        assert_eq!(e.to_string(), "Unknown detail x: nfs takes no settings");
    }
}
