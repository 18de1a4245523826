//! A fuzz harness for what every request goes through before it reaches the orchestrator:
//! form decoding, `Params`, the command table's validation, `Request::parse` of every
//! command, the signature check and the expiry check. Stable Rust, no extra tools: a
//! seeded random-input loop with structure-aware inputs (percent escapes good and bad,
//! invalid UTF-8, repeated and case-varied names, huge and signed numbers, map brackets
//! like `details[0].key`, dates, UUIDs near and far from valid).
//!
//! Each property runs for a bounded time: a second by default (a normal test in CI),
//! `WASMSTACK_FUZZ_SECS` seconds when set. `WASMSTACK_FUZZ_SEED` replays one seed; a
//! failure prints the seed and the input that caused it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::commands::{self, Command, ParamType};
use super::error::ErrorCode;
use super::params::{Params, decode_form_bytes};
use super::request::Request;
use super::signing;

fn budget() -> Duration {
    let secs = std::env::var("WASMSTACK_FUZZ_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(1.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `case` on fresh seeds until the budget is spent (one seed when one is given).
/// A panic or a failed property is reported with its seed.
fn fuzz(name: &str, mut case: impl FnMut(&mut StdRng) -> Result<(), String>) {
    let fixed = std::env::var("WASMSTACK_FUZZ_SEED").ok().and_then(|s| s.parse::<u64>().ok());
    // A few fixed seeds first, so that every run covers the same ground at least.
    let mut seeds = (0..64u64).chain(std::iter::repeat_with(rand::random::<u64>));
    let deadline = Instant::now() + budget();
    let mut runs = 0u64;
    loop {
        let seed = match fixed {
            Some(_) if runs > 0 => break,
            Some(s) => s,
            None if runs >= 64 && Instant::now() >= deadline => break,
            None => seeds.next().expect("endless"),
        };
        let mut rng = StdRng::seed_from_u64(seed);
        match catch_unwind(AssertUnwindSafe(|| case(&mut rng))) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("{name}: property failed with WASMSTACK_FUZZ_SEED={seed}: {why}"),
            Err(_) => panic!("{name}: panicked with WASMSTACK_FUZZ_SEED={seed} (the panic message is above)"),
        }
        runs += 1;
    }
    eprintln!("{name}: {runs} cases");
}

/// Names the parser and the commands look at, plus some that only look like them.
const NAMES: &[&str] = &[
    "command",
    "Command",
    "COMMAND",
    "apikey",
    "apiKey",
    "signature",
    "Signature",
    "response",
    "sessionkey",
    "signatureversion",
    "signatureVersion",
    "expires",
    "id",
    "ids",
    "name",
    "page",
    "pagesize",
    "listall",
    "isrecursive",
    "keyword",
    "domainid",
    "account",
    "zoneid",
    "details[0].key",
    "details[0].value",
    "details[1].cpuNumber",
    "details[4294967295].x",
    "details[4294967296].x",
    "details[-1].x",
    "details[].x",
    "details[0]",
    "details[0].",
    "details[0]x.y",
    "details[0][1].x",
    "details]0[.x",
    "tags[0].key",
    "tags[0].value",
    "[0].x",
    "a[",
    "x]",
    "activationrule",
    "",
];

/// Pieces values are made of.
const VALUE_PIECES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "+1",
    "-0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "1e9",
    "0x10",
    " 1",
    "true",
    "TRUE",
    "false",
    "json",
    "xml",
    "3",
    "2030-01-01T00:00:00+0000",
    "2000-01-01T00:00:00Z",
    "2030-02-30T25:61:61.1234567890+99:99",
    "2030-01-01T00:00:00Z+0100",
    "2030-01-01T00:00",
    "2024-05-01 10:20:30",
    "2024-05-01",
    "00000000-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-00000000000G",
    "ABCDEF00-0000-4000-8000-000000000000",
    "a,b,,c",
    ",,,",
    "€",
    "é",
    "\u{10FFFF}",
    "\u{FFFD}",
    "~",
    "*",
    "+",
    " ",
    "&",
    "=",
    "[",
    "]",
    ".",
    "%",
    "\n",
    "\r",
    "\t",
    "\u{0}",
    "\u{7f}",
    "{MD5}d41d8cd98f00b204e9800998ecf8427e",
    "http://example.org/x.qcow2",
    "10.1.1.0/24",
    "-1",
];

/// Raw (not yet decoded) fragments: percent escapes valid and not, and bytes that are not UTF-8.
const RAW_PIECES: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%G1",
    b"%zz",
    b"%25",
    b"%26",
    b"%3D",
    b"%2B",
    b"+",
    b"%e2%82%ac",
    b"%E2%82",
    b"%ff",
    b"%c0%af",
    b"%ed%a0%80",
    b"%00",
    b"%7f",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"&",
    b"=",
    b"&&",
    b"==",
    b"[",
    b"]",
    b".",
];

fn pick<'a, T: ?Sized>(rng: &mut StdRng, from: &'a [&'a T]) -> &'a T {
    from[rng.random_range(0..from.len())]
}

/// A random string of up to `max` chars from a mixed alphabet.
fn noise(rng: &mut StdRng, max: usize) -> String {
    const ALPHABET: &[char] =
        &['a', 'Z', '0', '9', '-', '_', '.', '~', '[', ']', '%', '+', ' ', 'é', '€', '\u{1F600}', '\u{0}', '\n'];
    let n = rng.random_range(0..=max);
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect()
}

fn value(rng: &mut StdRng) -> String {
    let parts = rng.random_range(0..4);
    let mut v = String::new();
    for _ in 0..parts {
        match rng.random_range(0..10) {
            0 => v.push_str(&noise(rng, 12)),
            1 => v.push_str(&"9".repeat(rng.random_range(1..400))),
            _ => v.push_str(pick(rng, VALUE_PIECES)),
        }
    }
    v
}

/// A value meant for a parameter of type `ty`: mostly well-formed, sometimes not.
fn typed_value(rng: &mut StdRng, ty: ParamType) -> String {
    if rng.random_bool(0.2) {
        return value(rng);
    }
    match ty {
        ParamType::Boolean => if rng.random_bool(0.5) { "true" } else { "false" }.to_owned(),
        ParamType::Integer | ParamType::Long => {
            let n: i64 = match rng.random_range(0..4) {
                0 => rng.random_range(-5..5000),
                1 => rng.random(),
                2 => i64::from(rng.random::<i32>()),
                _ => rng.random_range(0..3),
            };
            n.to_string()
        }
        ParamType::Uuid => uuid::Uuid::from_u128(rng.random()).to_string(),
        ParamType::Date => "2024-05-01 10:20:30".to_owned(),
        ParamType::TzDate => "2030-01-01T00:00:00+0000".to_owned(),
        ParamType::List => {
            let n = rng.random_range(0..4);
            (0..n).map(|_| uuid::Uuid::from_u128(rng.random()).to_string()).collect::<Vec<_>>().join(",")
        }
        ParamType::String | ParamType::Map => value(rng),
    }
}

/// Percent-encodes every byte but the unreserved ones.
fn encode(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// A raw form body: pairs properly encoded, raw fragments spliced in anywhere.
fn raw_form(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rng.random_range(0..12) {
        if i > 0 {
            out.push(b'&');
        }
        match rng.random_range(0..6) {
            0 => out.extend_from_slice(pick(rng, RAW_PIECES)),
            1 => out.extend((0..rng.random_range(0..8)).map(|_| rng.random::<u8>())),
            _ => {
                let name = if rng.random_bool(0.8) { pick(rng, NAMES).to_owned() } else { noise(rng, 8) };
                encode(&mut out, &name);
                if rng.random_bool(0.9) {
                    out.push(b'=');
                }
                encode(&mut out, &value(rng));
                if rng.random_bool(0.2) {
                    out.extend_from_slice(pick(rng, RAW_PIECES));
                }
            }
        }
    }
    out
}

/// Decoded pairs aimed at one command: its own parameters (with values of their type or
/// not, some left out, some repeated), map entries, and stray names.
fn pairs_for(rng: &mut StdRng, cmd: &Command) -> Vec<(String, String)> {
    let mut pairs = vec![("command".to_owned(), cmd.name.to_owned())];
    for p in cmd.params {
        if !rng.random_bool(if p.required { 0.9 } else { 0.4 }) {
            continue;
        }
        let name = match rng.random_range(0..8) {
            0 => p.name.to_ascii_uppercase(),
            1 => p.name.to_owned(),
            _ => p.name.to_ascii_lowercase(),
        };
        if p.ty == ParamType::Map {
            for i in 0..rng.random_range(0..3u32) {
                let index = if rng.random_bool(0.9) { i.to_string() } else { value(rng) };
                let field = if rng.random_bool(0.8) {
                    pick(rng, &["key", "value", "name", "cpuNumber"]).to_owned()
                } else {
                    noise(rng, 4)
                };
                pairs.push((format!("{name}[{index}].{field}"), value(rng)));
            }
            continue;
        }
        pairs.push((name.clone(), typed_value(rng, p.ty)));
        if rng.random_bool(0.05) {
            pairs.push((name, value(rng)));
        }
    }
    for _ in 0..rng.random_range(0..3) {
        pairs.push((pick(rng, NAMES).to_owned(), value(rng)));
    }
    pairs
}

fn is(code: ErrorCode, allowed: &[u16]) -> bool {
    allowed.contains(&code.code())
}

/// The path `/client/api` takes: validate the whole, then the command's own checks, then
/// the typed request. Any refusal is a 430 or 431. (login and logout are answered before
/// this path, by the HTTP layer.)
fn parse_path(params: &Params, cmd: &'static Command) -> Result<(), String> {
    if matches!(cmd.name, "login" | "logout") {
        return Ok(());
    }
    let outcome = params.validate().and_then(|()| cmd.validate(params)).and_then(|()| Request::parse(cmd, params));
    match outcome {
        Ok(_) => Ok(()),
        Err(e) if is(e.code, &[430, 431]) => Ok(()),
        Err(e) => Err(format!("{}: unexpected {} {:?}", cmd.name, e.code.code(), e.text)),
    }
}

#[test]
fn decoding_never_panics_and_refuses_with_431() {
    fuzz("decode", |rng| {
        let raw = raw_form(rng);
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let pairs = match decode_form_bytes(&raw) {
            Ok(p) => p,
            Err(e) if e.code == ErrorCode::ParamError => return Ok(()),
            Err(e) => return Err(format!("{shown:?}: unexpected {} {}", e.code.code(), e.text)),
        };
        if pairs.iter().any(|(k, _)| k.is_empty()) {
            return Err(format!("{shown:?}: an empty name survived"));
        }
        let params = Params::from_pairs(pairs);
        if let Err(e) = params.validate()
            && !is(e.code, &[430, 431])
        {
            return Err(format!("{shown:?}: validate gave {} {}", e.code.code(), e.text));
        }
        // Whatever command the body names (or a random one), parsing never panics.
        let cmd = params.command().and_then(commands::find).unwrap_or_else(|| {
            let all: Vec<_> = commands::all().collect();
            all[rng.random_range(0..all.len())]
        });
        parse_path(&params, cmd).map_err(|e| format!("{shown:?}: {e}"))?;
        let _ = params.page();
        Ok(())
    });
}

#[test]
fn every_command_parses_or_refuses_with_430_or_431() {
    let all: Vec<&'static Command> = commands::all().collect();
    fuzz("parse", |rng| {
        // Every command once per case, each with inputs shaped for it.
        for cmd in &all {
            let params = Params::from_pairs(pairs_for(rng, cmd));
            parse_path(&params, cmd).map_err(|e| format!("{e}; params {:?}", params.raw()))?;
        }
        Ok(())
    });
}

#[test]
fn random_signatures_fail_and_right_ones_pass() {
    let all: Vec<&'static Command> = commands::all().collect();
    fuzz("signing", |rng| {
        let cmd = all[rng.random_range(0..all.len())];
        let mut pairs = pairs_for(rng, cmd);
        // A pair without a name never arrives (the decoder drops it, as servlet containers do).
        pairs.retain(|(k, _)| !k.is_empty());
        pairs.push(("apiKey".into(), noise(rng, 20)));
        let secret = noise(rng, 40);
        // A made-up signature: random base64 of the right length, or any text.
        let forged = match rng.random_range(0..3) {
            0 => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(rng.random::<[u8; 20]>())
            }
            1 => value(rng),
            _ => String::new(),
        };
        if signing::verify(&pairs, &forged, &secret) {
            return Err(format!("a forged signature {forged:?} verified for {pairs:?}"));
        }
        let good = signing::sign(&secret, &signing::canonical(&pairs));
        if !signing::verify(&pairs, &good, &secret) {
            return Err(format!("a right signature failed for {pairs:?}"));
        }
        // Sent over the wire (percent-encoded, decoded by the server) it still verifies.
        let mut wire = Vec::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                wire.push(b'&');
            }
            encode(&mut wire, k);
            wire.push(b'=');
            encode(&mut wire, v);
        }
        wire.extend_from_slice(b"&signature=");
        encode(&mut wire, &good);
        let received = decode_form_bytes(&wire).map_err(|e| format!("own encoding refused: {}", e.text))?;
        let params = Params::from_pairs(received);
        if params.get("signature") != Some(good.as_str()) || !signing::verify(params.raw(), &good, &secret) {
            return Err(format!("a right signature failed after the wire for {pairs:?}"));
        }
        // Another secret, or a value changed after signing, fails.
        let other = format!("{secret}x");
        if signing::verify(&pairs, &good, &other) {
            return Err(format!("verified with the wrong secret for {pairs:?}"));
        }
        let last = pairs.len() - 1;
        pairs[last].1.push('x');
        if signing::verify(&pairs, &good, &secret) {
            return Err(format!("verified after a value changed: {pairs:?}"));
        }
        Ok(())
    });
}

#[test]
fn expiry_checks_never_panic_and_refuse_with_401() {
    fuzz("expiry", |rng| {
        let mut pairs = Vec::new();
        if rng.random_bool(0.7) {
            pairs.push((
                pick(rng, &["signatureVersion", "signatureversion", "SIGNATUREVERSION"]).to_owned(),
                pick(rng, &["3", "2", "", "03"]).to_owned(),
            ));
        }
        for _ in 0..rng.random_range(0..3) {
            let v = match rng.random_range(0..4) {
                0 => value(rng),
                1 => noise(rng, 30),
                _ => {
                    // Near-valid dates with random digits, separators and offsets.
                    let mut s = format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}",
                        rng.random_range(0..10000),
                        rng.random_range(0..14),
                        rng.random_range(0..33),
                        rng.random_range(0..26),
                        rng.random_range(0..62)
                    );
                    if rng.random_bool(0.7) {
                        s.push_str(&format!(":{:02}", rng.random_range(0..62)));
                    }
                    if rng.random_bool(0.3) {
                        s.push('.');
                        s.push_str(&"7".repeat(rng.random_range(0..12)));
                    }
                    s.push_str(pick(
                        rng,
                        &["Z", "z", "+0000", "-12:30", "+18", "+19", "Z+0100", "+05:30:15", "+€", "", "ü", "+1é"],
                    ));
                    s
                }
            };
            pairs.push((pick(rng, &["expires", "Expires", "EXPIRES"]).to_owned(), v));
        }
        let now = chrono::Utc::now();
        for check in [signing::check_expiry, signing::check_expiry_enforced] {
            if let Err(e) = check(&pairs, now)
                && e.code != ErrorCode::Unauthorized
            {
                return Err(format!("{pairs:?}: {} {}", e.code.code(), e.text));
            }
        }
        Ok(())
    });
}
