//! What a driver call costs through the plugin host, against the same work done
//! natively in the same process.
//!
//!   cargo bench -p wasmstack --bench plugin_call
//!
//! (components built first: scripts/build.sh). Prints, per operation, the native
//! time, the time through the host, and their ratio.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmstack::plugins::{HostConfig, PluginHost, VmPower};

const SIMULATOR: &str = "test:///default";

fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors().nth(3).expect("cargo target dir").join("wasm32-wasip2/release")
}

/// Mean time of `f` over enough runs to fill about `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..100 {
        f();
    }
    let mut runs = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        runs += 100;
    }
    start.elapsed() / runs
}

fn main() {
    let budget = Duration::from_millis(std::env::var("BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm_dir().join("kvm.wasm"), dir.path().join("kvm.wasm")).expect("kvm.wasm; run scripts/build.sh");
    let mut config = HostConfig::new(dir.path());
    config.grant("kvm", wasmstack::plugins::Grants::new(vec![SIMULATOR.into()], vec![], vec![]).unwrap());
    let host = PluginHost::new(config).unwrap();
    host.scan();
    let kvm = host.hypervisor("kvm").expect("kvm loaded");

    // One domain to ask about, on the same pooled connection the driver uses.
    let conn = host.libvirt().connect(SIMULATOR).unwrap();
    let dom = virt::domain::Domain::lookup_by_name(&conn, "test").expect("the test driver's default domain");
    let uuid = dom.get_uuid_string().unwrap();

    let native = time_per_call(budget, || {
        let d = virt::domain::Domain::lookup_by_uuid_string(&conn, &uuid).unwrap();
        std::hint::black_box(d.get_state().unwrap());
    });
    let mut session = kvm.session().unwrap();
    let hosted = time_per_call(budget, || {
        assert_eq!(session.power_state(SIMULATOR, &uuid).unwrap(), VmPower::Running);
    });
    let fresh = time_per_call(budget, || {
        std::hint::black_box(kvm.session().unwrap());
    });
    let per_op = time_per_call(budget, || {
        assert_eq!(kvm.power_state(SIMULATOR, &uuid).unwrap(), VmPower::Running);
    });

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("power-state of one domain on {SIMULATOR}:");
    println!("  native (virt crate)                 {:>9.2} µs", us(native));
    println!(
        "  through the driver, warm instance   {:>9.2} µs  ratio {:.2}x  overhead {:.2} µs",
        us(hosted),
        us(hosted) / us(native),
        us(hosted) - us(native)
    );
    println!("  fresh store + instance              {:>9.2} µs", us(fresh));
    println!("  through the driver, fresh instance  {:>9.2} µs  ratio {:.2}x", us(per_op), us(per_op) / us(native));
}
