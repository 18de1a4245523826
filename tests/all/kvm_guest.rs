//! A real guest under QEMU, booted by the KVM driver through the plugin host and a
//! real libvirtd. CI forces TCG: KVM on these machines is offered but cannot run
//! ordinary guests.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    Accel, ConsoleSpec, Disk, DiskBus, DiskDevice, DiskFormat, FileDisk, Locator, VmPower, VmSpec,
};

use crate::support::{Sandbox, new_uuid};

pub(crate) const QEMU: &str = "qemu:///system";
pub(crate) const MARKER: &str = "WASMSTACK-GUEST-UP";

/// The tiny guest built by scripts/guest-image.sh.
pub(crate) fn guest_template() -> PathBuf {
    let dir = std::env::var_os("WASMSTACK_GUEST_DIR")
        .expect("WASMSTACK_GUEST_DIR must name the folder scripts/guest-image.sh built (scripts/test.sh sets it)");
    let template = Path::new(&dir).join("template.qcow2");
    assert!(template.is_file(), "{} is missing; run scripts/guest-image.sh", template.display());
    template
}

pub(crate) fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "gave up waiting for {what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn virsh_knows(uuid: &str) -> bool {
    Command::new("virsh").args(["-c", QEMU, "dominfo", uuid]).output().expect("running virsh").status.success()
}

/// A folder QEMU (an unprivileged user) can enter, holding a copy of the guest template
/// and a qcow2 root disk over it: (folder, root disk, serial log path).
pub fn guest_disk(prefix: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let template = guest_template();
    let work = tempfile::Builder::new().prefix(prefix).tempdir_in("/var/tmp").unwrap();
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
    (work, disk, serial)
}

#[test]
fn a_real_guest_boots_stops_and_leaves_nothing_behind() {
    let (work, disk, serial) = guest_disk("wasmstack-guest-");

    let sb = Sandbox::new();
    sb.install("kvm.wasm", "kvm.wasm");
    let host = sb.host("[plugin.kvm]\nlibvirt = [\"qemu:///system\"]\ntimeout-ms = 60000\n");
    host.scan();
    let kvm = host.hypervisor("kvm").expect("the kvm driver is loaded");
    let facts = kvm.probe_host(QEMU).expect("probing the local libvirtd");
    assert!(facts.hypervisor_version.starts_with("QEMU "), "{facts:?}");

    let uuid = new_uuid();
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: format!("ws-test-{}", &uuid[..8]),
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
        nics: vec![],
        console: ConsoleSpec {
            serial_log: Some(serial.to_string_lossy().into_owned()),
            vnc_listen: Some("127.0.0.1".into()),
        },
    };
    kvm.create_vm(QEMU, &spec).expect("defining the guest");
    assert_eq!(kvm.power_state(QEMU, &uuid).unwrap(), VmPower::Stopped);

    let booted = Instant::now();
    kvm.start_vm(QEMU, &uuid).expect("starting the guest");
    wait_for("the guest's marker on its serial console", Duration::from_secs(90), || {
        std::fs::read_to_string(&serial).is_ok_and(|s| s.contains(MARKER))
    });
    eprintln!("guest marker seen {:?} after start", booted.elapsed());
    assert_eq!(kvm.power_state(QEMU, &uuid).unwrap(), VmPower::Running);
    assert!(kvm.list_vms(QEMU).unwrap().iter().any(|v| v.uuid == uuid && v.power == VmPower::Running));

    // The VNC display listens where it was told to and speaks RFB.
    let console = kvm.console(QEMU, &uuid).expect("the console endpoint");
    assert_eq!((console.protocol.as_str(), console.host.as_str()), ("vnc", "127.0.0.1"));
    let mut vnc = std::net::TcpStream::connect((console.host.as_str(), console.port)).expect("connecting to VNC");
    vnc.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut banner = [0u8; 12];
    vnc.read_exact(&mut banner).unwrap();
    assert!(banner.starts_with(b"RFB 003."), "{banner:?}");
    drop(vnc);

    // A forced reboot resets the guest at once: it boots again and prints its marker twice.
    kvm.reboot_vm(QEMU, &uuid, true).expect("resetting the guest");
    wait_for("the marker after a reset", Duration::from_secs(90), || {
        std::fs::read_to_string(&serial).is_ok_and(|s| s.matches(MARKER).count() >= 2)
    });

    let stats = kvm.stats(QEMU, &uuid).unwrap();
    assert!(stats.cpu_time_ns > 0 && stats.memory_kib >= 256 * 1024, "{stats:?}");

    // The tiny guest has no ACPI daemon, so this stop ends in a forced power-off.
    kvm.stop_vm(QEMU, &uuid, 2000).expect("stopping the guest");
    assert_eq!(kvm.power_state(QEMU, &uuid).unwrap(), VmPower::Stopped);

    kvm.destroy_vm(QEMU, &uuid).expect("destroying the guest");
    assert_eq!(kvm.power_state(QEMU, &uuid).unwrap(), VmPower::Missing);
    assert!(!virsh_knows(&uuid), "libvirt still knows the domain");
    drop(work);
}
