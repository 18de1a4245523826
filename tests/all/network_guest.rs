//! A real guest on a VLAN network: the KVM driver boots the tiny guest with its NIC on the
//! vlan driver's Open vSwitch bridge, tagged with the network's VLAN, after the vlan
//! driver implemented the network with DHCP and prepared the NIC. The guest's init runs
//! udhcpc and prints what it got on the serial console.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    Accel, Attachment, ConsoleSpec, Disk, DiskBus, DiskDevice, DiskFormat, FileDisk, Locator, NetworkSpec, Nic,
    NicModel, NicSpec, SwitchKind, VmSpec,
};

use crate::kvm_guest::{QEMU, guest_disk, wait_for};
use wasmstack::cloud::networks::{self as nets, NewNic};
use wasmstack::orchestrate::networks::spec_with_dhcp;

use crate::addresses::{fresh_db, isolated_network, zone_with_vlans};
use crate::network::{Implemented, Plumbing, ping_once, pings};
use crate::support::{Sandbox, new_uuid};

/// A VLAN network and a NIC in it as the core decides them: its database hands out the
/// VLAN (from the physical network's range), the DHCP service's address, and the NIC's
/// IP and MAC.
async fn core_network_and_nic(dir: &std::path::Path, bridge: &str) -> anyhow::Result<(NetworkSpec, NicSpec)> {
    let (db, _) = fresh_db("sqlite", dir).await?;
    let zone = zone_with_vlans(&db, bridge, "300-309").await?;
    let n = isolated_network(&db, zone, "guests", Ipv4Addr::new(10, 81, 0, 0), 24).await?;
    let net = spec_with_dhcp(&db, &n).await.map_err(|e| anyhow::anyhow!("{}", e.text))?;
    let nic = nets::allocate_nic(&db, &n, NewNic { is_default: true, ..Default::default() }).await?;
    let ip = nic.ip().map(|i| i.to_string());
    Ok((net, NicSpec { id: nic.uuid, mac: nic.mac, ip, hostname: Some("guest".into()) }))
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

/// The guest's NIC gets the address the core assigned from the vlan driver's DHCP; an
/// endpoint in the same VLAN reaches it, one in another VLAN on the same bridge does not.
#[test]
fn a_real_guest_gets_the_core_assigned_ip_by_dhcp_and_only_its_vlan_reaches_it() {
    let r = &new_uuid()[..6];
    let bridge = format!("ws-v{r}");
    let db_dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (net, nic) = runtime.block_on(core_network_and_nic(db_dir.path(), &bridge)).expect("the core's network");
    let vlan_id = net.vlan.expect("a VLAN from the range");
    let ip = nic.ip.clone().expect("an address from the core");
    let (_work, disk, serial) = guest_disk("wasmstack-netguest-");

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
    let implemented = Implemented { driver: vlan.clone(), net: net.clone() };
    vlan.implement("local", &net).expect("implementing the network");
    let att = vlan.prepare_nic("local", &net, &nic).expect("prepare-nic");
    assert_eq!((att.openvswitch, att.vlan), (true, Some(vlan_id)));

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
    p.plug(&Attachment { vlan: Some(vlan_id + 1), ..att.clone() }, &other);

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
