//! Image checksums as CloudStack's `checksum` parameter gives them, and as the storage
//! contract passes them to the host's images capability.
//!
//! Accepted forms (hex digits in either case):
//! - `{MD5}hex`, `{SHA-1}hex`, `{SHA-256}hex`, `{SHA-512}hex` (the name also without the
//!   dash and in any case, e.g. `{sha256}`);
//! - bare hex, whose length names the algorithm: 32 digits MD5 (CloudStack's default for a
//!   bare checksum), 40 SHA-1, 64 SHA-256 (what wasmstack took before), 128 SHA-512.
//!
//! The canonical text is bare hex for SHA-256, so that what older drivers and stored
//! templates hold keeps its meaning, and `{ALGO}hex` for the others.

use std::fmt;
use std::str::FromStr;

use sha2::digest::DynDigest;

/// A digest algorithm an image may be checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    const ALL: [Algorithm; 4] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

    /// The name in `{…}`, as CloudStack writes it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
        }
    }

    /// How many hex digits a digest has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// A fresh hasher.
    pub fn hasher(self) -> Box<dyn DynDigest + Send> {
        match self {
            Algorithm::Md5 => Box::new(md5::Md5::default()),
            Algorithm::Sha1 => Box::new(sha1::Sha1::default()),
            Algorithm::Sha256 => Box::new(sha2::Sha256::default()),
            Algorithm::Sha512 => Box::new(sha2::Sha512::default()),
        }
    }

    fn by_name(name: &str) -> Option<Algorithm> {
        let plain = name.replace('-', "");
        Self::ALL.into_iter().find(|a| a.name().replace('-', "").eq_ignore_ascii_case(&plain))
    }
}

/// An expected digest: the algorithm and its lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

/// Why a checksum text was refused; the text is meant for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadChecksum(pub String);

impl FromStr for Checksum {
    type Err = BadChecksum;

    fn from_str(text: &str) -> Result<Self, BadChecksum> {
        let text = text.trim();
        let (named, hex) = match text.strip_prefix('{') {
            Some(rest) => {
                let (name, hex) = rest.split_once('}').ok_or_else(|| {
                    BadChecksum(format!("checksum \"{text}\" has no closing '}}' after the algorithm"))
                })?;
                let algorithm = Algorithm::by_name(name).ok_or_else(|| {
                    BadChecksum(format!(
                        "checksum algorithm {{{name}}} is not supported; use {{MD5}}, {{SHA-1}}, {{SHA-256}} or {{SHA-512}}"
                    ))
                })?;
                (Some(algorithm), hex)
            }
            None => (None, text),
        };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadChecksum(format!("checksum \"{text}\" is not a hex digest")));
        }
        let algorithm = match named {
            Some(a) if a.hex_len() == hex.len() => a,
            Some(a) => {
                return Err(BadChecksum(format!(
                    "a {} digest has {} hex digits, not {}",
                    a.name(),
                    a.hex_len(),
                    hex.len()
                )));
            }
            None => Algorithm::ALL.into_iter().find(|a| a.hex_len() == hex.len()).ok_or_else(|| {
                BadChecksum(format!(
                    "a bare checksum of {} hex digits names no algorithm; give 32 (MD5), 40 (SHA-1), \
                     64 (SHA-256) or 128 (SHA-512), or prefix it as {{MD5}}, {{SHA-1}}, {{SHA-256}} or {{SHA-512}}",
                    hex.len()
                ))
            })?,
        };
        Ok(Checksum { algorithm, hex: hex.to_ascii_lowercase() })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            Algorithm::Sha256 => f.write_str(&self.hex),
            a => write!(f, "{{{}}}{}", a.name(), self.hex),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Checksum, BadChecksum> {
        s.parse()
    }

    #[test]
    fn forms() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        for text in [md5.to_owned(), format!("{{MD5}}{md5}"), format!("{{md5}}{}", md5.to_uppercase())] {
            let c = parse(&text).unwrap();
            assert_eq!((c.algorithm, c.hex.as_str()), (Algorithm::Md5, md5));
            assert_eq!(c.to_string(), format!("{{MD5}}{md5}"));
        }
        let sha256 = "b".repeat(64);
        for text in [sha256.clone(), format!("{{SHA-256}}{sha256}"), format!("{{sha256}}{}", "B".repeat(64))] {
            let c = parse(&text).unwrap();
            assert_eq!((c.algorithm, c.to_string()), (Algorithm::Sha256, sha256.clone()));
        }
        assert_eq!(parse(&"a".repeat(40)).unwrap().algorithm, Algorithm::Sha1);
        assert_eq!(
            parse(&format!("{{SHA-1}}{}", "a".repeat(40))).unwrap().to_string(),
            format!("{{SHA-1}}{}", "a".repeat(40))
        );
        assert_eq!(parse(&format!("{{SHA-512}}{}", "c".repeat(128))).unwrap().algorithm, Algorithm::Sha512);
        // What Display writes parses back to the same.
        for a in Algorithm::ALL {
            let c = Checksum { algorithm: a, hex: "e".repeat(a.hex_len()) };
            assert_eq!(parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn refusals() {
        assert!(parse("{CRC32}abcd").unwrap_err().0.contains("not supported"));
        assert!(parse(&format!("{{MD5}}{}", "a".repeat(64))).unwrap_err().0.contains("32 hex digits"));
        assert!(parse(&"a".repeat(33)).unwrap_err().0.contains("names no algorithm"));
        assert!(parse(&"g".repeat(32)).unwrap_err().0.contains("not a hex digest"));
        assert!(parse("").is_err());
        assert!(parse("{MD5}").is_err());
        assert!(parse("{MD5").is_err());
    }

    #[test]
    fn hashers_match_known_digests() {
        let empty = [
            (Algorithm::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            (Algorithm::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (Algorithm::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ];
        for (a, want) in empty {
            assert_eq!(hex::encode(a.hasher().finalize()), want);
        }
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"abc");
        assert!(hex::encode(h.finalize()).starts_with("ddaf35a193617aba"));
    }
}
