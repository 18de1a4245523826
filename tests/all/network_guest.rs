//! A real guest on a VLAN network: the KVM driver boots the tiny guest with its NIC on the
//! vlan driver's Open vSwitch bridge, tagged with the network's VLAN, after the vlan
//! driver implemented the network with DHCP and prepared the NIC. The guest's init runs
//! udhcpc and prints what it got on the serial console.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    Accel, Attachment, ConsoleSpec, Disk, DiskBus, DiskDevice, DiskFormat, FileDisk, Locator, NetworkSpec, Nic,
    NicModel, SwitchKind, VmSpec,
};

use crate::kvm_guest::{QEMU, guest_template, wait_for};
use crate::network::{Implemented, Plumbing, dhcp_spec, nic_at, ping_once, pings};
use crate::support::{Sandbox, new_uuid};

/// The address the server gives a NIC in `net`. A stand-in until the test takes it
/// from the core's allocator: the first host address past the gateway and the DHCP
/// service's.
pub fn local_assigned_ip(net: &NetworkSpec) -> String {
    let (base, prefix) = net.cidr.split_once('/').expect("a CIDR");
    let (base, prefix): (Ipv4Addr, u32) = (base.parse().unwrap(), prefix.parse().unwrap());
    let taken: Vec<String> = net
        .gateway
        .iter()
        .cloned()
        .chain(net.dhcp_server.iter().map(|s| s.split('/').next().unwrap().to_owned()))
        .collect();
    (1..(1u32 << (32 - prefix)) - 1)
        .map(|i| Ipv4Addr::from(u32::from(base) + i).to_string())
        .find(|ip| !taken.contains(ip))
        .expect("a free address")
}

/// Removes the domain however the test ends.
struct Domain(String);

impl Drop for Domain {
    fn drop(&mut self) {
        for cmd in ["destroy", "undefine"] {
            let _ = Command::new("virsh").args(["-c", QEMU, cmd, &self.0]).output();
        }
    }
}

#[test]
fn a_real_guest_gets_its_assigned_ip_by_dhcp_and_only_its_vlan_reaches_it() {
    guest_on_a_vlan_network(local_assigned_ip);
}

/// The guest's NIC gets `assigned_ip(net)` from the vlan driver's DHCP; an endpoint in
/// the same VLAN reaches it, one in another VLAN on the same bridge does not.
pub fn guest_on_a_vlan_network(assigned_ip: fn(&NetworkSpec) -> String) {
    let template = guest_template();
    let r = &new_uuid()[..6];
    let bridge = format!("ws-v{r}");
    // QEMU runs as an unprivileged user: the disks live in a folder it can enter.
    let work = tempfile::Builder::new().prefix("wasmstack-netguest-").tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = work.path().join("template.qcow2");
    std::fs::copy(&template, &base).unwrap();
    let disk = work.path().join("root.qcow2");
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&disk)
        .status()
        .unwrap();
    assert!(made.success(), "qemu-img create failed");
    let serial = work.path().join("serial.log");

    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    sb.install("vlan.wasm", "vlan.wasm");
    let host = sb.host(&format!(
        "{}\n[plugin.kvm]\nlibvirt = [\"qemu:///system\"]\ntimeout-ms = 60000\n",
        crate::network::CONFIG
    ));
    for ev in host.scan() {
        assert!(ev.loaded, "{}", ev.message);
    }
    let (kvm, vlan) = (host.hypervisor("kvm").expect("kvm"), host.network("vlan").expect("vlan"));

    let mut p = Plumbing::new(&[&bridge], &[]);
    let net = dhcp_spec(&bridge, Some(300), "10.81.0");
    let implemented = Implemented { driver: vlan.clone(), net: net.clone() };
    vlan.implement("local", &net).expect("implementing the network");
    let ip = assigned_ip(&net);
    let nic = nic_at("52:54:00:5e:01:0a", &ip, Some("guest"));
    let att = vlan.prepare_nic("local", &net, &nic).expect("prepare-nic");
    assert_eq!((att.openvswitch, att.vlan), (true, Some(300)));

    let uuid = new_uuid();
    let domain = Domain(uuid.clone());
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: format!("ws-net-{}", &uuid[..8]),
        vcpus: 1,
        memory_mib: 256,
        accel: Accel::Tcg,
        disks: vec![Disk {
            locator: Some(Locator::File(FileDisk {
                path: disk.to_string_lossy().into_owned(),
                format: DiskFormat::Qcow2,
            })),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        }],
        nics: vec![Nic {
            mac: nic.mac.clone(),
            bridge: att.bridge.clone(),
            switch: SwitchKind::Openvswitch,
            vlan: att.vlan,
            model: NicModel::Virtio,
            host_device: Some(format!("ws-v{r}t")),
        }],
        console: ConsoleSpec { serial_log: Some(serial.to_string_lossy().into_owned()), vnc_listen: None },
    };
    kvm.create_vm(QEMU, &spec).expect("defining the guest");
    let started = Instant::now();
    kvm.start_vm(QEMU, &uuid).expect("starting the guest");

    // Endpoints in the guest's VLAN and in another one, set up while it boots.
    let same = p.guest(&format!("ws-v{r}-s"), &format!("ws-v{r}s"), "10.81.0.200/24");
    p.plug(&att, &same);
    let other = p.guest(&format!("ws-v{r}-o"), &format!("ws-v{r}o"), "10.81.0.201/24");
    p.plug(&Attachment { vlan: Some(301), ..att.clone() }, &other);

    let ip_line = || {
        let log = std::fs::read_to_string(&serial).unwrap_or_default();
        log.lines().find_map(|l| l.trim().strip_prefix("WASMSTACK-GUEST-IP ").map(str::to_owned))
    };
    wait_for("the guest's IP line on its serial console", Duration::from_secs(120), || ip_line().is_some());
    eprintln!("guest IP line seen {:?} after start", started.elapsed());
    assert_eq!(ip_line().unwrap(), format!("{ip}/24"), "the guest did not get its assigned address");

    assert!(pings(&format!("ws-v{r}-s"), &ip), "the guest does not answer in its own VLAN");
    assert!(!ping_once(&format!("ws-v{r}-o"), &ip), "the guest answered another VLAN");

    kvm.destroy_vm(QEMU, &uuid).expect("destroying the guest");
    vlan.release_nic("local", &net, &nic).expect("release-nic");
    drop((domain, implemented));
}
