//! Drivers built against `wasmstack:driver@0.3.0`, adapted to 0.4.0.
//!
//! 0.4.0 only added to 0.3.0 (the security group calls of `network`, port filters in
//! `netdev`), so a 0.3.0 driver's answers mean what they meant, converted here between
//! the two versions' types (bindgen generates them per package version). What 0.3.0
//! cannot do, it does not do: its network drivers filter no NICs.

use super::bindings::types::DriverError;
use super::bindings::v0_3::{hypervisor as h2, network as n2, storage as s2};
use super::bindings::{hypervisor as h3, network as n3, storage as s3};

/// What a network driver built for `contract` (0.3.0 or older) answers to the security
/// group calls.
pub(crate) fn no_security(contract: &str) -> DriverError {
    DriverError::Unsupported(format!("this driver is built for {contract}, which has no security groups"))
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
same_enum!(accel, h3::Accel => h2::Accel, Auto, Kvm, Tcg);
same_enum!(disk_device, h3::DiskDevice => h2::DiskDevice, Disk, Cdrom);
same_enum!(disk_bus, h3::DiskBus => h2::DiskBus, Virtio, Sata, Ide, Scsi);
same_enum!(switch_kind, h3::SwitchKind => h2::SwitchKind, LinuxBridge, Openvswitch);
same_enum!(nic_model, h3::NicModel => h2::NicModel, Virtio, E1000, Rtl8139);
same_enum!(vm_power, h2::VmPower => h3::VmPower, Running, Stopped, Paused, Crashed, Missing);

pub(crate) fn disk(d: &h3::Disk) -> h2::Disk {
    h2::Disk {
        locator: d.locator.clone(),
        device: disk_device(d.device),
        bus: disk_bus(d.bus),
        target: d.target.clone(),
        read_only: d.read_only,
        boot_order: d.boot_order,
    }
}

pub(crate) fn vm_spec(s: &h3::VmSpec) -> h2::VmSpec {
    h2::VmSpec {
        uuid: s.uuid.clone(),
        name: s.name.clone(),
        vcpus: s.vcpus,
        memory_mib: s.memory_mib,
        accel: accel(s.accel),
        disks: s.disks.iter().map(disk).collect(),
        nics: s
            .nics
            .iter()
            .map(|n| h2::Nic {
                mac: n.mac.clone(),
                bridge: n.bridge.clone(),
                switch: switch_kind(n.switch),
                vlan: n.vlan,
                model: nic_model(n.model),
                host_device: n.host_device.clone(),
            })
            .collect(),
        console: h2::ConsoleSpec { serial_log: s.console.serial_log.clone(), vnc_listen: s.console.vnc_listen.clone() },
    }
}

pub(crate) fn host_facts(f: h2::HostFacts) -> h3::HostFacts {
    h3::HostFacts {
        cpus: f.cpus,
        cpu_mhz: f.cpu_mhz,
        cpu_model: f.cpu_model,
        memory_bytes: f.memory_bytes,
        hypervisor_version: f.hypervisor_version,
        hardware_accel: f.hardware_accel,
    }
}

pub(crate) fn vm_statuses(list: Vec<h2::VmStatus>) -> Vec<h3::VmStatus> {
    list.into_iter().map(|v| h3::VmStatus { uuid: v.uuid, name: v.name, power: vm_power(v.power) }).collect()
}

pub(crate) fn console_endpoint(c: h2::ConsoleEndpoint) -> h3::ConsoleEndpoint {
    h3::ConsoleEndpoint { protocol: c.protocol, host: c.host, port: c.port }
}

pub(crate) fn vm_stats(s: h2::VmStats) -> h3::VmStats {
    h3::VmStats { cpu_time_ns: s.cpu_time_ns, memory_kib: s.memory_kib }
}

pub(crate) fn network_spec(n: &n3::NetworkSpec) -> n2::NetworkSpec {
    n2::NetworkSpec {
        id: n.id.clone(),
        physical: n.physical.clone(),
        vlan: n.vlan,
        isolation: n.isolation.clone(),
        segment: n.segment,
        cidr: n.cidr.clone(),
        gateway: n.gateway.clone(),
        dns: n.dns.clone(),
        dhcp_server: n.dhcp_server.clone(),
    }
}

pub(crate) fn nic_spec(n: &n3::NicSpec) -> n2::NicSpec {
    n2::NicSpec { id: n.id.clone(), mac: n.mac.clone(), ip: n.ip.clone(), hostname: n.hostname.clone() }
}

pub(crate) fn attachment(a: n2::Attachment) -> n3::Attachment {
    n3::Attachment { bridge: a.bridge, openvswitch: a.openvswitch, vlan: a.vlan }
}

pub(crate) fn usage(u: s2::Usage) -> s3::Usage {
    s3::Usage { total_bytes: u.total_bytes, used_bytes: u.used_bytes }
}

pub(crate) fn volume(v: s2::Volume) -> s3::Volume {
    s3::Volume { path: v.path, locator: v.locator, virtual_size: v.virtual_size, physical_size: v.physical_size }
}

same_enum!(protocol, n3::Protocol => n2::Protocol, Tcp, Udp, Icmp, All);
same_enum!(egress_policy, n3::EgressPolicy => n2::EgressPolicy, Allow, Deny);
same_enum!(lb_algorithm, n3::LbAlgorithm => n2::LbAlgorithm, RoundRobin, LeastConnections, Source);
same_enum!(router_state, n2::RouterState => n3::RouterState, Running, Degraded, Missing);

fn port_range(p: &n3::PortRange) -> n2::PortRange {
    n2::PortRange { start: p.start, end: p.end }
}

/// A router's desired state in 0.3.0's types (0.4.0 did not change routers).
pub(crate) fn router_spec(r: &n3::RouterSpec) -> n2::RouterSpec {
    n2::RouterSpec {
        guest_gateway: r.guest_gateway.clone(),
        public_label: r.public_label.clone(),
        public_ips: r
            .public_ips
            .iter()
            .map(|ip| n2::PublicIp {
                address: ip.address.clone(),
                prefix: ip.prefix,
                gateway: ip.gateway.clone(),
                vlan: ip.vlan,
                source_nat: ip.source_nat,
                firewall: ip
                    .firewall
                    .iter()
                    .map(|f| n2::FirewallRule {
                        protocol: protocol(f.protocol),
                        ports: f.ports.as_ref().map(port_range),
                        cidrs: f.cidrs.clone(),
                    })
                    .collect(),
            })
            .collect(),
        egress_default: egress_policy(r.egress_default),
        egress: r
            .egress
            .iter()
            .map(|e| n2::EgressRule {
                protocol: protocol(e.protocol),
                ports: e.ports.as_ref().map(port_range),
                source_cidrs: e.source_cidrs.clone(),
                destination_cidrs: e.destination_cidrs.clone(),
            })
            .collect(),
        port_forwards: r
            .port_forwards
            .iter()
            .map(|p| n2::PortForward {
                public_ip: p.public_ip.clone(),
                protocol: protocol(p.protocol),
                public_ports: port_range(&p.public_ports),
                private_ip: p.private_ip.clone(),
                private_ports: port_range(&p.private_ports),
            })
            .collect(),
        static_nats: r
            .static_nats
            .iter()
            .map(|n| n2::StaticNat { public_ip: n.public_ip.clone(), private_ip: n.private_ip.clone() })
            .collect(),
        load_balancers: r
            .load_balancers
            .iter()
            .map(|l| n2::LoadBalancer {
                name: l.name.clone(),
                public_ip: l.public_ip.clone(),
                public_port: l.public_port,
                algorithm: lb_algorithm(l.algorithm),
                members: l.members.iter().map(|m| n2::LbMember { ip: m.ip.clone(), port: m.port }).collect(),
            })
            .collect(),
    }
}
