//! The `wasmstack plugins` commands, run as an operator would.

use std::process::Command;

use crate::support::Sandbox;

fn wasmstack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmstack")).args(args).output().expect("running wasmstack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugins_list_shows_drivers_grants_and_refusals() {
    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    sb.install("future.wasm", "future.wasm");
    std::fs::write(sb.plugins().join("broken.wasm"), b"not wasm").unwrap();
    std::fs::write(sb.config_path(), "[plugin.kvm]\nlibvirt = [\"test:///default\"]\ntimeout-ms = 60000\n").unwrap();
    let config = sb.config_path();
    let (ok, out, err) = wasmstack(&["plugins", "list", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("kvm 0.1.0 (hypervisor driver, wasmstack:driver@0.4.0)"), "{out}");
    assert!(
        out.contains(
            "serves: KVM (hot-plug-disks, vnc-console, boot-iso, serial-log), Simulator (boot-iso, simulated)"
        ),
        "{out}"
    );
    assert!(out.contains("limits: 64 MiB memory, 60000 ms per call"), "{out}");
    assert!(out.contains("asks: libvirt test:///default [granted]"), "{out}");
    assert!(out.contains("asks: libvirt qemu:///system [NOT granted]"), "{out}");
    assert!(out.contains("broken.wasm: refused: not a WebAssembly file"), "{out}");
    assert!(out.contains("future.wasm: refused: built for wasmstack:driver@9.0.0"), "{out}");

    let (ok, out, err) = wasmstack(&["plugins", "list", "--json", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["plugins"][0]["name"], "kvm");
    assert_eq!(v["plugins"][0]["granted"][0]["scope"], "test:///default");
    assert_eq!(v["refused"].as_array().unwrap().len(), 2);
}

#[test]
fn plugins_inspect_validates_one_file() {
    let sb = Sandbox::new();
    let kvm = sb.install("kvm.wasm", "kvm.wasm");
    let (ok, out, err) = wasmstack(&["plugins", "inspect", "--json", kvm.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["kind"], "hypervisor");
    assert_eq!(v["wit"], "wasmstack:driver@0.4.0");
    assert_eq!(v["serves"]["kind"], "hypervisor");
    assert_eq!(v["serves"]["types"][1]["name"], "Simulator");
    assert_eq!(v["serves"]["types"][1]["features"]["simulated"], true);
    assert_eq!(v["config_schema"]["properties"]["accel"]["enum"][2], "tcg");
    assert!(v["missing"].as_array().unwrap().len() >= 4, "nothing is granted without a configuration");

    let future = crate::support::wasm("future.wasm");
    let (ok, _, err) = wasmstack(&["plugins", "inspect", future.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("built for wasmstack:driver@9.0.0"), "{err}");
}
