//! A driver call ends by its deadline whatever it waits on: a WASI sleep, or a host
//! call blocked on a daemon that never answers. Meanwhile other calls, of the same
//! driver and of others, are served as usual.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use wasmstack::plugins::{PluginError, PluginHost};

use crate::support::Sandbox;

const SIMULATOR: &str = "test:///default";
/// The deadline of the rogue driver's calls.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// How late past its deadline a call may end: the epoch tick, waking up, unwinding.
const MARGIN: Duration = Duration::from_millis(700);

/// A libvirt daemon that accepts connections and never says a word.
fn silent_daemon() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Read what the client sends, so its writes never fail, and answer nothing.
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    format!("qemu+tcp://127.0.0.1:{port}/system")
}

fn host(hung_uri: &str) -> (Sandbox, PluginHost) {
    let sb = Sandbox::new();
    sb.install("rogue-v1.wasm", "rogue.wasm");
    sb.install("kvm.wasm", "kvm.wasm");
    let config = format!(
        "[plugin.rogue]\nlibvirt = [\"{SIMULATOR}\", \"{hung_uri}\"]\ntimeout-ms = {}\n\n\
         [plugin.kvm]\nlibvirt = [\"{SIMULATOR}\"]\ntimeout-ms = 20000\n",
        TIMEOUT.as_millis()
    );
    let host = sb.host(&config);
    let events = host.scan();
    assert!(events.iter().all(|e| e.loaded), "{events:?}");
    (sb, host)
}

/// Runs `stuck` (a rogue probe-host that waits) and, while it waits, healthy calls of
/// both drivers; checks the stuck call ends with the deadline error in time and that
/// the others were answered meanwhile, each promptly.
fn ends_at_the_deadline_while_others_are_served(host: &PluginHost, stuck: &str) {
    std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let started = Instant::now();
            let result = host.hypervisor("rogue").unwrap().probe_host(stuck);
            (result, started.elapsed())
        });
        // While it waits: the other driver and the same driver keep answering.
        std::thread::sleep(Duration::from_millis(100));
        let mut served = 0;
        while !waiting.is_finished() {
            let started = Instant::now();
            let kvm = host.hypervisor("kvm").unwrap().probe_host(SIMULATOR).expect("kvm answers meanwhile");
            assert!(kvm.cpus > 0);
            let rogue = host.hypervisor("rogue").unwrap().probe_host(SIMULATOR).expect("rogue answers meanwhile");
            assert_eq!(rogue.hypervisor_version, "rogue 1.0.0");
            let took = started.elapsed();
            assert!(took < Duration::from_millis(500), "healthy calls took {took:?} while {stuck} waited");
            served += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        let (result, took) = waiting.join().unwrap();
        let err = result.expect_err("the stuck call must fail");
        assert!(matches!(err, PluginError::Timeout { limit_ms: 1000, .. }), "{err:?}");
        assert_eq!(err.to_string(), "rogue timed out in probe-host after 1000 ms");
        assert!(took >= TIMEOUT && took < TIMEOUT + MARGIN, "{stuck}: ended after {took:?}");
        assert!(served >= 5, "only {served} rounds of healthy calls while {stuck} waited");
    });
}

#[test]
fn a_wasi_sleep_ends_at_the_deadline() {
    let (_sb, host) = host("qemu+tcp://unused/system");
    // Ten minutes, asked through WASI's monotonic clock (std::thread::sleep in the guest).
    ends_at_the_deadline_while_others_are_served(&host, "sleep:600000");
    // The sleep was cut, not the sleeper's next call.
    let facts = host.hypervisor("rogue").unwrap().probe_host("sleep:10").expect("a short sleep still works");
    assert_eq!(facts.hypervisor_version, "rogue 1.0.0");
}

#[test]
fn a_libvirt_daemon_that_never_answers_ends_the_call_at_the_deadline() {
    let hung = silent_daemon();
    let (_sb, host) = host(&hung);
    ends_at_the_deadline_while_others_are_served(&host, &hung);
    // Again, now that a connection attempt is stuck: it holds up no one else either.
    ends_at_the_deadline_while_others_are_served(&host, &hung);
}

#[test]
fn waits_in_parallel_each_end_at_their_deadline() {
    let hung = silent_daemon();
    let (_sb, host) = host(&hung);
    let started = Instant::now();
    std::thread::scope(|s| {
        let calls: Vec<_> = ["sleep:600000", hung.as_str(), "sleep:600000", hung.as_str(), "loop"]
            .into_iter()
            .map(|what| s.spawn(|| host.hypervisor("rogue").unwrap().probe_host(what)))
            .collect();
        for call in calls {
            let err = call.join().unwrap().unwrap_err();
            assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
        }
    });
    let took = started.elapsed();
    assert!(took < TIMEOUT + MARGIN, "five stuck calls took {took:?} in all");
}
