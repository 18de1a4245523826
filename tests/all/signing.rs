//! Signed plugins: with trusted keys configured, only a plugin signed by one of them loads.

use crate::driver_kit::wasmstack;
use crate::support::Sandbox;

fn keygen(path: &std::path::Path) -> String {
    let (ok, out, err) = wasmstack(&["plugins", "keygen", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let start = out.find("trusted-keys = [\"").expect("a public key") + "trusted-keys = [\"".len();
    out[start..].split('"').next().unwrap().to_owned()
}

fn sign(key: &std::path::Path, file: &std::path::Path) {
    let (ok, out, err) = wasmstack(&["plugins", "sign", "--key", key.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(ok && out.contains(".wasm.sig (signed by ed25519:"), "{out}{err}");
}

#[test]
fn only_a_trusted_signature_loads() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let (trusted, stranger) = (keys.path().join("ops.key"), keys.path().join("stranger.key"));
    let trusted_pub = keygen(&trusted);
    let stranger_pub = keygen(&stranger);
    let (ok, _, err) = wasmstack(&["plugins", "keygen", trusted.to_str().unwrap()]);
    assert!(!ok && err.contains("not overwriting a key"), "{err}");

    let file = sb.install("local.wasm", "local.wasm");
    let config = format!("[plugin-host]\ntrusted-keys = [\"{trusted_pub}\"]\n");
    let host = sb.host(&config);
    let cfg = sb.config_path();
    let list = || wasmstack(&["plugins", "list", "--config", cfg.to_str().unwrap()]).1;

    let events = host.scan();
    assert!(events[0].message.starts_with("refused: unsigned: no local.wasm.sig beside it"), "{events:?}");
    assert!(list().contains("local.wasm: refused: unsigned"));

    sign(&stranger, &file);
    let events = host.scan();
    let refusal = format!("refused: signed with {stranger_pub}, a key this server does not trust");
    assert!(events[0].message.starts_with(&refusal), "{events:?}");
    assert!(host.events().iter().any(|e| e.message.starts_with(&refusal)), "kept among the plugin events");
    assert!(host.get("local").is_none());
    assert!(list().contains(&refusal));

    sign(&trusted, &file);
    let events = host.scan();
    assert!(events[0].loaded, "{events:?}");
    assert!(host.get("local").is_some());
    assert!(list().contains("local 0.1.0 (storage driver"));

    // A file changed after signing no longer matches its signature.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&file, bytes).unwrap();
    let events = host.scan();
    assert!(events[0].message.starts_with("refused: wrongly signed: local.wasm.sig does not match"), "{events:?}");
    assert!(host.get("local").is_some(), "the signed version stays in use");
}
