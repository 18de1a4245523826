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

pub use hypervisor_world::exports::wasmstack::driver::hypervisor;
pub use hypervisor_world::exports::wasmstack::driver::plugin;
pub use hypervisor_world::wasmstack::driver::{libvirt, log, types};
pub(crate) use hypervisor_world::{HypervisorDriver as HypervisorBindings, HypervisorDriverPre};
