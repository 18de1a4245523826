//! wasmstack: an IaaS management server whose hypervisor, storage and network drivers
//! are sandboxed WebAssembly components.

pub mod plugins;
