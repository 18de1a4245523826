//! SSH key pairs, userdata and one-time passwords through the orchestrator in-process, on
//! the process's demo cloud (Simulator, SQLite in memory). Each refusal is checked for
//! CloudStack's code and text, and for leaving the database as it was.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};

use crate::support::{DemoCloud, new_uuid};

/// A key made by `ssh-keygen -t ed25519`, and its `ssh-keygen -E md5 -l` fingerprint.
const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ8/VkHvZc78znw2HoBWHZeW95l+yhukrgL9/VjKaql someone@example";
const ED25519_MD5: &str = "e3:d9:9d:de:e3:61:ce:a5:e9:cb:01:65:15:1e:12:2f";

fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

fn first(items: Vec<Map<String, Value>>) -> Map<String, Value> {
    items.into_iter().next().expect("at least one item")
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn refusal(e: OperatorError) -> (u32, String) {
    match e {
        OperatorError::Command { code, text, .. } => (code, text),
        other => panic!("not an API refusal: {other}"),
    }
}

/// One number from the database, to show a refusal changed nothing.
async fn scalar(cloud: &DemoCloud, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(cloud.orch.db.pool()).await.expect(sql)
}

/// What the guest access tables hold for one account: a refusal leaves this as it was.
/// Other tests share the cloud, so only the account's own rows are counted.
async fn state(cloud: &DemoCloud, account: &str) -> [i64; 6] {
    let of = format!("(SELECT id FROM accounts WHERE name = '{account}' AND removed IS NULL)");
    [
        scalar(cloud, &format!("SELECT COUNT(*) FROM ssh_keypairs WHERE account_id = {of}")).await,
        scalar(cloud, &format!("SELECT COUNT(*) FROM ssh_keypairs WHERE account_id = {of} AND removed IS NULL")).await,
        scalar(
            cloud,
            &format!(
                "SELECT COUNT(*) FROM instance_ssh_keys k JOIN instances i ON i.id = k.instance_id \
                 WHERE i.account_id = {of}"
            ),
        )
        .await,
        scalar(cloud, &format!("SELECT COUNT(*) FROM user_data WHERE account_id = {of} AND removed IS NULL")).await,
        scalar(cloud, &format!("SELECT COUNT(*) FROM instances WHERE account_id = {of}")).await,
        scalar(
            cloud,
            &format!("SELECT COUNT(*) FROM instances WHERE account_id = {of} AND password_pending IS NOT NULL"),
        )
        .await,
    ]
}

/// A user account of its own, with the demo's zone, template and offering.
struct Tenant<'a> {
    user: Operator<'a>,
    account: String,
    zone: String,
    template: String,
    offering: String,
    network: String,
}

async fn tenant(cloud: &DemoCloud) -> Tenant<'_> {
    let a = cloud.new_account("g").await;
    let network = a.isolated_network("own").await;
    Tenant { user: a.user, account: a.account, zone: a.zone, template: a.template, offering: a.offering, network }
}

impl Tenant<'_> {
    async fn deploy(&self, template: &str, extra: &[(&str, &str)]) -> Result<Map<String, Value>, OperatorError> {
        let name = format!("vm-{}", &new_uuid()[..8]);
        let mut params = vec![
            ("name", name.as_str()),
            ("zoneid", &self.zone),
            ("templateid", template),
            ("serviceofferingid", &self.offering),
            ("networkids", &self.network),
        ];
        params.extend_from_slice(extra);
        self.user.call("deployVirtualMachine", &params).await
    }

    async fn vm(&self, vm: &str) -> Map<String, Value> {
        first(self.user.list("listVirtualMachines", &[("id", vm)]).await.expect("listVirtualMachines"))
    }
}

/// A public template of the demo's image, registered by the admin (password-enabled or not).
async fn template(cloud: &DemoCloud, password_enabled: bool) -> String {
    let admin = cloud.admin().await;
    let demo = first(admin.list("listTemplates", &[("templatefilter", "featured")]).await.expect("templates"));
    let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
    let name = format!("t-{}", &new_uuid()[..8]);
    let t = admin
        .call(
            "registerTemplate",
            &[
                ("name", &name),
                ("displaytext", &name),
                ("url", text(&demo, "url")),
                ("format", "QCOW2"),
                ("hypervisor", "Simulator"),
                ("zoneid", &zone),
                ("ispublic", "true"),
                ("passwordenabled", if password_enabled { "true" } else { "false" }),
            ],
        )
        .await
        .expect("registerTemplate");
    admin.wait_template(&id(&t), Duration::from_secs(60)).await.expect("the template downloads");
    id(&t)
}

/// The OpenSSH public line of a PKCS#1 PEM RSA private key, built by hand.
fn public_line_of(private_pem: &str) -> String {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(private_pem).expect("a PKCS#1 PEM RSA key");
    let mut blob = Vec::new();
    let mut put = |bytes: &[u8]| {
        blob.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        blob.extend_from_slice(bytes);
    };
    put(b"ssh-rsa");
    for n in [key.e().to_bytes_be(), key.n().to_bytes_be()] {
        let n = if n[0] & 0x80 != 0 { [&[0u8][..], &n].concat() } else { n };
        put(&n);
    }
    format!("ssh-rsa {}", STANDARD.encode(&blob))
}

fn md5_fingerprint(line: &str) -> String {
    let blob = STANDARD.decode(line.split(' ').nth(1).expect("type and data")).expect("base64");
    Md5::digest(&blob).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
fn key_pairs_are_created_registered_listed_and_deleted() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let made = t.user.call("createSSHKeyPair", &[("name", "made")]).await.expect("createSSHKeyPair");
        let private = text(&made, "privatekey").to_owned();
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{made:?}");
        assert_eq!(text(&made, "account"), t.account);
        // The stored public key is the private key's, and the fingerprint is its MD5.
        let public = public_line_of(&private);
        let stored: String = sqlx::query_scalar("SELECT public_key FROM ssh_keypairs WHERE uuid = $1")
            .bind(id(&made))
            .fetch_one(cloud.orch.db.pool())
            .await
            .expect("the stored key");
        assert_eq!(stored, public);
        assert_eq!(text(&made, "fingerprint"), md5_fingerprint(&public));
        assert_eq!(text(&made, "fingerprint").len(), 47);

        let given = t
            .user
            .call("registerSSHKeyPair", &[("name", "given"), ("publickey", ED25519)])
            .await
            .expect("registerSSHKeyPair");
        assert_eq!(text(&given, "fingerprint"), ED25519_MD5);
        assert!(given.get("privatekey").is_none(), "{given:?}");

        // Listed without the private key, and found by each filter.
        let all = t.user.list("listSSHKeyPairs", &[]).await.expect("listSSHKeyPairs");
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|k| k.get("privatekey").is_none()));
        for filter in [("name", "given"), ("fingerprint", ED25519_MD5), ("keyword", "giv"), ("id", &id(&given))] {
            let found = t.user.list("listSSHKeyPairs", &[filter]).await.expect("filtered");
            assert_eq!(found.iter().map(|k| text(k, "name")).collect::<Vec<_>>(), ["given"], "{filter:?}");
        }
        // Another account sees none of them; the root admin does with listall.
        let other = tenant(cloud).await;
        assert!(other.user.list("listSSHKeyPairs", &[]).await.expect("list").is_empty());
        let admin = cloud.admin().await;
        let seen = admin.list("listSSHKeyPairs", &[("listall", "true"), ("name", "given")]).await.expect("list");
        assert!(seen.iter().any(|k| text(k, "account") == t.account));

        // Refusals: each CloudStack's text, and nothing stored.
        let before = state(cloud, &t.account).await;
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: [Case; 5] = [
            ("createSSHKeyPair", vec![("name", "made")], "A key pair with name 'made' already exists."),
            (
                "registerSSHKeyPair",
                vec![("name", "made"), ("publickey", ED25519)],
                "A key pair with name 'made' already exists for this account.",
            ),
            (
                "registerSSHKeyPair",
                vec![("name", "again"), ("publickey", ED25519)],
                "A key pair with key 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ8/VkHvZc78znw2HoBWHZeW95l+yhukrgL9/VjKaql' \
                 already exists for this account.",
            ),
            (
                "registerSSHKeyPair",
                vec![("name", "bad"), ("publickey", "-----BEGIN RSA PRIVATE KEY----- abc")],
                "Public key is invalid",
            ),
            ("registerSSHKeyPair", vec![("name", "bad"), ("publickey", "ssh-rsa bm90IGEga2V5")], "Public key is invalid"),
        ];
        for (command, params, wanted) in cases {
            let (code, text) = refusal(t.user.call(command, &params).await.expect_err(wanted));
            assert_eq!((code, text.as_str()), (431, wanted), "{command} {params:?}");
            assert_eq!(state(cloud, &t.account).await, before, "{command} {params:?} changed the database");
        }

        t.user.call("deleteSSHKeyPair", &[("name", "given")]).await.expect("deleteSSHKeyPair");
        assert_eq!(t.user.list("listSSHKeyPairs", &[]).await.expect("list").len(), 1);
        let (code, text) = refusal(t.user.call("deleteSSHKeyPair", &[("name", "given")]).await.expect_err("gone"));
        assert_eq!(code, 431);
        assert_eq!(text, format!("A key pair with name 'given' does not exist for account {} in specified domain id", t.account));
        // The name is free again.
        t.user.call("registerSSHKeyPair", &[("name", "given"), ("publickey", ED25519)]).await.expect("registered again");
        let events = t.user.list("listEvents", &[("type", "REGISTER.SSH.KEYPAIR")]).await.expect("listEvents");
        assert_eq!(events.len(), 3, "{events:?}");
    });
}

#[test]
fn deploy_copies_key_pairs_and_checks_userdata() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        t.user.call("registerSSHKeyPair", &[("name", "one"), ("publickey", ED25519)]).await.expect("one");
        t.user.call("createSSHKeyPair", &[("name", "two")]).await.expect("two");
        let script = STANDARD.encode("#!/bin/sh\necho hello > /tmp/marker\n");
        let vm = t
            .deploy(&t.template, &[("keypairs", "one,two"), ("userdata", &script), ("startvm", "false")])
            .await
            .expect("deploy with keys and userdata");
        assert_eq!(text(&vm, "keypairs"), "one,two", "{vm:?}");
        assert!(vm.get("password").is_none(), "the demo template has no passwords: {vm:?}");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&vm))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), script);
        assert_eq!(text(&got, "virtualmachineid"), id(&vm));
        // Deleting a key pair later leaves the VM its copy.
        t.user.call("deleteSSHKeyPair", &[("name", "one")]).await.expect("delete");
        assert_eq!(text(&t.vm(&id(&vm)).await, "keypairs"), "one,two");
        let copies = scalar(
            cloud,
            &format!(
                "SELECT COUNT(*) FROM instance_ssh_keys k JOIN instances i ON i.id = k.instance_id WHERE i.uuid = '{}'",
                id(&vm)
            ),
        )
        .await;
        assert_eq!(copies, 2);
        // keypair= alone works too.
        let single = t.deploy(&t.template, &[("keypair", "two"), ("startvm", "false")]).await.expect("keypair=");
        assert_eq!(text(&single, "keypairs"), "two");

        // Refused before anything is made.
        let other = tenant(cloud).await;
        other.user.call("registerSSHKeyPair", &[("name", "theirs"), ("publickey", ED25519)]).await.expect("theirs");
        let before = state(cloud, &t.account).await;
        let too_long = STANDARD.encode(vec![b'x'; 3100]);
        type Case<'a> = (Vec<(&'a str, &'a str)>, u32, &'a str);
        let cases: [Case; 6] = [
            (vec![("keypair", "theirs")], 431, "Not all specified keypairs exist"),
            (vec![("keypairs", "two,missing")], 431, "Not all specified keypairs exist"),
            (vec![("userdata", "not base64!")], 431, "User data is not base64 encoded."),
            (vec![("userdata", "====")], 431, "User data is too short."),
            (vec![("userdata", &too_long)], 431, "User data is too long for http GET request"),
            (
                vec![("userdata", &script), ("userdataid", "9b1c4a52-5d1e-4a8e-9a3c-2f7f4a1b2c3d")],
                431,
                "Unable to find userdata by id or name 9b1c4a52-5d1e-4a8e-9a3c-2f7f4a1b2c3d",
            ),
        ];
        for (params, wanted_code, wanted) in cases {
            let (code, text) = refusal(t.deploy(&t.template, &params).await.expect_err(wanted));
            assert_eq!((code, text.as_str()), (wanted_code, wanted), "{params:?}");
            assert_eq!(state(cloud, &t.account).await, before, "{params:?} changed the database");
        }

        // updateVirtualMachine replaces the userdata, on a running VM too.
        let running = t.deploy(&t.template, &[("userdata", &script)]).await.expect("a running VM");
        assert_eq!(text(&running, "state"), "Running");
        let newer = STANDARD.encode("#cloud-config\nhostname: renamed\n");
        let updated = t
            .user
            .call("updateVirtualMachine", &[("id", &id(&running)), ("userdata", &newer), ("displayname", "Renamed")])
            .await
            .expect("updateVirtualMachine");
        assert_eq!(text(&updated, "displayname"), "Renamed");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&running))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), newer);
        let before = state(cloud, &t.account).await;
        let (code, text_) = refusal(
            t.user.call("updateVirtualMachine", &[("id", &id(&running)), ("userdata", "%%%")]).await.expect_err("bad"),
        );
        assert_eq!((code, text_.as_str()), (431, "User data is not base64 encoded."));
        assert_eq!(state(cloud, &t.account).await, before);
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&running))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), newer, "a refused update keeps the userdata");
        // Another account cannot read it.
        let (code, _) = refusal(
            other.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&running))]).await.expect_err("no"),
        );
        assert_eq!(code, 531);
    });
}

#[test]
fn resets_need_a_stopped_vm_and_passwords_a_password_template() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        t.user.call("registerSSHKeyPair", &[("name", "old"), ("publickey", ED25519)]).await.expect("old");
        t.user.call("createSSHKeyPair", &[("name", "new")]).await.expect("new");
        let vm = t.deploy(&t.template, &[("keypair", "old")]).await.expect("deploy");
        let vm_id = id(&vm);

        let before = state(cloud, &t.account).await;
        let (code, text_) = refusal(
            t.user
                .call("resetSSHKeyForVirtualMachine", &[("id", &vm_id), ("keypair", "new")])
                .await
                .expect_err("running"),
        );
        assert_eq!(code, 431);
        assert!(text_.ends_with("should be stopped to do SSH Key reset"), "{text_}");
        let (code, text_) =
            refusal(t.user.call("resetPasswordForVirtualMachine", &[("id", &vm_id)]).await.expect_err("no"));
        assert_eq!(
            (code, text_.as_str()),
            (431, "Fail to reset password for the Instance, the Template is not password enabled")
        );
        assert_eq!(state(cloud, &t.account).await, before);
        assert_eq!(text(&t.vm(&vm_id).await, "keypairs"), "old");

        t.user.call("stopVirtualMachine", &[("id", &vm_id)]).await.expect("stop");
        let before = state(cloud, &t.account).await;
        let (code, text_) = refusal(
            t.user
                .call("resetSSHKeyForVirtualMachine", &[("id", &vm_id), ("keypair", "nope")])
                .await
                .expect_err("nope"),
        );
        assert_eq!((code, text_.as_str()), (431, "Not all specified keypairs exist"));
        let (code, text_) =
            refusal(t.user.call("resetSSHKeyForVirtualMachine", &[("id", &vm_id)]).await.expect_err("no names"));
        assert_eq!((code, text_.as_str()), (431, "'keypair' or 'keypairs' must be specified"));
        assert_eq!(state(cloud, &t.account).await, before);
        let reset = t
            .user
            .call("resetSSHKeyForVirtualMachine", &[("id", &vm_id), ("keypairs", "new,old")])
            .await
            .expect("resetSSHKeyForVirtualMachine");
        assert_eq!(text(&reset, "keypairs"), "new,old");
        assert!(reset.get("password").is_none());

        // A password-enabled template: the deploy's result shows the password once, and
        // it waits for the guest.
        let with_passwords = template(cloud, true).await;
        let pvm = t.deploy(&with_passwords, &[("keypair", "old")]).await.expect("deploy");
        let first_password = text(&pvm, "password").to_owned();
        assert_eq!(first_password.len(), 12, "{pvm:?}");
        let pending = |uuid: String| async move {
            sqlx::query_scalar::<_, Option<String>>("SELECT password_pending FROM instances WHERE uuid = $1")
                .bind(uuid)
                .fetch_one(cloud.orch.db.pool())
                .await
                .expect("password_pending")
        };
        assert_eq!(pending(id(&pvm)).await.as_deref(), Some(first_password.as_str()));
        assert!(t.vm(&id(&pvm)).await.get("password").is_none(), "listings never show it");

        let (code, text_) =
            refusal(t.user.call("resetPasswordForVirtualMachine", &[("id", &id(&pvm))]).await.expect_err("running"));
        assert_eq!(code, 431);
        assert!(text_.ends_with("should be stopped to do password reset"), "{text_}");
        assert_eq!(pending(id(&pvm)).await.as_deref(), Some(first_password.as_str()));

        t.user.call("stopVirtualMachine", &[("id", &id(&pvm))]).await.expect("stop");
        let reset = t.user.call("resetPasswordForVirtualMachine", &[("id", &id(&pvm))]).await.expect("reset");
        let second = text(&reset, "password").to_owned();
        assert_eq!(second.len(), 12);
        assert_ne!(second, first_password);
        assert_eq!(pending(id(&pvm)).await.as_deref(), Some(second.as_str()));
        // A key reset on a password-enabled template sets a new password as well.
        let rekeyed =
            t.user.call("resetSSHKeyForVirtualMachine", &[("id", &id(&pvm)), ("keypair", "new")]).await.expect("reset");
        let third = text(&rekeyed, "password").to_owned();
        assert_eq!(third.len(), 12, "{rekeyed:?}");
        assert_eq!(pending(id(&pvm)).await.as_deref(), Some(third.as_str()));
        let events = t.user.list("listEvents", &[("type", "VM.RESETPASSWORD")]).await.expect("events");
        assert_eq!(events.len(), 1);
        assert!(events.iter().all(|e| !e.values().any(|v| v.as_str().is_some_and(|s| s.contains(&second)))));
    });
}

#[test]
fn stored_userdata_is_registered_linked_and_applied_by_policy() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let script = STANDARD.encode("#!/bin/sh\necho {{ ds.meta_data.name }}\n");
        let u = t
            .user
            .call("registerUserData", &[("name", "setup"), ("userdata", &script), ("params", "name")])
            .await
            .expect("registerUserData");
        assert_eq!(text(&u, "userdata"), script);
        assert_eq!(text(&u, "params"), "name");
        assert_eq!(text(&u, "account"), t.account);
        let listed = t.user.list("listUserData", &[("name", "setup")]).await.expect("listUserData");
        assert_eq!(listed.len(), 1);

        let before = state(cloud, &t.account).await;
        let other_script = STANDARD.encode("other");
        let cases: [(Vec<(&str, &str)>, &str); 4] = [
            (
                vec![("name", "setup"), ("userdata", &other_script)],
                "A userdata with name setup already exists for this account.",
            ),
            (
                vec![("name", "copy"), ("userdata", &script)],
                "Userdata setup with same content already exists for this account.",
            ),
            (
                vec![("name", "meta"), ("userdata", &other_script), ("params", "x,public-keys")],
                "Params passed here have a few virtual router metadata file names [public-keys]",
            ),
            (vec![("name", "bad"), ("userdata", "&&&")], "User data is not base64 encoded."),
        ];
        for (params, wanted) in cases {
            let (code, text_) = refusal(t.user.call("registerUserData", &params).await.expect_err(wanted));
            assert_eq!((code, text_.as_str()), (431, wanted), "{params:?}");
            assert_eq!(state(cloud, &t.account).await, before, "{params:?} changed the database");
        }

        // Deployed by id with its variable's value.
        let vm = t
            .deploy(&t.template, &[("userdataid", &id(&u)), ("userdatadetails[0].name", "web-1"), ("startvm", "false")])
            .await
            .expect("deploy with userdataid");
        assert_eq!(text(&vm, "userdataid"), id(&u));
        assert_eq!(text(&vm, "userdataname"), "setup");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&vm))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), script);
        assert_eq!(text(&got, "userdataid"), id(&u));
        let details: String = sqlx::query_scalar("SELECT user_data_details FROM instances WHERE uuid = $1")
            .bind(id(&vm))
            .fetch_one(cloud.orch.db.pool())
            .await
            .expect("details");
        assert_eq!(details, r#"{"name":"web-1"}"#);
        let before = state(cloud, &t.account).await;
        let (code, text_) = refusal(
            t.deploy(&t.template, &[("userdataid", &id(&u)), ("userdata", &other_script)]).await.expect_err("both"),
        );
        assert_eq!(
            (code, text_.as_str()),
            (431, "Both userdata and userdata ID inputs are not allowed, please provide only one")
        );
        let (code, text_) = refusal(t.user.call("deleteUserData", &[("id", &id(&u))]).await.expect_err("in use"));
        assert_eq!(
            (code, text_.as_str()),
            (530, "Userdata setup cannot be removed as it is being used by some instances")
        );
        assert_eq!(state(cloud, &t.account).await, before);

        // A template's linked userdata, under each policy.
        let admin = cloud.admin().await;
        let linked_template = template(cloud, false).await;
        let base = STANDARD.encode("base;");
        let admin_data = admin
            .call(
                "registerUserData",
                &[("name", &format!("base-{}", &new_uuid()[..8])), ("userdata", &base), ("params", "role,site")],
            )
            .await
            .expect("the admin's userdata");
        assert_eq!(text(&admin_data, "params"), "role,site");
        // A template object shows its linked userdata as CloudStack's does, and nothing when none.
        const LINK_FIELDS: [&str; 4] = ["userdataid", "userdataname", "userdatapolicy", "userdataparams"];
        let listed_template = || {
            let (admin, template) = (&admin, linked_template.clone());
            async move {
                first(
                    admin
                        .list("listTemplates", &[("templatefilter", "all"), ("id", &template)])
                        .await
                        .expect("listTemplates"),
                )
            }
        };
        let shown = |t: &Map<String, Value>| LINK_FIELDS.map(|k| t.get(k).and_then(Value::as_str).map(str::to_owned));
        assert_eq!(shown(&listed_template().await), [None, None, None, None], "no userdata linked yet");
        let link = |policy: &'static str| {
            let (admin, template, data) = (&admin, linked_template.clone(), id(&admin_data));
            async move {
                admin
                    .call(
                        "linkUserDataToTemplate",
                        &[("templateid", &template), ("userdataid", &data), ("userdatapolicy", policy)],
                    )
                    .await
                    .expect("linkUserDataToTemplate")
            }
        };
        let linked = link("DENYOVERRIDE").await;
        let wanted = [id(&admin_data), text(&admin_data, "name").to_owned(), "DENYOVERRIDE".into(), "role,site".into()]
            .map(Some);
        assert_eq!(shown(&linked), wanted, "linkUserDataToTemplate's template");
        assert_eq!(shown(&listed_template().await), wanted, "listTemplates");
        let before = state(cloud, &t.account).await;
        let (code, text_) =
            refusal(t.deploy(&linked_template, &[("userdata", &other_script)]).await.expect_err("denied"));
        assert_eq!(code, 530);
        assert!(text_.ends_with("is configured to deny any userdata"), "{text_}");
        assert_eq!(state(cloud, &t.account).await, before);
        let denied = t.deploy(&linked_template, &[("startvm", "false")]).await.expect("deploy without userdata");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&denied))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), base, "the template's userdata");

        assert_eq!(text(&link("APPEND").await, "userdatapolicy"), "APPEND");
        assert_eq!(text(&listed_template().await, "userdatapolicy"), "APPEND");
        let appended =
            t.deploy(&linked_template, &[("userdata", &other_script), ("startvm", "false")]).await.expect("append");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&appended))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), STANDARD.encode("base;other"));

        link("ALLOWOVERRIDE").await;
        let overridden =
            t.deploy(&linked_template, &[("userdata", &other_script), ("startvm", "false")]).await.expect("override");
        let got =
            t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&overridden))]).await.expect("get");
        assert_eq!(text(&got, "userdata"), other_script);

        let (code, text_) =
            refusal(admin.call("deleteUserData", &[("id", &id(&admin_data))]).await.expect_err("linked"));
        assert_eq!(code, 530);
        assert!(text_.ends_with("cannot be removed as it is linked to active template/templates"), "{text_}");
        let kept = scalar(
            cloud,
            &format!("SELECT COUNT(*) FROM user_data WHERE uuid = '{}' AND removed IS NULL", id(&admin_data)),
        )
        .await;
        assert_eq!(kept, 1, "the linked userdata stays");
        // A user may not link userdata to the admin's template.
        let (code, _) = refusal(
            t.user
                .call("linkUserDataToTemplate", &[("templateid", &linked_template), ("userdataid", &id(&u))])
                .await
                .expect_err("not theirs"),
        );
        assert_eq!(code, 531);

        // updateTemplate turns passwords on for a template; only its owner (or an admin) may.
        let (code, _) = refusal(
            t.user
                .call("updateTemplate", &[("id", &linked_template), ("passwordenabled", "true")])
                .await
                .expect_err("not theirs"),
        );
        assert_eq!(code, 531);
        let updated = admin
            .call("updateTemplate", &[("id", &linked_template), ("passwordenabled", "true")])
            .await
            .expect("updateTemplate");
        assert_eq!(updated.get("passwordenabled"), Some(&Value::Bool(true)));
        assert_eq!(text(&updated, "userdataid"), id(&admin_data), "updateTemplate's template shows the link");
        assert_eq!(text(&updated, "userdatapolicy"), "ALLOWOVERRIDE");
        let with_password = t.deploy(&linked_template, &[("startvm", "false")]).await.expect("deploy");
        assert_eq!(text(&with_password, "password").len(), 12, "{with_password:?}");

        // Linking without a userdataid unlinks: the fields go from the template objects.
        let unlinked = admin
            .call("linkUserDataToTemplate", &[("templateid", &linked_template)])
            .await
            .expect("linkUserDataToTemplate without userdataid");
        assert_eq!(id(&unlinked), linked_template);
        assert_eq!(shown(&unlinked), [None, None, None, None], "unlinked: {unlinked:?}");
        assert_eq!(shown(&listed_template().await), [None, None, None, None], "unlinked in listTemplates");
        let plain = t.deploy(&linked_template, &[("startvm", "false")]).await.expect("deploy");
        let got = t.user.call("getVirtualMachineUserData", &[("virtualmachineid", &id(&plain))]).await.expect("get");
        assert_eq!(got.get("userdata"), None, "no userdata from an unlinked template: {got:?}");

        // Unused stored userdata goes.
        let spare =
            t.user.call("registerUserData", &[("name", "spare"), ("userdata", &other_script)]).await.expect("spare");
        t.user.call("deleteUserData", &[("id", &id(&spare))]).await.expect("deleteUserData");
        assert!(t.user.list("listUserData", &[("name", "spare")]).await.expect("list").is_empty());
    });
}
