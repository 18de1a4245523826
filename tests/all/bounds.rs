//! What a driver answers is bounded: an oversized answer of any kind is refused with an
//! error that says what was too big, a long error text is cut, and the host keeps serving.

use wasmstack::plugins::{DriverError, PluginError, PluginHost};

use crate::support::Sandbox;

const CONFIG: &str =
    "[plugin.rogue]\nlibvirt = [\"test:///default\"]\n\n[plugin.roguestore]\nimages = [\"file:///nowhere\"]\n";

fn host_with(artifact: &str, as_name: &str, config: &str) -> (Sandbox, PluginHost) {
    let sb = Sandbox::new();
    sb.install(artifact, as_name);
    let host = sb.host(config);
    host.scan();
    (sb, host)
}

fn oversized(err: PluginError, expected_op: &str, expected: &str) {
    match &err {
        PluginError::Oversized { op, detail, .. } => {
            assert_eq!(*op, expected_op);
            assert_eq!(detail, expected);
        }
        other => panic!("expected an oversized answer, got {other}"),
    }
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn describe_answers_over_the_bounds_are_refused() {
    // Room enough for the 40 MiB schema to be made (format! grows a copy of it) and handed over.
    let roomy = "[plugin.rogue]\nmemory-mib = 256\n";
    for (artifact, why) in [
        ("rogue-many-asks.wasm", "200000 capabilities, at most 256 allowed"),
        ("rogue-huge-describe.wasm", "the config-schema is 41943052 bytes, at most 65536 allowed"),
    ] {
        let (_sb, host) = host_with(artifact, "rogue.wasm", roomy);
        let ev = host.events().pop().unwrap();
        assert!(!ev.loaded);
        assert_eq!(
            ev.message,
            format!("refused: describe() failed: rogue gave an oversized answer to describe: {why}")
        );
        assert!(host.get("rogue").is_none());
    }
    // The copy out of the component's memory that precedes these checks is bounded by the
    // plugin's memory cap: with a small one the 40 MiB schema is never even made.
    let small = "[plugin.rogue]\nmemory-mib = 16\n";
    let (_sb, host) = host_with("rogue-huge-describe.wasm", "rogue.wasm", small);
    let ev = host.events().pop().unwrap();
    let expected = "refused: describe() failed: rogue ran out of memory in describe: its limit is 16 MiB";
    assert!(ev.message.starts_with(expected), "{}", ev.message);
}

#[test]
fn hypervisor_answers_over_the_bounds_are_refused() {
    let (_sb, host) = host_with("rogue-v1.wasm", "rogue.wasm", CONFIG);
    let rogue = host.hypervisor("rogue").unwrap();
    oversized(
        rogue.probe_host("big-facts").unwrap_err(),
        "probe-host",
        "cpu-model is 1048576 bytes, at most 256 allowed",
    );
    oversized(rogue.list_vms("many").unwrap_err(), "list-vms", "200000 VMs, at most 16384 allowed");
    oversized(
        rogue.list_vms("long-name").unwrap_err(),
        "list-vms",
        "a VM's name is 1048576 bytes, at most 256 allowed",
    );
    oversized(
        rogue.console("long-host", "u").unwrap_err(),
        "console",
        "the host is 1048576 bytes, at most 256 allowed",
    );
    assert!(rogue.probe_host("test:///default").unwrap().cpus > 0, "still serves");
}

#[test]
fn a_long_error_text_is_cut_with_a_marker() {
    let (_sb, host) = host_with("rogue-v1.wasm", "rogue.wasm", CONFIG);
    let err = host.hypervisor("rogue").unwrap().probe_host("big-error").unwrap_err();
    let PluginError::Driver { error: DriverError::Failed(text), .. } = &err else { panic!("{err:?}") };
    assert!(text.len() <= 4096, "{}", text.len());
    assert!(text.starts_with("eeee") && text.ends_with(" … [cut: 33554432 bytes in all]"), "{}", &text[4000..]);
    assert!(err.to_string().len() < 4200);
}

#[test]
fn storage_answers_over_the_bounds_are_refused() {
    let (_sb, host) = host_with("roguestore.wasm", "roguestore.wasm", CONFIG);
    let store = host.storage("roguestore").expect("roguestore loaded");
    let pool = "file:///nowhere/pool";
    let create = |name: &str| store.create_volume(pool, name, 1 << 20, None).unwrap_err();
    oversized(create("long-path"), "create-volume", "the path is 20971520 bytes, at most 4096 allowed");
    oversized(create("long-locator"), "create-volume", "the locator's path is 1048577 bytes, at most 4096 allowed");
    oversized(create("deep-chain"), "create-volume", "100000 backing images, at most 256 allowed");
    oversized(
        store.locate(pool, "long-block").unwrap_err(),
        "locate",
        "the locator's device is 1048581 bytes, at most 4096 allowed",
    );
    let volume = store.create_volume(pool, "v1", 1 << 20, None).expect("a sane answer passes");
    assert_eq!(volume.path, "v1");
}

/// A storage driver's answer naming a file outside its pool passes the host's size
/// bounds; the orchestrator's containment check is what refuses it.
#[test]
fn storage_answers_outside_the_pool_are_refused() {
    use wasmstack::orchestrate::locators::within;
    let (_sb, host) = host_with("roguestore.wasm", "roguestore.wasm", CONFIG);
    let store = host.storage("roguestore").expect("roguestore loaded");
    let sane = store.create_volume("file:///nowhere/pool", "v1", 1 << 20, None).expect("a sane answer");
    assert_eq!(within("file:///nowhere/pool", &sane.locator), Ok(()));
    for (pool, outside) in [
        ("file:///nowhere/escape", "the file /etc/shadow"),
        ("file:///nowhere/dotdot", "the file /nowhere/dotdot/../outside"),
    ] {
        let made = store.create_volume(pool, "v1", 1 << 20, None).expect("the host passes it");
        assert_eq!(within(pool, &made.locator), Err(outside.to_owned()), "{pool}");
        let found = store.locate(pool, "v1").expect("the host passes it");
        assert_eq!(within(pool, &found), Err(outside.to_owned()), "{pool}");
    }
}
