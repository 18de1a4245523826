//! What a driver serves, as its `describe()` declared it: the hypervisor types (with their
//! features), isolation methods (with services) or storage providers and URL schemes. The
//! server chooses drivers by these facts, never by a driver's name.
//!
//! Names compare without ASCII case; the values keep the driver's spelling.

use serde::Serialize;

use super::bindings::plugin::{
    HypervisorFeatures as WitFeatures, NetworkFacts as WitNetworkFacts, Serves as WitServes,
    StorageFacts as WitStorageFacts,
};
use super::host::DriverKind;

/// The most entries one list of `serves` may hold.
pub const MAX_SERVED: usize = 16;
/// The longest served name (hypervisor type, isolation method, service, provider, scheme).
pub const MAX_SERVED_NAME: usize = 32;

/// What a hypervisor type can do for the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HypervisorFeatures {
    pub hot_plug_disks: bool,
    pub hot_plug_nics: bool,
    pub live_migration: bool,
    pub vnc_console: bool,
    pub memory_snapshots: bool,
    pub boot_iso: bool,
    pub serial_log: bool,
    pub simulated: bool,
}

impl HypervisorFeatures {
    /// The kebab-case names of the features set, in the WIT's order.
    pub fn names(&self) -> Vec<&'static str> {
        self.all().into_iter().filter(|(_, set)| *set).map(|(n, _)| n).collect()
    }

    fn all(&self) -> [(&'static str, bool); 8] {
        [
            ("hot-plug-disks", self.hot_plug_disks),
            ("hot-plug-nics", self.hot_plug_nics),
            ("live-migration", self.live_migration),
            ("vnc-console", self.vnc_console),
            ("memory-snapshots", self.memory_snapshots),
            ("boot-iso", self.boot_iso),
            ("serial-log", self.serial_log),
            ("simulated", self.simulated),
        ]
    }

    pub(crate) fn from_wit(f: WitFeatures) -> Self {
        HypervisorFeatures {
            hot_plug_disks: f.contains(WitFeatures::HOT_PLUG_DISKS),
            hot_plug_nics: f.contains(WitFeatures::HOT_PLUG_NICS),
            live_migration: f.contains(WitFeatures::LIVE_MIGRATION),
            vnc_console: f.contains(WitFeatures::VNC_CONSOLE),
            memory_snapshots: f.contains(WitFeatures::MEMORY_SNAPSHOTS),
            boot_iso: f.contains(WitFeatures::BOOT_ISO),
            serial_log: f.contains(WitFeatures::SERIAL_LOG),
            simulated: f.contains(WitFeatures::SIMULATED),
        }
    }
}

/// A hypervisor type a driver serves, e.g. "KVM", and what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HypervisorType {
    pub name: String,
    pub features: HypervisorFeatures,
}

/// The isolation methods a network driver builds and the services it provides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkFacts {
    pub isolation_methods: Vec<String>,
    pub services: Vec<String>,
}

/// The provider names and URL schemes a storage driver serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageFacts {
    pub providers: Vec<String>,
    pub schemes: Vec<String>,
}

/// What a driver serves, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Serves {
    Hypervisor { types: Vec<HypervisorType> },
    Network(NetworkFacts),
    Storage(StorageFacts),
}

impl Serves {
    /// Serving nothing yet: what a driver is taken to serve before its `describe()` answered.
    pub(crate) fn nothing(kind: DriverKind) -> Serves {
        match kind {
            DriverKind::Hypervisor => Serves::Hypervisor { types: Vec::new() },
            DriverKind::Network => Serves::Network(NetworkFacts::default()),
            DriverKind::Storage => Serves::Storage(StorageFacts::default()),
        }
    }

    /// The driver kind this belongs to.
    pub fn kind(&self) -> DriverKind {
        match self {
            Serves::Hypervisor { .. } => DriverKind::Hypervisor,
            Serves::Network(_) => DriverKind::Network,
            Serves::Storage(_) => DriverKind::Storage,
        }
    }

    /// The hypervisor type of that name (without case), as the driver declared it.
    pub fn hypervisor_type(&self, name: &str) -> Option<&HypervisorType> {
        match self {
            Serves::Hypervisor { types } => types.iter().find(|t| t.name.eq_ignore_ascii_case(name)),
            _ => None,
        }
    }

    /// The isolation method of that name (without case), as the driver spelled it.
    pub fn isolation_method(&self, name: &str) -> Option<&str> {
        match self {
            Serves::Network(n) => n.isolation_methods.iter().find(|m| m.eq_ignore_ascii_case(name)).map(String::as_str),
            _ => None,
        }
    }

    /// Whether it serves the storage provider `name` (without case).
    pub fn serves_provider(&self, name: &str) -> bool {
        matches!(self, Serves::Storage(s) if s.providers.iter().any(|p| p.eq_ignore_ascii_case(name)))
    }

    /// Whether it serves URLs of the scheme `scheme` (without case).
    pub fn serves_scheme(&self, scheme: &str) -> bool {
        matches!(self, Serves::Storage(s) if s.schemes.iter().any(|p| p.eq_ignore_ascii_case(scheme)))
    }

    /// One line for operators: "KVM (hot-plug-disks, …), Simulator (…)".
    pub fn summary(&self) -> String {
        match self {
            Serves::Hypervisor { types } => types
                .iter()
                .map(|t| {
                    let f = t.features.names();
                    if f.is_empty() { t.name.clone() } else { format!("{} ({})", t.name, f.join(", ")) }
                })
                .collect::<Vec<_>>()
                .join(", "),
            Serves::Network(n) => {
                let services =
                    if n.services.is_empty() { String::new() } else { format!("; services {}", n.services.join(", ")) };
                format!("isolation {}{services}", n.isolation_methods.join(", "))
            }
            Serves::Storage(s) => format!("providers {}; schemes {}", s.providers.join(", "), s.schemes.join(", ")),
        }
    }

    /// Checks what `describe()` declared against the rules of the WIT: the variant matches
    /// the driver's kind, 1-16 entries per list (services may be none), names of 1-32
    /// letters, digits, `-` or `_` (schemes as URL schemes), no name twice.
    pub(crate) fn check(raw: WitServes, kind: DriverKind) -> Result<Serves, String> {
        let serves = match raw {
            WitServes::Hypervisor(types) => {
                let names: Vec<String> = types.iter().map(|t| t.name.clone()).collect();
                names_ok("hypervisor type", &names, 1, name_chars, NAME_RULE)?;
                Serves::Hypervisor {
                    types: types
                        .into_iter()
                        .map(|t| HypervisorType { name: t.name, features: HypervisorFeatures::from_wit(t.features) })
                        .collect(),
                }
            }
            WitServes::Network(WitNetworkFacts { isolation_methods, services }) => {
                names_ok("isolation method", &isolation_methods, 1, name_chars, NAME_RULE)?;
                names_ok("service", &services, 0, name_chars, NAME_RULE)?;
                Serves::Network(NetworkFacts { isolation_methods, services })
            }
            WitServes::Storage(WitStorageFacts { providers, schemes }) => {
                names_ok("provider", &providers, 1, name_chars, NAME_RULE)?;
                names_ok("scheme", &schemes, 1, scheme_chars, SCHEME_RULE)?;
                Serves::Storage(StorageFacts { providers, schemes })
            }
        };
        if serves.kind() != kind {
            return Err(format!(
                "describe() declares what a {} driver serves, but the component is a {} driver",
                serves.kind().as_str(),
                kind.as_str()
            ));
        }
        Ok(serves)
    }
}

/// A hypervisor type, isolation method, service or provider: 1-32 of `[A-Za-z0-9_-]`.
fn name_chars(name: &str) -> bool {
    (1..=MAX_SERVED_NAME).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A URL scheme (RFC 3986): a letter, then letters, digits, `+`, `-` or `.`; at most 32.
fn scheme_chars(name: &str) -> bool {
    (1..=MAX_SERVED_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// The rule of served names, as the error states it.
const NAME_RULE: &str = "letters, digits, - or _";
const SCHEME_RULE: &str = "a letter, then letters, digits, +, - or .";

fn names_ok(what: &str, names: &[String], min: usize, valid: fn(&str) -> bool, rule: &str) -> Result<(), String> {
    if names.len() < min || names.len() > MAX_SERVED {
        return Err(format!("describe() serves {} {what}s; give {min} to {MAX_SERVED}", names.len()));
    }
    for (i, name) in names.iter().enumerate() {
        if !valid(name) {
            let shown: String = name.chars().take(40).collect();
            return Err(format!("describe() serves the {what} {shown:?}; use 1-{MAX_SERVED_NAME} {rule}"));
        }
        if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(format!("describe() serves the {what} {name:?} twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::plugin::HypervisorType as WitType;

    fn hv(names: &[&str]) -> WitServes {
        WitServes::Hypervisor(
            names.iter().map(|n| WitType { name: (*n).into(), features: WitFeatures::BOOT_ISO }).collect(),
        )
    }

    #[test]
    fn serves_must_match_the_kind() {
        let err = Serves::check(hv(&["KVM"]), DriverKind::Network).unwrap_err();
        assert!(err.contains("a hypervisor driver serves, but the component is a network driver"), "{err}");
        let ok = Serves::check(hv(&["KVM", "Simulator"]), DriverKind::Hypervisor).unwrap();
        assert_eq!(ok.hypervisor_type("kvm").map(|t| t.name.as_str()), Some("KVM"));
        assert_eq!(ok.hypervisor_type("kvm").unwrap().features.names(), ["boot-iso"]);
        assert!(ok.hypervisor_type("xen").is_none());
    }

    #[test]
    fn served_names_are_checked() {
        for (bad, expected) in [
            (hv(&[]), "serves 0 hypervisor types; give 1 to 16"),
            (hv(&["KVM"; 17]), "serves 17 hypervisor types"),
            (hv(&[""]), "the hypervisor type \"\"; use 1-32 letters"),
            (hv(&["has space"]), "the hypervisor type \"has space\""),
            (hv(&[&"x".repeat(33)]), "use 1-32"),
            (hv(&["KVM", "kvm"]), "serves the hypervisor type \"kvm\" twice"),
        ] {
            let err = Serves::check(bad, DriverKind::Hypervisor).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        let net = |methods: &[&str], services: &[&str]| {
            WitServes::Network(WitNetworkFacts {
                isolation_methods: methods.iter().map(|s| s.to_string()).collect(),
                services: services.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert!(Serves::check(net(&["VLAN"], &[]), DriverKind::Network).is_ok());
        assert!(Serves::check(net(&[], &["Dhcp"]), DriverKind::Network).unwrap_err().contains("0 isolation methods"));
        assert!(Serves::check(net(&["A_b-9"], &["Dhcp", "Dns"]), DriverKind::Network).is_ok());
        let store = |providers: &[&str], schemes: &[&str]| {
            WitServes::Storage(WitStorageFacts {
                providers: providers.iter().map(|s| s.to_string()).collect(),
                schemes: schemes.iter().map(|s| s.to_string()).collect(),
            })
        };
        let s = Serves::check(store(&["NFS"], &["nfs", "ceph+rbd"]), DriverKind::Storage).unwrap();
        assert!(s.serves_provider("nfs") && s.serves_scheme("NFS") && !s.serves_scheme("file"));
        assert!(Serves::check(store(&["NFS"], &["9p"]), DriverKind::Storage).unwrap_err().contains("a letter, then"));
        assert!(Serves::check(store(&["NFS"], &[]), DriverKind::Storage).unwrap_err().contains("0 schemes"));
    }

    #[test]
    fn features_convert_and_name_themselves() {
        let f = HypervisorFeatures::from_wit(WitFeatures::HOT_PLUG_DISKS | WitFeatures::SIMULATED);
        assert_eq!(f, HypervisorFeatures { hot_plug_disks: true, simulated: true, ..Default::default() });
        assert_eq!(f.names(), ["hot-plug-disks", "simulated"]);
        assert_eq!(HypervisorFeatures::from_wit(WitFeatures::all()).names().len(), 8);
    }
}
