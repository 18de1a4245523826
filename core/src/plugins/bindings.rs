//! Host-side bindings generated from the WIT in `wit/`.
//!
//! Every import is trappable so that a host call can end the guest call (deadline
//! passed) instead of only returning an error to it.

pub(crate) mod hypervisor_world {
    wasmtime::component::bindgen!({
        world: "hypervisor-driver",
        path: "../wit",
        imports: { default: trappable },
        with: {
            "wasmstack:driver/libvirt.connection": crate::plugins::caps::libvirt::LibvirtConnection,
        },
    });
}

// The storage world reuses the hypervisor world's `types` and `log` modules, so a
// locator or a driver error is one Rust type whichever driver made it, and the
// `log`/`types` imports are linked once for both worlds.
pub(crate) mod storage_world {
    wasmtime::component::bindgen!({
        world: "storage-driver",
        path: "../wit",
        imports: { default: trappable },
        with: {
            "wasmstack:driver/types": super::hypervisor_world::wasmstack::driver::types,
            "wasmstack:driver/log": super::hypervisor_world::wasmstack::driver::log,
        },
    });
}

// The network world shares `types` and `log` the same way.
pub(crate) mod network_world {
    wasmtime::component::bindgen!({
        world: "network-driver",
        path: "../wit",
        imports: { default: trappable },
        with: {
            "wasmstack:driver/types": super::hypervisor_world::wasmstack::driver::types,
            "wasmstack:driver/log": super::hypervisor_world::wasmstack::driver::log,
        },
    });
}

pub use hypervisor_world::exports::wasmstack::driver::hypervisor;
pub use hypervisor_world::exports::wasmstack::driver::plugin;
pub use hypervisor_world::wasmstack::driver::{endpoint, libvirt, log, types};
pub(crate) use hypervisor_world::{HypervisorDriver as HypervisorBindings, HypervisorDriverPre};
pub use network_world::exports::wasmstack::driver::network;
pub use network_world::wasmstack::driver::netdev;
pub(crate) use network_world::{NetworkDriver as NetworkBindings, NetworkDriverPre};
pub use storage_world::exports::wasmstack::driver::storage;
pub use storage_world::wasmstack::driver::images;
pub(crate) use storage_world::{StorageDriver as StorageBindings, StorageDriverPre};
