//! Authenticated API keys, kept briefly in memory so that a signed request costs no
//! database round trip for its credentials.
//!
//! This server drops the whole cache whenever it changes a user, account or domain, so
//! its own changes apply at once. Another server sharing the database sees a change
//! within `TTL`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::UserRow;

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    at: Instant,
    user: Arc<UserRow>,
    secret: Arc<str>,
}

/// API key (lower-cased) → the user and their unsealed secret.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeyCache {
    pub fn get(&self, api_key: &str) -> Option<(Arc<UserRow>, Arc<str>)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&api_key.to_ascii_lowercase())
            .filter(|e| e.at.elapsed() < TTL)
            .map(|e| (e.user.clone(), e.secret.clone()))
    }

    pub fn put(&self, api_key: &str, user: Arc<UserRow>, secret: Arc<str>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(api_key.to_ascii_lowercase(), Entry { at: Instant::now(), user, secret });
    }

    /// Forgets everything; called after any change to users, accounts or domains.
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
