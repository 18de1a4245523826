//! `wasmstack plugins check` on hypervisor and network drivers: the shipped `kvm` (against
//! the Simulator) and `flat` (with `--network`, in a scratch network namespace) pass, and
//! drivers made with `plugins new` to break one rule per step fail it with that step's
//! message: a version that is not semver, a grant not asked for, malformed answers, a
//! schema the server cannot read, a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::driver_kit::{build_crate, check_report, replace_function, target_dir, wasmstack};

/// `plugins check --json [extra] FILE`, optionally in a fresh network namespace of its own
/// (`unshare -n`: it and whatever the driver made there go when the check exits).
/// Whether it passed, and each step's (status, message).
fn check(file: &Path, extra: &[&str], scratch_netns: bool) -> (bool, HashMap<String, (String, String)>, String) {
    let mut args = vec!["plugins", "check", "--json"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let (ok, out, err) = if scratch_netns {
        let out = Command::new("unshare")
            .arg("-n")
            .arg(env!("CARGO_BIN_EXE_wasmstack"))
            .args(&args)
            .output()
            .expect("running unshare");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    } else {
        wasmstack(&args)
    };
    check_report(ok, out, &err)
}

fn status<'a>(steps: &'a HashMap<String, (String, String)>, step: &str) -> &'a str {
    steps.get(step).map(|s| s.0.as_str()).unwrap_or_else(|| panic!("no step {step}: {steps:?}"))
}

fn failed_with(steps: &HashMap<String, (String, String)>, step: &str, message: &str, out: &str) {
    assert_eq!(steps.get(step), Some(&("failed".to_owned(), message.to_owned())), "{step}: {out}");
}

/// Generates a driver of `kind` named `name` with `plugins new`, applies `edits` (skeleton
/// function → new definition) and `replace` (plain text), builds it once per test run.
fn build(kind: &str, name: &str, edits: &[(&str, &str)], replace: &[(&str, &str)]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let dir = target_dir().join("driver-kit").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, out, err) = wasmstack(&["plugins", "new", "--kind", kind, name, dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let lib = dir.join("src/lib.rs");
    let mut src = std::fs::read_to_string(&lib).unwrap();
    for (wit, new) in edits {
        src = replace_function(&src, wit, new);
    }
    for (from, to) in replace {
        assert!(src.contains(from), "the skeleton has no {from:?}");
        src = src.replace(from, to);
    }
    std::fs::write(&lib, src).unwrap();
    let wasm = build_crate(&dir, name);
    built.get_or_insert_with(HashMap::new).insert(name.to_owned(), wasm.clone());
    wasm
}

const VERSION: (&str, &str) = ("version: env!(\"CARGO_PKG_VERSION\").into()", "version: \"1.0\".into()");
const NO_SEMVER: &str = "\"1.0\" is not a semantic version like 1.2.0";
/// A setting of a type the server cannot check details against.
const BAD_SCHEMA: (&str, &str) = (
    "config_schema: \"{}\".into()",
    "config_schema: r#\"{\"properties\": {\"disks\": {\"type\": \"array\"}}}\"#.into()",
);
const BAD_SCHEMA_MESSAGE: &str =
    "config-schema property disks: type \"array\" is not one of string, integer, number, boolean";

#[test]
fn kvm_passes_check_against_the_simulator() {
    let (ok, steps, out) = check(&crate::support::wasm("kvm.wasm"), &[], false);
    assert!(ok, "{out}");
    for step in ["wit-version", "manifest config-schema", "grants", "probe-host", "create-vm", "start-vm"] {
        assert_eq!(status(&steps, step), "passed", "{step}: {out}");
    }
    for step in ["power-state", "list-vms", "stop-vm", "destroy-vm"] {
        assert_eq!(status(&steps, step), "passed", "{step}: {out}");
    }
    assert_eq!(steps["grants"].1, "granted libvirt = [\"test:///default\"] for the check", "{out}");
    assert_eq!(steps["manifest config-schema"].1, "a JSON object, 1 setting(s)", "{out}");
    assert_eq!(steps["power-state"].1, "running", "{out}");
    assert_eq!(
        steps["manifest serves"],
        (
            "passed".to_owned(),
            "KVM (hot-plug-disks, vnc-console, boot-iso, serial-log), Simulator (boot-iso, simulated)".to_owned()
        ),
        "{out}"
    );
    assert_eq!(
        steps["connect-host"],
        (
            "passed".to_owned(),
            "KVM: http://127.0.0.1 is qemu+ssh://127.0.0.1/system at 127.0.0.1; \
             Simulator: http://127.0.0.1 is test:///default at 127.0.0.1"
                .to_owned()
        ),
        "{out}"
    );
}

#[test]
fn a_0_1_0_build_of_kvm_passes_check_with_the_hosts_defaults() {
    let (ok, steps, out) = check(&crate::support::wasm("kvm-wit-0.1.wasm"), &[], false);
    assert!(ok, "{out}");
    assert_eq!(steps["wit-version"], ("passed".to_owned(), "wasmstack:driver@0.1.0".to_owned()), "{out}");
    let (serves_status, serves) = &steps["manifest serves"];
    assert_eq!(serves_status, "passed", "{out}");
    assert!(
        serves.starts_with("KVM (hot-plug-disks, vnc-console, boot-iso, serial-log), Simulator (boot-iso, simulated) (the host's defaults"),
        "{out}"
    );
    // connect-host is the host's adapter here, with the rules of 0.1 servers.
    assert!(steps["connect-host"].1.contains("KVM: http://127.0.0.1 is qemu+ssh://127.0.0.1/system"), "{out}");
    for step in ["probe-host", "create-vm", "start-vm", "power-state", "list-vms", "stop-vm", "destroy-vm"] {
        assert_eq!(status(&steps, step), "passed", "{step}: {out}");
    }
}

#[test]
fn a_driver_serving_against_the_rules_fails_check_at_manifest_serves() {
    // Two types that differ only in case: the server could not tell them apart.
    let wasm = build(
        "hypervisor",
        "hvkit-twice",
        &[],
        &[(
            "name: \"HvkitTwice\".into(),\n                features: HypervisorFeatures::empty(),\n            }]",
            "name: \"HvkitTwice\".into(),\n                features: HypervisorFeatures::empty(),\n            }, HypervisorType { name: \"hvkittwice\".into(), features: HypervisorFeatures::BOOT_ISO }]",
        )],
    );
    let (ok, steps, out) = check(&wasm, &[], false);
    assert!(!ok, "{out}");
    failed_with(&steps, "manifest serves", "describe() serves the hypervisor type \"hvkittwice\" twice", &out);
    assert_eq!(steps.len(), 1, "nothing else runs: {out}");
}

#[test]
fn a_hypervisor_driver_breaking_the_rules_fails_check_step_by_step() {
    // Built for a WIT version this server does not speak.
    let (ok, steps, out) = check(&crate::support::wasm("future.wasm"), &[], false);
    assert!(!ok);
    assert!(steps["wit-version"].1.starts_with("built for wasmstack:driver@9.0.0"), "{out}");
    assert_eq!(steps.len(), 1, "nothing else runs: {out}");

    let wasm = build(
        "hypervisor",
        "hvkit-bad",
        &[
            (
                "probe-host",
                "fn probe_host(_url: String) -> Result<HostFacts, DriverError> {\n        \
                 Ok(HostFacts { cpus: 0, cpu_mhz: 0, cpu_model: String::new(), memory_bytes: 0, \
                 hypervisor_version: \"none\".into(), hardware_accel: false })\n    }",
            ),
            (
                "create-vm",
                "fn create_vm(_url: String, _spec: VmSpec) -> Result<(), DriverError> {\n        \
                 panic!(\"hvkit-bad lost its way\")\n    }",
            ),
        ],
        &[
            VERSION,
            BAD_SCHEMA,
            // Asks for a host the check does not run against, so it is granted nothing.
            ("Capability::Libvirt(\"test:///default\".into())", "Capability::Libvirt(\"qemu:///system\".into())"),
        ],
    );
    let (ok, steps, out) = check(&wasm, &[], false);
    assert!(!ok, "{out}");
    assert_eq!(status(&steps, "wit-version"), "passed", "{out}");
    failed_with(&steps, "manifest version", NO_SEMVER, &out);
    failed_with(&steps, "manifest config-schema", BAD_SCHEMA_MESSAGE, &out);
    failed_with(
        &steps,
        "grants",
        "asks for no libvirt grant covering \"test:///default\"; the calls below run without one",
        &out,
    );
    // The skeleton's connect-host answers "not supported" until it is written.
    failed_with(
        &steps,
        "connect-host",
        "HvkitBad: hvkit-bad: not supported: hvkit-bad does not support connect-host yet",
        &out,
    );
    failed_with(&steps, "probe-host", "reports 0 CPUs and 0 bytes of memory", &out);
    failed_with(&steps, "create-vm", "hvkit-bad panicked in create-vm: hvkit-bad lost its way", &out);
    for step in ["start-vm", "power-state", "list-vms", "stop-vm", "destroy-vm"] {
        assert_eq!(steps[step], ("skipped".to_owned(), "needs the VM create-vm did not define".to_owned()), "{out}");
    }
}

#[test]
fn network_drivers_pass_check_and_build_a_scratch_network_with_network() {
    let flat = crate::support::wasm("flat.wasm");
    // Without --network the host's devices are left alone.
    let (ok, steps, out) = check(&flat, &[], false);
    assert!(ok, "{out}");
    assert_eq!(status(&steps, "implement"), "skipped", "{out}");
    assert!(steps["implement"].1.contains("run with --network"), "{out}");
    let (ok, _, out) = check(&crate::support::wasm("vlan.wasm"), &[], false);
    assert!(ok, "{out}");

    // With it, in a namespace of its own: a bridge is made and removed.
    let (ok, steps, out) = check(&flat, &["--network"], true);
    assert!(ok, "{out}");
    assert!(steps["implement"].1.starts_with("NICs plug into ws-chk"), "{out}");
    assert_eq!(steps["shutdown"], ("passed".to_owned(), "succeeded".to_owned()), "{out}");
    // flat builds no routers, and says so.
    assert_eq!(status(&steps, "apply-router (no router services)"), "passed", "{out}");
    // It serves security groups: a scratch NIC's rules are set, set again and removed.
    for step in ["apply-security", "apply-security (again)", "remove-security", "remove-security (missing)"] {
        assert_eq!(status(&steps, step), "passed", "{step}: {out}");
    }
}

#[test]
fn a_driver_with_router_services_builds_and_destroys_a_router_in_check() {
    let vlan = crate::support::wasm("vlan.wasm");
    let (ok, steps, out) = check(&vlan, &[], false);
    assert!(ok, "{out}");
    assert_eq!(status(&steps, "apply-router"), "skipped", "{out}");
    // With --network, on this host (Open vSwitch runs in its namespace): the scratch
    // bridge the driver makes is shared by design, so the test removes it.
    let (ok, steps, out) = check(&vlan, &["--network"], false);
    let bridge = steps.get("implement").and_then(|s| s.1.strip_prefix("NICs plug into ")).map(str::to_owned);
    if let Some(b) = &bridge {
        let _ = Command::new("ovs-vsctl").args(["--timeout=5", "--if-exists", "del-br", b]).status();
    }
    assert!(ok, "{out}");
    for step in ["router-status (before)", "apply-router", "apply-router (again)", "router-status", "destroy-router"] {
        assert_eq!(status(&steps, step), "passed", "{step}: {out}");
    }
    assert_eq!(steps["router-status"].1, "running", "{out}");
    assert_eq!(steps["destroy-router"].1, "succeeded; router-status then answers missing", "{out}");
    assert_eq!(status(&steps, "destroy-router (missing)"), "passed", "{out}");
    // vlan does not serve security groups, and says so.
    assert_eq!(status(&steps, "apply-security (no SecurityGroup service)"), "passed", "{out}");
}

#[test]
fn a_network_driver_breaking_the_rules_fails_check_step_by_step() {
    let wasm = build(
        "network",
        "netkit-bad",
        &[
            (
                "implement",
                "fn implement(_host: String, _net: NetworkSpec) -> Result<Attachment, DriverError> {\n        \
                 Ok(Attachment { bridge: String::new(), openvswitch: false, vlan: None })\n    }",
            ),
            (
                "shutdown",
                "fn shutdown(_host: String, _net: NetworkSpec) -> Result<(), DriverError> {\n        \
                 panic!(\"netkit-bad lost its bridge\")\n    }",
            ),
        ],
        &[VERSION, BAD_SCHEMA],
    );
    let (ok, steps, out) = check(&wasm, &["--network"], true);
    assert!(!ok, "{out}");
    assert_eq!(status(&steps, "grants"), "passed", "{out}");
    failed_with(&steps, "manifest version", NO_SEMVER, &out);
    failed_with(&steps, "manifest config-schema", BAD_SCHEMA_MESSAGE, &out);
    failed_with(&steps, "implement", "the attachment names no bridge", &out);
    failed_with(&steps, "shutdown", "netkit-bad panicked in shutdown: netkit-bad lost its bridge", &out);

    // A driver that asks for no netdev prefix has nothing to name a scratch bridge with.
    let wasm = build("network", "netkit-nogrant", &[], &[("vec![Capability::Netdev(\"ws-\".into())]", "vec![]")]);
    let (ok, steps, out) = check(&wasm, &["--network"], true);
    assert!(!ok, "{out}");
    failed_with(&steps, "manifest capabilities", "asks for no netdev capability, which a network driver needs", &out);
    failed_with(&steps, "grants", "asks for no netdev grant covering \"\"; the calls below run without one", &out);
    assert_eq!(
        steps["implement"],
        ("skipped".to_owned(), "no netdev prefix to name a scratch bridge with".to_owned()),
        "{out}"
    );
}
