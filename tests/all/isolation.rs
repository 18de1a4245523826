//! Each way a driver can misbehave fails only its own call, with an error that says
//! which, and the host keeps serving.

use std::time::{Duration, Instant};

use wasmstack::plugins::{DriverError, PluginError};

use crate::support::{Sandbox, wasm};

const ROGUE_CONFIG: &str = r#"
[plugin.rogue]
libvirt = ["test:///default"]
memory-mib = 16
timeout-ms = 500
"#;

fn rogue() -> (Sandbox, wasmstack::plugins::PluginHost) {
    let sb = Sandbox::new();
    sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(ROGUE_CONFIG);
    let events = host.scan();
    assert!(events.iter().all(|e| e.loaded), "{events:?}");
    (sb, host)
}

/// The call that must still work after every fault.
fn still_serves(host: &wasmstack::plugins::PluginHost) {
    let facts = host.hypervisor("rogue").unwrap().probe_host("test:///default").expect("a healthy call after a fault");
    assert_eq!(facts.hypervisor_version, "rogue 1.0.0");
    assert!(facts.cpus > 0);
}

#[test]
fn a_panic_fails_only_that_call() {
    let (_sb, host) = rogue();
    let err = host.hypervisor("rogue").unwrap().probe_host("panic").unwrap_err();
    match &err {
        PluginError::Panicked { plugin, op, message } => {
            assert_eq!((plugin.as_str(), *op), ("rogue", "probe-host"));
            assert_eq!(message, "rogue was told to panic");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(err.to_string(), "rogue panicked in probe-host: rogue was told to panic");
    still_serves(&host);
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let (_sb, host) = rogue();
    let started = Instant::now();
    let err = host.hypervisor("rogue").unwrap().probe_host("loop").unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, PluginError::Timeout { limit_ms: 500, .. }), "{err:?}");
    assert_eq!(err.to_string(), "rogue timed out in probe-host after 500 ms");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "took {took:?}");
    still_serves(&host);
}

#[test]
fn time_blocked_in_the_host_counts_against_the_deadline() {
    // Time spent blocked in the host (here a WASI sleep) counts against the deadline.
    let (_sb, host) = rogue();
    let err = host.hypervisor("rogue").unwrap().probe_host("sleep:800").unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    still_serves(&host);
}

#[test]
fn allocating_past_the_cap_is_out_of_memory() {
    let (_sb, host) = rogue();
    let err = host.hypervisor("rogue").unwrap().probe_host("hog").unwrap_err();
    assert!(matches!(err, PluginError::OutOfMemory { limit_mib: 16, .. }), "{err:?}");
    assert!(err.to_string().starts_with("rogue ran out of memory in probe-host: its limit is 16 MiB"), "{err}");
    still_serves(&host);
}

#[test]
fn an_ungranted_capability_is_denied_before_it_reaches_libvirt() {
    let (_sb, host) = rogue();
    let opened = host.libvirt().opened();
    let err = host.hypervisor("rogue").unwrap().probe_host("snoop").unwrap_err();
    let PluginError::Driver { error: DriverError::Denied(text), .. } = &err else {
        panic!("expected a denial, got {err:?}");
    };
    assert!(text.contains("libvirt access to \"qemu:///system\" is not granted to plugin \"rogue\""), "{text}");
    assert!(text.contains("libvirt = [\"qemu:///system\"] under [plugin.rogue]"), "{text}");
    assert_eq!(host.libvirt().opened(), opened, "a denied call opened a libvirt connection");
    still_serves(&host);
}

#[test]
fn revoking_a_grant_takes_effect_on_the_next_call() {
    let (_sb, host) = rogue();
    still_serves(&host);
    host.set_grants("rogue", Default::default()).unwrap();
    let err = host.hypervisor("rogue").unwrap().probe_host("test:///default").unwrap_err();
    assert!(matches!(err, PluginError::Driver { error: DriverError::Denied(_), .. }), "{err:?}");
}

#[test]
fn guest_stderr_is_kept_in_the_error() {
    let (_sb, host) = rogue();
    let err = host.hypervisor("rogue").unwrap().probe_host("stderr").unwrap_err();
    assert!(matches!(err, PluginError::Trapped { .. }), "{err:?}");
    assert!(err.to_string().contains("rogue: about to trap"), "{err}");
    still_serves(&host);
}

#[test]
fn faults_in_parallel_do_not_disturb_healthy_calls() {
    let (_sb, host) = rogue();
    std::thread::scope(|s| {
        for url in ["panic", "loop", "hog", "snoop"] {
            let host = host.clone();
            s.spawn(move || assert!(host.hypervisor("rogue").unwrap().probe_host(url).is_err()));
        }
        for _ in 0..4 {
            let host = host.clone();
            s.spawn(move || {
                for _ in 0..20 {
                    still_serves(&host);
                }
            });
        }
    });
}

#[test]
fn an_unsupported_wit_version_is_refused() {
    let sb = Sandbox::new();
    let host = sb.host("");
    let err = host.load_file(&wasm("future.wasm")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.ends_with(
            "built for wasmstack:driver@9.0.0; this server supports wasmstack:driver@0.4.x (wasmstack:driver@0.4.0) and, adapted, wasmstack:driver@0.3.x, 0.2.x and 0.1.x"
        ),
        "{text}"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let sb = Sandbox::new();
    let host = sb.host("");
    let cases: [(&[u8], &str); 3] = [
        (b"garbage, not wasm", "not a WebAssembly file"),
        (b"\0asm\x01\0\0\0", "a core WebAssembly module, not a component; build the driver for wasm32-wasip2"),
        (b"\0asm\x0d\0\x01\0\x01\x02\x03", "not a valid component"),
    ];
    for (bytes, expected) in cases {
        let path = sb.plugins().join("bad.wasm");
        std::fs::write(&path, bytes).unwrap();
        let text = host.load_file(&path).unwrap_err().to_string();
        assert!(text.contains(expected), "{text}");
    }
}
