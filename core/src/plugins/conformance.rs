//! `wasmstack plugins check`: loads one driver and runs the conformance calls of its
//! kind against throwaway targets (a scratch folder, the libvirt Simulator), so an
//! author can test a driver on their own machine before an operator drops it in.
//!
//! Every call runs in a fresh store, so a panic or trap fails that step alone and
//! the check goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::bindings::hypervisor::{Accel, ConsoleSpec, Disk, DiskBus, DiskDevice, Nic, NicModel, SwitchKind};
use super::bindings::hypervisor::{VmPower, VmSpec};
use super::bindings::network::{
    EgressPolicy, FirewallRule, NetworkSpec, PortForward, PortRange, Protocol, PublicIp, RouterSpec, RouterState,
};
use super::bindings::storage::{Usage, Volume};
use super::bindings::types::{DiskFormat, FileDisk, Locator};
use super::config::{HostConfig, PluginSettings};
use super::driver::{HypervisorDriver, NetworkDriver, StorageDriver};
use super::error::PluginError;
use super::grants::{Capability, Grants};
use super::host::{DriverKind, LoadedPlugin, PluginHost};
use super::settings;

/// The libvirt URI hypervisor drivers are checked against.
pub const SIMULATOR: &str = "test:///default";

const MIB: u64 = 1 << 20;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// One conformance step and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub status: Status,
    /// What was seen: the driver's message when it failed, the reason when skipped.
    pub message: String,
}

/// The whole check of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub plugin: Option<String>,
    pub kind: Option<DriverKind>,
    pub version: Option<String>,
    pub wit: Option<String>,
    /// The throwaway folder a storage driver's calls run against (removed when the check ends).
    pub scratch: Option<PathBuf>,
    pub steps: Vec<Step>,
}

impl Report {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.status != Status::Failed)
    }

    fn push(&mut self, step: &str, status: Status, message: impl Into<String>) {
        self.steps.push(Step { step: step.to_owned(), status, message: message.into() });
    }

    /// Records a call's outcome: `Ok(text)` passes, `Err(text)` fails.
    fn record(&mut self, step: &str, outcome: Result<String, String>) -> bool {
        match outcome {
            Ok(m) => {
                self.push(step, Status::Passed, m);
                true
            }
            Err(m) => {
                self.push(step, Status::Failed, m);
                false
            }
        }
    }

    /// The report as an operator reads it.
    pub fn text(&self) -> String {
        let mut out = format!("checking {}\n", self.file.display());
        if let Some(s) = &self.scratch {
            out.push_str(&format!("  scratch folder {} (removed when the check ends)\n", s.display()));
        }
        for s in &self.steps {
            let status = match s.status {
                Status::Passed => "passed ",
                Status::Failed => "FAILED ",
                Status::Skipped => "skipped",
            };
            out.push_str(&format!("  {status} {}: {}\n", s.step, s.message));
        }
        let count = |st| self.steps.iter().filter(|s| s.status == st).count();
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped\n",
            count(Status::Passed),
            count(Status::Failed),
            count(Status::Skipped)
        ));
        out
    }
}

/// What the check may do beyond the safe defaults.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Let a network driver build and tear down a scratch network on this host.
    pub network: bool,
    /// The driver's settings (see its `config-schema`), checked as the server checks a
    /// pool's or host's `details` and put in the URL the calls get.
    pub details: BTreeMap<String, String>,
}

/// Loads `file` and runs the checks for its kind.
pub fn check(file: &Path, opts: &CheckOptions) -> Report {
    let mut report = Report {
        file: file.to_owned(),
        plugin: None,
        kind: None,
        version: None,
        wit: None,
        scratch: None,
        steps: Vec::new(),
    };
    let scratch = match tempfile::Builder::new().prefix("wasmstack-check-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            report.push("setup", Status::Failed, format!("cannot make a scratch folder: {e}"));
            return report;
        }
    };
    let host = match PluginHost::new(HostConfig::new(scratch.path().join("plugins"))) {
        Ok(h) => h,
        Err(e) => {
            report.push("setup", Status::Failed, e.to_string());
            return report;
        }
    };
    let mut plugin = match host.load_file(file) {
        Ok(p) => p,
        Err(e) => {
            let reason = match e {
                PluginError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            let step = if reason.starts_with("built for") {
                "wit-version"
            } else if reason.starts_with("describe() serves") || reason.starts_with("describe() declares what") {
                "manifest serves"
            } else {
                "load"
            };
            report.push(step, Status::Failed, reason);
            return report;
        }
    };
    report.plugin = Some(plugin.info.name.clone());
    report.kind = Some(plugin.info.kind);
    report.version = Some(plugin.info.version.clone());
    report.wit = Some(plugin.wit_version_label());
    report.push("wit-version", Status::Passed, plugin.wit_version_label());
    manifest(&mut report, &plugin);
    serves(&mut report, &plugin);

    let root = format!("file://{}", scratch.path().display());
    if plugin.info.kind == DriverKind::Storage {
        report.scratch = Some(scratch.path().to_owned());
    }
    let grants = grants_for(&mut report, &plugin, &root);
    plugin.settings = PluginSettings { grants: grants.clone(), limits: plugin.settings.limits };
    plugin.grants = Arc::new(grants);
    let plugin = Arc::new(plugin);
    let with_settings = |report: &mut Report, url: &str| {
        let applied = settings::apply(&plugin.info.name, &plugin.info.config_schema, url, &opts.details);
        let outcome = applied.as_ref().map(|u| format!("the calls get {u}")).map_err(ToString::to_string);
        report.record("settings", outcome);
        applied.ok()
    };
    match plugin.info.kind {
        DriverKind::Storage => match with_settings(&mut report, &format!("{root}/pool")) {
            Some(pool) => storage(&mut report, StorageDriver::new(plugin.clone()), &pool),
            None => report.push("attach", Status::Skipped, "needs settings the schema accepts"),
        },
        DriverKind::Hypervisor => match with_settings(&mut report, SIMULATOR) {
            Some(url) => hypervisor(&mut report, HypervisorDriver::new(plugin.clone()), &url),
            None => report.push("probe-host", Status::Skipped, "needs settings the schema accepts"),
        },
        DriverKind::Network => network(&mut report, NetworkDriver::new(plugin.clone()), opts),
    }
    report
}

fn manifest(report: &mut Report, p: &LoadedPlugin) {
    let i = &p.info;
    report.push(
        "describe",
        Status::Passed,
        format!("{} {} ({} driver): {}", i.name, i.version, i.kind.as_str(), i.description),
    );
    report.record(
        "manifest version",
        semver(&i.version)
            .then(|| i.version.clone())
            .ok_or_else(|| format!("\"{}\" is not a semantic version like 1.2.0", i.version)),
    );
    let mut bad = Vec::new();
    for cap in &i.capabilities {
        let checked = match cap {
            Capability::Libvirt(x) => Grants::new(vec![x.clone()], vec![], vec![]),
            Capability::Images(x) => Grants::new(vec![], vec![x.clone()], vec![]),
            Capability::ImagesRead(x) => Grants::default().with_images_read(vec![x.clone()]),
            Capability::Netdev(x) => Grants::new(vec![], vec![], vec![x.clone()]),
            // Checked by the endpoint grants once they exist; any pattern passes here.
            Capability::Endpoint(_) => Ok(Grants::default()),
        };
        if let Err(e) = checked {
            bad.push(e);
        }
    }
    let wanted = match i.kind {
        DriverKind::Hypervisor => "libvirt",
        DriverKind::Storage => "images",
        DriverKind::Network => "netdev",
    };
    let asks_own = i.capabilities.iter().any(|c| {
        matches!(
            (c, i.kind),
            (Capability::Libvirt(_), DriverKind::Hypervisor)
                | (Capability::Images(_), DriverKind::Storage)
                | (Capability::Netdev(_), DriverKind::Network)
        )
    });
    let caps: Vec<String> = i.capabilities.iter().map(|c| c.to_string()).collect();
    let outcome = if !bad.is_empty() {
        Err(bad.join("; "))
    } else if !asks_own {
        Err(format!("asks for no {wanted} capability, which a {} driver needs", i.kind.as_str()))
    } else {
        Ok(caps.join(", "))
    };
    report.record("manifest capabilities", outcome);
    // The server checks operators' details against it, so it must be in the subset it reads.
    let schema = super::settings::check_schema(&i.config_schema).map(|n| format!("a JSON object, {n} setting(s)"));
    report.record("manifest config-schema", schema);
}

/// What the server will route to the driver. The host checked it when loading (a driver
/// breaking the rules fails this step and nothing else runs); this shows the operator's view.
fn serves(report: &mut Report, p: &LoadedPlugin) {
    let mut seen = p.info.serves.summary();
    if p.wit_version.starts_with("0.1.") {
        seen.push_str(
            " (the host's defaults for a wasmstack:driver@0.1.x driver; build against the current WIT to declare your own)",
        );
    }
    report.push("manifest serves", Status::Passed, seen);
}

fn semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The grants the check gives. A storage driver asking for any images prefix gets the
/// scratch folder in its place (its calls get pool URLs there, where the server would
/// give it pools under its prefix); a hypervisor or network driver gets the scratch
/// target only when it asked for something covering it, as an operator following the
/// manifest would.
fn grants_for(report: &mut Report, p: &LoadedPlugin, root: &str) -> Grants {
    let asked =
        |f: fn(&Capability) -> Option<&String>| p.info.capabilities.iter().filter_map(f).cloned().collect::<Vec<_>>();
    let (cap, target, grants) = match p.info.kind {
        DriverKind::Storage => {
            let prefixes = asked(|c| if let Capability::Images(x) = c { Some(x) } else { None });
            let valid = !prefixes.is_empty() && Grants::new(vec![], prefixes.clone(), vec![]).is_ok();
            let grants = valid.then(|| Grants::new(vec![], vec![root.to_owned()], vec![]));
            if let (Some(Ok(g)), Some(s)) = (grants, &report.scratch) {
                let asked: Vec<String> = prefixes.iter().map(|x| format!("\"{x}\"")).collect();
                report.push(
                    "grants",
                    Status::Passed,
                    format!(
                        "granted images = [\"{root}\"] for the check, in place of the asked {}: \
                         the calls run against the scratch folder {}",
                        asked.join(", "),
                        s.display()
                    ),
                );
                return g;
            }
            report.push(
                "grants",
                Status::Failed,
                "asks for no valid images prefix, so it is granted none; the calls below run without a grant",
            );
            return Grants::default();
        }
        DriverKind::Hypervisor => {
            let asked =
                Grants::new(asked(|c| if let Capability::Libvirt(x) = c { Some(x) } else { None }), vec![], vec![]);
            let covered = asked.is_ok_and(|g| g.allows_libvirt(SIMULATOR));
            ("libvirt", SIMULATOR.to_owned(), covered.then(|| Grants::new(vec![SIMULATOR.into()], vec![], vec![])))
        }
        DriverKind::Network => {
            let prefixes = asked(|c| if let Capability::Netdev(x) = c { Some(x) } else { None });
            let target = prefixes.join(", ");
            let grants = (!prefixes.is_empty()).then(|| Grants::new(vec![], vec![], prefixes));
            ("netdev", target, grants)
        }
    };
    match grants {
        Some(Ok(g)) => {
            report.push("grants", Status::Passed, format!("granted {cap} = [\"{target}\"] for the check"));
            g
        }
        _ => {
            report.push(
                "grants",
                Status::Failed,
                format!("asks for no {cap} grant covering \"{target}\"; the calls below run without one"),
            );
            Grants::default()
        }
    }
}

fn err(e: PluginError) -> String {
    e.to_string()
}

/// A path the server may keep: relative, no `..`, no scheme.
fn check_relative(what: &str, path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.starts_with('/') || path.contains("://") || path.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!("{what} \"{path}\" must be relative to the pool URL (no leading /, scheme or ..)"));
    }
    Ok(())
}

fn check_locator(l: &Locator) -> Result<(), String> {
    match l {
        Locator::File(f) if !f.path.starts_with('/') => {
            Err(format!("locator file path \"{}\" is not absolute", f.path))
        }
        Locator::Network(n) if n.host.is_empty() || n.path.is_empty() || n.protocol.is_empty() => {
            Err("locator network disk lacks a protocol, host or path".into())
        }
        Locator::Block(b) if !b.starts_with("/dev/") => Err(format!("locator block device \"{b}\" is not under /dev/")),
        _ => Ok(()),
    }
}

fn check_volume(v: &Volume, min_size: u64) -> Result<String, String> {
    check_relative("volume path", &v.path)?;
    check_locator(&v.locator)?;
    if v.virtual_size < min_size {
        return Err(format!("virtual-size {} is smaller than the {} bytes asked for", v.virtual_size, min_size));
    }
    // Allocation metadata may add a little; much more means the driver reported wrong.
    if v.physical_size > v.virtual_size + 64 * MIB {
        return Err(format!("physical-size {} is far above virtual-size {}", v.physical_size, v.virtual_size));
    }
    Ok(format!("{} ({} MiB)", v.path, v.virtual_size / MIB))
}

fn check_usage(u: &Usage) -> Result<String, String> {
    if u.total_bytes == 0 {
        return Err("total-bytes is 0".into());
    }
    if u.used_bytes > u.total_bytes {
        return Err(format!("used-bytes {} exceeds total-bytes {}", u.used_bytes, u.total_bytes));
    }
    Ok(format!("{} MiB total, {} MiB used", u.total_bytes / MIB, u.used_bytes / MIB))
}

fn storage(report: &mut Report, d: StorageDriver, pool: &str) {
    report.record("attach", d.attach(pool).map_err(err).and_then(|u| check_usage(&u)));
    report.record("capacity", d.capacity(pool).map_err(err).and_then(|u| check_usage(&u)));
    let size = 64 * MIB;
    let created = d.create_volume(pool, "check-vol", size, None).map_err(err);
    let volume = match created.and_then(|v| check_volume(&v, size).map(|m| (v, m))) {
        Ok((v, m)) => {
            report.push("create-volume", Status::Passed, m);
            v
        }
        Err(m) => {
            report.push("create-volume", Status::Failed, m);
            let needing = [
                "create-volume (again)",
                "resize-volume",
                "create-snapshot",
                "revert-snapshot",
                "delete-snapshot",
                "delete-volume",
            ];
            for step in needing {
                report.push(step, Status::Skipped, "needs the volume create-volume did not make");
            }
            report.record(
                "delete-volume (missing)",
                d.delete_volume(pool, "check-missing").map(|_| "succeeded".into()).map_err(err),
            );
            return;
        }
    };
    let path = volume.path.as_str();
    // The server asks again for a volume whose answer it never got (see create-volume).
    let again = d.create_volume(pool, "check-vol", size, None).map_err(err).and_then(|v| {
        if v.path != path {
            return Err(format!("a second call with the same name made \"{}\" beside \"{path}\"", v.path));
        }
        Ok(format!("the same volume, {path}"))
    });
    report.record("create-volume (again)", again);
    let resized = d.resize_volume(pool, path, 2 * size).map_err(err).and_then(|v| {
        if v.path != path {
            return Err(format!("the volume moved from \"{path}\" to \"{}\"", v.path));
        }
        check_volume(&v, 2 * size)
    });
    report.record("resize-volume", resized);
    let snap = "check-snap";
    let ok = |_| "succeeded".to_owned();
    if report.record("create-snapshot", d.create_snapshot(pool, path, snap).map(ok).map_err(err)) {
        report.record("revert-snapshot", d.revert_snapshot(pool, path, snap).map(ok).map_err(err));
        report.record("delete-snapshot", d.delete_snapshot(pool, path, snap).map(ok).map_err(err));
    } else {
        report.push("revert-snapshot", Status::Skipped, "needs the snapshot create-snapshot did not take");
        report.push("delete-snapshot", Status::Skipped, "needs the snapshot create-snapshot did not take");
    }
    report.record("delete-volume", d.delete_volume(pool, path).map(ok).map_err(err));
    report.record("delete-volume (missing)", d.delete_volume(pool, path).map(ok).map_err(err));
}

/// What operators give `addHost`; each served type must turn it into a URL and an address.
const OPERATOR_URL: &str = "http://127.0.0.1";

fn hypervisor(report: &mut Report, d: HypervisorDriver, url: &str) {
    let types = match &d.plugin().info.serves {
        crate::plugins::Serves::Hypervisor { types } => types.iter().map(|t| t.name.clone()).collect(),
        _ => Vec::new(),
    };
    let mut seen = Vec::new();
    let connected = types.iter().try_for_each(|t| {
        let target = d.connect_host(t, OPERATOR_URL).map_err(|e| format!("{t}: {e}"))?;
        if target.url.trim().is_empty() || target.address.trim().is_empty() {
            return Err(format!("{t}: {OPERATOR_URL} gave an empty url or address"));
        }
        seen.push(format!("{t}: {OPERATOR_URL} is {} at {}", target.url, target.address));
        Ok(())
    });
    report.record("connect-host", connected.map(|()| seen.join("; ")));
    let facts = d.probe_host(url).map_err(err).and_then(|f| {
        if f.cpus == 0 || f.memory_bytes == 0 {
            return Err(format!("reports {} CPUs and {} bytes of memory", f.cpus, f.memory_bytes));
        }
        Ok(format!("{} CPUs, {} MiB, {}", f.cpus, f.memory_bytes / MIB, f.hypervisor_version))
    });
    report.record("probe-host", facts);
    let uuid = uuid::Uuid::new_v4().to_string();
    let name = format!("wscheck-{}", &uuid[..8]);
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: name.clone(),
        vcpus: 1,
        memory_mib: 64,
        accel: Accel::Auto,
        disks: vec![Disk {
            locator: Some(Locator::File(FileDisk {
                path: format!("/var/lib/wasmstack/{name}.qcow2"),
                format: DiskFormat::Qcow2,
            })),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        }],
        nics: vec![Nic {
            mac: format!("52:54:00:{}:{}:{}", &uuid[0..2], &uuid[2..4], &uuid[4..6]),
            bridge: "ws-check0".into(),
            switch: SwitchKind::LinuxBridge,
            vlan: None,
            model: NicModel::Virtio,
            host_device: None,
        }],
        console: ConsoleSpec { serial_log: None, vnc_listen: None },
    };
    let ok = |_| "succeeded".to_owned();
    if !report.record("create-vm", d.create_vm(url, &spec).map(ok).map_err(err)) {
        for step in ["start-vm", "power-state", "list-vms", "stop-vm", "destroy-vm"] {
            report.push(step, Status::Skipped, "needs the VM create-vm did not define");
        }
        return;
    }
    report.record("start-vm", d.start_vm(url, &uuid).map(ok).map_err(err));
    let power = d.power_state(url, &uuid).map_err(err).and_then(|p| match p {
        VmPower::Running => Ok("running".into()),
        other => Err(format!("{other:?} after start-vm; expected running")),
    });
    report.record("power-state", power);
    let listed = d.list_vms(url).map_err(err).and_then(|vms| match vms.iter().find(|v| v.uuid == uuid) {
        Some(v) if v.name == name => Ok(format!("{} VMs, {name} among them", vms.len())),
        Some(v) => Err(format!("lists {uuid} under the name \"{}\", not \"{name}\"", v.name)),
        None => Err(format!("{uuid} is not among the {} VMs listed", vms.len())),
    });
    report.record("list-vms", listed);
    report.record("stop-vm", d.stop_vm(url, &uuid, 0).map(ok).map_err(err));
    report.record("destroy-vm", d.destroy_vm(url, &uuid).map(ok).map_err(err));
}

/// The router services a network driver may declare; one of them means it builds routers.
const ROUTER_SERVICES: [&str; 5] = ["SourceNat", "StaticNat", "PortForwarding", "Firewall", "Lb"];

/// The router steps, run when the driver declares a router service.
const ROUTER_STEPS: [&str; 6] = [
    "router-status (before)",
    "apply-router",
    "apply-router (again)",
    "router-status",
    "destroy-router",
    "destroy-router (missing)",
];

/// The security group steps, run when the driver declares "SecurityGroup".
const SECURITY_STEPS: [&str; 4] =
    ["apply-security", "apply-security (again)", "remove-security", "remove-security (missing)"];

fn network(report: &mut Report, d: NetworkDriver, opts: &CheckOptions) {
    let routes = match &d.plugin().info.serves {
        crate::plugins::Serves::Network(n) => {
            n.services.iter().any(|s| ROUTER_SERVICES.iter().any(|r| r.eq_ignore_ascii_case(s)))
        }
        _ => false,
    };
    let groups = match &d.plugin().info.serves {
        crate::plugins::Serves::Network(n) => n.services.iter().any(|s| s.eq_ignore_ascii_case("SecurityGroup")),
        _ => false,
    };
    let why = "changes this host's network devices; run with --network (as root) to build and remove a scratch network";
    if !opts.network {
        for step in ["implement", "shutdown"] {
            report.push(step, Status::Skipped, why);
        }
        if routes {
            for step in ROUTER_STEPS {
                report.push(step, Status::Skipped, why);
            }
        }
        if groups {
            for step in SECURITY_STEPS {
                report.push(step, Status::Skipped, why);
            }
        }
        return;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let prefix = d.plugin().settings.grants.capabilities().into_iter().find_map(|c| match c {
        Capability::Netdev(p) => Some(p),
        _ => None,
    });
    let Some(prefix) = prefix else {
        for step in ["implement", "shutdown"] {
            report.push(step, Status::Skipped, "no netdev prefix to name a scratch bridge with");
        }
        return;
    };
    let isolation = match &d.plugin().info.serves {
        crate::plugins::Serves::Network(n) => n.isolation_methods.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // A VLAN driver needs a VLAN; one at the top of the range is least likely to be in use.
    let vlan = isolation.eq_ignore_ascii_case("vlan").then_some(4001u16);
    let spec = NetworkSpec {
        id: id.clone(),
        physical: format!("{prefix}chk{}", &id[..4]),
        vlan,
        isolation,
        segment: vlan.map(u32::from),
        cidr: "10.251.0.0/24".into(),
        gateway: Some("10.251.0.1".into()),
        dns: vec![],
        dhcp_server: None,
    };
    let host = "localhost";
    let implemented = d.implement(host, &spec).map_err(err).and_then(|a| {
        if a.bridge.is_empty() {
            Err("the attachment names no bridge".into())
        } else {
            Ok(format!("NICs plug into {}", a.bridge))
        }
    });
    if report.record("implement", implemented) {
        router(report, &d, host, &spec, routes);
        security(report, &d, host, &spec, &prefix, groups);
    } else {
        let steps = routes.then_some(&ROUTER_STEPS[..]).into_iter().chain(groups.then_some(&SECURITY_STEPS[..]));
        for step in steps.flatten() {
            report.push(step, Status::Skipped, "needs the network implement did not build");
        }
    }
    report.record("shutdown", d.shutdown(host, &spec).map(|_| "succeeded".into()).map_err(err));
}

/// A driver with router services builds, re-applies, reports and destroys a router on the
/// scratch network, its public side on the network's own bridge; one without them answers
/// `unsupported` to apply-router.
fn router(report: &mut Report, d: &NetworkDriver, host: &str, net: &NetworkSpec, routes: bool) {
    let public = "198.51.100.10";
    let spec = RouterSpec {
        guest_gateway: "10.251.0.1/24".into(),
        public_label: net.physical.clone(),
        public_ips: vec![PublicIp {
            address: public.into(),
            prefix: 24,
            gateway: "198.51.100.1".into(),
            vlan: None,
            source_nat: true,
            firewall: vec![FirewallRule {
                protocol: Protocol::Tcp,
                ports: Some(PortRange { start: 2222, end: 2222 }),
                cidrs: vec![],
            }],
        }],
        egress_default: EgressPolicy::Allow,
        egress: vec![],
        port_forwards: vec![PortForward {
            public_ip: public.into(),
            protocol: Protocol::Tcp,
            public_ports: PortRange { start: 2222, end: 2222 },
            private_ip: "10.251.0.10".into(),
            private_ports: PortRange { start: 22, end: 22 },
        }],
        static_nats: vec![],
        load_balancers: vec![],
    };
    if !routes {
        let answer = match d.apply_router(host, net, &spec) {
            Err(PluginError::Driver { error: crate::plugins::DriverError::Unsupported(_), .. }) => {
                Ok("unsupported, as a driver without router services answers".into())
            }
            Ok(()) => Err("built a router, but declares no router service in serves".into()),
            Err(e) => Err(format!("{e}; a driver without router services answers unsupported")),
        };
        report.record("apply-router (no router services)", answer);
        return;
    }
    let name = |s: RouterState| match s {
        RouterState::Running => "running",
        RouterState::Degraded => "degraded",
        RouterState::Missing => "missing",
    };
    let state = |want: RouterState| {
        let d = d.clone();
        move || match d.router_status(host, net) {
            Ok(s) if s == want => Ok(name(s).to_owned()),
            Ok(s) => Err(format!("answered {}, expected {}", name(s), name(want))),
            Err(e) => Err(err(e)),
        }
    };
    let ok = |_| "succeeded".to_owned();
    report.record("router-status (before)", state(RouterState::Missing)());
    if report.record("apply-router", d.apply_router(host, net, &spec).map(ok).map_err(err)) {
        report.record("apply-router (again)", d.apply_router(host, net, &spec).map(ok).map_err(err));
        report.record("router-status", state(RouterState::Running)());
    } else {
        for step in ["apply-router (again)", "router-status"] {
            report.push(step, Status::Skipped, "needs the router apply-router did not build");
        }
    }
    let destroyed = d.destroy_router(host, net).map_err(err).and_then(|()| state(RouterState::Missing)());
    report.record("destroy-router", destroyed.map(|s| format!("succeeded; router-status then answers {s}")));
    report.record("destroy-router (missing)", d.destroy_router(host, net).map(ok).map_err(err));
}

/// A driver serving "SecurityGroup" filters a scratch NIC (its device need not exist
/// yet), applies the same rules again, and removes them, twice; one without it answers
/// `unsupported` to apply-security.
fn security(report: &mut Report, d: &NetworkDriver, host: &str, net: &NetworkSpec, prefix: &str, groups: bool) {
    use crate::plugins::{IcmpMatch, NicSecurity, NicSpec, SecurityProtocol, SecurityRule};
    let nic = NicSpec {
        id: uuid::Uuid::new_v4().to_string(),
        mac: "52:54:00:fb:00:0a".into(),
        ip: Some("10.251.0.10".into()),
        hostname: None,
    };
    let device: String = format!("{prefix}chk{}", &net.id[..4]).chars().take(14).collect::<String>() + "n";
    let rule = |protocol, ports: Option<(u16, u16)>, cidr: &str| SecurityRule {
        protocol,
        ports: ports.map(|(start, end)| PortRange { start, end }),
        icmp: None,
        cidrs: vec![cidr.into()],
    };
    let nics = [NicSecurity {
        nic: nic.clone(),
        device: device.clone(),
        ingress: vec![
            rule(SecurityProtocol::Tcp, Some((22, 22)), "10.251.0.0/24"),
            SecurityRule {
                icmp: Some(IcmpMatch { kind: Some(8), code: None }),
                ..rule(SecurityProtocol::Icmp, None, "0.0.0.0/0")
            },
        ],
        egress: vec![rule(SecurityProtocol::Udp, Some((53, 53)), "0.0.0.0/0")],
    }];
    if !groups {
        let answer = match d.apply_security(host, net, &nics) {
            Err(PluginError::Driver { error: crate::plugins::DriverError::Unsupported(_), .. }) => {
                Ok("unsupported, as a driver without the SecurityGroup service answers".into())
            }
            Ok(()) => Err("filtered a NIC, but declares no SecurityGroup service in serves".into()),
            Err(e) => Err(format!("{e}; a driver without the SecurityGroup service answers unsupported")),
        };
        report.record("apply-security (no SecurityGroup service)", answer);
        return;
    }
    let ok = |_| "succeeded".to_owned();
    if report.record("apply-security", d.apply_security(host, net, &nics).map(ok).map_err(err)) {
        report.record("apply-security (again)", d.apply_security(host, net, &nics).map(ok).map_err(err));
    } else {
        report.push("apply-security (again)", Status::Skipped, "needs the rules apply-security did not set");
    }
    report.record("remove-security", d.remove_security(host, net, &nic, &device).map(ok).map_err(err));
    report.record("remove-security (missing)", d.remove_security(host, net, &nic, &device).map(ok).map_err(err));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_versions() {
        assert!(check_relative("p", "volumes/a.qcow2").is_ok());
        for bad in ["", "/abs", "file:///x", "../x", "a/../b"] {
            assert!(check_relative("p", bad).is_err(), "{bad}");
        }
        assert!(semver("1.2.3") && semver("0.1.0-rc.1") && !semver("1.2") && !semver("v1.2.3"));
    }
}
