//! End-to-end tests: the real plugin host, real driver components, real libvirt.
//! One binary, as wasmtime does it, so the suite links once.

mod addresses;
mod bounds;
mod cli;
mod config_drive;
mod conformance;
mod deadlines;
mod driver_kit;
mod endpoint;
mod guest_access;
mod guest_data;
mod identity;
mod isolation;
mod kvm_guest;
mod network;
mod network_guest;
mod orchestrator;
mod public_ips;
mod reload;
mod router;
mod rules;
mod security;
mod security_groups;
mod signing;
mod simulator;
mod storage;
mod support;
mod versions;
