//! API secret keys are stored encrypted (AES-256-GCM) with a key kept in the data
//! folder, so a copy of the database alone does not give away anyone's keys.
//! Servers sharing one database must share this key file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;

/// Encrypts and decrypts secrets at rest.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// Loads the key file, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => return Err(std::io::Error::other(format!("{} must hold exactly 32 bytes", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
                f.write_all(&key)?;
                key
            }
            Err(e) => return Err(e),
        };
        Ok(Sealer { cipher: Aes256Gcm::new_from_slice(&key).expect("a 32-byte key") })
    }

    /// Encrypts a secret: base64 of nonce followed by ciphertext.
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        out.extend(self.cipher.encrypt(Nonce::from_slice(&nonce), secret.as_bytes()).expect("encrypting"));
        STANDARD.encode(out)
    }

    /// Decrypts what `seal` made; None if it was tampered with or sealed under another key.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let raw = STANDARD.decode(sealed).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, body) = raw.split_at(12);
        String::from_utf8(self.cipher.decrypt(Nonce::from_slice(nonce), body).ok()?).ok()
    }
}

/// A new API key or secret: 64 random bytes, URL-safe base64 (86 characters), as
/// CloudStack generates them.
pub fn new_key() -> String {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new session key: 20 random bytes, URL-safe base64 (27 characters).
pub fn new_session_key() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let s = Sealer::load_or_create(&path).unwrap();
        let sealed = s.seal("top secret");
        assert!(!sealed.contains("top secret"));
        assert_eq!(s.open(&sealed).as_deref(), Some("top secret"));
        let again = Sealer::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).as_deref(), Some("top secret"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(new_key().len(), 86);
        assert_eq!(new_session_key().len(), 27);
    }
}
