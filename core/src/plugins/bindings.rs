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

/// Bindings of `wasmstack:driver@0.3.0` (`wit/v0.3.0`), for drivers built against it.
/// Its imports are 0.4.0's interfaces or a part of them (0.4.0 only added to `netdev`), so
/// they map onto the 0.4.0 modules: one host implementation serves both, registered a
/// second time under the 0.3.0 names (see `host.rs`). Its exports have types of their own,
/// which `compat_v0_3.rs` converts.
pub(crate) mod v0_3 {
    pub(crate) mod hypervisor_world {
        wasmtime::component::bindgen!({
            world: "hypervisor-driver",
            path: "../wit/v0.3.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/libvirt": crate::plugins::bindings::hypervisor_world::wasmstack::driver::libvirt,
                "wasmstack:driver/endpoint": crate::plugins::bindings::hypervisor_world::wasmstack::driver::endpoint,
            },
        });
    }

    pub(crate) mod storage_world {
        wasmtime::component::bindgen!({
            world: "storage-driver",
            path: "../wit/v0.3.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/images": crate::plugins::bindings::storage_world::wasmstack::driver::images,
            },
        });
    }

    pub(crate) mod network_world {
        wasmtime::component::bindgen!({
            world: "network-driver",
            path: "../wit/v0.3.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/netdev": crate::plugins::bindings::network_world::wasmstack::driver::netdev,
            },
        });
    }

    pub(crate) use hypervisor_world::exports::wasmstack::driver::hypervisor;
    pub(crate) use hypervisor_world::{HypervisorDriver as HypervisorBindings, HypervisorDriverPre};
    pub(crate) use network_world::exports::wasmstack::driver::network;
    pub(crate) use network_world::{NetworkDriver as NetworkBindings, NetworkDriverPre};
    pub(crate) use storage_world::exports::wasmstack::driver::storage;
    pub(crate) use storage_world::{StorageDriver as StorageBindings, StorageDriverPre};

    /// The interfaces a 0.3.0 driver may import, by their 0.3.0 names.
    pub(crate) const TYPES: &str = "wasmstack:driver/types@0.3.0";
    pub(crate) const LOG: &str = "wasmstack:driver/log@0.3.0";
    pub(crate) const LIBVIRT: &str = "wasmstack:driver/libvirt@0.3.0";
    pub(crate) const ENDPOINT: &str = "wasmstack:driver/endpoint@0.3.0";
    pub(crate) const IMAGES: &str = "wasmstack:driver/images@0.3.0";
    pub(crate) const NETDEV: &str = "wasmstack:driver/netdev@0.3.0";
}

/// Bindings of `wasmstack:driver@0.2.0` (`wit/v0.2.0`), for drivers built against it.
/// Its imports are 0.4.0's interfaces or a part of them (0.3.0 and 0.4.0 only added to
/// `netdev`), so they map onto the 0.4.0 modules: one host implementation serves all,
/// registered again under the 0.2.0 names (see `host.rs`). Its exports have types of their own,
/// which `compat_v0_2.rs` converts.
pub(crate) mod v0_2 {
    pub(crate) mod hypervisor_world {
        wasmtime::component::bindgen!({
            world: "hypervisor-driver",
            path: "../wit/v0.2.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/libvirt": crate::plugins::bindings::hypervisor_world::wasmstack::driver::libvirt,
                "wasmstack:driver/endpoint": crate::plugins::bindings::hypervisor_world::wasmstack::driver::endpoint,
            },
        });
    }

    pub(crate) mod storage_world {
        wasmtime::component::bindgen!({
            world: "storage-driver",
            path: "../wit/v0.2.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/images": crate::plugins::bindings::storage_world::wasmstack::driver::images,
            },
        });
    }

    pub(crate) mod network_world {
        wasmtime::component::bindgen!({
            world: "network-driver",
            path: "../wit/v0.2.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/netdev": crate::plugins::bindings::network_world::wasmstack::driver::netdev,
            },
        });
    }

    pub(crate) use hypervisor_world::exports::wasmstack::driver::hypervisor;
    pub(crate) use hypervisor_world::{HypervisorDriver as HypervisorBindings, HypervisorDriverPre};
    pub(crate) use network_world::exports::wasmstack::driver::network;
    pub(crate) use network_world::{NetworkDriver as NetworkBindings, NetworkDriverPre};
    pub(crate) use storage_world::exports::wasmstack::driver::storage;
    pub(crate) use storage_world::{StorageDriver as StorageBindings, StorageDriverPre};

    /// The interfaces a 0.2.0 driver may import, by their 0.2.0 names.
    pub(crate) const TYPES: &str = "wasmstack:driver/types@0.2.0";
    pub(crate) const LOG: &str = "wasmstack:driver/log@0.2.0";
    pub(crate) const LIBVIRT: &str = "wasmstack:driver/libvirt@0.2.0";
    pub(crate) const ENDPOINT: &str = "wasmstack:driver/endpoint@0.2.0";
    pub(crate) const IMAGES: &str = "wasmstack:driver/images@0.2.0";
    pub(crate) const NETDEV: &str = "wasmstack:driver/netdev@0.2.0";
}

/// Bindings of `wasmstack:driver@0.1.0` (`wit/v0.1.0`), for drivers built against it.
/// Its imports are the same interfaces as 0.4.0's in content (or a part of them), so they
/// map onto the 0.4.0 modules, registered under the 0.1.0 names (see `host.rs`). Its
/// exports have types of their own, which `compat_v0_1.rs` converts.
pub(crate) mod v0_1 {
    pub(crate) mod hypervisor_world {
        wasmtime::component::bindgen!({
            world: "hypervisor-driver",
            path: "../wit/v0.1.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/libvirt": crate::plugins::bindings::hypervisor_world::wasmstack::driver::libvirt,
            },
        });
    }

    pub(crate) mod storage_world {
        wasmtime::component::bindgen!({
            world: "storage-driver",
            path: "../wit/v0.1.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/images": crate::plugins::bindings::storage_world::wasmstack::driver::images,
            },
        });
    }

    pub(crate) mod network_world {
        wasmtime::component::bindgen!({
            world: "network-driver",
            path: "../wit/v0.1.0",
            imports: { default: trappable },
            with: {
                "wasmstack:driver/types": crate::plugins::bindings::hypervisor_world::wasmstack::driver::types,
                "wasmstack:driver/log": crate::plugins::bindings::hypervisor_world::wasmstack::driver::log,
                "wasmstack:driver/netdev": crate::plugins::bindings::network_world::wasmstack::driver::netdev,
            },
        });
    }

    pub(crate) use hypervisor_world::exports::wasmstack::driver::hypervisor;
    pub(crate) use hypervisor_world::{HypervisorDriver as HypervisorBindings, HypervisorDriverPre};
    pub(crate) use network_world::exports::wasmstack::driver::network;
    pub(crate) use network_world::{NetworkDriver as NetworkBindings, NetworkDriverPre};
    pub(crate) use storage_world::exports::wasmstack::driver::storage;
    pub(crate) use storage_world::{StorageDriver as StorageBindings, StorageDriverPre};

    /// The interfaces a 0.1.0 driver may import, by their 0.1.0 names.
    pub(crate) const TYPES: &str = "wasmstack:driver/types@0.1.0";
    pub(crate) const LOG: &str = "wasmstack:driver/log@0.1.0";
    pub(crate) const LIBVIRT: &str = "wasmstack:driver/libvirt@0.1.0";
    pub(crate) const IMAGES: &str = "wasmstack:driver/images@0.1.0";
    pub(crate) const NETDEV: &str = "wasmstack:driver/netdev@0.1.0";
}
