//! Builds libvirt domain and disk XML from a VM spec. Pure functions: no host calls, so the
//! whole module is unit-tested on the build machine.

use crate::exports::wasmstack::driver::hypervisor::{Disk, DiskBus, DiskDevice, Nic, NicModel, SwitchKind, VmSpec};
use crate::wasmstack::driver::types::{DiskFormat, DriverError, Locator, NetworkDisk};

/// Smallest memory QEMU boots anything useful in.
const MIN_MEMORY_MIB: u64 = 16;

/// Escapes text for use in element content and in attributes with either quote style.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn invalid(message: impl Into<String>) -> DriverError {
    DriverError::InvalidSpec(message.into())
}

/// Checks a whole VM spec before anything reaches libvirt, so mistakes come back as
/// `invalid-spec` with a short reason rather than as a libvirt parse error.
pub fn validate_spec(spec: &VmSpec) -> Result<(), DriverError> {
    if spec.name.trim().is_empty() {
        return Err(invalid("VM name is empty"));
    }
    if spec.name.contains('/') {
        return Err(invalid(format!("VM name {:?} contains '/'", spec.name)));
    }
    validate_uuid(&spec.uuid)?;
    if spec.vcpus < 1 {
        return Err(invalid("a VM needs at least 1 vCPU"));
    }
    if spec.memory_mib < MIN_MEMORY_MIB {
        return Err(invalid(format!("memory {} MiB is below the minimum of {MIN_MEMORY_MIB} MiB", spec.memory_mib)));
    }
    let mut targets: Vec<&str> = Vec::new();
    let mut boot_orders: Vec<u32> = Vec::new();
    for disk in &spec.disks {
        validate_disk(disk)?;
        if targets.contains(&disk.target.as_str()) {
            return Err(invalid(format!("disk target {} is used twice", disk.target)));
        }
        targets.push(&disk.target);
        if let Some(order) = disk.boot_order {
            if boot_orders.contains(&order) {
                return Err(invalid(format!("boot order {order} is used twice")));
            }
            boot_orders.push(order);
        }
    }
    let mut macs: Vec<String> = Vec::new();
    for nic in &spec.nics {
        validate_nic(nic)?;
        let mac = nic.mac.to_ascii_lowercase();
        if macs.contains(&mac) {
            return Err(invalid(format!("MAC address {} is used twice", nic.mac)));
        }
        macs.push(mac);
    }
    if let Some(listen) = &spec.console.vnc_listen
        && listen.trim().is_empty()
    {
        return Err(invalid("VNC listen address is empty"));
    }
    if let Some(path) = &spec.console.serial_log
        && !path.starts_with('/')
    {
        return Err(invalid(format!("serial log path {path:?} is not absolute")));
    }
    Ok(())
}

/// libvirt accepts 32 hex digits with dashes anywhere; the server sends the canonical form.
fn validate_uuid(uuid: &str) -> Result<(), DriverError> {
    if uuid.is_empty() {
        return Err(invalid("VM UUID is empty"));
    }
    let digits = uuid.chars().filter(|c| *c != '-').count();
    if digits != 32 || !uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
        return Err(invalid(format!("{uuid:?} is not a UUID")));
    }
    Ok(())
}

/// Checks one disk; also used on its own by attach-disk.
pub fn validate_disk(disk: &Disk) -> Result<(), DriverError> {
    let target = &disk.target;
    if target.is_empty() || !target.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(invalid(format!("disk target {target:?} must be a device name such as vda or hdc")));
    }
    if disk.device == DiskDevice::Cdrom && disk.bus == DiskBus::Virtio {
        // virtio-blk has no removable media; QEMU refuses it at start.
        return Err(invalid(format!("CD-ROM {target} cannot be on the virtio bus; use ide, sata or scsi")));
    }
    if disk.boot_order == Some(0) {
        return Err(invalid(format!("disk {target}: boot order starts at 1")));
    }
    match &disk.locator {
        None if disk.device == DiskDevice::Disk => {
            Err(invalid(format!("disk {target} has no source; only a CD-ROM may be empty")))
        }
        None => Ok(()),
        Some(Locator::File(file)) if !file.path.starts_with('/') => {
            Err(invalid(format!("disk {target}: path {:?} is not absolute", file.path)))
        }
        Some(Locator::Block(dev)) if !dev.starts_with('/') => {
            Err(invalid(format!("disk {target}: block device {dev:?} is not absolute")))
        }
        Some(Locator::Network(net)) => validate_network_disk(target, net),
        Some(_) => Ok(()),
    }
}

fn validate_network_disk(target: &str, net: &NetworkDisk) -> Result<(), DriverError> {
    if net.protocol.is_empty() || !net.protocol.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(invalid(format!("disk {target}: protocol {:?} is not a protocol name such as nfs", net.protocol)));
    }
    if net.host.is_empty() {
        return Err(invalid(format!("disk {target}: server name is empty")));
    }
    if net.path.is_empty() {
        return Err(invalid(format!("disk {target}: image path is empty")));
    }
    if let Some(empty) = net.backing.iter().position(|b| b.path.is_empty()) {
        return Err(invalid(format!("disk {target}: backing image {} has an empty path", empty + 1)));
    }
    Ok(())
}

fn validate_nic(nic: &Nic) -> Result<(), DriverError> {
    validate_mac(&nic.mac)?;
    if nic.bridge.is_empty() {
        return Err(invalid(format!("NIC {}: bridge name is empty", nic.mac)));
    }
    if let Some(tag) = nic.vlan {
        if nic.switch == SwitchKind::LinuxBridge {
            return Err(invalid(format!(
                "NIC {}: VLAN tags need an Open vSwitch bridge; {} is a Linux bridge",
                nic.mac, nic.bridge
            )));
        }
        if !(1..=4094).contains(&tag) {
            return Err(invalid(format!("NIC {}: VLAN {tag} is outside 1-4094", nic.mac)));
        }
    }
    if let Some(dev) = &nic.host_device {
        if dev.is_empty() || dev.len() > 15 || dev.contains('/') {
            return Err(invalid(format!("NIC {}: host device name {dev:?} is not a valid interface name", nic.mac)));
        }
        // libvirt renames anything starting with "vnet" to its own vnetN.
        if dev.starts_with("vnet") {
            return Err(invalid(format!(
                "NIC {}: host device names starting with \"vnet\" are reserved by libvirt",
                nic.mac
            )));
        }
    }
    Ok(())
}

/// Six two-digit hex octets separated by colons, unicast (QEMU refuses multicast MACs).
fn validate_mac(mac: &str) -> Result<(), DriverError> {
    let octets: Vec<&str> = mac.split(':').collect();
    let well_formed =
        octets.len() == 6 && octets.iter().all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !well_formed {
        return Err(invalid(format!("MAC address {mac:?} is not of the form 52:54:00:12:34:56")));
    }
    let first = u8::from_str_radix(octets[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(invalid(format!("MAC address {mac} is a multicast address")));
    }
    Ok(())
}

/// The domain XML for a spec that passed `validate_spec`. `domain_type` is libvirt's
/// domain type: "kvm" or "qemu".
pub fn domain_xml(spec: &VmSpec, domain_type: &str) -> String {
    let mut x = String::new();
    x.push_str(&format!("<domain type='{}'>\n", escape(domain_type)));
    x.push_str(&format!("  <name>{}</name>\n", escape(&spec.name)));
    // Lowercase: the canonical form the host names domains by.
    x.push_str(&format!("  <uuid>{}</uuid>\n", escape(&spec.uuid.to_ascii_lowercase())));
    x.push_str(&format!("  <memory unit='MiB'>{}</memory>\n", spec.memory_mib));
    x.push_str(&format!("  <vcpu>{}</vcpu>\n", spec.vcpus));
    x.push_str(&sysinfo_xml(&spec.uuid));
    // The guest's SMBIOS comes from <sysinfo> rather than QEMU's defaults.
    x.push_str("  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    <smbios mode='sysinfo'/>\n  </os>\n");
    // ACPI lets the guest see the power button, which graceful shutdown relies on. No
    // <cpu> element: host-passthrough and `max` abort QEMU on nested-virtualised hosts.
    x.push_str("  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
    x.push_str("  <on_poweroff>destroy</on_poweroff>\n");
    x.push_str("  <on_reboot>restart</on_reboot>\n");
    x.push_str("  <on_crash>destroy</on_crash>\n");
    x.push_str("  <devices>\n");
    if spec.disks.iter().any(|d| d.bus == DiskBus::Scsi) {
        x.push_str("    <controller type='scsi' index='0' model='virtio-scsi'/>\n");
    }
    for disk in &spec.disks {
        x.push_str(&indent(&disk_xml(disk), 4));
    }
    for nic in &spec.nics {
        x.push_str(&indent(&nic_xml(nic), 4));
    }
    x.push_str(&indent(&serial_xml(spec.console.serial_log.as_deref()), 4));
    if let Some(listen) = &spec.console.vnc_listen {
        let addr = escape(listen);
        x.push_str(&format!(
            "    <graphics type='vnc' port='-1' autoport='yes' listen='{addr}'>\n      \
             <listen type='address' address='{addr}'/>\n    </graphics>\n"
        ));
        x.push_str("    <video>\n      <model type='vga'/>\n    </video>\n");
    }
    // No balloon: the server sizes memory itself and the device only costs guest RAM.
    x.push_str("    <memballoon model='none'/>\n");
    x.push_str("  </devices>\n</domain>\n");
    x
}

/// The SMBIOS system a guest sees, as CloudStack's KVM agent sets it: cloud-init's
/// CloudStack datasource is chosen only when the product name starts with "CloudStack"
/// (without it, and without a config drive, cloud-init disables itself).
fn sysinfo_xml(uuid: &str) -> String {
    format!(
        "  <sysinfo type='smbios'>\n    <system>\n      \
         <entry name='manufacturer'>Apache Software Foundation</entry>\n      \
         <entry name='product'>CloudStack KVM Hypervisor</entry>\n      \
         <entry name='uuid'>{}</entry>\n    </system>\n  </sysinfo>\n",
        escape(&uuid.to_ascii_lowercase())
    )
}

fn indent(block: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    block.lines().map(|line| format!("{pad}{line}\n")).collect()
}

fn format_name(format: DiskFormat) -> &'static str {
    match format {
        DiskFormat::Qcow2 => "qcow2",
        // An ISO is read by QEMU byte for byte.
        DiskFormat::Raw | DiskFormat::Iso => "raw",
    }
}

fn bus_name(bus: DiskBus) -> &'static str {
    match bus {
        DiskBus::Virtio => "virtio",
        DiskBus::Sata => "sata",
        DiskBus::Ide => "ide",
        DiskBus::Scsi => "scsi",
    }
}

/// The `<disk>` element for one disk, for a domain definition or for attach-device.
pub fn disk_xml(disk: &Disk) -> String {
    let device = match disk.device {
        DiskDevice::Disk => "disk",
        DiskDevice::Cdrom => "cdrom",
    };
    let mut x = String::new();
    match &disk.locator {
        Some(Locator::File(file)) => {
            x.push_str(&format!("<disk type='file' device='{device}'>\n"));
            x.push_str(&format!("  <driver name='qemu' type='{}'/>\n", format_name(file.format)));
            x.push_str(&format!("  <source file='{}'/>\n", escape(&file.path)));
        }
        Some(Locator::Network(net)) => {
            x.push_str(&format!("<disk type='network' device='{device}'>\n"));
            x.push_str(&format!("  <driver name='qemu' type='{}'/>\n", format_name(net.format)));
            x.push_str(&indent(&network_source(net, &net.path), 2));
            x.push_str(&indent(&backing_chain(net), 2));
        }
        Some(Locator::Block(dev)) => {
            x.push_str(&format!("<disk type='block' device='{device}'>\n"));
            x.push_str("  <driver name='qemu' type='raw'/>\n");
            x.push_str(&format!("  <source dev='{}'/>\n", escape(dev)));
        }
        None => {
            // An empty drive: a file disk without a source is how libvirt spells "no medium".
            x.push_str(&format!("<disk type='file' device='{device}'>\n"));
            x.push_str("  <driver name='qemu' type='raw'/>\n");
        }
    }
    x.push_str(&format!("  <target dev='{}' bus='{}'/>\n", escape(&disk.target), bus_name(disk.bus)));
    if disk.read_only || disk.device == DiskDevice::Cdrom {
        x.push_str("  <readonly/>\n");
    }
    if let Some(order) = disk.boot_order {
        x.push_str(&format!("  <boot order='{order}'/>\n"));
    }
    x.push_str("</disk>\n");
    x
}

/// A `<source>` for an image on the network disk's server.
fn network_source(net: &NetworkDisk, path: &str) -> String {
    let mut x = format!("<source protocol='{}' name='{}'>\n", escape(&net.protocol), escape(path));
    match net.port {
        Some(port) => x.push_str(&format!("  <host name='{}' port='{port}'/>\n", escape(&net.host))),
        None => x.push_str(&format!("  <host name='{}'/>\n", escape(&net.host))),
    }
    // Without an identity QEMU opens NFS images as its own uid and the server says
    // "ACCESS denied". <identity> exists only for NFS in libvirt's schema.
    if net.protocol == "nfs" {
        x.push_str("  <identity user='root' group='root'/>\n");
    }
    x.push_str("</source>\n");
    x
}

/// The explicit `<backingStore>` chain. libvirt cannot probe the chain of a network disk
/// itself, and what QEMU finds on its own it opens without the identity above; an empty
/// `<backingStore/>` ends the chain so nothing further is guessed.
fn backing_chain(net: &NetworkDisk) -> String {
    let mut x = String::new();
    for (depth, image) in net.backing.iter().enumerate() {
        let pad = "  ".repeat(depth);
        x.push_str(&format!("{pad}<backingStore type='network'>\n"));
        x.push_str(&format!("{pad}  <format type='{}'/>\n", format_name(image.format)));
        x.push_str(&indent(&network_source(net, &image.path), 2 * depth + 2));
    }
    x.push_str(&format!("{}<backingStore/>\n", "  ".repeat(net.backing.len())));
    for depth in (0..net.backing.len()).rev() {
        x.push_str(&format!("{}</backingStore>\n", "  ".repeat(depth)));
    }
    x
}

fn nic_xml(nic: &Nic) -> String {
    let model = match nic.model {
        NicModel::Virtio => "virtio",
        NicModel::E1000 => "e1000",
        NicModel::Rtl8139 => "rtl8139",
    };
    let mut x = String::from("<interface type='bridge'>\n");
    x.push_str(&format!("  <mac address='{}'/>\n", escape(&nic.mac.to_ascii_lowercase())));
    x.push_str(&format!("  <source bridge='{}'/>\n", escape(&nic.bridge)));
    if nic.switch == SwitchKind::Openvswitch {
        x.push_str("  <virtualport type='openvswitch'/>\n");
        if let Some(tag) = nic.vlan {
            x.push_str(&format!("  <vlan>\n    <tag id='{tag}'/>\n  </vlan>\n"));
        }
    }
    if let Some(dev) = &nic.host_device {
        x.push_str(&format!("  <target dev='{}'/>\n", escape(dev)));
    }
    x.push_str(&format!("  <model type='{model}'/>\n"));
    if nic.switch == SwitchKind::Openvswitch && nic.model == NicModel::Virtio {
        // The guest fills in its own checksums: Open vSwitch's userspace datapath reads
        // the tap through a packet socket, which drops the note that a checksum is still
        // to be filled in, and routed TCP would reach its peer with a wrong one.
        x.push_str("  <driver>\n    <host csum='off'/>\n  </driver>\n");
    }
    x.push_str("</interface>\n");
    x
}

fn serial_xml(log: Option<&str>) -> String {
    match log {
        Some(path) => {
            let path = escape(path);
            format!(
                "<serial type='file'>\n  <source path='{path}'/>\n  <target port='0'/>\n</serial>\n\
                 <console type='file'>\n  <source path='{path}'/>\n  \
                 <target type='serial' port='0'/>\n</console>\n"
            )
        }
        None => "<serial type='pty'>\n  <target port='0'/>\n</serial>\n\
                 <console type='pty'>\n  <target type='serial' port='0'/>\n</console>\n"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::wasmstack::driver::hypervisor::{Accel, ConsoleSpec};
    use crate::wasmstack::driver::types::{BackingImage, FileDisk};

    fn spec() -> VmSpec {
        VmSpec {
            uuid: "3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c".into(),
            name: "i-2-3-VM".into(),
            vcpus: 2,
            memory_mib: 256,
            accel: Accel::Tcg,
            disks: vec![file_disk("vda", "/var/lib/ws/root.qcow2", DiskFormat::Qcow2)],
            nics: vec![],
            console: ConsoleSpec { serial_log: None, vnc_listen: None },
        }
    }

    fn file_disk(target: &str, path: &str, format: DiskFormat) -> Disk {
        Disk {
            locator: Some(Locator::File(FileDisk { path: path.into(), format })),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: target.into(),
            read_only: false,
            boot_order: Some(1),
        }
    }

    fn nic(switch: SwitchKind, vlan: Option<u16>) -> Nic {
        Nic {
            mac: "52:54:00:12:34:56".into(),
            bridge: "br-guest".into(),
            switch,
            vlan,
            model: NicModel::Virtio,
            host_device: None,
        }
    }

    fn invalid_message(result: Result<(), DriverError>) -> String {
        match result {
            Err(DriverError::InvalidSpec(m)) => m,
            other => panic!("expected invalid-spec, got {other:?}"),
        }
    }

    #[test]
    fn domain_skeleton() {
        let xml = domain_xml(&spec(), "qemu");
        assert!(xml.starts_with("<domain type='qemu'>\n"));
        for part in [
            "<name>i-2-3-VM</name>",
            "<uuid>3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c</uuid>",
            "<memory unit='MiB'>256</memory>",
            "<vcpu>2</vcpu>",
            "<type arch='x86_64' machine='pc'>hvm</type>",
            "<acpi/>",
            "<apic/>",
            "<on_poweroff>destroy</on_poweroff>",
            "<on_reboot>restart</on_reboot>",
            "<on_crash>destroy</on_crash>",
            "<memballoon model='none'/>",
        ] {
            assert!(xml.contains(part), "missing {part} in\n{xml}");
        }
        assert!(!xml.contains("<cpu"));
        assert!(!xml.contains("<controller"));
        // The SMBIOS system cloud-init's CloudStack datasource looks for.
        let sysinfo = "  <sysinfo type='smbios'>\n    <system>\n      \
                       <entry name='manufacturer'>Apache Software Foundation</entry>\n      \
                       <entry name='product'>CloudStack KVM Hypervisor</entry>\n      \
                       <entry name='uuid'>3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c</entry>\n    \
                       </system>\n  </sysinfo>\n";
        assert!(xml.contains(sysinfo), "no sysinfo in\n{xml}");
        let os = xml.split("<os>").nth(1).and_then(|rest| rest.split("</os>").next()).expect("an <os> element");
        assert!(os.contains("<smbios mode='sysinfo'/>"), "<os> does not take the sysinfo:\n{xml}");
        assert!(xml.find("<sysinfo").unwrap() < xml.find("<os>").unwrap());
        assert!(!xml.contains("<graphics"));
        assert!(xml.ends_with("</domain>\n"));
    }

    #[test]
    fn file_disk_element() {
        let mut disk = file_disk("vdb", "/data/extra.img", DiskFormat::Raw);
        disk.read_only = true;
        disk.boot_order = Some(2);
        assert_eq!(
            disk_xml(&disk),
            "<disk type='file' device='disk'>\n\
             \x20 <driver name='qemu' type='raw'/>\n\
             \x20 <source file='/data/extra.img'/>\n\
             \x20 <target dev='vdb' bus='virtio'/>\n\
             \x20 <readonly/>\n\
             \x20 <boot order='2'/>\n\
             </disk>\n"
        );
    }

    #[test]
    fn iso_cdrom_is_raw_and_read_only() {
        let mut disk = file_disk("hdc", "/isos/tiny.iso", DiskFormat::Iso);
        disk.device = DiskDevice::Cdrom;
        disk.bus = DiskBus::Ide;
        disk.boot_order = None;
        let xml = disk_xml(&disk);
        assert!(xml.starts_with("<disk type='file' device='cdrom'>"));
        assert!(xml.contains("<driver name='qemu' type='raw'/>"));
        assert!(xml.contains("<target dev='hdc' bus='ide'/>"));
        assert!(xml.contains("<readonly/>"));
        assert!(!xml.contains("<boot"));
    }

    #[test]
    fn empty_cdrom_has_no_source() {
        let disk = Disk {
            locator: None,
            device: DiskDevice::Cdrom,
            bus: DiskBus::Sata,
            target: "sdc".into(),
            read_only: true,
            boot_order: None,
        };
        validate_disk(&disk).unwrap();
        let xml = disk_xml(&disk);
        assert!(xml.starts_with("<disk type='file' device='cdrom'>"));
        assert!(!xml.contains("<source"));
        assert!(xml.contains("<target dev='sdc' bus='sata'/>"));
    }

    #[test]
    fn empty_hard_disk_refused() {
        let mut disk = file_disk("vda", "/x", DiskFormat::Raw);
        disk.locator = None;
        assert!(invalid_message(validate_disk(&disk)).contains("only a CD-ROM may be empty"));
    }

    #[test]
    fn nfs_disk_with_backing_chain() {
        let disk = Disk {
            locator: Some(Locator::Network(NetworkDisk {
                protocol: "nfs".into(),
                host: "10.0.0.5".into(),
                port: Some(2049),
                path: "/export/primary/v1.qcow2".into(),
                format: DiskFormat::Qcow2,
                backing: vec![
                    BackingImage { path: "/export/primary/snap.qcow2".into(), format: DiskFormat::Qcow2 },
                    BackingImage { path: "/export/primary/t1.raw".into(), format: DiskFormat::Raw },
                ],
            })),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        };
        validate_disk(&disk).unwrap();
        let expected = "\
<disk type='network' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source protocol='nfs' name='/export/primary/v1.qcow2'>
    <host name='10.0.0.5' port='2049'/>
    <identity user='root' group='root'/>
  </source>
  <backingStore type='network'>
    <format type='qcow2'/>
    <source protocol='nfs' name='/export/primary/snap.qcow2'>
      <host name='10.0.0.5' port='2049'/>
      <identity user='root' group='root'/>
    </source>
    <backingStore type='network'>
      <format type='raw'/>
      <source protocol='nfs' name='/export/primary/t1.raw'>
        <host name='10.0.0.5' port='2049'/>
        <identity user='root' group='root'/>
      </source>
      <backingStore/>
    </backingStore>
  </backingStore>
  <target dev='vda' bus='virtio'/>
  <boot order='1'/>
</disk>
";
        assert_eq!(disk_xml(&disk), expected);
    }

    #[test]
    fn network_disk_without_backing_ends_chain() {
        let disk = Disk {
            locator: Some(Locator::Network(NetworkDisk {
                protocol: "nfs".into(),
                host: "nfs.example".into(),
                port: None,
                path: "/export/data.raw".into(),
                format: DiskFormat::Raw,
                backing: vec![],
            })),
            device: DiskDevice::Disk,
            bus: DiskBus::Scsi,
            target: "sda".into(),
            read_only: false,
            boot_order: None,
        };
        let xml = disk_xml(&disk);
        assert!(xml.contains("<host name='nfs.example'/>"));
        assert!(xml.contains("</source>\n  <backingStore/>\n  <target dev='sda' bus='scsi'/>"));
    }

    #[test]
    fn scsi_disk_gets_virtio_scsi_controller() {
        let mut s = spec();
        s.disks[0].bus = DiskBus::Scsi;
        s.disks[0].target = "sda".into();
        let xml = domain_xml(&s, "qemu");
        assert!(xml.contains("<controller type='scsi' index='0' model='virtio-scsi'/>"));
    }

    #[test]
    fn block_disk_element() {
        let disk = Disk {
            locator: Some(Locator::Block("/dev/sdb".into())),
            device: DiskDevice::Disk,
            bus: DiskBus::Sata,
            target: "sdb".into(),
            read_only: false,
            boot_order: None,
        };
        assert_eq!(
            disk_xml(&disk),
            "<disk type='block' device='disk'>\n\
             \x20 <driver name='qemu' type='raw'/>\n\
             \x20 <source dev='/dev/sdb'/>\n\
             \x20 <target dev='sdb' bus='sata'/>\n\
             </disk>\n"
        );
    }

    #[test]
    fn ovs_nic_with_vlan() {
        let mut n = nic(SwitchKind::Openvswitch, Some(100));
        n.host_device = Some("ws-tap7".into());
        n.mac = "52:54:00:AB:cd:01".into();
        validate_nic(&n).unwrap();
        assert_eq!(
            nic_xml(&n),
            "<interface type='bridge'>\n\
             \x20 <mac address='52:54:00:ab:cd:01'/>\n\
             \x20 <source bridge='br-guest'/>\n\
             \x20 <virtualport type='openvswitch'/>\n\
             \x20 <vlan>\n\
             \x20   <tag id='100'/>\n\
             \x20 </vlan>\n\
             \x20 <target dev='ws-tap7'/>\n\
             \x20 <model type='virtio'/>\n\
             \x20 <driver>\n\
             \x20   <host csum='off'/>\n\
             \x20 </driver>\n\
             </interface>\n"
        );
    }

    #[test]
    fn linux_bridge_nic() {
        let mut n = nic(SwitchKind::LinuxBridge, None);
        n.model = NicModel::E1000;
        validate_nic(&n).unwrap();
        let xml = nic_xml(&n);
        assert!(!xml.contains("virtualport"));
        assert!(!xml.contains("<vlan>"));
        assert!(!xml.contains("<target"));
        assert!(xml.contains("<model type='e1000'/>"));
    }

    #[test]
    fn linux_bridge_with_vlan_refused() {
        let mut s = spec();
        s.nics.push(nic(SwitchKind::LinuxBridge, Some(100)));
        assert!(invalid_message(validate_spec(&s)).contains("VLAN tags need an Open vSwitch bridge"));
    }

    #[test]
    fn vnet_host_device_refused() {
        let mut n = nic(SwitchKind::LinuxBridge, None);
        n.host_device = Some("vnet3".into());
        assert!(invalid_message(validate_nic(&n)).contains("reserved by libvirt"));
    }

    #[test]
    fn bad_macs_refused() {
        for mac in ["", "52:54:00:12:34", "52-54-00-12-34-56", "52:54:00:12:34:5g", "01:00:5e:00:00:01"] {
            let mut n = nic(SwitchKind::LinuxBridge, None);
            n.mac = mac.into();
            invalid_message(validate_nic(&n));
        }
    }

    #[test]
    fn serial_to_file() {
        let mut s = spec();
        s.console.serial_log = Some("/var/log/ws/i-2-3-VM.log".into());
        let xml = domain_xml(&s, "qemu");
        assert!(xml.contains(
            "<serial type='file'>\n      <source path='/var/log/ws/i-2-3-VM.log'/>\n      <target port='0'/>\n    </serial>"
        ));
        assert!(xml.contains("<console type='file'>"));
        assert!(xml.contains("<target type='serial' port='0'/>"));
        assert!(!xml.contains("pty"));
    }

    #[test]
    fn serial_to_pty_by_default() {
        let xml = domain_xml(&spec(), "kvm");
        assert!(xml.contains("<serial type='pty'>"));
        assert!(xml.starts_with("<domain type='kvm'>"));
    }

    #[test]
    fn vnc_listens_where_told() {
        let mut s = spec();
        s.console.vnc_listen = Some("192.168.1.20".into());
        let xml = domain_xml(&s, "qemu");
        assert!(xml.contains(
            "<graphics type='vnc' port='-1' autoport='yes' listen='192.168.1.20'>\n      \
             <listen type='address' address='192.168.1.20'/>\n    </graphics>"
        ));
        assert!(xml.contains("<model type='vga'/>"));
        assert!(!xml.contains("0.0.0.0"));
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape(r#"a&b<c>'d"e"#), "a&amp;b&lt;c&gt;&apos;d&quot;e");
        let mut s = spec();
        s.name = "web<&>'\"".into();
        s.disks[0] = file_disk("vda", "/images/it's & <more>.qcow2", DiskFormat::Qcow2);
        let xml = domain_xml(&s, "qemu");
        assert!(xml.contains("<name>web&lt;&amp;&gt;&apos;&quot;</name>"));
        assert!(xml.contains("<source file='/images/it&apos;s &amp; &lt;more&gt;.qcow2'/>"));
    }

    #[test]
    fn spec_checks() {
        validate_spec(&spec()).unwrap();
        type Case = (fn(&mut VmSpec), &'static str);
        let cases: Vec<Case> = vec![
            (|s| s.name.clear(), "name is empty"),
            (|s| s.uuid.clear(), "UUID is empty"),
            (|s| s.uuid = "not-a-uuid".into(), "is not a UUID"),
            (|s| s.vcpus = 0, "at least 1 vCPU"),
            (|s| s.memory_mib = 8, "below the minimum"),
            (
                |s| {
                    let d = s.disks[0].clone();
                    s.disks.push(d);
                },
                "target vda is used twice",
            ),
            (
                |s| {
                    let mut d = s.disks[0].clone();
                    d.target = "vdb".into();
                    s.disks.push(d);
                },
                "boot order 1 is used twice",
            ),
            (|s| s.disks[0].device = DiskDevice::Cdrom, "cannot be on the virtio bus"),
            (|s| s.console.serial_log = Some("relative.log".into()), "not absolute"),
        ];
        for (mutate, expected) in cases {
            let mut s = spec();
            mutate(&mut s);
            let message = invalid_message(validate_spec(&s));
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}
