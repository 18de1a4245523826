//! A plugin's name, and with it its grants, comes from the operator: it is the name of the
//! file the driver was installed under. A component whose `describe()` gives another name
//! is refused, at start and at hot reload, whatever the order of the files; a grant section
//! may also pin the file's content or signer.

use std::path::Path;

use wasmstack::plugins::PluginHost;

use crate::support::{Sandbox, install_file, wasm};

const KVM_GRANTS: &str = "[plugin.kvm]\nlibvirt = [\"test:///default\"]\ntimeout-ms = 20000\n";
/// Sort before and after `kvm.wasm`.
const IMPOSTORS: [&str; 2] = ["evilkvm.wasm", "zzkvm.wasm"];

/// The KVM driver from kvm.wasm is the one in use, with kvm's grants, and it works.
fn the_real_kvm_serves(host: &PluginHost) {
    let kvm = host.hypervisor("kvm").expect("kvm loaded");
    let plugin = kvm.plugin();
    assert_eq!(plugin.file.file_name().unwrap(), "kvm.wasm");
    assert_ne!(plugin.info.version, "99.0.0", "the impostor's version");
    assert!(plugin.settings.grants.allows_libvirt("test:///default"), "kvm keeps its grants");
    let facts = kvm.probe_host("test:///default").expect("the real driver works");
    assert!(facts.cpus > 0 && !facts.hypervisor_version.starts_with("rogue"), "{facts:?}");
}

fn assert_impostor_refused(events: &[wasmstack::plugins::ReloadEvent], file: &str) {
    let stem = file.trim_end_matches(".wasm");
    let ev =
        events.iter().find(|e| e.file.ends_with(file)).unwrap_or_else(|| panic!("no event for {file}: {events:?}"));
    assert!(!ev.loaded, "{ev:?}");
    assert_eq!(ev.plugin.as_deref(), Some(stem), "the refusal is filed under the file's own name");
    let expected = format!(
        "refused: it calls itself \"kvm\" in describe() but was installed as {file}; a plugin's name is its file \
         name (grants are keyed by it), so install it as kvm.wasm"
    );
    assert_eq!(ev.message, expected);
}

#[test]
fn an_impostor_is_refused_at_start_whatever_the_file_order() {
    let sb = Sandbox::new();
    for impostor in IMPOSTORS {
        sb.install("rogue-impostor.wasm", impostor);
    }
    sb.install("kvm.wasm", "kvm.wasm");
    // Several starts, as the loading order of parallel validations varies.
    for _ in 0..3 {
        let host = sb.host(KVM_GRANTS);
        let events = host.scan();
        assert_eq!(events.len(), 3, "{events:?}");
        for impostor in IMPOSTORS {
            assert_impostor_refused(&events, impostor);
        }
        assert_eq!(host.list().len(), 1, "only kvm is loaded");
        assert!(host.get("evilkvm").is_none() && host.get("zzkvm").is_none());
        the_real_kvm_serves(&host);
    }
}

#[test]
fn an_impostor_is_refused_even_when_the_real_driver_is_absent() {
    let sb = Sandbox::new();
    sb.install("rogue-impostor.wasm", "evilkvm.wasm");
    let host = sb.host(KVM_GRANTS);
    let events = host.scan();
    assert_impostor_refused(&events, "evilkvm.wasm");
    assert!(host.get("kvm").is_none() && host.list().is_empty());
}

#[test]
fn an_impostor_dropped_in_while_kvm_runs_is_refused() {
    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    let host = sb.host(KVM_GRANTS);
    assert!(host.scan().iter().all(|e| e.loaded));
    let sha256 = host.get("kvm").unwrap().sha256.clone();

    for impostor in IMPOSTORS {
        sb.install("rogue-impostor.wasm", impostor);
    }
    let events = host.scan();
    assert_eq!(events.len(), 2, "{events:?}");
    for impostor in IMPOSTORS {
        assert_impostor_refused(&events, impostor);
    }
    the_real_kvm_serves(&host);
    assert_eq!(host.get("kvm").unwrap().sha256, sha256, "still the same file");

    // The same through the folder watcher.
    std::fs::remove_file(sb.plugins().join("evilkvm.wasm")).unwrap();
    host.scan();
    let seen = || host.events().iter().filter(|e| e.file.ends_with("evilkvm.wasm")).count();
    let before = seen();
    let _watch = host.watch(std::time::Duration::from_millis(50));
    sb.install("rogue-impostor.wasm", "evilkvm.wasm");
    let start = std::time::Instant::now();
    while seen() == before {
        assert!(start.elapsed().as_secs() < 30, "the watcher never looked at evilkvm.wasm");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_impostor_refused(&host.events(), "evilkvm.wasm");
    the_real_kvm_serves(&host);
}

#[test]
fn a_file_is_the_driver_its_name_says() {
    let sb = Sandbox::new();
    sb.install("rogue-v1.wasm", "a.wasm");
    sb.install("rogue-v2.wasm", "rogue-2.wasm");
    std::fs::copy(wasm("rogue-v1.wasm"), sb.plugins().join("Rogue.wasm")).unwrap();
    let host = sb.host("[plugin.rogue]\nlibvirt = [\"test:///default\"]\n");
    let events = host.scan();
    assert_eq!(events.len(), 3, "{events:?}");
    let message = |file: &str| events.iter().find(|e| e.file.ends_with(file)).unwrap().message.clone();
    assert!(message("a.wasm").contains("calls itself \"rogue\" in describe() but was installed as a.wasm"));
    assert!(message("rogue-2.wasm").ends_with("so install it as rogue.wasm"), "{}", message("rogue-2.wasm"));
    assert_eq!(
        message("Rogue.wasm"),
        "refused: Rogue.wasm is not a plugin name; a plugin's name is its file name, 1-32 lowercase letters, digits and dashes"
    );
    assert!(host.list().is_empty());
    // Renamed to its name, it loads.
    std::fs::rename(sb.plugins().join("a.wasm"), sb.plugins().join("rogue.wasm")).unwrap();
    let events = host.scan();
    assert!(events.iter().any(|e| e.loaded && e.message == "loaded rogue 1.0.0"), "{events:?}");
}

fn sha256_of(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
}

#[test]
fn a_grant_section_can_pin_the_file_content() {
    let sb = Sandbox::new();
    let kvm = wasm("kvm.wasm");
    let config = format!("{KVM_GRANTS}sha256 = \"{}\"\n", sha256_of(&kvm).to_uppercase());
    // The operator's kvm.wasm replaced by something else: refused before it is compiled.
    let file = sb.install("rogue-impostor.wasm", "kvm.wasm");
    let host = sb.host(&config);
    let events = host.scan();
    let expected = format!(
        "refused: its SHA-256 is {}, but [plugin.kvm] pins sha256 = \"{}\"",
        sha256_of(&wasm("rogue-impostor.wasm")),
        sha256_of(&kvm)
    );
    assert_eq!(events[0].message, expected);
    assert!(host.get("kvm").is_none());
    install_file(&kvm, &file);
    assert!(host.scan()[0].loaded);
    the_real_kvm_serves(&host);
}

#[test]
fn a_grant_section_can_pin_the_signer() {
    use crate::driver_kit::wasmstack;
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let (ops, other) = (keys.path().join("ops.key"), keys.path().join("other.key"));
    let public = |key: &Path| {
        let (ok, out, err) = wasmstack(&["plugins", "keygen", key.to_str().unwrap()]);
        assert!(ok, "{err}");
        let start = out.find("ed25519:").unwrap();
        out[start..].split('"').next().unwrap().to_owned()
    };
    let ops_pub = public(&ops);
    public(&other);
    let sign = |key: &Path, file: &Path| {
        let (ok, _, err) = wasmstack(&["plugins", "sign", "--key", key.to_str().unwrap(), file.to_str().unwrap()]);
        assert!(ok, "{err}");
    };
    let file = sb.install("kvm.wasm", "kvm.wasm");
    // No trusted-keys: other plugins need no signature, kvm needs one by ops.key.
    let host = sb.host(&format!("{KVM_GRANTS}signed-by = [\"{ops_pub}\"]\n"));
    let events = host.scan();
    assert!(
        events[0].message.starts_with("refused: [plugin.kvm] has signed-by: unsigned: no kvm.wasm.sig beside it"),
        "{events:?}"
    );
    sign(&other, &file);
    let events = host.scan();
    assert!(events[0].message.contains("a key this server does not trust"), "{events:?}");
    sign(&ops, &file);
    assert!(host.scan()[0].loaded);
    the_real_kvm_serves(&host);
}
