//! The cloud's resources as stored: zones, pods, clusters, hosts.

pub mod infra;
pub mod offerings;
pub mod storage;
pub mod templates;
pub mod volumes;
