//! Hot reload: a changed file replaces the plugin once validated, calls in flight
//! finish on the old code, and a bad file leaves the old plugin in place.

use std::time::{Duration, Instant};

use crate::support::{Sandbox, install_file, wasm};

const CONFIG: &str = "[plugin.rogue]\nlibvirt = [\"test:///default\"]\ntimeout-ms = 10000\n";

fn version_of(host: &wasmstack::plugins::PluginHost) -> String {
    host.hypervisor("rogue").unwrap().probe_host("test:///default").unwrap().hypervisor_version
}

#[test]
fn a_call_in_flight_finishes_on_the_old_version() {
    let sb = Sandbox::new();
    let file = sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(CONFIG);
    host.scan();
    assert_eq!(version_of(&host), "rogue 1.0.0");

    let old = host.hypervisor("rogue").unwrap();
    let in_flight = std::thread::spawn(move || old.probe_host("sleep:1500").map(|f| f.hypervisor_version));
    std::thread::sleep(Duration::from_millis(200));

    install_file(&wasm("rogue-v2.wasm"), &file);
    let events = host.scan();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].loaded, "{events:?}");
    assert_eq!(events[0].message, "replaced rogue 1.0.0 with 2.0.0");
    assert_eq!(version_of(&host), "rogue 2.0.0");
    assert!(!in_flight.is_finished(), "the slow call should still be running");

    assert_eq!(in_flight.join().unwrap().unwrap(), "rogue 1.0.0");
}

#[test]
fn a_corrupt_replacement_is_refused_and_the_old_one_keeps_working() {
    let sb = Sandbox::new();
    let file = sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(CONFIG);
    host.scan();

    let mut bytes = std::fs::read(wasm("rogue-v2.wasm")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&file, &bytes).unwrap();
    let events = host.scan();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].loaded);
    assert!(events[0].message.starts_with("refused: not a valid component"), "{}", events[0].message);
    assert!(events[0].message.ends_with("; still using rogue 1.0.0"), "{}", events[0].message);
    assert_eq!(version_of(&host), "rogue 1.0.0");
    assert!(host.events().iter().any(|e| !e.loaded), "the refusal is kept for the operator");

    // A good file after the bad one is taken.
    install_file(&wasm("rogue-v2.wasm"), &file);
    host.scan();
    assert_eq!(version_of(&host), "rogue 2.0.0");
}

#[test]
fn the_watcher_picks_up_new_changed_and_removed_files() {
    let sb = Sandbox::new();
    let host = sb.host(CONFIG);
    let _watch = host.watch(Duration::from_millis(50));
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < Duration::from_secs(10), "the watcher never saw: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let file = sb.install("rogue-v1.wasm", "rogue.wasm");
    wait_for("a new file", &|| host.get("rogue").is_some());
    assert_eq!(version_of(&host), "rogue 1.0.0");

    install_file(&wasm("rogue-v2.wasm"), &file);
    wait_for("a changed file", &|| host.get("rogue").is_some_and(|p| p.info.version == "2.0.0"));

    std::fs::remove_file(&file).unwrap();
    wait_for("a removed file", &|| host.get("rogue").is_none());
    assert!(host.hypervisor("rogue").is_err());
}

#[test]
fn a_looping_describe_holds_up_no_other_driver() {
    // Dropped in together: a driver whose describe() never returns, with a deadline of its
    // own, and a good one.
    let sb = Sandbox::new();
    let slow = sb.install("rogue-describe-loop.wasm", "slow.wasm");
    let file = sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(&format!("{CONFIG}\n[plugin.slow]\ntimeout-ms = 15000\n"));
    let _watch = host.watch(Duration::from_millis(50));
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < Duration::from_secs(60), "never saw: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let heard_of_slow = || host.events().iter().any(|e| e.file == slow);

    // The good one is in use while the looping one is still being validated.
    wait_for("rogue loaded", &|| host.get("rogue").is_some());
    assert_eq!(host.validating(), vec![slow.clone()]);
    assert!(!heard_of_slow(), "{:?}", host.events());
    assert_eq!(version_of(&host), "rogue 1.0.0");

    // A file dropped in after the looping one is not held up either.
    install_file(&wasm("rogue-v2.wasm"), &file);
    wait_for("rogue replaced", &|| host.get("rogue").is_some_and(|p| p.info.version == "2.0.0"));
    assert_eq!(host.validating(), vec![slow.clone()]);
    assert!(!heard_of_slow(), "{:?}", host.events());
    assert_eq!(version_of(&host), "rogue 2.0.0");

    // The looping one ends at its own deadline (its plugin's timeout-ms, not the default).
    wait_for("slow refused", &heard_of_slow);
    let events = host.events();
    let order: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(order[..2], ["loaded rogue 1.0.0", "replaced rogue 1.0.0 with 2.0.0"], "{order:?}");
    assert_eq!(order[2], "refused: describe() failed: slow timed out in describe after 15000 ms", "{order:?}");
    assert!(host.validating().is_empty() && host.get("slow").is_none());
}

#[test]
fn a_scan_waits_for_what_it_started_and_returns_it() {
    let sb = Sandbox::new();
    let slow = sb.install("rogue-describe-loop.wasm", "slow.wasm");
    let rogue = sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(&format!("{CONFIG}\n[plugin.slow]\ntimeout-ms = 15000\n"));
    // Waiting for one file (as an upload does) is not waiting for the others.
    let events = host.scan_file(&rogue);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].message, "loaded rogue 1.0.0");
    assert_eq!(host.validating(), vec![slow.clone()]);
    // A full scan waits for the validation already under way rather than starting another.
    let events = host.scan();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].file, slow);
    assert_eq!(events[0].message, "refused: describe() failed: slow timed out in describe after 15000 ms");
    assert_eq!(version_of(&host), "rogue 1.0.0");
    assert!(host.scan().is_empty(), "nothing changed since");
    assert_eq!(host.events().len(), 2, "one event per file: {:?}", host.events());
}

/// Whether rogue may reach the Simulator now: its grant decides.
fn reaches_the_simulator(host: &wasmstack::plugins::PluginHost) -> bool {
    match host.hypervisor("rogue").unwrap().probe_host("test:///default") {
        Ok(_) => true,
        Err(wasmstack::plugins::PluginError::Driver {
            error: wasmstack::plugins::DriverError::Denied(text), ..
        }) => {
            assert!(text.contains("test:///default"), "{text}");
            false
        }
        Err(other) => panic!("expected an answer or a denial, got {other:?}"),
    }
}

#[test]
fn an_edited_configuration_takes_effect_on_reload() {
    let sb = Sandbox::new();
    sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(CONFIG);
    host.scan();
    assert!(reaches_the_simulator(&host));
    assert!(!host.reload_config().unwrap(), "nothing changed, nothing applied");

    // The grant taken away and the deadline shortened, in the file only.
    std::fs::write(sb.config_path(), "[plugin.rogue]\ntimeout-ms = 300\n").unwrap();
    assert!(reaches_the_simulator(&host), "applied before the reload");
    assert!(host.reload_config().unwrap());
    assert!(!reaches_the_simulator(&host), "the grant taken out of the file still holds");
    let rogue = host.get("rogue").unwrap();
    assert_eq!(rogue.settings.limits.timeout, Duration::from_millis(300));
    assert!(rogue.settings.grants.capabilities().is_empty());
    let slow = host.hypervisor("rogue").unwrap().probe_host("sleep:1000").unwrap_err();
    assert!(
        matches!(slow, wasmstack::plugins::PluginError::Timeout { limit_ms: 300, .. }),
        "the new deadline is not in effect: {slow:?}"
    );
    let applied = host.events().into_iter().rev().find(|e| e.file == sb.config_path()).unwrap();
    assert!(applied.loaded && applied.message == "settings reloaded from wasmstack.toml", "{applied:?}");

    // A file that does not read changes nothing, and says why.
    std::fs::write(sb.config_path(), "[plugin.rogue]\nlibvirt = [\"test:///default\"]\ntimeout-ms = \"soon\"\n")
        .unwrap();
    let err = host.reload_config().unwrap_err().to_string();
    assert!(err.contains("wasmstack.toml not applied, the previous settings stay: "), "{err}");
    assert!(err.contains("timeout-ms") || err.contains("invalid type"), "the reason is missing: {err}");
    assert!(!reaches_the_simulator(&host), "half of a bad file was applied");
    assert_eq!(host.get("rogue").unwrap().settings.limits.timeout, Duration::from_millis(300));
    let refused = host.events().into_iter().rev().find(|e| e.file == sb.config_path()).unwrap();
    assert!(!refused.loaded && refused.message == err.trim_start_matches("configuration: "), "{refused:?}");
    // Asked again, the same bad file gives the same answer, and no second event.
    let events = host.events().len();
    assert!(host.reload_config().is_err());
    assert_eq!(host.events().len(), events);

    // Fixed, it applies.
    std::fs::write(sb.config_path(), CONFIG).unwrap();
    assert!(host.reload_config().unwrap());
    assert!(reaches_the_simulator(&host));
    assert_eq!(host.get("rogue").unwrap().settings.limits.timeout, Duration::from_millis(10000));
}

#[test]
fn the_watcher_applies_an_edited_configuration_without_a_call() {
    let sb = Sandbox::new();
    sb.install("rogue-v1.wasm", "rogue.wasm");
    let host = sb.host(CONFIG);
    host.scan();
    let _watch = host.watch(Duration::from_millis(50));
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < Duration::from_secs(10), "the watcher never applied: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(reaches_the_simulator(&host));

    std::fs::write(sb.config_path(), "[plugin.rogue]\nmemory-mib = 48\n").unwrap();
    wait_for("a revoked grant", &|| !reaches_the_simulator(&host));
    assert_eq!(host.get("rogue").unwrap().settings.limits.memory_mib, 48);

    // A bad edit is refused once, with its reason, and the settings stay.
    std::fs::write(sb.config_path(), "[plugin.rogue]\nlibvirt = [\"test:///default\"]\nmemory-mib = 0\n").unwrap();
    let refused = || host.events().into_iter().filter(|e| e.file == sb.config_path() && !e.loaded).collect::<Vec<_>>();
    wait_for("a refusal event", &|| !refused().is_empty());
    std::thread::sleep(Duration::from_millis(200));
    let refusals = refused();
    assert_eq!(refusals.len(), 1, "the same bad file is reported once: {refusals:?}");
    assert!(refusals[0].message.ends_with("[plugin.rogue]: memory-mib must be 1..=1024, not 0"), "{refusals:?}");
    assert!(!reaches_the_simulator(&host));

    std::fs::write(sb.config_path(), CONFIG).unwrap();
    wait_for("a restored grant", &|| reaches_the_simulator(&host));
}
