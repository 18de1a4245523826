//! The KVM driver against libvirt's test driver, the "Simulator" hypervisor, at scale.

use std::time::Instant;

use wasmstack::plugins::{
    Accel, ConsoleSpec, Disk, DiskBus, DiskDevice, DiskFormat, FileDisk, Locator, Nic, NicModel, SwitchKind, VmPower,
    VmSpec,
};

use crate::support::{Sandbox, new_uuid};

pub const SIMULATOR: &str = "test:///default";

pub fn small_vm(uuid: &str, name: &str) -> VmSpec {
    VmSpec {
        uuid: uuid.to_owned(),
        name: name.to_owned(),
        vcpus: 1,
        memory_mib: 64,
        accel: Accel::Auto,
        disks: vec![Disk {
            locator: Some(Locator::File(FileDisk {
                path: format!("/var/lib/wasmstack/{name}.qcow2"),
                format: DiskFormat::Qcow2,
            })),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        }],
        nics: vec![Nic {
            mac: format!("52:54:00:{}:{}:{}", &uuid[0..2], &uuid[2..4], &uuid[4..6]),
            bridge: "ws-br0".into(),
            switch: SwitchKind::LinuxBridge,
            vlan: None,
            model: NicModel::Virtio,
            host_device: None,
        }],
        console: ConsoleSpec { serial_log: None, vnc_listen: None },
    }
}

#[test]
fn a_thousand_vms_defined_and_started_on_the_simulator() {
    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    let host = sb.host("[plugin.kvm]\nlibvirt = [\"test:///default\"]\n");
    host.scan();
    let kvm = host.hypervisor("kvm").expect("the kvm driver is loaded");
    let facts = kvm.probe_host(SIMULATOR).unwrap();
    assert!(facts.cpus > 0 && facts.memory_bytes > 0, "{facts:?}");

    let uuids: Vec<String> = (0..1000).map(|_| new_uuid()).collect();
    let started = Instant::now();
    for (i, uuid) in uuids.iter().enumerate() {
        let spec = small_vm(uuid, &format!("i-2-{i}-VM"));
        kvm.create_vm(SIMULATOR, &spec).unwrap_or_else(|e| panic!("create {i}: {e}"));
        kvm.start_vm(SIMULATOR, uuid).unwrap_or_else(|e| panic!("start {i}: {e}"));
    }
    let took = started.elapsed();
    eprintln!("1000 VMs defined and started through the driver in {took:?}");

    let listed = kvm.list_vms(SIMULATOR).unwrap();
    for uuid in &uuids {
        let vm = listed.iter().find(|v| &v.uuid == uuid).unwrap_or_else(|| panic!("{uuid} is not listed"));
        assert_eq!(vm.power, VmPower::Running);
    }
    assert_eq!(kvm.power_state(SIMULATOR, &uuids[500]).unwrap(), VmPower::Running);

    // Stop one, destroy all: the simulator is left as it was.
    kvm.stop_vm(SIMULATOR, &uuids[0], 0).unwrap();
    assert_eq!(kvm.power_state(SIMULATOR, &uuids[0]).unwrap(), VmPower::Stopped);
    for uuid in &uuids {
        kvm.destroy_vm(SIMULATOR, uuid).unwrap();
    }
    let left = kvm.list_vms(SIMULATOR).unwrap();
    assert!(left.iter().all(|v| !uuids.contains(&v.uuid)), "VMs left behind");
    assert_eq!(kvm.power_state(SIMULATOR, &uuids[1]).unwrap(), VmPower::Missing);
    kvm.destroy_vm(SIMULATOR, &uuids[1]).expect("destroying a missing VM succeeds");
}

#[test]
fn bad_specs_get_clear_errors() {
    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    let host = sb.host("[plugin.kvm]\nlibvirt = [\"test:///default\"]\n");
    host.scan();
    let kvm = host.hypervisor("kvm").unwrap();
    let mut spec = small_vm(&new_uuid(), "bad-vlan");
    spec.nics[0].vlan = Some(100);
    let err = kvm.create_vm(SIMULATOR, &spec).unwrap_err().to_string();
    assert!(err.contains("Open vSwitch"), "{err}");

    let mut spec = small_vm(&new_uuid(), "bad-cpus");
    spec.vcpus = 0;
    let err = kvm.create_vm(SIMULATOR, &spec).unwrap_err().to_string();
    assert!(err.starts_with("kvm: invalid request"), "{err}");

    let err = kvm.start_vm(SIMULATOR, &new_uuid()).unwrap_err().to_string();
    assert!(err.starts_with("kvm: not found"), "{err}");

    // Not granted: qemu:///system.
    let err = kvm.probe_host("qemu:///system").unwrap_err().to_string();
    assert!(err.contains("not granted to plugin \"kvm\""), "{err}");
}
