//! The orchestrator in-process: one demo cloud (Simulator, local storage, SQLite in
//! memory) shared by the tests here, each of which works in an account of its own.
//! No root, libvirtd or NFS is needed: this module is the quick tier's
//! (`scripts/test.sh --quick`).

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};

use crate::support::{DemoCloud, new_uuid};

fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

/// A new user account with its own isolated network, for one test.
struct Tenant<'a> {
    user: Operator<'a>,
    account: String,
    zone: String,
    template: String,
    offering: String,
    network: String,
}

async fn tenant(cloud: &DemoCloud) -> Tenant<'_> {
    let a = cloud.new_account("t").await;
    let network = a.isolated_network("own").await;
    Tenant { user: a.user, account: a.account, zone: a.zone, template: a.template, offering: a.offering, network }
}

fn first(items: Vec<Map<String, Value>>) -> Map<String, Value> {
    items.into_iter().next().expect("at least one item")
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Tenant<'_> {
    async fn deploy(&self, name: &str) -> Result<Map<String, Value>, OperatorError> {
        self.user
            .call(
                "deployVirtualMachine",
                &[
                    ("name", name),
                    ("zoneid", &self.zone),
                    ("templateid", &self.template),
                    ("serviceofferingid", &self.offering),
                    ("networkids", &self.network),
                ],
            )
            .await
    }

    async fn state_of(&self, vm: &str) -> String {
        let listed = self.user.list("listVirtualMachines", &[("id", vm)]).await.expect("listVirtualMachines");
        listed.first().map(|v| text(v, "state").to_owned()).unwrap_or_default()
    }

    /// What this account owns, to show a refused call left nothing behind.
    async fn holdings(&self) -> (usize, usize) {
        let vms = self.user.list("listVirtualMachines", &[]).await.expect("listVirtualMachines").len();
        let volumes = self.user.list("listVolumes", &[]).await.expect("listVolumes").len();
        (vms, volumes)
    }
}

#[test]
fn a_vm_lives_its_whole_life() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let vm = t.deploy("life").await.expect("deployVirtualMachine");
        let vm_id = id(&vm);
        assert_eq!(text(&vm, "state"), "Running");
        assert_eq!(text(&vm, "account"), t.account);
        let root = first(t.user.list("listVolumes", &[("virtualmachineid", &vm_id)]).await.expect("listVolumes"));
        assert_eq!(text(&root, "type"), "ROOT");
        assert_eq!(text(&root, "state"), "Ready");

        t.user.call("stopVirtualMachine", &[("id", &vm_id)]).await.expect("stop");
        assert_eq!(t.state_of(&vm_id).await, "Stopped");
        // Stopping what is stopped is refused, and changes nothing.
        let again = t.user.call("stopVirtualMachine", &[("id", &vm_id)]).await;
        assert!(again.is_err(), "a second stop was accepted");
        assert_eq!(t.state_of(&vm_id).await, "Stopped");

        t.user.call("startVirtualMachine", &[("id", &vm_id)]).await.expect("start");
        assert_eq!(t.state_of(&vm_id).await, "Running");
        t.user.call("rebootVirtualMachine", &[("id", &vm_id)]).await.expect("reboot");
        assert_eq!(t.state_of(&vm_id).await, "Running");

        t.user.call("destroyVirtualMachine", &[("id", &vm_id), ("expunge", "true")]).await.expect("destroy");
        assert_eq!(t.holdings().await, (0, 0), "an expunged VM left something behind");
    });
}

#[test]
fn bad_deploys_get_431_and_leave_nothing() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let before = t.holdings().await;
        let unknown = new_uuid();
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            ("unknown offering", vec![("serviceofferingid", &unknown)]),
            ("unknown template", vec![("templateid", &unknown)]),
            ("malformed zone", vec![("zoneid", "not-a-uuid")]),
            ("bad host name", vec![("name", "no_underscores")]),
        ];
        for (what, overrides) in cases {
            let mut params: Vec<(&str, &str)> = vec![
                ("name", "bad"),
                ("zoneid", &t.zone),
                ("templateid", &t.template),
                ("serviceofferingid", &t.offering),
                ("networkids", &t.network),
            ];
            for (k, v) in overrides {
                params.iter_mut().filter(|(name, _)| *name == k).for_each(|p| p.1 = v);
            }
            let err = t.user.call("deployVirtualMachine", &params).await.expect_err(what);
            assert_eq!(err.code(), Some(431), "{what}: {err}");
            assert_eq!(t.holdings().await, before, "{what} left something behind");
        }
    });
}

#[test]
fn a_snapshot_is_reverted_only_under_a_stopped_vm() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let vm_id = id(&t.deploy("snap").await.expect("deploy"));
        let root = first(t.user.list("listVolumes", &[("virtualmachineid", &vm_id)]).await.expect("listVolumes"));
        let snapshot = t.user.call("createSnapshot", &[("volumeid", &id(&root))]).await.expect("createSnapshot");
        assert_eq!(text(&snapshot, "state"), "CreatedOnPrimary");
        let refused = t.user.call("revertSnapshot", &[("id", &id(&snapshot))]).await.expect_err("revert while running");
        assert_eq!(refused.code(), Some(431), "{refused}");
        assert_eq!(t.state_of(&vm_id).await, "Running");
        t.user.call("stopVirtualMachine", &[("id", &vm_id)]).await.expect("stop");
        t.user.call("revertSnapshot", &[("id", &id(&snapshot))]).await.expect("revert while stopped");
        t.user.call("destroyVirtualMachine", &[("id", &vm_id), ("expunge", "true")]).await.expect("destroy");
    });
}

#[test]
fn one_tenant_cannot_reach_anothers_vm() {
    let cloud = cloud();
    cloud.block_on(async {
        let owner = tenant(cloud).await;
        let other = tenant(cloud).await;
        let vm_id = id(&owner.deploy("mine").await.expect("deploy"));
        assert!(other.user.list("listVirtualMachines", &[]).await.expect("list").is_empty());
        for command in ["stopVirtualMachine", "destroyVirtualMachine", "rebootVirtualMachine"] {
            let err = other.user.call(command, &[("id", &vm_id)]).await.expect_err(command);
            assert_eq!(err.code(), Some(531), "{command}: {err}");
        }
        assert_eq!(owner.state_of(&vm_id).await, "Running");
        // The admin reaches it.
        let admin = cloud.admin().await;
        admin.call("destroyVirtualMachine", &[("id", &vm_id), ("expunge", "true")]).await.expect("admin destroys");
    });
}

// ---------------------------------------------------------------- driver choice by facts

#[test]
fn list_hypervisors_shows_what_the_loaded_drivers_serve() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let types = admin.list("listHypervisors", &[]).await.expect("listHypervisors");
        let features = |name: &str| -> Vec<String> {
            let t = types.iter().find(|t| text(t, "name") == name).unwrap_or_else(|| panic!("{name} in {types:?}"));
            assert_eq!(text(t, "driver"), "kvm", "{t:?}");
            assert!(!text(t, "driverversion").is_empty(), "{t:?}");
            t["features"]
                .as_array()
                .expect("features")
                .iter()
                .map(|f| f.as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let kvm = features("KVM");
        assert!(kvm.iter().any(|f| f == "hot-plug-disks") && kvm.iter().any(|f| f == "vnc-console"), "{kvm:?}");
        assert!(!kvm.iter().any(|f| f == "simulated"), "{kvm:?}");
        let sim = features("Simulator");
        assert!(sim.iter().any(|f| f == "simulated") && !sim.iter().any(|f| f == "hot-plug-disks"), "{sim:?}");
        // Users may ask too (CloudStack lists hypervisors to every role); a zone narrows nothing here.
        let t = tenant(cloud).await;
        let seen = t.user.list("listHypervisors", &[("zoneid", &t.zone)]).await.expect("listHypervisors as a user");
        assert_eq!(seen.len(), types.len());
    });
}

#[test]
fn an_unserved_hypervisor_type_is_refused_naming_the_served_ones() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
        let pod = id(&first(admin.list("listPods", &[("zoneid", &zone)]).await.expect("listPods")));
        let before = admin.list("listClusters", &[]).await.expect("listClusters").len();
        for command in ["addCluster", "addHost"] {
            let err = admin
                .call(
                    command,
                    &[
                        ("clustername", "nowhere"),
                        ("clustertype", "CloudManaged"),
                        ("hypervisor", "Hyperion"),
                        ("podid", &pod),
                        ("zoneid", &zone),
                        ("url", "http://10.9.9.9"),
                    ],
                )
                .await
                .expect_err(command);
            assert_eq!(err.code(), Some(431), "{command}: {err}");
            let said = err.to_string();
            assert!(said.contains("Hyperion") && said.contains("KVM") && said.contains("Simulator"), "{said}");
        }
        assert_eq!(admin.list("listClusters", &[]).await.expect("listClusters").len(), before);
        // The type is compared without case and kept as the driver spells it.
        let c = admin
            .call(
                "addCluster",
                &[
                    ("clustername", &format!("sim-{}", &new_uuid()[..6])),
                    ("clustertype", "CloudManaged"),
                    ("hypervisor", "simulator"),
                    ("podid", &pod),
                    ("zoneid", &zone),
                ],
            )
            .await
            .expect("addCluster with another spelling");
        assert_eq!(text(&c, "hypervisortype"), "Simulator");
        admin.call("deleteCluster", &[("id", &id(&c))]).await.expect("deleteCluster");
    });
}

#[test]
fn an_unserved_isolation_method_is_refused_naming_the_served_ones() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
        let before = admin.list("listPhysicalNetworks", &[]).await.expect("listPhysicalNetworks").len();
        let err = admin
            .call("createPhysicalNetwork", &[("name", "gre"), ("zoneid", &zone), ("isolationmethods", "GRE")])
            .await
            .expect_err("an unserved method");
        assert_eq!(err.code(), Some(431), "{err}");
        let said = err.to_string();
        assert!(said.contains("GRE") && said.contains("serve VLAN"), "{said}");
        // No method is the Flat default, which no loaded driver serves here.
        let err = admin
            .call("createPhysicalNetwork", &[("name", "flat"), ("zoneid", &zone)])
            .await
            .expect_err("the default method unserved");
        assert!(err.to_string().contains("Flat"), "{err}");
        assert_eq!(admin.list("listPhysicalNetworks", &[]).await.expect("listPhysicalNetworks").len(), before);
    });
}

#[test]
fn networks_record_their_driver_and_a_missing_one_shows() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let admin = cloud.admin().await;
        let net = first(admin.list("listNetworks", &[("id", &t.network), ("listall", "true")]).await.expect("list"));
        assert_eq!((text(&net, "driver"), text(&net, "state")), ("vlan", "Allocated"), "{net:?}");
        assert!(net.get("details").is_none(), "{net:?}");
        // The driver that served it is gone (removed from the plugin folder, say).
        sqlx::query("UPDATE networks SET driver = 'gone' WHERE uuid = $1")
            .bind(&t.network)
            .execute(cloud.orch.db.pool())
            .await
            .expect("forgetting the driver");
        let net = first(admin.list("listNetworks", &[("id", &t.network), ("listall", "true")]).await.expect("list"));
        assert_eq!(text(&net, "state"), "Alert", "{net:?}");
        let reason = net["details"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("gone") && reason.contains("not loaded"), "{net:?}");
    });
}

#[test]
fn a_host_whose_driver_is_gone_shows_alert() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let tag = &new_uuid()[..8];
        let zone = admin
            .call(
                "createZone",
                &[
                    ("name", &format!("z{tag}")),
                    ("networktype", "Advanced"),
                    ("dns1", "8.8.8.8"),
                    ("internaldns1", "10.0.0.2"),
                ],
            )
            .await
            .expect("createZone");
        let pod = admin.call("createPod", &[("name", "p"), ("zoneid", &id(&zone))]).await.expect("createPod");
        let cluster = admin
            .call(
                "addCluster",
                &[
                    ("clustername", "c"),
                    ("clustertype", "CloudManaged"),
                    ("hypervisor", "Simulator"),
                    ("podid", &id(&pod)),
                    ("zoneid", &id(&zone)),
                ],
            )
            .await
            .expect("addCluster");
        let host = admin
            .call(
                "addHost",
                &[
                    ("hypervisor", "Simulator"),
                    ("podid", &id(&pod)),
                    ("zoneid", &id(&zone)),
                    ("clusterid", &id(&cluster)),
                    ("url", "test:///default"),
                ],
            )
            .await
            .expect("addHost");
        assert_eq!((text(&host, "state"), text(&host, "driver")), ("Up", "kvm"), "{host:?}");
        assert!(!text(&host, "driverversion").is_empty(), "{host:?}");
        sqlx::query("UPDATE hosts SET driver = 'gone' WHERE uuid = $1")
            .bind(id(&host))
            .execute(cloud.orch.db.pool())
            .await
            .expect("forgetting the driver");
        let shown = first(admin.list("listHosts", &[("id", &id(&host))]).await.expect("listHosts"));
        assert_eq!(text(&shown, "state"), "Alert", "{shown:?}");
        let reason = shown["details"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("gone") && reason.contains("not loaded"), "{shown:?}");
        admin.call("deleteHost", &[("id", &id(&host))]).await.expect("deleteHost");
    });
}

#[test]
fn a_console_is_refused_where_the_type_has_none() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let vm_id = id(&t.deploy("noconsole").await.expect("deploy"));
        let err = t.user.call("createConsoleEndpoint", &[("virtualmachineid", &vm_id)]).await.expect_err("console");
        assert_eq!(err.code(), Some(431), "{err}");
        assert!(err.to_string().contains("hypervisor Simulator cannot"), "{err}");
        // Simulated hosts run nothing: a data disk attaches to a running VM as a record.
        let admin = cloud.admin().await;
        let offering = admin
            .call(
                "createDiskOffering",
                &[("name", &format!("d{}", &new_uuid()[..6])), ("displaytext", "data"), ("disksize", "1")],
            )
            .await
            .expect("createDiskOffering");
        let volume = t
            .user
            .call("createVolume", &[("name", "data"), ("zoneid", &t.zone), ("diskofferingid", &id(&offering))])
            .await
            .expect("createVolume");
        t.user.call("attachVolume", &[("id", &id(&volume)), ("virtualmachineid", &vm_id)]).await.expect("attach");
        t.user.call("detachVolume", &[("id", &id(&volume))]).await.expect("detach");
        t.user.call("deleteVolume", &[("id", &id(&volume))]).await.expect("deleteVolume");
        t.user.call("destroyVirtualMachine", &[("id", &vm_id), ("expunge", "true")]).await.expect("destroy");
    });
}

// ---------------------------------------------------------------- no names decide behaviour

/// Driver names, hypervisor types, isolation methods and storage schemes of the in-tree
/// drivers (and of the URL forms they take): none of them may decide what the orchestrator
/// does. A string literal equal to one (or opening a URL with one) in the orchestrator's
/// source must be in `ALLOWED`, with the reason it is not a driver choice.
const NAMES: &[&str] =
    &["kvm", "qemu", "simulator", "test", "lxc", "vlan", "flat", "vxlan", "gre", "nfs", "local", "file"];

/// (file, literal, why it is not a choice of driver).
const ALLOWED: &[(&str, &str, &str)] = &[
    ("orchestrate/drivers.rs", "Flat", "the one named default: the method of physical networks created without one"),
    ("orchestrate/infra.rs", "kvm", "QEMU's accelerator, a value of a cluster's accel setting"),
    ("orchestrate/locators.rs", "nfs", "the protocol of a locator the drivers return: a data format"),
    ("orchestrate/locators.rs", "nfs://", "a locator's place as pool URLs and images grants name it: a data format"),
    ("orchestrate/locators.rs", "file://", "a locator's place as pool URLs and images grants name it: a data format"),
    ("orchestrate/locators.rs", "file://{}", "a locator's place as images grants name it: a data format"),
    (
        "orchestrate/storage.rs",
        "nfs",
        "the URL form checked before the driver serving the scheme sees it: a data format",
    ),
    (
        "orchestrate/storage.rs",
        "file",
        "the URL form checked before the driver serving the scheme sees it: a data format",
    ),
    ("orchestrate/storage.rs", "nfs://server/path", "the URL form shown in errors"),
    ("orchestrate/storage.rs", "file:///path", "the URL form shown in errors"),
    ("orchestrate/networks.rs", "vlan", "CloudStack's wire names: the response object of createVlanIpRange, a column"),
    ("orchestrate/networks.rs", "Vlan", "CloudStack's broadcastdomaintype of a network with a VLAN"),
    ("orchestrate/networks.rs", "vlan://", "CloudStack's broadcast URI of a VLAN, as clients give it"),
    ("orchestrate/networks.rs", "vlan://{v}", "CloudStack's broadcast URI of a VLAN, as clients read it"),
    ("orchestrate/instances.rs", "vlan://{v}", "CloudStack's broadcast URI of a NIC's VLAN, as clients read it"),
    ("orchestrate/public_ips.rs", "vlan", "CloudStack's wire name: the response object of createVlanIpRange"),
    ("orchestrate/public_ips.rs", "vlan://untagged", "CloudStack's untagged public segment, as clients give it"),
    ("api/commands/network.rs", "vlan", "CloudStack's parameter and response field named vlan"),
    ("api/request/network.rs", "vlan", "CloudStack's parameter named vlan"),
    ("api/request/storage.rs", "NFS", "addSecondaryStorage is CloudStack's legacy NFS-only command: its default"),
    ("api/commands/plugins.rs", "file", "a response field of listPlugins (the component's file name)"),
    ("orchestrate/offerings.rs", "local", "CloudStack's storagetype of disk offerings (local or shared), not a driver"),
];

/// The string literals of Rust source, with their line numbers, outside `#[cfg(test)]`
/// modules and comments. JSON keys (a literal followed by `:`) are wire names and left out.
fn literals(source: &str) -> Vec<(usize, String)> {
    let source = source.split("\n#[cfg(test)]").next().unwrap_or(source);
    let bytes: Vec<char> = source.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < bytes.len() {
        match bytes[i] {
            '\n' => line += 1,
            '/' if bytes.get(i + 1) == Some(&'/') => {
                while i < bytes.len() && bytes[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            // A char literal ('"', '\'', 'x'); lifetimes ('a) have no closing quote nearby.
            '\'' if bytes.get(i + 2) == Some(&'\'') => i += 2,
            '\'' if bytes.get(i + 1) == Some(&'\\') && bytes.get(i + 3) == Some(&'\'') => i += 3,
            '"' => {
                let (start, mut text) = (line, String::new());
                i += 1;
                while i < bytes.len() && bytes[i] != '"' {
                    if bytes[i] == '\\' {
                        i += 1;
                    }
                    if bytes[i] == '\n' {
                        line += 1;
                    }
                    text.push(bytes[i]);
                    i += 1;
                }
                let next = bytes[i + 1..].iter().find(|c| !c.is_whitespace());
                let key = next == Some(&':') && bytes.get(i + 2) != Some(&':');
                if !key {
                    out.push((start, text));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whether a literal names one of `NAMES`: equal to it, or a URL or scheme opening with it.
fn names_one(literal: &str) -> bool {
    let l = literal.to_ascii_lowercase();
    NAMES
        .iter()
        .any(|n| l == *n || l.strip_prefix(n).is_some_and(|rest| rest.starts_with(':') || rest.starts_with('+')))
}

/// The Rust sources under `dir`, with subfolders, as (path from `src/`, text).
fn sources(dir: &std::path::Path, src: &std::path::Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, src, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.strip_prefix(src).expect("under src").to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path).expect("a source file")));
        }
    }
}

#[test]
fn no_driver_or_hypervisor_name_decides_in_the_orchestrator() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["orchestrate", "api"] {
        sources(&src.join(dir), &src, &mut files);
    }
    assert!(files.len() > 20, "no sources under {}", src.display());
    let mut found = Vec::new();
    for (file, source) in &files {
        for (line, literal) in literals(source) {
            let allowed = ALLOWED.iter().any(|(f, l, _)| *f == file && *l == literal);
            if names_one(&literal) && !allowed {
                found.push(format!("{file}:{line}: \"{literal}\""));
            }
        }
    }
    assert!(
        found.is_empty(),
        "driver or hypervisor names decide behaviour in the orchestrator or the API; choose by the drivers' \
         declared facts (orchestrate/drivers.rs), or add a reason to ALLOWED:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_name_scan_sees_what_it_should() {
    let source = "fn f() {\n    if h == \"KVM\" { x(\"qemu+ssh://h\") }\n    // \"kvm\" in a comment\n    \
                  json!({ \"vlan\": 1, \"k\": 'x' });\n    let c = '\"';\n    y(\"nfs\")\n}\n\
                  #[cfg(test)]\nmod tests { \"flat\" }\n";
    let hits: Vec<(usize, String)> = literals(source).into_iter().filter(|(_, l)| names_one(l)).collect();
    assert_eq!(hits, vec![(2, "KVM".to_owned()), (2, "qemu+ssh://h".to_owned()), (6, "nfs".to_owned())]);
    assert!(names_one("vlan://100") && names_one("Simulator") && !names_one("kvmnetworklabel"), "prefixes");
}
