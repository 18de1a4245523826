//! Host capabilities offered to drivers, one module each. Every call checks the
//! plugin's grants first and never reaches the resource when they do not allow it.

pub mod beneath;
mod blocking;
mod endpoint;
pub mod images;
pub mod libvirt;
mod log;
pub mod netdev;
mod nfs;
mod process;
mod qcow2;
