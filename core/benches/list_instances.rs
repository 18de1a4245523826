//! listVirtualMachines at scale: a page of 500 out of 100,000 VMs (each with a NIC) in
//! SQLite, through the signed API, with and without a keyword, plus a deep page.
//! CloudStack's own VM listing becomes nearly unusable around 100k VMs; the aim here is
//! a p99 under 50 ms.
//!
//!   cargo bench -p wasmstack --bench list_instances      (VMS=100000 REQUESTS=40)

mod support;

use std::time::Instant;

use wasmstack::cloud::infra::{self, NewCluster, NewHost, NewPod, NewZone};
use wasmstack::cloud::networks as nets;
use wasmstack::cloud::offerings::{self, NewServiceOffering};
use wasmstack::cloud::storage::{self, NewStore};
use wasmstack::cloud::templates::{self, NewTemplate};
use wasmstack::db::{Db, new_uuid, now_ms};

use support::{Conn, ms, p50_p99, signed_path};

/// Ids of what every VM refers to.
struct Fixture {
    account: i64,
    domain: i64,
    zone: i64,
    host: i64,
    offering: i64,
    template: i64,
    network: i64,
}

async fn fixture(db: &Db) -> Fixture {
    let (account, domain): (i64, i64) =
        sqlx::query_as("SELECT id, domain_id FROM accounts ORDER BY id LIMIT 1").fetch_one(db.pool()).await.unwrap();
    let zone = infra::create_zone(
        db,
        NewZone {
            name: "bench".into(),
            description: None,
            network_type: "Advanced".into(),
            allocation_state: "Enabled".into(),
            dns1: "10.0.0.53".into(),
            dns2: None,
            internal_dns1: "10.0.0.53".into(),
            internal_dns2: None,
            guest_cidr: Some("10.0.0.0/14".into()),
            local_storage_enabled: false,
            security_groups_enabled: false,
            is_edge: false,
        },
    )
    .await
    .unwrap();
    let zone = infra::zone(db, &zone).await.unwrap().unwrap();
    let pod = infra::create_pod(
        db,
        NewPod {
            name: "pod".into(),
            zone_id: zone.id,
            gateway: None,
            netmask: None,
            start_ip: None,
            end_ip: None,
            allocation_state: "Enabled".into(),
        },
    )
    .await
    .unwrap();
    let pod = infra::pod(db, &pod).await.unwrap().unwrap();
    let cluster = infra::create_cluster(
        db,
        NewCluster {
            name: "cluster".into(),
            pod_id: pod.id,
            zone_id: zone.id,
            hypervisor: "Simulator".into(),
            cluster_type: "CloudManaged".into(),
            allocation_state: "Enabled".into(),
            accel: "auto".into(),
        },
    )
    .await
    .unwrap();
    let cluster = infra::cluster(db, &cluster).await.unwrap().unwrap();
    let host = infra::create_host(
        db,
        NewHost {
            name: "sim".into(),
            zone_id: zone.id,
            pod_id: pod.id,
            cluster_id: cluster.id,
            hypervisor: "Simulator".into(),
            driver: "kvm".into(),
            driver_version: "0.2.0".into(),
            url: "test:///default".into(),
            libvirt_uri: "test:///default".into(),
            ip_address: "127.0.0.1".into(),
            cpus: 100_000,
            cpu_mhz: 2000,
            cpu_model: "bench".into(),
            memory_bytes: 1 << 50,
            hypervisor_version: "1".into(),
            hardware_accel: false,
            host_tags: None,
        },
    )
    .await
    .unwrap();
    let host = infra::host(db, &host).await.unwrap().unwrap();
    let offering = offerings::create_service(
        db,
        NewServiceOffering {
            name: "small".into(),
            display_text: "small".into(),
            cpu_number: Some(1),
            cpu_speed: Some(500),
            memory_mb: Some(512),
            storage_type: "shared".into(),
            offer_ha: false,
            limit_cpu_use: false,
            host_tags: None,
            storage_tags: None,
            root_disk_gb: None,
        },
    )
    .await
    .unwrap();
    let offering: i64 = sqlx::query_scalar("SELECT id FROM service_offerings WHERE uuid = $1")
        .bind(&offering)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let store = storage::create_store(
        db,
        NewStore {
            name: "store".into(),
            zone_id: Some(zone.id),
            url: "nfs://127.0.0.1/export".into(),
            protocol: "nfs".into(),
            provider: "NFS".into(),
            driver: "nfs".into(),
            capacity_bytes: 1 << 40,
            used_bytes: 0,
        },
    )
    .await
    .unwrap();
    let store = storage::store(db, &store).await.unwrap().unwrap();
    let mut tx = db.begin().await.unwrap();
    let template = templates::create(
        &mut tx,
        &NewTemplate {
            uuid: new_uuid(),
            name: "tiny".into(),
            display_text: "tiny".into(),
            format: "QCOW2".into(),
            is_iso: false,
            hypervisor: "Simulator".into(),
            os_type_id: None,
            account_id: account,
            is_public: true,
            is_featured: false,
            is_extractable: false,
            password_enabled: false,
            bootable: true,
            url: "http://127.0.0.1/tiny.qcow2".into(),
            checksum: None,
            zone_id: zone.id,
            store_id: store.id,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    templates::finish(db, template, Ok(("template/tiny.qcow2".into(), 1 << 26, 1 << 20))).await.unwrap();
    let physical = nets::create_physical(
        db,
        nets::NewPhysical {
            name: "phys".into(),
            zone_id: zone.id,
            vlan: Some("100-199".into()),
            isolation_method: "VLAN".into(),
            broadcast_domain_range: "ZONE".into(),
            tags: None,
            network_speed: None,
            domain_id: None,
        },
    )
    .await
    .unwrap();
    let physical = nets::physical(db, &physical).await.unwrap().unwrap();
    nets::add_traffic_type(db, physical.id, "Guest", Some("ws-bench".into())).await.unwrap();
    let iso = nets::list_offerings(
        db,
        &nets::OfferingFilter {
            name: Some("DefaultIsolatedNetworkOfferingWithSourceNatService".into()),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap()
    .0
    .remove(0);
    let network = nets::create_network(
        db,
        nets::NewNetwork {
            name: "guests".into(),
            display_text: "guests".into(),
            zone_id: zone.id,
            physical_network_id: physical.id,
            offering_id: iso.id,
            account_id: account,
            domain_id: domain,
            guest_type: "Isolated".into(),
            acl_type: "Account".into(),
            cidr: Some((nets::ip_to_int("10.0.0.0".parse().unwrap()), 14)),
            gateway: Some("10.0.0.1".into()),
            vlan: nets::VlanChoice::Given(100),
            dns1: None,
            dns2: None,
            network_domain: None,
            state: "Implemented".into(),
            driver: ("vlan".into(), "0.2.0".into()),
            range: None,
        },
    )
    .await
    .unwrap();
    let network = nets::network(db, &network).await.unwrap().unwrap().id;
    Fixture { account, domain, zone: zone.id, host: host.id, offering, template, network }
}

/// `count` Running VMs with one NIC each, written in bulk (SQLite).
async fn fill(db: &Db, f: &Fixture, count: i64) {
    let now = now_ms();
    sqlx::query(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1) \
         INSERT INTO instances (uuid, name, instance_name, display_name, account_id, domain_id, zone_id, host_id, \
         service_offering_id, template_id, hypervisor, state, cpus, cpu_mhz, memory_mb, created) \
         SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' \
         || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), 'vm-' || n, 'i-2-' || n || '-VM', \
         'vm-' || n, $2, $3, $4, $5, $6, $7, 'Simulator', 'Running', 1, 500, 512, $8 + n FROM seq",
    )
    .bind(count)
    .bind(f.account)
    .bind(f.domain)
    .bind(f.zone)
    .bind(f.host)
    .bind(f.offering)
    .bind(f.template)
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO nics (uuid, network_id, instance_uuid, mac, ip_address, is_default, device_id, state, created) \
         SELECT lower(hex(randomblob(16))), $1, uuid, printf('02:00:%02x:%02x:%02x:%02x', (id >> 24) & 255, \
         (id >> 16) & 255, (id >> 8) & 255, id & 255), $2 + id + 1, 1, 0, 'Reserved', created FROM instances",
    )
    .bind(f.network)
    .bind(nets::ip_to_int("10.0.0.0".parse().unwrap()))
    .execute(db.pool())
    .await
    .unwrap();
}

fn main() {
    let vms: i64 = std::env::var("VMS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let requests: usize = std::env::var("REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (addr, o, key, secret, _data) = support::start_server().await;

        let f = fixture(&o.db).await;
        let t = Instant::now();
        fill(&o.db, &f, vms).await;
        println!("{vms} VMs with a NIC each written in {:.1} s", t.elapsed().as_secs_f64());

        let mut conn = Conn::open(addr).await;
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            ("page 1 of 500", vec![("page", "1"), ("pagesize", "500")]),
            ("page 1 of 500, keyword", vec![("page", "1"), ("pagesize", "500"), ("keyword", "vm-4")]),
            ("page 1 of 500, keyword matching 1", vec![("page", "1"), ("pagesize", "500"), ("keyword", "vm-77777")]),
            ("page 150 of 500 (deep)", vec![("page", "150"), ("pagesize", "500")]),
        ];
        println!("listVirtualMachines over {vms} VMs, {requests} signed requests each, one connection:");
        for (what, params) in cases {
            let mut all = vec![("command", "listVirtualMachines"), ("listall", "true")];
            all.extend(params);
            let path = signed_path(&key, &secret, &all);
            let (status, body) = conn.get(&path).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
            let reply: serde_json::Value = serde_json::from_slice(body).unwrap();
            let r = &reply["listvirtualmachinesresponse"];
            let shown = r["virtualmachine"].as_array().map_or(0, Vec::len);
            assert!(r["virtualmachine"][0]["nic"].is_array() || shown == 0, "VMs without their nic");
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let (status, _) = conn.get(&path).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200);
            }
            let (p50, p99) = p50_p99(lat);
            println!(
                "  {what:<36} count {:>6}, {shown:>3} shown: p50 {:>7.2} ms  p99 {:>7.2} ms",
                r["count"],
                ms(p50),
                ms(p99)
            );
        }
    });
}
