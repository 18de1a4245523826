//! The cloud's resources as stored: zones, pods, clusters, hosts, storage, networks.

pub mod attachments;
pub mod guest_access;
pub mod guest_data;
pub mod infra;
pub mod instances;
pub mod networks;
pub mod offerings;
pub mod public_ips;
pub mod rules;
pub mod security_groups;
pub mod storage;
pub mod templates;
pub mod volumes;
