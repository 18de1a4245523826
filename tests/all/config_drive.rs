//! Config drives in the demo cloud (Simulator, local storage): a VM on a network whose
//! offering has its UserData service given by ConfigDrive gets a `config-2` ISO beside its
//! root disk holding what the database records for it, made again at its next start and
//! removed with it. The ISO is read with isoinfo (genisoimage's), without mounting it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, id};

use crate::support::{DemoCloud, new_uuid};

fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

fn first(items: Vec<Map<String, Value>>) -> Map<String, Value> {
    items.into_iter().next().expect("at least one item")
}

/// A file of the ISO by its Rock Ridge path; none when it is not there.
fn iso_file(iso: &Path, path: &str) -> Option<String> {
    let listing = Command::new("isoinfo").args(["-R", "-f", "-i"]).arg(iso).output().expect("running isoinfo");
    assert!(listing.status.success(), "isoinfo -f failed: {}", String::from_utf8_lossy(&listing.stderr));
    if !String::from_utf8_lossy(&listing.stdout).lines().any(|l| l == path) {
        return None;
    }
    let out = Command::new("isoinfo").args(["-R", "-i"]).arg(iso).args(["-x", path]).output().expect("isoinfo");
    assert!(out.status.success(), "isoinfo -x {path} failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).expect("UTF-8"))
}

fn volume_label(iso: &Path) -> String {
    let out = Command::new("isoinfo").args(["-d", "-i"]).arg(iso).output().expect("running isoinfo");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("Volume id: ")).unwrap_or_default().trim().to_owned()
}

fn meta_data(iso: &Path) -> Value {
    serde_json::from_str(&iso_file(iso, "/openstack/latest/meta_data.json").expect("meta_data.json")).unwrap()
}

/// Where the config drive of VM `vm` lies: its root disk's pool folder.
async fn drive_of(cloud: &DemoCloud, vm: &str) -> PathBuf {
    let url: String = sqlx::query_scalar(
        "SELECT p.url FROM instances i JOIN volumes v ON v.id = i.root_volume_id \
         JOIN storage_pools p ON p.id = v.pool_id WHERE i.uuid = $1",
    )
    .bind(vm)
    .fetch_one(cloud.orch.db.pool())
    .await
    .expect("the VM's root disk pool");
    let folder = url.strip_prefix("file://").expect("a local pool").split('?').next().unwrap().to_owned();
    Path::new(&folder).join(wasmstack::orchestrate::config_drive::drive_path(vm))
}

async fn network(admin: &Operator<'_>, user: &Operator<'_>, zone: &str, offering: &str, name: &str) -> String {
    let o = first(admin.list("listNetworkOfferings", &[("name", offering)]).await.expect("listNetworkOfferings"));
    let params = [("name", name), ("displaytext", name), ("networkofferingid", &id(&o)), ("zoneid", zone)];
    id(&user.call("createNetwork", &params).await.expect("createNetwork"))
}

#[test]
fn a_config_drive_carries_keys_userdata_and_password_and_is_rebuilt_at_start() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let account = format!("cd{}", &new_uuid()[..8]);
        let params = [
            ("accounttype", "0"),
            ("username", account.as_str()),
            ("password", "secret-password"),
            ("email", "cd@example.org"),
            ("firstname", "C"),
            ("lastname", "D"),
        ];
        admin.call("createAccount", &params).await.expect("createAccount");
        let user = Operator::as_user(&cloud.orch, &account, "/").await.expect("the new user");
        let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
        let template =
            id(&first(user.list("listTemplates", &[("templatefilter", "featured")]).await.expect("templates")));
        let offering = id(&first(user.list("listServiceOfferings", &[("name", "Small")]).await.expect("offerings")));

        // The offering says who gives its UserData service.
        let o = first(
            admin
                .list("listNetworkOfferings", &[("name", "DefaultL2NetworkOfferingConfigDrive")])
                .await
                .expect("listNetworkOfferings"),
        );
        let services = o["service"].as_array().expect("services");
        let user_data = services.iter().find(|s| s["name"] == "UserData").expect("a UserData service");
        assert_eq!(user_data["provider"][0]["name"], "ConfigDrive", "{o:?}");

        let drive_net = network(&admin, &user, &zone, "DefaultL2NetworkOfferingConfigDrive", "cd").await;
        let plain_net =
            network(&admin, &user, &zone, "DefaultIsolatedNetworkOfferingWithSourceNatService", "plain").await;
        let deploy = |name: &'static str, net: String| {
            let (user, zone, template, offering) = (&user, zone.clone(), template.clone(), offering.clone());
            async move {
                let params = [
                    ("name", name),
                    ("zoneid", zone.as_str()),
                    ("templateid", template.as_str()),
                    ("serviceofferingid", offering.as_str()),
                    ("networkids", net.as_str()),
                ];
                id(&user.call("deployVirtualMachine", &params).await.expect("deployVirtualMachine"))
            }
        };
        let vm = deploy("cdvm", drive_net).await;
        let plain = deploy("plainvm", plain_net).await;

        // At deploy: the VM's identity, nothing it was not given.
        let iso = drive_of(cloud, &vm).await;
        assert!(iso.is_file(), "no config drive at {}", iso.display());
        assert_eq!(volume_label(&iso), "config-2");
        let meta = meta_data(&iso);
        assert_eq!(meta["uuid"], vm.as_str());
        assert_eq!(meta["hostname"], "cdvm");
        assert!(meta.get("public_keys").is_none(), "keys nobody gave: {meta}");
        assert_eq!(iso_file(&iso, "/cloudstack/metadata/vm-id.txt").as_deref(), Some(vm.as_str()));
        assert_eq!(iso_file(&iso, "/cloudstack/metadata/local-hostname.txt").as_deref(), Some("cdvm"));
        assert!(iso_file(&iso, "/openstack/latest/user_data").is_none());
        assert!(iso_file(&iso, "/cloudstack/password/vm_password.txt").is_none());
        let net: Value =
            serde_json::from_str(&iso_file(&iso, "/openstack/latest/network_data.json").expect("network_data.json"))
                .unwrap();
        assert_eq!(net["links"][0]["type"], "phy", "{net}");
        let plain_iso = drive_of(cloud, &plain).await;
        assert!(!plain_iso.exists(), "a VM on a network without ConfigDrive got a config drive");

        // Keys, userdata and a password, as the guest-access API records them.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9jbmZpZ2RyaXZldGVzdGtleXRlc3RrZXl0ZXN0 t@h";
        let db = cloud.orch.db.pool();
        let vm_row: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE uuid = $1")
            .bind(&vm)
            .fetch_one(db)
            .await
            .expect("the VM's row");
        sqlx::query("INSERT INTO instance_ssh_keys (instance_id, name, public_key) VALUES ($1, 'mykey', $2)")
            .bind(vm_row)
            .bind(key)
            .execute(db)
            .await
            .expect("a key");
        // "#!/bin/sh\necho hello\n"
        sqlx::query(
            "UPDATE instances SET user_data = 'IyEvYmluL3NoCmVjaG8gaGVsbG8K', password_pending = 'pw-1' WHERE id = $1",
        )
        .bind(vm_row)
        .execute(db)
        .await
        .expect("userdata and password");

        user.call("stopVirtualMachine", &[("id", &vm)]).await.expect("stop");
        user.call("startVirtualMachine", &[("id", &vm)]).await.expect("start");
        let meta = meta_data(&iso);
        assert_eq!(meta["public_keys"]["mykey"], key, "{meta}");
        assert_eq!(meta["keys"][0]["data"], key, "{meta}");
        assert_eq!(iso_file(&iso, "/openstack/latest/user_data").as_deref(), Some("#!/bin/sh\necho hello\n"));
        assert_eq!(iso_file(&iso, "/cloudstack/userdata/user_data.txt").as_deref(), Some("#!/bin/sh\necho hello\n"));
        assert_eq!(iso_file(&iso, "/cloudstack/metadata/public-keys.txt").as_deref(), Some(key));
        assert_eq!(iso_file(&iso, "/cloudstack/password/vm_password.txt").as_deref(), Some("pw-1"));

        // Expunged, the VM leaves no drive behind.
        for v in [&vm, &plain] {
            user.call("destroyVirtualMachine", &[("id", v), ("expunge", "true")]).await.expect("destroy");
        }
        assert!(!iso.exists(), "the config drive outlived its VM");
    });
}
