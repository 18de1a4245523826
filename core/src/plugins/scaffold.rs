//! `wasmstack plugins new`: a standalone driver crate an outside author starts from.
//!
//! The WIT files and the wit-bindgen pin are compiled into the server from the
//! repository itself, so a generated crate always speaks exactly what this server
//! speaks.

use std::fmt::Write as _;
use std::path::Path;

use super::host::DriverKind;

/// The WIT files this server implements, by file name.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("endpoint.wit", include_str!("../../../wit/endpoint.wit")),
    ("hypervisor.wit", include_str!("../../../wit/hypervisor.wit")),
    ("images.wit", include_str!("../../../wit/images.wit")),
    ("libvirt.wit", include_str!("../../../wit/libvirt.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("netdev.wit", include_str!("../../../wit/netdev.wit")),
    ("network.wit", include_str!("../../../wit/network.wit")),
    ("plugin.wit", include_str!("../../../wit/plugin.wit")),
    ("storage.wit", include_str!("../../../wit/storage.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

// The pin the in-tree drivers build with; a generated crate copies it.
const ROOT_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// Why a crate could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("bad driver name \"{0}\": use 1-32 lowercase letters, digits and dashes, starting with a letter")]
    BadName(String),
    #[error("{0} exists and is not empty")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Whether `name` is a valid plugin name (the host refuses others in `describe()`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The wit-bindgen dependency line of the root workspace, e.g.
/// `wit-bindgen = { version = "=0.61.1", ... }`.
pub fn wit_bindgen_dependency() -> String {
    let root: toml::Table = toml::from_str(ROOT_MANIFEST).expect("the root Cargo.toml is valid TOML");
    match &root["workspace"]["dependencies"]["wit-bindgen"] {
        toml::Value::Table(t) => {
            let fields: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("wit-bindgen = {{ {} }}", fields.join(", "))
        }
        other => format!("wit-bindgen = {other}"),
    }
}

/// Every file of a new driver crate, as (relative path, contents).
pub fn files(kind: DriverKind, name: &str) -> Result<Vec<(String, String)>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let mut out = vec![
        ("Cargo.toml".to_owned(), cargo_toml(name)),
        ("src/lib.rs".to_owned(), lib_rs(kind, name)),
        ("grants.toml".to_owned(), grants_toml(kind, name)),
        ("README.md".to_owned(), readme(kind, name)),
        (".gitignore".to_owned(), "/target\n".to_owned()),
    ];
    out.extend(WIT_FILES.iter().map(|(f, text)| (format!("wit/{f}"), (*text).to_owned())));
    Ok(out)
}

/// Writes a new driver crate into `dir`, which must be missing or empty.
pub fn generate(kind: DriverKind, name: &str, dir: &Path) -> Result<Vec<String>, ScaffoldError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ScaffoldError::Io { path, source }
    };
    let files = files(kind, name)?;
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::NotEmpty(dir.display().to_string()));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(rel);
    }
    Ok(written)
}

/// The `.wasm` file cargo writes for a crate (dashes become underscores).
pub fn artifact(name: &str) -> String {
    format!("{}.wasm", name.replace('-', "_"))
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The version wasmstack's own drivers are built with.
{dep}

[profile.release]
opt-level = "s"
strip = true

# A crate of its own, even when it sits inside another workspace.
[workspace]
"#,
        dep = wit_bindgen_dependency()
    )
}

/// (WIT world, exported interface, default capability, the functions of the kind's interface).
struct KindTemplate {
    world: &'static str,
    uses: &'static str,
    capability: &'static str,
    /// The `plugin` types `serves` needs, and what it declares (TYPE: the Rust type name,
    /// NAME: the driver's name).
    serves_uses: &'static str,
    serves: &'static str,
    grant_key: &'static str,
    grant_value: &'static str,
    /// (WIT name, Rust signature without `fn`), in WIT order.
    functions: &'static [(&'static str, &'static str)],
}

fn template(kind: DriverKind) -> KindTemplate {
    match kind {
        DriverKind::Storage => KindTemplate {
            world: "storage-driver",
            uses: "use exports::wasmstack::driver::storage::{Guest as Storage, Usage, Volume};\n\
                   use wasmstack::driver::types::{DiskFormat, DriverError, Locator};",
            capability: "Capability::Images(\"file:///\".into())",
            serves_uses: "Serves, StorageFacts",
            serves: "// EDIT: the `provider` names operators give in addImageStore and createStoragePool,
            // and the URL schemes of the pools and stores this driver handles.
            serves: Serves::Storage(StorageFacts {
                providers: vec![\"NAME\".into()],
                schemes: vec![\"file\".into()],
            }),",
            grant_key: "images",
            grant_value: "file:///srv/NAME",
            functions: &[
                ("attach", "attach(url: String) -> Result<Usage, DriverError>"),
                ("capacity", "capacity(url: String) -> Result<Usage, DriverError>"),
                (
                    "create-volume",
                    "create_volume(pool: String, name: String, size_bytes: u64, template: Option<String>) -> Result<Volume, DriverError>",
                ),
                ("delete-volume", "delete_volume(pool: String, path: String) -> Result<(), DriverError>"),
                (
                    "resize-volume",
                    "resize_volume(pool: String, path: String, size_bytes: u64) -> Result<Volume, DriverError>",
                ),
                (
                    "create-snapshot",
                    "create_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError>",
                ),
                (
                    "revert-snapshot",
                    "revert_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError>",
                ),
                (
                    "delete-snapshot",
                    "delete_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError>",
                ),
                (
                    "export-image",
                    "export_image(pool: String, path: String, snapshot: Option<String>, store: String, name: String) -> Result<Volume, DriverError>",
                ),
                (
                    "install-template",
                    "install_template(pool: String, store: String, image: String) -> Result<Volume, DriverError>",
                ),
                (
                    "register-image",
                    "register_image(store: String, source: String, name: String, format: DiskFormat, sha256: Option<String>) -> Result<Volume, DriverError>",
                ),
                ("delete-image", "delete_image(url: String, path: String) -> Result<(), DriverError>"),
                ("locate", "locate(url: String, path: String) -> Result<Locator, DriverError>"),
            ],
        },
        DriverKind::Hypervisor => KindTemplate {
            world: "hypervisor-driver",
            uses: "use exports::wasmstack::driver::hypervisor::{\n    \
                   ConsoleEndpoint, Disk, Guest as Hypervisor, HostFacts, HostTarget, VmPower, VmSpec, VmStats, \
                   VmStatus,\n};\n\
                   use wasmstack::driver::types::DriverError;",
            capability: "Capability::Libvirt(\"test:///default\".into())",
            serves_uses: "HypervisorFeatures, HypervisorType, Serves",
            serves: "// EDIT: the hypervisor types operators give in addCluster and addHost
            // (hypervisor=TYPE), and for each what it can do: set only the features this
            // driver implements, e.g. HypervisorFeatures::HOT_PLUG_DISKS | HypervisorFeatures::VNC_CONSOLE
            // (also HOT_PLUG_NICS, LIVE_MIGRATION, MEMORY_SNAPSHOTS, BOOT_ISO, SERIAL_LOG, SIMULATED).
            serves: Serves::Hypervisor(vec![HypervisorType {
                name: \"TYPE\".into(),
                features: HypervisorFeatures::empty(),
            }]),",
            grant_key: "libvirt",
            grant_value: "test:///default",
            functions: &[
                (
                    "connect-host",
                    "connect_host(hypervisor_type: String, url: String) -> Result<HostTarget, DriverError>",
                ),
                ("probe-host", "probe_host(url: String) -> Result<HostFacts, DriverError>"),
                ("create-vm", "create_vm(url: String, spec: VmSpec) -> Result<(), DriverError>"),
                ("start-vm", "start_vm(url: String, uuid: String) -> Result<(), DriverError>"),
                ("stop-vm", "stop_vm(url: String, uuid: String, timeout_ms: u32) -> Result<(), DriverError>"),
                ("reboot-vm", "reboot_vm(url: String, uuid: String, forced: bool) -> Result<(), DriverError>"),
                ("destroy-vm", "destroy_vm(url: String, uuid: String) -> Result<(), DriverError>"),
                ("power-state", "power_state(url: String, uuid: String) -> Result<VmPower, DriverError>"),
                ("list-vms", "list_vms(url: String) -> Result<Vec<VmStatus>, DriverError>"),
                ("console", "console(url: String, uuid: String) -> Result<ConsoleEndpoint, DriverError>"),
                ("stats", "stats(url: String, uuid: String) -> Result<VmStats, DriverError>"),
                ("attach-disk", "attach_disk(url: String, uuid: String, disk: Disk) -> Result<(), DriverError>"),
                ("detach-disk", "detach_disk(url: String, uuid: String, target: String) -> Result<(), DriverError>"),
            ],
        },
        DriverKind::Network => KindTemplate {
            world: "network-driver",
            uses: "use exports::wasmstack::driver::network::{\n    Attachment, Guest as Network, NetworkSpec, NicSecurity, NicSpec, RouterSpec, RouterState,\n};\n\
                   use wasmstack::driver::types::DriverError;",
            capability: "Capability::Netdev(\"ws-\".into())",
            serves_uses: "NetworkFacts, Serves",
            serves: "// EDIT: the isolation methods operators give in createPhysicalNetwork
            // (isolationmethods=TYPE), and the network services it provides, e.g. \"Dhcp\".
            serves: Serves::Network(NetworkFacts {
                isolation_methods: vec![\"TYPE\".into()],
                services: vec![],
            }),",
            grant_key: "netdev",
            grant_value: "ws-",
            functions: &[
                ("implement", "implement(host: String, net: NetworkSpec) -> Result<Attachment, DriverError>"),
                ("shutdown", "shutdown(host: String, net: NetworkSpec) -> Result<(), DriverError>"),
                (
                    "prepare-nic",
                    "prepare_nic(host: String, net: NetworkSpec, nic: NicSpec) -> Result<Attachment, DriverError>",
                ),
                ("release-nic", "release_nic(host: String, net: NetworkSpec, nic: NicSpec) -> Result<(), DriverError>"),
                (
                    "apply-router",
                    "apply_router(host: String, net: NetworkSpec, router: RouterSpec) -> Result<(), DriverError>",
                ),
                ("destroy-router", "destroy_router(host: String, net: NetworkSpec) -> Result<(), DriverError>"),
                ("router-status", "router_status(host: String, net: NetworkSpec) -> Result<RouterState, DriverError>"),
                (
                    "apply-security",
                    "apply_security(host: String, net: NetworkSpec, nics: Vec<NicSecurity>) -> Result<(), DriverError>",
                ),
                (
                    "remove-security",
                    "remove_security(host: String, net: NetworkSpec, nic: NicSpec, device: String) -> Result<(), DriverError>",
                ),
            ],
        },
    }
}

fn trait_name(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Storage => "Storage",
        DriverKind::Hypervisor => "Hypervisor",
        DriverKind::Network => "Network",
    }
}

fn kind_variant(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Storage => "Storage",
        DriverKind::Hypervisor => "Hypervisor",
        DriverKind::Network => "Network",
    }
}

/// The driver's Rust type name: "my-pool" becomes `MyPool`.
fn type_name(name: &str) -> String {
    name.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn lib_rs(kind: DriverKind, name: &str) -> String {
    let t = template(kind);
    let ty = type_name(name);
    let kind_str = kind.as_str();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"//! {name}: a wasmstack {kind_str} driver.
//!
//! Every function below answers "not supported" until you write it. Build with
//! `cargo build --release --target wasm32-wasip2`; test with `wasmstack plugins check`.

wit_bindgen::generate!({{ world: "{world}", path: "wit", generate_all }});

use exports::wasmstack::driver::plugin::{{
    Capability, DriverKind, Guest as Plugin, PluginInfo, {serves_uses},
}};
{uses}

struct {ty};

impl Plugin for {ty} {{
    fn describe() -> PluginInfo {{
        PluginInfo {{
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::{variant},
            {serves}
            // EDIT: one line the operator reads in `wasmstack plugins list`.
            description: "{name} {kind_str} driver".into(),
            // EDIT: what the driver needs from the host. The operator grants these (or
            // narrower ones) in wasmstack.toml; see grants.toml beside Cargo.toml.
            capabilities: vec![{capability}],
            // EDIT: a JSON Schema of the per-host or per-pool settings, or "{{}}".
            config_schema: "{{}}".into(),
        }}
    }}
}}

fn unsupported<T>(function: &str) -> Result<T, DriverError> {{
    Err(DriverError::Unsupported(format!("{name} does not support {{function}} yet")))
}}

impl {trait_name} for {ty} {{
"#,
        world = t.world,
        uses = t.uses,
        serves_uses = t.serves_uses,
        serves = t.serves.replace("TYPE", &ty).replace("NAME", name),
        variant = kind_variant(kind),
        capability = t.capability.replace("NAME", name),
        trait_name = trait_name(kind),
    );
    for (i, (wit, sig)) in t.functions.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        // Unused arguments are prefixed with `_` so the skeleton builds without warnings.
        let sig = underscore_args(sig);
        let _ = writeln!(s, "    fn {sig} {{\n        unsupported(\"{wit}\")\n    }}");
    }
    let _ = write!(s, "}}\n\nexport!({ty});\n");
    s
}

fn underscore_args(sig: &str) -> String {
    let (head, rest) = sig.split_once('(').expect("a signature");
    let (args, tail) = rest.split_once(") ->").expect("a signature");
    let args: Vec<String> = args
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(|a| if a.contains(':') { format!("_{a}") } else { a.to_owned() })
        .collect();
    format!("{head}({}) ->{tail}", args.join(", "))
}

fn grants_toml(kind: DriverKind, name: &str) -> String {
    let t = template(kind);
    format!(
        "# Paste into the server's wasmstack.toml (in its data folder) and narrow to what this\n\
         # driver may really touch. Until it is granted, calls that need it are refused.\n\
         [plugin.{name}]\n{key} = [\"{value}\"]\ntimeout-ms = 30000\n",
        key = t.grant_key,
        value = t.grant_value.replace("NAME", name),
    )
}

fn readme(kind: DriverKind, name: &str) -> String {
    let t = template(kind);
    let wasm = artifact(name);
    let mut list = String::new();
    for (wit, _) in t.functions {
        let _ = writeln!(list, "- `{wit}`");
    }
    format!(
        r#"# {name}

A wasmstack {kind} driver (world `{world}` of `{wit}`).

## Build

```sh
rustup target add wasm32-wasip2   # once
cargo build --release --target wasm32-wasip2
```

The driver is `target/wasm32-wasip2/release/{wasm}`.

## Test

```sh
wasmstack plugins check target/wasm32-wasip2/release/{wasm}
```

runs the conformance calls for a {kind} driver and says which pass. A fresh skeleton fails
them all with "not supported" until its functions are written.

## Drop it in

1. Paste `grants.toml` into the server's `wasmstack.toml` (in its data folder) and narrow the
   grants to what the driver may touch.
2. Copy `{wasm}` into the server's `plugins` folder as `{name}.wasm` (write it aside and rename
   it into place): a driver's name is its file name, and one whose `describe()` gives another
   name is refused.
   A running server loads it within seconds, no restart; `wasmstack plugins list` shows it,
   or why it was refused.

## What it serves

`describe()` declares what the driver serves ({serves_what}); the server routes
requests to a driver by these facts, never by its name. Edit them in `src/lib.rs`, and see
"How the server chooses a driver" in wasmstack's docs/writing-a-driver.md.
{extra}
## What to write

`src/lib.rs` answers "not supported" for each of:

{list}
The files in `wit/` are the contract, with every function documented; do not edit them
(a driver built against other WIT is refused).
"#,
        kind = kind.as_str(),
        world = t.world,
        wit = super::host::SUPPORTED_WIT,
        serves_what = match kind {
            DriverKind::Hypervisor =>
                "the hypervisor types operators give `addCluster` and `addHost`, each with its features",
            DriverKind::Network => "the isolation methods operators give `createPhysicalNetwork`, and its services",
            DriverKind::Storage => "the `provider` names of image stores and pools, and the URL schemes of their URLs",
        },
        extra = match kind {
            DriverKind::Hypervisor => {
                "\nA hypervisor that libvirt does not drive is reached through its own API with the\n\
                 `endpoint` import (HTTP/1.1 over a unix socket or TCP): ask for\n\
                 `Capability::Endpoint(\"unix:///run/myhv/*.sock\".into())` and the operator grants it as\n\
                 `endpoint = [...]`; drop the `Libvirt` capability then.\n"
            }
            _ => "",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pins() {
        assert!(valid_name("my-pool2"));
        for bad in ["", "My", "2x", "a_b", &"a".repeat(33)] {
            assert!(!valid_name(bad), "{bad}");
        }
        let dep = wit_bindgen_dependency();
        assert!(dep.starts_with("wit-bindgen = {") && dep.contains("version = \"="), "{dep}");
        assert_eq!(type_name("my-pool"), "MyPool");
        assert_eq!(underscore_args("f(a: u8, b: u8) -> X"), "f(_a: u8, _b: u8) -> X");
    }

    #[test]
    fn every_wit_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wit"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = WIT_FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn refuses_a_non_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let err = generate(DriverKind::Storage, "x", dir.path()).unwrap_err();
        assert!(err.to_string().ends_with("exists and is not empty"), "{err}");
    }
}
