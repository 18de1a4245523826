//! Guest data beside the vlan driver's namespaced DHCP service, as cloud-init's CloudStack
//! datasource reads it: metadata and userdata on port 80 and the password server on 8080
//! of the DHCP service's address. The network, NICs and instances are the core's (a
//! SQLite database, rows for keys, userdata and passwords set directly); the network is
//! implemented by the real vlan driver through the plugin host, and namespaces plugged
//! into its VLAN with the NICs' MACs and addresses stand in for the guests.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use base64::Engine as _;
use wasmstack::cloud::guest_data::DbGuestData;
use wasmstack::cloud::networks::{self as nets, NewNic};
use wasmstack::db::{Db, new_uuid, now_ms};
use wasmstack::orchestrate::networks::spec_with_dhcp;
use wasmstack::plugins::{Attachment, NicSpec};

use crate::addresses::{fresh_db, isolated_network, zone_with_vlans};
use crate::network::{Implemented, Plumbing, dhcp_namespace, host, must};
use crate::router::no_tx_checksum_offload;

/// One guest as the core knows it.
struct Guest {
    uuid: String,
    name: String,
    mac: String,
    ip: String,
    keys: Vec<String>,
    user_data: String,
    password: String,
}

/// The rows an instance needs besides itself: an image store, a template and a service
/// offering. Returns (template id, service offering id).
async fn catalogue(db: &Db, zone: i64) -> Result<(i64, i64)> {
    let (account, now) = (1i64, now_ms());
    sqlx::query(
        "INSERT INTO image_stores (uuid, name, zone_id, url, protocol, provider, driver, scope, read_only, \
         capacity_bytes, used_bytes, created) VALUES ($1, 'images', $2, 'file:///x', 'file', 'local', 'local', \
         'ZONE', 0, 0, 0, $3)",
    )
    .bind(new_uuid())
    .bind(zone)
    .bind(now)
    .execute(db.pool())
    .await?;
    let store: i64 =
        sqlx::query_scalar("SELECT id FROM image_stores ORDER BY id DESC LIMIT 1").fetch_one(db.pool()).await?;
    sqlx::query(
        "INSERT INTO templates (uuid, name, display_text, format, is_iso, hypervisor, account_id, is_public, \
         is_featured, is_extractable, password_enabled, bootable, url, template_type, zone_id, store_id, state, \
         status, size, physical_size, created) VALUES ($1, 't', 't', 'QCOW2', 0, 'KVM', $2, 1, 1, 0, 1, 1, \
         'file:///x', 'USER', $3, $4, 'Ready', 'Download Complete', 0, 0, $5)",
    )
    .bind(new_uuid())
    .bind(account)
    .bind(zone)
    .bind(store)
    .bind(now)
    .execute(db.pool())
    .await?;
    let template: i64 =
        sqlx::query_scalar("SELECT id FROM templates ORDER BY id DESC LIMIT 1").fetch_one(db.pool()).await?;
    sqlx::query(
        "INSERT INTO service_offerings (uuid, name, display_text, cpu_number, cpu_speed, memory_mb, storage_type, \
         offer_ha, limit_cpu_use, is_system, created) VALUES ($1, 'Small', 'Small Instance', 1, 500, 512, 'shared', \
         0, 0, 0, $2)",
    )
    .bind(new_uuid())
    .bind(now)
    .execute(db.pool())
    .await?;
    let offering: i64 =
        sqlx::query_scalar("SELECT id FROM service_offerings ORDER BY id DESC LIMIT 1").fetch_one(db.pool()).await?;
    Ok((template, offering))
}

/// An instance with a NIC in network `n`, its keys, userdata and a pending password.
async fn guest(
    db: &Db,
    n: &nets::NetworkRow,
    (template, offering): (i64, i64),
    name: &str,
    keys: &[&str],
    script: &str,
) -> Result<Guest> {
    let uuid = new_uuid();
    let nic =
        nets::allocate_nic(db, n, NewNic { instance_uuid: Some(uuid.clone()), is_default: true, ..Default::default() })
            .await?;
    let password = format!("pw-{name}-{}", &new_uuid()[..8]);
    let user_data = base64::engine::general_purpose::STANDARD.encode(script);
    sqlx::query(
        "INSERT INTO instances (uuid, name, instance_name, display_name, account_id, domain_id, zone_id, \
         service_offering_id, template_id, hypervisor, state, cpus, cpu_mhz, memory_mb, user_data, password_pending, \
         created) VALUES ($1, $2, $3, $2, 1, 1, $4, $5, $6, 'KVM', 'Running', 1, 500, 512, $7, $8, $9)",
    )
    .bind(&uuid)
    .bind(name)
    .bind(format!("i-2-{name}-VM"))
    .bind(n.zone_id)
    .bind(offering)
    .bind(template)
    .bind(&user_data)
    .bind(&password)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM instances WHERE uuid = $1").bind(&uuid).fetch_one(db.pool()).await?;
    for (i, key) in keys.iter().enumerate() {
        sqlx::query("INSERT INTO instance_ssh_keys (instance_id, name, public_key) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(format!("key{i}"))
            .bind(*key)
            .execute(db.pool())
            .await?;
    }
    Ok(Guest {
        uuid,
        name: name.to_owned(),
        mac: nic.mac.clone(),
        ip: nic.ip().context("a NIC address")?.to_string(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        user_data: script.to_owned(),
        password,
    })
}

async fn pending_password(db: &Db, uuid: &str) -> Option<String> {
    sqlx::query_scalar("SELECT password_pending FROM instances WHERE uuid = $1")
        .bind(uuid)
        .fetch_one(db.pool())
        .await
        .expect("reading the instance")
}

/// GET `url` from namespace `ns` (from address `source` if given, with header `header`):
/// the status and body, or None when nothing answered within two seconds.
fn fetch(ns: &str, url: &str, header: Option<&str>, source: Option<&str>) -> Option<(u16, String)> {
    let mut args = vec!["netns", "exec", ns, "curl", "-s", "--max-time", "2", "-w", "\n%{http_code}"];
    if let Some(h) = header {
        args.extend(["-H", h]);
    }
    if let Some(s) = source {
        args.extend(["--interface", s]);
    }
    args.push(url);
    let out = Command::new("ip").args(&args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.parse().ok()?, body.to_owned()))
}

/// Like `fetch`, retried for up to ten seconds while `done` does not hold: the
/// userspace datapath learns MACs on the first packets, and a neighbour entry a spoofer
/// left behind is kept for a second.
fn fetch_until(ns: &str, url: &str, done: impl Fn(&Option<(u16, String)>) -> bool) -> Option<(u16, String)> {
    let started = Instant::now();
    loop {
        let got = fetch(ns, url, None, None);
        if done(&got) || started.elapsed() > Duration::from_secs(10) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ok(body: &str) -> Option<(u16, String)> {
    Some((200, body.to_owned()))
}

const NOT_FOUND: Option<(u16, String)> = Some((404, String::new()));

/// A guest's endpoint: a namespace whose eth0 has the NIC's MAC and address, plugged
/// into the network's VLAN.
fn endpoint(p: &mut Plumbing, att: &Attachment, ns: &str, host_end: &str, mac: &str, ip: &str) {
    let dev = p.dhcp_guest(ns, host_end, mac);
    must("ip", &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    no_tx_checksum_offload(ns);
    p.plug(att, &dev);
}

/// Everything a guest reads, checked against what the core holds for it.
fn reads_its_own_data(ns: &str, server: &str, g: &Guest, zone: &str) {
    let md = |path: &str| format!("http://{server}/latest/{path}");
    let index = "service-offering\navailability-zone\nlocal-ipv4\nlocal-hostname\ninstance-id\nvm-id\n\
                 public-keys\ncloud-identifier\n";
    assert_eq!(fetch_until(ns, &md("meta-data/"), |r| r == &ok(index)), ok(index), "{}'s index", g.name);
    assert_eq!(fetch(ns, &md("meta-data"), None, None), ok(index), "the index without its slash");
    let expect = [
        ("service-offering", "Small Instance"),
        ("availability-zone", zone),
        ("local-ipv4", &g.ip),
        ("local-hostname", &g.name),
        ("instance-id", &g.uuid),
        ("vm-id", &g.uuid),
        ("public-keys", &g.keys.join("\n")),
    ];
    for (name, value) in expect {
        assert_eq!(fetch(ns, &md(&format!("meta-data/{name}")), None, None), ok(value), "{}'s {name}", g.name);
        assert_eq!(fetch(ns, &md(name), None, None), ok(value), "{}'s {name}, short form", g.name);
    }
    let cloud = fetch(ns, &md("meta-data/cloud-identifier"), None, None).expect("cloud-identifier");
    assert!(cloud.0 == 200 && cloud.1.starts_with("CloudStack-{") && cloud.1.ends_with('}'), "{cloud:?}");
    assert_eq!(fetch(ns, &md("meta-data/public-ipv4"), None, None), NOT_FOUND, "no public address: none served");
    assert_eq!(fetch(ns, &md("meta-data/nothing"), None, None), NOT_FOUND);
    assert_eq!(fetch(ns, &md("user-data"), None, None), ok(&g.user_data), "{}'s userdata", g.name);
}

fn password_fetch(ns: &str, server: &str, ask: &str, source: Option<&str>) -> Option<(u16, String)> {
    fetch(ns, &format!("http://{server}:8080/"), Some(&format!("DomU_Request: {ask}")), source)
}

#[test]
fn each_guest_gets_only_its_own_metadata_userdata_and_password_once() {
    let r = &new_uuid()[..6];
    let bridge = format!("ws-m{r}");
    let mut p = Plumbing::new(&[&bridge], &[]);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().unwrap();
    let (db, spec, zone, a, b) = runtime
        .block_on(async {
            let (db, _) = fresh_db("sqlite", dir.path()).await?;
            let zone = zone_with_vlans(&db, &bridge, "310-319").await?;
            let n = isolated_network(&db, zone, "guests", Ipv4Addr::new(10, 83, 0, 0), 24).await?;
            let spec = spec_with_dhcp(&db, &n).await.map_err(|e| anyhow::anyhow!("{}", e.text))?;
            let rows = catalogue(&db, n.zone_id).await?;
            let a = guest(
                &db,
                &n,
                rows,
                "guest-a",
                &["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA a@example"],
                "#!/bin/sh\necho a\n",
            )
            .await?;
            let b = guest(
                &db,
                &n,
                rows,
                "guest-b",
                &[
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB b1@example",
                    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ b2@example",
                ],
                "#cloud-config\nhostname: b\n",
            )
            .await?;
            Ok::<_, anyhow::Error>((db, spec, n.zone_name.clone(), a, b))
        })
        .expect("the core's network and guests");
    let server = spec.dhcp_server.as_deref().and_then(|s| s.split('/').next()).expect("a DHCP address").to_owned();

    let (_sb, host) = host();
    let source = runtime.block_on(DbGuestData::new(db.clone())).expect("guest data from the database");
    let source = Arc::new(source);
    // This test's own: another test's (or server's) running services are not taken up.
    let owner = new_uuid();
    host.serve_guest_data(source.clone(), runtime.handle().clone(), &owner);
    let drv = host.network("vlan").expect("the vlan driver");
    let implemented = Implemented { driver: drv.clone(), net: spec.clone() };
    let att = drv.implement("local", &spec).expect("implementing the network");
    for g in [&a, &b] {
        let nic =
            NicSpec { id: new_uuid(), mac: g.mac.clone(), ip: Some(g.ip.clone()), hostname: Some(g.name.clone()) };
        drv.prepare_nic("local", &spec, &nic).expect("prepare-nic");
    }
    let dhcp = format!("ws-d{}", spec.id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect::<String>());
    assert!(host.guest_data().serves(&dhcp), "no guest data beside the DHCP service");

    let (ns_a, ns_b, ns_x) = (format!("ws-{r}-a"), format!("ws-{r}-b"), format!("ws-{r}-x"));
    endpoint(&mut p, &att, &ns_a, &format!("ws-{r}a"), &a.mac, &a.ip);
    endpoint(&mut p, &att, &ns_b, &format!("ws-{r}b"), &b.mac, &b.ip);
    // b stays off the wire until a has tried to pass for it.
    must("ip", &["-n", &ns_b, "link", "set", "eth0", "down"]);

    reads_its_own_data(&ns_a, &server, &a, &zone);
    assert_eq!(password_fetch(&ns_a, &server, "send_my_password", None), ok(&a.password), "a's password");
    assert_eq!(password_fetch(&ns_a, &server, "saved_password", None), ok("saved_password"), "the acknowledgement");
    assert_eq!(password_fetch(&ns_a, &server, "send_my_password", None), ok("saved_password"), "a second fetch");
    assert_eq!(password_fetch(&ns_a, &server, "what", None), ok("bad_request"));
    assert_eq!(runtime.block_on(pending_password(&db, &a.uuid)), None, "the password outlived its fetch");

    // a takes b's address with its own MAC: b's lease, the wrong MAC.
    must("ip", &["-n", &ns_a, "addr", "add", &format!("{}/24", b.ip), "dev", "eth0"]);
    for path in ["meta-data/", "meta-data/instance-id", "instance-id", "user-data"] {
        let url = format!("http://{server}/latest/{path}");
        let got = fetch(&ns_a, &url, None, Some(&b.ip));
        assert_eq!(got, NOT_FOUND, "a, from b's address, got b's {path}");
    }
    assert_eq!(password_fetch(&ns_a, &server, "send_my_password", Some(&b.ip)), NOT_FOUND, "a got b's password");
    assert_eq!(runtime.block_on(pending_password(&db, &b.uuid)), Some(b.password.clone()), "b's password was spent");
    must("ip", &["-n", &ns_a, "addr", "del", &format!("{}/24", b.ip), "dev", "eth0"]);

    // An address no lease has, in the network: nothing.
    let (ns_s, stranger) = (format!("ws-{r}-s"), "10.83.0.200");
    endpoint(&mut p, &att, &ns_s, &format!("ws-{r}s"), "52:54:00:83:00:c8", stranger);
    let got = fetch_until(&ns_s, &format!("http://{server}/latest/meta-data/"), |r| r.is_some());
    assert_eq!(got, NOT_FOUND, "an address without a lease");

    must("ip", &["-n", &ns_b, "link", "set", "eth0", "up"]);
    reads_its_own_data(&ns_b, &server, &b, &zone);
    assert_eq!(password_fetch(&ns_b, &server, "send_my_password", None), ok(&b.password), "b's password");
    assert_eq!(password_fetch(&ns_b, &server, "send_my_password", None), ok("saved_password"), "b's second fetch");

    // Another VLAN on the same bridge, with a's MAC and address, reaches nothing; nor
    // does the host itself.
    let other = Attachment { vlan: att.vlan.map(|v| v + 1), ..att.clone() };
    endpoint(&mut p, &other, &ns_x, &format!("ws-{r}x"), &a.mac, &a.ip);
    assert_eq!(fetch(&ns_x, &format!("http://{server}/latest/meta-data/"), None, None), None, "another VLAN");
    // (Asking from the host proves little: its default route may lead to something that
    // answers any address.) No socket on the host, no address in the network there.
    let sockets = Command::new("ss").arg("-Htln").output().expect("ss");
    let sockets = String::from_utf8_lossy(&sockets.stdout);
    for port in [80, 8080] {
        assert!(!sockets.split_whitespace().any(|w| w == format!("{server}:{port}")), "a listener on the host");
    }
    let held = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().expect("ip addr");
    assert!(!String::from_utf8_lossy(&held.stdout).contains(" 10.83.0."), "the host is on the guest network");

    // A restarted server finds the running service and serves it again.
    host.guest_data().stop(&dhcp);
    assert_eq!(fetch(&ns_a, &format!("http://{server}/latest/meta-data/vm-id"), None, None), None, "stopped");
    let (_sb3, other) = crate::network::host();
    other.serve_guest_data(source.clone(), runtime.handle().clone(), "another-server");
    assert!(!other.guest_data().serves(&dhcp), "another server took up this one's service");
    let (_sb2, host2) = crate::network::host();
    host2.serve_guest_data(source, runtime.handle().clone(), &owner);
    assert!(host2.guest_data().serves(&dhcp), "a new host did not take the running service up");
    assert_eq!(fetch(&ns_a, &format!("http://{server}/latest/meta-data/vm-id"), None, None), ok(&a.uuid));
    host2.guest_data().stop(&dhcp);
    host.serve_guest_data(
        Arc::new(runtime.block_on(DbGuestData::new(db.clone())).unwrap()),
        runtime.handle().clone(),
        &owner,
    );
    assert!(host.guest_data().serves(&dhcp));

    // Shutting the network down stops the listeners with the DHCP service.
    let ns = dhcp_namespace(&spec);
    drv.shutdown("local", &spec).expect("shutdown");
    assert!(!host.guest_data().serves(&dhcp), "the listeners outlived the DHCP service");
    assert!(!std::path::Path::new("/run/netns").join(&ns).exists());
    assert_eq!(fetch(&ns_a, &format!("http://{server}/latest/meta-data/vm-id"), None, None), None);
    drop(implemented);
}
