//! wasmstack: an IaaS management server whose hypervisor, storage and network drivers
//! are sandboxed WebAssembly components.

pub mod api;
pub mod auth;
pub mod checksum;
pub mod cloud;
pub mod config;
pub mod connections;
pub mod db;
pub mod demo;
pub mod events;
pub mod http;
pub mod jobs;
pub mod operator;
pub mod orchestrate;
pub mod plugins;
pub mod server;
pub mod web;
