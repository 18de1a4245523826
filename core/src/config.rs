//! The server's own settings in `<data>/wasmstack.toml`, beside the plugin host's
//! (`[plugin-host]`, `[plugin.NAME]`, read by `plugins::config`). Every key is optional:
//!
//! ```toml
//! [http]
//! max-connections = 1024     # client connections open at once
//! header-timeout-ms = 10000  # a new connection must send a whole request header within this
//! idle-timeout-ms = 60000    # a kept-alive connection with no request for this long is closed
//!
//! [login]
//! attempts-allowed = 5       # consecutive wrong passwords that lock a user; 0: never lock
//! lock-ms = 600000           # the first lock; each further one doubles, up to lock-max-ms
//! lock-max-ms = 86400000
//! hash-threads = 1           # passwords checked at once; default: half the CPUs, 1 to 4
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The limits of the HTTP listener (see `connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    /// From accepting a connection to having its first request's whole header.
    pub header_timeout: Duration,
    /// From a response's end to the next request's whole header on a kept-alive connection.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// How password logins are throttled (see `orchestrate::logins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Consecutive wrong passwords that lock a user; 0: never lock.
    pub attempts_allowed: u32,
    /// How long the first lock lasts; each lock that follows without a good login in
    /// between lasts twice as long as the one before, up to `lock_max`.
    pub lock: Duration,
    pub lock_max: Duration,
    /// Password hashes computed at once, on threads of their own.
    pub hash_threads: usize,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            attempts_allowed: 5,
            lock: Duration::from_secs(600),
            lock_max: Duration::from_secs(86_400),
            hash_threads: default_hash_threads(),
        }
    }
}

impl LoginPolicy {
    /// How long a user is locked when `earlier` locks came before this one since their
    /// last good login.
    pub fn lock_for(&self, earlier: i64) -> Duration {
        let factor = 2u32.saturating_pow(earlier.clamp(0, 32) as u32);
        self.lock.saturating_mul(factor).min(self.lock_max)
    }
}

/// Half the CPUs, 1 to 4: each hash keeps a CPU busy and 19 MiB of memory, and the other
/// half serves every other request meanwhile.
fn default_hash_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / 2).clamp(1, 4)
}

/// The `[http]` and `[login]` sections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerConfig {
    pub http: HttpLimits,
    pub login: LoginPolicy,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileForm {
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    login: LoginSection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HttpSection {
    max_connections: Option<u64>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LoginSection {
    attempts_allowed: Option<u32>,
    lock_ms: Option<u64>,
    lock_max_ms: Option<u64>,
    hash_threads: Option<u64>,
}

impl ServerConfig {
    /// Reads the file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io { path: path.to_owned(), source }),
        }
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let form: FileForm = toml::from_str(text).map_err(|e| ConfigError::Invalid(e.message().to_owned()))?;
        let d = ServerConfig::default();
        let ms = |name: &str, v: Option<u64>, default: Duration, max: Duration| match v {
            None => Ok(default),
            Some(v) if (1..=max.as_millis() as u64).contains(&v) => Ok(Duration::from_millis(v)),
            Some(v) => Err(ConfigError::Invalid(format!("{name} must be 1..={}, not {v}", max.as_millis()))),
        };
        let hour = Duration::from_secs(3600);
        let http = HttpLimits {
            max_connections: match form.http.max_connections {
                None => d.http.max_connections,
                Some(n @ 1..=1_000_000) => n as usize,
                Some(n) => {
                    return Err(ConfigError::Invalid(format!("[http] max-connections must be 1..=1000000, not {n}")));
                }
            },
            header_timeout: ms("[http] header-timeout-ms", form.http.header_timeout_ms, d.http.header_timeout, hour)?,
            idle_timeout: ms("[http] idle-timeout-ms", form.http.idle_timeout_ms, d.http.idle_timeout, hour)?,
        };
        let year = Duration::from_secs(365 * 86_400);
        let lock = ms("[login] lock-ms", form.login.lock_ms, d.login.lock, year)?;
        let lock_max = ms("[login] lock-max-ms", form.login.lock_max_ms, d.login.lock_max.max(lock), year)?;
        if lock_max < lock {
            return Err(ConfigError::Invalid("[login] lock-max-ms must not be below lock-ms".into()));
        }
        let login = LoginPolicy {
            attempts_allowed: form.login.attempts_allowed.unwrap_or(d.login.attempts_allowed),
            lock,
            lock_max,
            hash_threads: match form.login.hash_threads {
                None => d.login.hash_threads,
                Some(n @ 1..=64) => n as usize,
                Some(n) => return Err(ConfigError::Invalid(format!("[login] hash-threads must be 1..=64, not {n}"))),
            },
        };
        Ok(ServerConfig { http, login })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(ServerConfig::parse("").unwrap(), ServerConfig::default());
        // The plugin host's sections are not ours to judge.
        let cfg = ServerConfig::parse(
            "[plugin-host]\nmemory-mib = 32\n[http]\nmax-connections = 50\nheader-timeout-ms = 1500\n\
             [login]\nattempts-allowed = 3\nlock-ms = 2000\nhash-threads = 2\n",
        )
        .unwrap();
        assert_eq!(cfg.http.max_connections, 50);
        assert_eq!(cfg.http.header_timeout, Duration::from_millis(1500));
        assert_eq!(cfg.http.idle_timeout, HttpLimits::default().idle_timeout);
        assert_eq!(cfg.login.attempts_allowed, 3);
        assert_eq!(cfg.login.lock, Duration::from_secs(2));
        assert_eq!(cfg.login.hash_threads, 2);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let err = |text: &str| ServerConfig::parse(text).unwrap_err().to_string();
        assert!(err("[http]\nmax-conections = 5\n").contains("max-conections"));
        assert!(err("[http]\nmax-connections = 0\n").contains("max-connections must be"));
        assert!(err("[http]\nheader-timeout-ms = 0\n").contains("header-timeout-ms must be"));
        assert!(err("[login]\nhash-threads = 0\n").contains("hash-threads must be"));
        assert!(err("[login]\nlock-ms = 5000\nlock-max-ms = 1000\n").contains("lock-max-ms must not be below"));
    }

    #[test]
    fn locks_double_up_to_the_cap() {
        let p =
            LoginPolicy { lock: Duration::from_secs(60), lock_max: Duration::from_secs(300), ..LoginPolicy::default() };
        let secs: Vec<u64> = (0..5).map(|n| p.lock_for(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 300, 300]);
        assert_eq!(p.lock_for(i64::MAX), Duration::from_secs(300));
    }
}
