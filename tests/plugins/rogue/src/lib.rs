//! A hypervisor driver that misbehaves on request, to test the plugin host.
//!
//! `probe-host(url)` does what `url` says: "panic", "loop" (spin forever), "hog"
//! (allocate without end), "snoop" (open a libvirt URI it was not granted),
//! "sleep:MS" (sleep, then answer), "stderr" (write to stderr, then trap),
//! "big-error" (a 32 MiB error text), "big-facts" (a 1 MiB cpu-model);
//! any other URL is probed through libvirt like a real driver would. The answer's
//! `hypervisor-version` names the driver version, so tests can tell builds apart.
//! `list-vms(url)` answers "many" with 200,000 VMs and "long-name" with a VM named by
//! 1 MiB of text; `console(url, _)` answers "long-host" with a 1 MiB host name.
//!
//! The cargo features build variants whose `describe()` misbehaves (see Cargo.toml).

wit_bindgen::generate!({ world: "hypervisor-driver", path: "../../../wit", generate_all });

use exports::wasmstack::driver::hypervisor::{
    ConsoleEndpoint, Disk, Guest as Hypervisor, HostFacts, HostTarget, VmPower, VmSpec, VmStats, VmStatus,
};
use exports::wasmstack::driver::plugin::{
    Capability, DriverKind, Guest as Plugin, HypervisorFeatures, HypervisorType, PluginInfo, Serves,
};
use wasmstack::driver::libvirt::Connection;
use wasmstack::driver::types::DriverError;

const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else if cfg!(feature = "impostor") {
    "99.0.0"
} else {
    "1.0.0"
};

struct Rogue;

impl Plugin for Rogue {
    fn describe() -> PluginInfo {
        if cfg!(feature = "describe-loop") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        let mut capabilities = vec![Capability::Libvirt("test:///default".into())];
        if cfg!(feature = "many-asks") {
            capabilities = vec![Capability::Libvirt("test:///default".into()); 200_000];
        }
        let config_schema = if cfg!(feature = "huge-describe") {
            format!("{{\"title\":\"{}\"}}", "x".repeat(40 << 20))
        } else {
            "{}".into()
        };
        PluginInfo {
            // Claims the KVM driver's name, and with it, it hopes, KVM's grants.
            name: if cfg!(feature = "impostor") { "kvm" } else { "rogue" }.into(),
            version: VERSION.into(),
            kind: DriverKind::Hypervisor,
            serves: Serves::Hypervisor(vec![HypervisorType {
                name: "Rogue".into(),
                features: HypervisorFeatures::empty(),
            }]),
            description: "Misbehaves on request (tests only)".into(),
            capabilities,
            config_schema,
        }
    }
}

fn unsupported<T>() -> Result<T, DriverError> {
    Err(DriverError::Unsupported("rogue does not do that".into()))
}

impl Hypervisor for Rogue {
    fn connect_host(_hypervisor_type: String, url: String) -> Result<HostTarget, DriverError> {
        Ok(HostTarget { url, address: "127.0.0.1".into() })
    }

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
            "big-error" => Err(DriverError::Failed("e".repeat(32 << 20))),
            "big-facts" => Ok(HostFacts { cpu_model: "m".repeat(1 << 20), ..facts(1, 1) }),
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
    fn list_vms(url: String) -> Result<Vec<VmStatus>, DriverError> {
        let vm = |name: String| VmStatus {
            uuid: "00000000-0000-0000-0000-000000000000".into(),
            name,
            power: VmPower::Running,
        };
        match url.as_str() {
            "many" => Ok(vec![vm("i-2-3-VM".into()); 200_000]),
            "long-name" => Ok(vec![vm("n".repeat(1 << 20))]),
            _ => unsupported(),
        }
    }
    fn console(url: String, _uuid: String) -> Result<ConsoleEndpoint, DriverError> {
        match url.as_str() {
            "long-host" => Ok(ConsoleEndpoint { protocol: "vnc".into(), host: "h".repeat(1 << 20), port: 5900 }),
            _ => unsupported(),
        }
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
