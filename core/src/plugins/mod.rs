//! The plugin host: loads driver components, keeps them within their grants and
//! limits, replaces them when their files change, and runs each call in a fresh store.

mod bindings;
mod caps;
mod compat_v0_1;
mod compat_v0_2;
mod compat_v0_3;
mod config;
pub mod conformance;
mod downloads;
mod driver;
mod error;
mod facts;
mod grants;
pub mod guest_data;
mod host;
pub mod scaffold;
pub mod settings;
pub mod signing;
mod state;
pub mod witdocs;

pub use bindings::hypervisor::{
    Accel, ConsoleEndpoint, ConsoleSpec, Disk, DiskBus, DiskDevice, HostFacts, HostTarget, Nic, NicModel, SwitchKind,
    VmPower, VmSpec, VmStats, VmStatus,
};
pub use bindings::netdev::{PortFilter, PortRule, RuleIcmp, RulePorts, RuleProtocol};
pub use bindings::network::{
    Attachment, EgressPolicy, EgressRule, FirewallRule, IcmpMatch, LbAlgorithm, LbMember, LoadBalancer, NetworkSpec,
    NicSecurity, NicSpec, PortForward, PortRange, Protocol, PublicIp, RouterSpec, RouterState, SecurityProtocol,
    SecurityRule, StaticNat,
};
pub use bindings::storage::{Usage, Volume};
pub use bindings::types::{BackingImage, DiskFormat, DriverError, FileDisk, Locator, NetworkDisk};
pub use caps::beneath::{Beneath, BeneathError};
pub use caps::images::{ImageActivity, Transfer, put_file, remove_file};
pub use caps::libvirt::LibvirtPool;
pub use caps::netdev::port_filters_nft;
pub use config::{HostConfig, Limits, LimitsChange, PluginSettings, check_limits, save_grants, save_plugin};
pub use downloads::{AddressKind, BadSite, DownloadPolicy, InternalSite, Refusal, classify};
pub use driver::{HypervisorDriver, HypervisorSession, NetworkDriver, NetworkSession, StorageDriver, StorageSession};
pub use error::{PluginError, driver_error_text};
pub use facts::{HypervisorFeatures, HypervisorType, NetworkFacts, Serves, StorageFacts};
pub use grants::{Capability, Grants};
pub use host::{DriverKind, LoadedPlugin, PluginHost, PluginInfo, ReloadEvent, SUPPORTED_WIT, WatchHandle};
