//! A hypervisor driver that misbehaves on request, to test the plugin host.
//!
//! `probe-host(url)` does what `url` says: "panic", "loop" (spin forever), "hog"
//! (allocate without end), "snoop" (open a libvirt URI it was not granted),
//! "sleep:MS" (sleep, then answer), "stderr" (write to stderr, then trap);
//! any other URL is probed through libvirt like a real driver would. The answer's
//! `hypervisor-version` names the driver version, so tests can tell builds apart.

wit_bindgen::generate!({ world: "hypervisor-driver", path: "../../../wit", generate_all });

use exports::wasmstack::driver::hypervisor::{
    ConsoleEndpoint, Disk, Guest as Hypervisor, HostFacts, VmPower, VmSpec, VmStats, VmStatus,
};
use exports::wasmstack::driver::plugin::{Capability, DriverKind, Guest as Plugin, PluginInfo};
use wasmstack::driver::libvirt::Connection;
use wasmstack::driver::types::DriverError;

const VERSION: &str = if cfg!(feature = "v2") { "2.0.0" } else { "1.0.0" };

struct Rogue;

impl Plugin for Rogue {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "rogue".into(),
            version: VERSION.into(),
            kind: DriverKind::Hypervisor,
            description: "Misbehaves on request (tests only)".into(),
            capabilities: vec![Capability::Libvirt("test:///default".into())],
            config_schema: "{}".into(),
        }
    }
}

fn unsupported<T>() -> Result<T, DriverError> {
    Err(DriverError::Unsupported("rogue only answers probe-host".into()))
}

impl Hypervisor for Rogue {
    fn probe_host(url: String) -> Result<HostFacts, DriverError> {
        match url.as_str() {
            "panic" => panic!("rogue was told to panic"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "snoop" => {
                Connection::open("qemu:///system")?;
                Err(DriverError::Failed("the host let an ungranted connection through".into()))
            }
            "stderr" => {
                eprintln!("rogue: about to trap");
                std::process::abort()
            }
            _ => {
                if let Some(ms) = url.strip_prefix("sleep:") {
                    let ms: u64 = ms.parse().map_err(|_| DriverError::InvalidSpec("sleep:MS".into()))?;
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    return Ok(facts(0, 0));
                }
                let conn = Connection::open(&url)?;
                let node = conn.node_info()?;
                Ok(facts(node.cpus, node.memory_kib * 1024))
            }
        }
    }
    fn create_vm(_url: String, _spec: VmSpec) -> Result<(), DriverError> {
        unsupported()
    }
    fn start_vm(_url: String, _uuid: String) -> Result<(), DriverError> {
        unsupported()
    }
    fn stop_vm(_url: String, _uuid: String, _timeout_ms: u32) -> Result<(), DriverError> {
        unsupported()
    }
    fn reboot_vm(_url: String, _uuid: String, _forced: bool) -> Result<(), DriverError> {
        unsupported()
    }
    fn destroy_vm(_url: String, _uuid: String) -> Result<(), DriverError> {
        unsupported()
    }
    fn power_state(_url: String, _uuid: String) -> Result<VmPower, DriverError> {
        unsupported()
    }
    fn list_vms(_url: String) -> Result<Vec<VmStatus>, DriverError> {
        unsupported()
    }
    fn console(_url: String, _uuid: String) -> Result<ConsoleEndpoint, DriverError> {
        unsupported()
    }
    fn stats(_url: String, _uuid: String) -> Result<VmStats, DriverError> {
        unsupported()
    }
    fn attach_disk(_url: String, _uuid: String, _disk: Disk) -> Result<(), DriverError> {
        unsupported()
    }
    fn detach_disk(_url: String, _uuid: String, _target: String) -> Result<(), DriverError> {
        unsupported()
    }
}

fn facts(cpus: u32, memory_bytes: u64) -> HostFacts {
    HostFacts {
        cpus,
        cpu_mhz: 0,
        cpu_model: "rogue".into(),
        memory_bytes,
        hypervisor_version: format!("rogue {VERSION}"),
        hardware_accel: false,
    }
}

export!(Rogue);
