//! Drivers built against `wasmstack:driver@0.1.0`, adapted to the current contract.
//!
//! A 0.1.0 driver's exports carry types of their own (bindgen generates them per package
//! version); they are converted here to and from the 0.2.0 types the rest of the server
//! uses. What 0.1.0 could not say, the adapter supplies as 0.1 servers assumed it: this is
//! the one place where drivers are known by their names.
//! - `serves`: the one hypervisor driver served KVM and Simulator; a network driver
//!   served the isolation method named like it ("vlan", "flat"); a storage driver served
//!   the provider named like it, and its scheme ("nfs" → NFS/nfs, "local" → Local/file).
//! - `connect-host`: what 0.1 servers did with an operator's host URL.
//! - `network-spec`: `isolation` and `segment` are not passed on (0.1.0 has `vlan` only).

use super::bindings::plugin::{
    Capability as Cap2, DriverKind as Kind2, HypervisorFeatures as F, HypervisorType, NetworkFacts,
    PluginInfo as Info2, Serves, StorageFacts,
};
use super::bindings::types::DriverError;
use super::bindings::v0_1::{hypervisor as h1, network as n1, storage as s1};
use super::bindings::{hypervisor as h2, network as n2, storage as s2};

/// What a 0.1.0 driver serves, from its kind and name.
fn default_serves(kind: &Kind2, name: &str) -> Serves {
    match kind {
        Kind2::Hypervisor => Serves::Hypervisor(vec![
            HypervisorType {
                name: "KVM".into(),
                features: F::HOT_PLUG_DISKS | F::VNC_CONSOLE | F::BOOT_ISO | F::SERIAL_LOG,
            },
            HypervisorType { name: "Simulator".into(), features: F::SIMULATED | F::BOOT_ISO },
        ]),
        Kind2::Network => {
            Serves::Network(NetworkFacts { isolation_methods: vec![name.to_owned()], services: vec!["Dhcp".into()] })
        }
        Kind2::Storage => {
            let (provider, scheme) = match name {
                "nfs" => ("NFS", "nfs"),
                "local" => ("Local", "file"),
                other => (other, other),
            };
            Serves::Storage(StorageFacts { providers: vec![provider.into()], schemes: vec![scheme.into()] })
        }
    }
}

/// A 0.1.0 `plugin-info` of any of the three worlds as 0.2.0's, with the default `serves`.
macro_rules! plugin_info {
    ($fn:ident, $world:ident) => {
        pub(crate) fn $fn(i: super::bindings::v0_1::$world::exports::wasmstack::driver::plugin::PluginInfo) -> Info2 {
            use super::bindings::v0_1::$world::exports::wasmstack::driver::plugin::{Capability as C, DriverKind as K};
            let kind = match i.kind {
                K::Hypervisor => Kind2::Hypervisor,
                K::Storage => Kind2::Storage,
                K::Network => Kind2::Network,
            };
            Info2 {
                serves: default_serves(&kind, &i.name),
                name: i.name,
                version: i.version,
                kind,
                description: i.description,
                capabilities: i
                    .capabilities
                    .into_iter()
                    .map(|c| match c {
                        C::Libvirt(p) => Cap2::Libvirt(p),
                        C::Images(p) => Cap2::Images(p),
                        C::Netdev(p) => Cap2::Netdev(p),
                    })
                    .collect(),
                config_schema: i.config_schema,
            }
        }
    };
}
plugin_info!(hypervisor_info, hypervisor_world);
plugin_info!(storage_info, storage_world);
plugin_info!(network_info, network_world);

/// What 0.1 servers made of the URL an operator gave `addHost`: a Simulator host is
/// libvirt's test driver unless a test: URI is given; otherwise libvirt URIs (qemu…) are
/// kept and CloudStack's http://address becomes qemu+ssh://address/system.
pub(crate) fn connect_host(hypervisor_type: &str, url: &str) -> Result<h2::HostTarget, DriverError> {
    let host_part = |u: &str| -> String {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        host.split(':').next().unwrap_or("").to_owned()
    };
    if hypervisor_type.eq_ignore_ascii_case("Simulator") {
        let url = if url.starts_with("test:") { url.to_owned() } else { "test:///default".to_owned() };
        return Ok(h2::HostTarget { url, address: "127.0.0.1".into() });
    }
    if !hypervisor_type.eq_ignore_ascii_case("KVM") {
        return Err(DriverError::InvalidSpec(format!(
            "hypervisor type {hypervisor_type} is not served here; this driver serves KVM and Simulator"
        )));
    }
    let h = host_part(url);
    if url.starts_with("qemu") {
        let address = if h.is_empty() { "127.0.0.1".into() } else { h };
        return Ok(h2::HostTarget { url: url.to_owned(), address });
    }
    if h.is_empty() {
        return Err(DriverError::InvalidSpec(format!(
            "{url}: give a libvirt URI (qemu:///system, qemu+ssh://host/system) or http://host"
        )));
    }
    Ok(h2::HostTarget { url: format!("qemu+ssh://{h}/system"), address: h })
}

/// Enums of the same cases in both versions.
macro_rules! same_enum {
    ($fn:ident, $from:ty => $to:ty, $($case:ident),+) => {
        pub(crate) fn $fn(x: $from) -> $to {
            match x {
                $(<$from>::$case => <$to>::$case,)+
            }
        }
    };
}
same_enum!(accel, h2::Accel => h1::Accel, Auto, Kvm, Tcg);
same_enum!(disk_device, h2::DiskDevice => h1::DiskDevice, Disk, Cdrom);
same_enum!(disk_bus, h2::DiskBus => h1::DiskBus, Virtio, Sata, Ide, Scsi);
same_enum!(switch_kind, h2::SwitchKind => h1::SwitchKind, LinuxBridge, Openvswitch);
same_enum!(nic_model, h2::NicModel => h1::NicModel, Virtio, E1000, Rtl8139);
same_enum!(vm_power, h1::VmPower => h2::VmPower, Running, Stopped, Paused, Crashed, Missing);

pub(crate) fn disk(d: &h2::Disk) -> h1::Disk {
    h1::Disk {
        locator: d.locator.clone(),
        device: disk_device(d.device),
        bus: disk_bus(d.bus),
        target: d.target.clone(),
        read_only: d.read_only,
        boot_order: d.boot_order,
    }
}

pub(crate) fn vm_spec(s: &h2::VmSpec) -> h1::VmSpec {
    h1::VmSpec {
        uuid: s.uuid.clone(),
        name: s.name.clone(),
        vcpus: s.vcpus,
        memory_mib: s.memory_mib,
        accel: accel(s.accel),
        disks: s.disks.iter().map(disk).collect(),
        nics: s
            .nics
            .iter()
            .map(|n| h1::Nic {
                mac: n.mac.clone(),
                bridge: n.bridge.clone(),
                switch: switch_kind(n.switch),
                vlan: n.vlan,
                model: nic_model(n.model),
                host_device: n.host_device.clone(),
            })
            .collect(),
        console: h1::ConsoleSpec { serial_log: s.console.serial_log.clone(), vnc_listen: s.console.vnc_listen.clone() },
    }
}

pub(crate) fn host_facts(f: h1::HostFacts) -> h2::HostFacts {
    h2::HostFacts {
        cpus: f.cpus,
        cpu_mhz: f.cpu_mhz,
        cpu_model: f.cpu_model,
        memory_bytes: f.memory_bytes,
        hypervisor_version: f.hypervisor_version,
        hardware_accel: f.hardware_accel,
    }
}

pub(crate) fn vm_statuses(list: Vec<h1::VmStatus>) -> Vec<h2::VmStatus> {
    list.into_iter().map(|v| h2::VmStatus { uuid: v.uuid, name: v.name, power: vm_power(v.power) }).collect()
}

pub(crate) fn console_endpoint(c: h1::ConsoleEndpoint) -> h2::ConsoleEndpoint {
    h2::ConsoleEndpoint { protocol: c.protocol, host: c.host, port: c.port }
}

pub(crate) fn vm_stats(s: h1::VmStats) -> h2::VmStats {
    h2::VmStats { cpu_time_ns: s.cpu_time_ns, memory_kib: s.memory_kib }
}

/// 0.1.0's network spec has no `isolation` or `segment`: a 0.1.0 driver knows only `vlan`.
pub(crate) fn network_spec(n: &n2::NetworkSpec) -> n1::NetworkSpec {
    n1::NetworkSpec {
        id: n.id.clone(),
        physical: n.physical.clone(),
        vlan: n.vlan,
        cidr: n.cidr.clone(),
        gateway: n.gateway.clone(),
        dns: n.dns.clone(),
        dhcp_server: n.dhcp_server.clone(),
    }
}

pub(crate) fn nic_spec(n: &n2::NicSpec) -> n1::NicSpec {
    n1::NicSpec { id: n.id.clone(), mac: n.mac.clone(), ip: n.ip.clone(), hostname: n.hostname.clone() }
}

pub(crate) fn attachment(a: n1::Attachment) -> n2::Attachment {
    n2::Attachment { bridge: a.bridge, openvswitch: a.openvswitch, vlan: a.vlan }
}

pub(crate) fn usage(u: s1::Usage) -> s2::Usage {
    s2::Usage { total_bytes: u.total_bytes, used_bytes: u.used_bytes }
}

pub(crate) fn volume(v: s1::Volume) -> s2::Volume {
    s2::Volume { path: v.path, locator: v.locator, virtual_size: v.virtual_size, physical_size: v.physical_size }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_what_0_1_servers_assumed() {
        let Serves::Hypervisor(types) = default_serves(&Kind2::Hypervisor, "anything") else { unreachable!() };
        assert_eq!(types.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["KVM", "Simulator"]);
        assert_eq!(types[1].features, F::SIMULATED | F::BOOT_ISO);
        let Serves::Network(n) = default_serves(&Kind2::Network, "vlan") else { unreachable!() };
        assert_eq!((n.isolation_methods, n.services), (vec!["vlan".to_owned()], vec!["Dhcp".to_owned()]));
        for (name, provider, scheme) in [("nfs", "NFS", "nfs"), ("local", "Local", "file"), ("mine", "mine", "mine")] {
            let Serves::Storage(s) = default_serves(&Kind2::Storage, name) else { unreachable!() };
            assert_eq!((s.providers, s.schemes), (vec![provider.to_owned()], vec![scheme.to_owned()]));
        }
    }

    #[test]
    fn host_urls_as_0_1_servers_made_them() {
        let t = |ty: &str, url: &str| connect_host(ty, url).map(|t| (t.url, t.address));
        assert_eq!(t("KVM", "http://10.0.0.7").unwrap(), ("qemu+ssh://10.0.0.7/system".into(), "10.0.0.7".into()));
        assert_eq!(t("KVM", "qemu:///system").unwrap(), ("qemu:///system".into(), "127.0.0.1".into()));
        assert_eq!(t("Simulator", "http://sim").unwrap(), ("test:///default".into(), "127.0.0.1".into()));
        assert_eq!(t("Simulator", "test:///x").unwrap(), ("test:///x".into(), "127.0.0.1".into()));
        assert!(matches!(t("KVM", "http://"), Err(DriverError::InvalidSpec(_))));
        assert!(matches!(t("Xen", "http://h"), Err(DriverError::InvalidSpec(m)) if m.contains("serves KVM and")));
    }
}
