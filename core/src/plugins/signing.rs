//! Signed plugins: an ed25519 signature over a `.wasm` file's SHA-256, kept beside it
//! as `NAME.wasm.sig`, checked against the keys the operator trusts.
//!
//! Public keys are written `ed25519:<base64 of the 32 key bytes>`. A signature file
//! holds the signer's public key on its first line and the base64 signature on the
//! second, so a refusal can say which key signed.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

const PREFIX: &str = "ed25519:";
const PRIVATE_HEADER: &str = "wasmstack ed25519 private key (PKCS#8, base64)";

/// A public key the operator trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses `ed25519:<base64>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("\"{text}\" is not an ed25519:<base64> public key"))?;
        Ok(PublicKey(bytes))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", B64.encode(self.0))
    }
}

/// Where the signature of `wasm` lives.
pub fn signature_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Makes a key pair; writes the private key to `keyfile` (owner-only) and returns the
/// public key to put in `trusted-keys`.
pub fn keygen(keyfile: &Path) -> Result<PublicKey, String> {
    if keyfile.exists() {
        return Err(format!("{} exists; not overwriting a key", keyfile.display()));
    }
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| "no randomness for a key")?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "generated an unusable key")?;
    let text = format!("{PRIVATE_HEADER}\n{}\n", B64.encode(pkcs8.as_ref()));
    write_private(keyfile, &text).map_err(|e| format!("{}: {e}", keyfile.display()))?;
    Ok(public_of(&pair))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn public_of(pair: &Ed25519KeyPair) -> PublicKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(pair.public_key().as_ref());
    PublicKey(key)
}

fn read_private(keyfile: &Path) -> Result<Ed25519KeyPair, String> {
    let text = std::fs::read_to_string(keyfile).map_err(|e| format!("{}: {e}", keyfile.display()))?;
    let b64 = text.lines().find(|l| !l.is_empty() && *l != PRIVATE_HEADER).unwrap_or("");
    let der =
        B64.decode(b64.trim()).map_err(|_| format!("{} is not a key from `plugins keygen`", keyfile.display()))?;
    Ed25519KeyPair::from_pkcs8(&der).map_err(|_| format!("{} is not an ed25519 private key", keyfile.display()))
}

/// Signs `wasm` with the key in `keyfile`; writes `wasm.sig` and returns its path and
/// the signer's public key.
pub fn sign(keyfile: &Path, wasm: &Path) -> Result<(PathBuf, PublicKey), String> {
    let pair = read_private(keyfile)?;
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let signature = pair.sign(digest.as_ref());
    let public = public_of(&pair);
    let sig_path = signature_path(wasm);
    std::fs::write(&sig_path, format!("{public}\n{}\n", B64.encode(signature.as_ref())))
        .map_err(|e| format!("{}: {e}", sig_path.display()))?;
    Ok((sig_path, public))
}

/// Checks the signature beside a plugin file whose SHA-256 is `sha256`; returns the key
/// that signed it, or why the plugin must be refused.
pub fn verify(wasm: &Path, sha256: &[u8], trusted: &[PublicKey]) -> Result<PublicKey, String> {
    let sig_path = signature_path(wasm);
    let name = sig_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("unsigned: no {name} beside it, and this server takes signed plugins only"));
        }
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
    let mut lines = text.lines();
    let signer = lines.next().map(PublicKey::parse).transpose().ok().flatten();
    let signature = lines.next().and_then(|l| B64.decode(l.trim()).ok());
    let (Some(signer), Some(signature)) = (signer, signature) else {
        return Err(format!("wrongly signed: {name} is not a signature from `wasmstack plugins sign`"));
    };
    if !trusted.contains(&signer) {
        return Err(format!("signed with {signer}, a key this server does not trust (see trusted-keys)"));
    }
    UnparsedPublicKey::new(&ED25519, signer.0)
        .verify(sha256, &signature)
        .map_err(|_| format!("wrongly signed: {name} does not match the file (changed after signing?)"))?;
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (dir.path().join("k1"), dir.path().join("k2"));
        let (p1, p2) = (keygen(&k1).unwrap(), keygen(&k2).unwrap());
        assert!(keygen(&k1).is_err(), "keys are not overwritten");
        assert_eq!(PublicKey::parse(&p1.to_string()).unwrap(), p1);
        let wasm = dir.path().join("d.wasm");
        std::fs::write(&wasm, b"\0asm component bytes").unwrap();
        let sha = |p: &Path| ring::digest::digest(&ring::digest::SHA256, &std::fs::read(p).unwrap());

        let err = verify(&wasm, sha(&wasm).as_ref(), std::slice::from_ref(&p1)).unwrap_err();
        assert!(err.starts_with("unsigned: no d.wasm.sig beside it"), "{err}");
        sign(&k1, &wasm).unwrap();
        assert_eq!(verify(&wasm, sha(&wasm).as_ref(), std::slice::from_ref(&p1)).unwrap(), p1);
        let err = verify(&wasm, sha(&wasm).as_ref(), std::slice::from_ref(&p2)).unwrap_err();
        assert!(err.contains("a key this server does not trust"), "{err}");
        std::fs::write(&wasm, b"\0asm other bytes").unwrap();
        let err = verify(&wasm, sha(&wasm).as_ref(), &[p1]).unwrap_err();
        assert!(err.starts_with("wrongly signed: d.wasm.sig does not match the file"), "{err}");
    }
}
