//! Drivers built for earlier versions of wasmstack:driver load and work beside current
//! ones: a 0.1.0 driver, adapted with the facts 0.1 servers assumed, a 0.2.0 network
//! driver, which serves networks and builds no routers, and a 0.3.0 one, which has no
//! security groups.

use wasmstack::plugins::{HypervisorFeatures, Serves, VmPower};

use crate::simulator::small_vm;
use crate::support::{Sandbox, new_uuid};

#[test]
fn a_0_1_0_hypervisor_driver_runs_vms_beside_current_drivers() {
    let sb = Sandbox::new();
    // The 0.1.0 build of the in-tree kvm driver, next to current builds of a storage and a
    // network driver.
    sb.install("kvm-wit-0.1.wasm", "kvm.wasm");
    sb.install("nfs.wasm", "nfs.wasm");
    sb.install("vlan.wasm", "vlan.wasm");
    let host = sb.host("[plugin.kvm]\nlibvirt = [\"test:///default\"]\n");
    let events = host.scan();
    assert_eq!(host.list().len(), 3, "all three load: {events:?}");

    let version = |name: &str| host.get(name).unwrap_or_else(|| panic!("{name} loaded")).wit_version.clone();
    assert_eq!(version("kvm"), "0.1.0");
    assert_eq!(version("nfs"), "0.4.0");
    assert_eq!(version("vlan"), "0.4.0");

    // What the 0.1.0 driver serves is the adapter's defaults.
    let (driver, simulator) = host.hypervisor_serving("simulator").expect("the Simulator is served");
    assert_eq!(driver.info.name, "kvm");
    assert_eq!(simulator.name, "Simulator");
    assert!(simulator.features.simulated && simulator.features.boot_iso && !simulator.features.hot_plug_disks);
    let (_, kvm_type) = host.hypervisor_serving("KVM").expect("KVM is served");
    let expected = HypervisorFeatures {
        hot_plug_disks: true,
        vnc_console: true,
        boot_iso: true,
        serial_log: true,
        ..HypervisorFeatures::default()
    };
    assert_eq!(kvm_type.features, expected);
    assert!(host.hypervisor_serving("LXC").is_none());
    let mut types: Vec<String> = host.hypervisor_types().into_iter().map(|(_, t)| t.name).collect();
    types.sort();
    assert_eq!(types, ["KVM", "Simulator"]);
    // The current drivers declare their own facts.
    assert_eq!(
        host.network_serving("vlan").map(|(p, m)| (p.info.name.clone(), m)),
        Some(("vlan".into(), "VLAN".into()))
    );
    assert!(
        matches!(&host.get("vlan").unwrap().info.serves, Serves::Network(n) if n.services.contains(&"SourceNat".to_owned()))
    );
    assert_eq!(host.storage_for_scheme("nfs").map(|p| p.info.name.clone()), Some("nfs".into()));

    // connect-host does not exist in 0.1.0: the adapter does what 0.1 servers did.
    let kvm = host.hypervisor("kvm").unwrap();
    let target = kvm.connect_host("Simulator", "http://sim-1").unwrap();
    assert_eq!((target.url.as_str(), target.address.as_str()), ("test:///default", "127.0.0.1"));
    let target = kvm.connect_host("KVM", "http://10.0.0.7").unwrap();
    assert_eq!((target.url.as_str(), target.address.as_str()), ("qemu+ssh://10.0.0.7/system", "10.0.0.7"));

    // And it really drives libvirt: a VM's life on the test driver through the old contract.
    let url = "test:///default";
    let facts = kvm.probe_host(url).unwrap();
    assert!(facts.cpus > 0, "{facts:?}");
    let uuid = new_uuid();
    kvm.create_vm(url, &small_vm(&uuid, "i-2-901-VM")).unwrap();
    kvm.start_vm(url, &uuid).unwrap();
    assert_eq!(kvm.power_state(url, &uuid).unwrap(), VmPower::Running);
    assert!(kvm.list_vms(url).unwrap().iter().any(|v| v.uuid == uuid && v.power == VmPower::Running));
    kvm.stop_vm(url, &uuid, 0).unwrap();
    assert_eq!(kvm.power_state(url, &uuid).unwrap(), VmPower::Stopped);
    kvm.destroy_vm(url, &uuid).unwrap();
    assert_eq!(kvm.power_state(url, &uuid).unwrap(), VmPower::Missing);
}

#[test]
fn a_0_2_0_network_driver_serves_networks_and_builds_no_routers() {
    let sb = Sandbox::new();
    // The 0.2.0 build of the in-tree flat driver, next to the current vlan driver.
    sb.install("flat-wit-0.2.wasm", "flat.wasm");
    sb.install("vlan.wasm", "vlan.wasm");
    let host = sb.host(crate::network::CONFIG);
    let events = host.scan();
    assert_eq!(host.list().len(), 2, "both load: {events:?}");
    let flat = host.get("flat").unwrap();
    assert_eq!(flat.wit_version, "0.2.0");
    assert_eq!(host.get("vlan").unwrap().wit_version, "0.4.0");
    // It declares what it serves itself: Flat, with DHCP and no router services.
    assert!(
        matches!(&flat.info.serves, Serves::Network(n) if n.isolation_methods == ["Flat"] && n.services == ["Dhcp"]),
        "{:?}",
        flat.info.serves
    );

    // It builds a network as it always did: a Linux bridge that guests share.
    let driver = host.network("flat").unwrap();
    let bridge = format!("ws-v{}", &new_uuid()[..6]);
    let _p = crate::network::Plumbing::new(&[], &[&bridge]);
    let net = crate::network::spec(&bridge, None);
    let att = driver.implement("local", &net).expect("implement through the 0.2.0 contract");
    assert_eq!((att.bridge.as_str(), att.openvswitch, att.vlan), (bridge.as_str(), false, None));
    assert!(std::path::Path::new("/sys/class/net").join(&bridge).join("bridge").is_dir());

    // Router calls are answered for it: it has none.
    let router = wasmstack::plugins::RouterSpec {
        guest_gateway: "10.77.0.1/24".into(),
        public_label: bridge.clone(),
        public_ips: vec![],
        egress_default: wasmstack::plugins::EgressPolicy::Allow,
        egress: vec![],
        port_forwards: vec![],
        static_nats: vec![],
        load_balancers: vec![],
    };
    match driver.apply_router("local", &net, &router) {
        Err(wasmstack::plugins::PluginError::Driver {
            error: wasmstack::plugins::DriverError::Unsupported(m), ..
        }) => {
            assert!(m.contains("wasmstack:driver@0.2.0"), "{m}")
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
    driver.destroy_router("local", &net).expect("destroy-router");
    assert_eq!(driver.router_status("local", &net).unwrap(), wasmstack::plugins::RouterState::Missing);
    no_security_groups(&driver, &net, "0.2.0");
    driver.shutdown("local", &net).expect("shutdown");
}

/// Security group calls are answered for a driver built before them: unsupported.
fn no_security_groups(driver: &wasmstack::plugins::NetworkDriver, net: &wasmstack::plugins::NetworkSpec, v: &str) {
    let nic = wasmstack::plugins::NicSpec { id: new_uuid(), mac: "52:54:00:00:00:01".into(), ip: None, hostname: None };
    let nics =
        [wasmstack::plugins::NicSecurity { nic: nic.clone(), device: "ws-x".into(), ingress: vec![], egress: vec![] }];
    for answer in [driver.apply_security("local", net, &nics), driver.remove_security("local", net, &nic, "ws-x")] {
        match answer {
            Err(wasmstack::plugins::PluginError::Driver {
                error: wasmstack::plugins::DriverError::Unsupported(m),
                ..
            }) => assert!(m.contains(&format!("wasmstack:driver@{v}")) && m.contains("no security groups"), "{m}"),
            other => panic!("expected unsupported, got {other:?}"),
        }
    }
}

#[test]
fn a_0_3_0_network_driver_serves_networks_and_has_no_security_groups() {
    let sb = Sandbox::new();
    sb.install("flat-wit-0.3.wasm", "flat.wasm");
    let host = sb.host(crate::network::CONFIG);
    let events = host.scan();
    assert_eq!(host.list().len(), 1, "it loads: {events:?}");
    let flat = host.get("flat").unwrap();
    assert_eq!(flat.wit_version, "0.3.0");
    assert!(
        matches!(&flat.info.serves, Serves::Network(n) if n.isolation_methods == ["Flat"] && n.services == ["Dhcp"]),
        "{:?}",
        flat.info.serves
    );
    let driver = host.network("flat").unwrap();
    let bridge = format!("ws-w{}", &new_uuid()[..6]);
    let _p = crate::network::Plumbing::new(&[], &[&bridge]);
    let net = crate::network::spec(&bridge, None);
    let att = driver.implement("local", &net).expect("implement through the 0.3.0 contract");
    assert_eq!((att.bridge.as_str(), att.openvswitch, att.vlan), (bridge.as_str(), false, None));
    // Its router calls reach it (converted to 0.3.0's types): flat's own answers.
    let router = wasmstack::plugins::RouterSpec {
        guest_gateway: "10.77.0.1/24".into(),
        public_label: bridge.clone(),
        public_ips: vec![],
        egress_default: wasmstack::plugins::EgressPolicy::Deny,
        egress: vec![],
        port_forwards: vec![],
        static_nats: vec![],
        load_balancers: vec![],
    };
    match driver.apply_router("local", &net, &router) {
        Err(wasmstack::plugins::PluginError::Driver {
            error: wasmstack::plugins::DriverError::Unsupported(m), ..
        }) => assert!(m.contains("the flat driver builds no routers"), "{m}"),
        other => panic!("expected flat's own unsupported, got {other:?}"),
    }
    assert_eq!(driver.router_status("local", &net).unwrap(), wasmstack::plugins::RouterState::Missing);
    no_security_groups(&driver, &net, "0.3.0");
    driver.shutdown("local", &net).expect("shutdown");
}
