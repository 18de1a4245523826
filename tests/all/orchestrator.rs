//! The orchestrator in-process: one demo cloud (Simulator, local storage, SQLite in
//! memory) shared by the tests here, each of which works in an account of its own.
//! No root, libvirtd or NFS is needed: this module is the quick tier's
//! (`scripts/test.sh --quick`).

use std::sync::OnceLock;

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};

use crate::support::{DemoCloud, new_uuid};

fn cloud() -> &'static DemoCloud {
    static CLOUD: OnceLock<DemoCloud> = OnceLock::new();
    CLOUD.get_or_init(DemoCloud::start)
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
    let admin = cloud.admin().await;
    let account = format!("t{}", &new_uuid()[..8]);
    admin
        .call(
            "createAccount",
            &[
                ("accounttype", "0"),
                ("username", &account),
                ("password", "secret-password"),
                ("email", "t@example.org"),
                ("firstname", "T"),
                ("lastname", "Tenant"),
            ],
        )
        .await
        .expect("createAccount");
    let user = Operator::as_user(&cloud.orch, &account, "/").await.expect("the new user");
    let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
    let template = id(&first(user.list("listTemplates", &[("templatefilter", "featured")]).await.expect("templates")));
    let offering = id(&first(user.list("listServiceOfferings", &[("name", "Small")]).await.expect("offerings")));
    let isolated = first(
        user.list("listNetworkOfferings", &[("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")])
            .await
            .expect("network offerings"),
    );
    let network = id(&user
        .call(
            "createNetwork",
            &[("name", "own"), ("displaytext", "own"), ("networkofferingid", &id(&isolated)), ("zoneid", &zone)],
        )
        .await
        .expect("createNetwork"));
    Tenant { user, account, zone, template, offering, network }
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
