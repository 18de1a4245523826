//! A driver built against wasmstack:driver@9.0.0, which this server does not speak.

wit_bindgen::generate!({ world: "hypervisor-driver", path: "wit" });

use exports::wasmstack::driver::hypervisor::Guest as Hypervisor;
use exports::wasmstack::driver::plugin::{DriverKind, Guest as Plugin, PluginInfo};

struct Future;

impl Plugin for Future {
    fn describe() -> PluginInfo {
        PluginInfo { name: "future".into(), version: "9.0.0".into(), kind: DriverKind::Hypervisor }
    }
}

impl Hypervisor for Future {
    fn probe_host(url: String) -> String {
        url
    }
}

export!(Future);
