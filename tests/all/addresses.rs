//! The core's address management under load: 1,000 NICs allocated at once in one
//! network get 1,000 distinct addresses and MACs, the next one a clear "no free
//! address", and a released address is handed out again. On SQLite and on the
//! PostgreSQL server scripts/setup.sh starts.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use wasmstack::cloud::infra::{self, NewZone};
use wasmstack::cloud::networks::{self as nets, NetworkError, NetworkRow, NewNetwork, NewNic, NewRange, VlanChoice};
use wasmstack::db::Db;

/// A zone with a VLAN physical network whose Guest traffic rides bridge `label`.
/// Returns (zone id, physical network id).
pub async fn zone_with_vlans(db: &Db, label: &str, vlans: &str) -> Result<(i64, i64)> {
    let zone = infra::create_zone(
        db,
        NewZone {
            name: format!("z-{label}"),
            description: None,
            network_type: "Advanced".into(),
            allocation_state: "Enabled".into(),
            dns1: "10.0.0.53".into(),
            dns2: None,
            internal_dns1: "10.0.0.53".into(),
            internal_dns2: None,
            guest_cidr: Some("10.1.1.0/24".into()),
            local_storage_enabled: false,
            security_groups_enabled: false,
            is_edge: false,
        },
    )
    .await?;
    let zone = infra::zone(db, &zone).await?.context("the new zone")?;
    let physical = nets::create_physical(
        db,
        nets::NewPhysical {
            name: format!("p-{label}"),
            zone_id: zone.id,
            vlan: Some(vlans.into()),
            isolation_method: "VLAN".into(),
            broadcast_domain_range: "ZONE".into(),
            tags: None,
            network_speed: None,
            domain_id: None,
        },
    )
    .await?;
    let physical = nets::physical(db, &physical).await?.context("the new physical network")?;
    nets::add_traffic_type(db, physical.id, "Guest", Some(label.into())).await?;
    Ok((zone.id, physical.id))
}

/// An Isolated network `base`/`prefix` (the gateway its first address) owned by the
/// admin account, with a VLAN from the physical network's range.
pub async fn isolated_network(
    db: &Db,
    (zone_id, physical_id): (i64, i64),
    name: &str,
    base: Ipv4Addr,
    prefix: i64,
) -> Result<NetworkRow> {
    let offering = nets::list_offerings(
        db,
        &nets::OfferingFilter {
            name: Some("DefaultIsolatedNetworkOfferingWithSourceNatService".into()),
            ..Default::default()
        },
        None,
    )
    .await?
    .0
    .remove(0);
    let (account, domain) = admin_account(db).await?;
    let physical = nets::list_physical(db, &nets::PhysicalFilter::default(), None)
        .await?
        .0
        .into_iter()
        .find(|p| p.id == physical_id)
        .context("the physical network")?;
    let ranges = nets::parse_vlan_ranges(physical.vlan.as_deref().unwrap_or("")).map_err(anyhow::Error::msg)?;
    let uuid = nets::create_network(
        db,
        NewNetwork {
            name: name.into(),
            display_text: name.into(),
            zone_id,
            physical_network_id: physical_id,
            offering_id: offering.id,
            account_id: account,
            domain_id: domain,
            guest_type: "Isolated".into(),
            acl_type: "Account".into(),
            cidr: Some((nets::ip_to_int(base), prefix)),
            gateway: Some(Ipv4Addr::from(u32::from(base) + 1).to_string()),
            vlan: VlanChoice::FromRange(ranges, physical.vlan.clone().unwrap_or_default()),
            dns1: None,
            dns2: None,
            network_domain: None,
            state: "Allocated".into(),
            driver: ("vlan".into(), "0.2.0".into()),
            range: None,
        },
    )
    .await?;
    nets::network(db, &uuid).await?.context("the new network")
}

/// The admin account made by the first start: (account id, domain id).
async fn admin_account(db: &Db) -> Result<(i64, i64)> {
    Ok(sqlx::query_as("SELECT id, domain_id FROM accounts ORDER BY id LIMIT 1").fetch_one(db.pool()).await?)
}

const TEN_ONE: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);

/// A fresh database: SQLite in a folder, or a new PostgreSQL database.
pub async fn fresh_db(backend: &str, dir: &std::path::Path) -> Result<(Db, Option<String>)> {
    let (url, pg_name) = match backend {
        "sqlite" => (format!("sqlite://{}?mode=rwc", dir.join("alloc.db").display()), None),
        _ => {
            let admin = std::env::var("WASMSTACK_TEST_PG")
                .unwrap_or_else(|_| "postgres://wasmstack:wasmstack@127.0.0.1/postgres".into());
            let name = format!("wasmstack_alloc_{}", std::process::id());
            sqlx::any::install_default_drivers();
            // scripts/setup.sh starts PostgreSQL; without it this backend is untested, so fail.
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .with_context(|| format!("PostgreSQL at {admin}"))?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
            (format!("{base}/{name}"), Some(admin))
        }
    };
    let db = Db::open(&url).await.with_context(|| format!("opening {url}"))?;
    wasmstack::auth::store::bootstrap(&db, Some("not-used-here-1".into())).await?;
    Ok((db, pg_name))
}

async fn thousand_allocations(backend: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (db, pg_admin) = fresh_db(backend, dir.path()).await?;
    let (zone, physical) = zone_with_vlans(&db, "ws-alloc", "100-199").await?;
    // A network of 1,022 host addresses narrowed to a range of exactly 1,000.
    let net = isolated_network(&db, (zone, physical), "crowded", TEN_ONE, 22).await?;
    let start = nets::ip_to_int(Ipv4Addr::new(10, 1, 0, 10));
    nets::add_range(
        &db,
        net.id,
        &NewRange {
            zone_id: zone,
            pod_id: None,
            physical_network_id: physical,
            vlan: net.vlan,
            gateway: "10.1.0.1".into(),
            netmask: "255.255.252.0".into(),
            start,
            end: start + 999,
            for_virtual_network: false,
        },
    )
    .await?;

    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (db, net) = (db.clone(), net.clone());
            tokio::spawn(async move {
                nets::allocate_nic(&db, &net, NewNic { instance_uuid: Some(format!("vm-{i}")), ..Default::default() })
                    .await
            })
        })
        .collect();
    let mut ips = HashSet::new();
    let mut macs = HashSet::new();
    for t in tasks {
        let nic = t.await?.context("an allocation failed")?;
        let ip = nets::ip_to_int(nic.ip().context("a NIC without an address")?);
        assert!((start..=start + 999).contains(&ip), "{} is outside the range", nets::int_to_ip(ip));
        assert!(ips.insert(ip), "{} handed out twice", nets::int_to_ip(ip));
        assert!(macs.insert(nic.mac.clone()), "MAC {} handed out twice", nic.mac);
    }
    assert_eq!((ips.len(), macs.len()), (1000, 1000));

    let full = nets::allocate_nic(&db, &net, NewNic::default()).await;
    assert!(matches!(full, Err(NetworkError::NoFreeAddress(_))), "{full:?}");
    assert_eq!(full.unwrap_err().to_string(), "no free address left in network crowded");

    // A released address is free again, and is the one handed out next.
    let nics = nets::list_nics(&db, &nets::NicFilter { network_id: Some(net.id), ..Default::default() }, None).await?.0;
    let victim = &nics[500];
    nets::release_nic(&db, victim.id).await?;
    let again = nets::allocate_nic(&db, &net, NewNic::default()).await?;
    assert_eq!(again.ip(), victim.ip());
    // A requested address that is taken is refused by name.
    let taken = nets::allocate_nic(&db, &net, NewNic { ip: nics[0].ip(), ..Default::default() }).await;
    assert!(matches!(taken, Err(NetworkError::AddressTaken { .. })), "{taken:?}");

    drop(db);
    if let Some(admin) = pg_admin
        && let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await
    {
        let name = format!("wasmstack_alloc_{}", std::process::id());
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_allocations_on_sqlite() -> Result<()> {
    thousand_allocations("sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_allocations_on_postgres() -> Result<()> {
    thousand_allocations("postgres").await
}

#[tokio::test]
async fn vlans_come_from_the_range_until_it_runs_out() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (db, _) = fresh_db("sqlite", dir.path()).await?;
    let (zone, physical) = zone_with_vlans(&db, "ws-vl", "300-301").await?;
    let a = isolated_network(&db, (zone, physical), "a", TEN_ONE, 24).await?;
    let b = isolated_network(&db, (zone, physical), "b", TEN_ONE, 24).await?;
    assert_eq!((a.vlan, b.vlan), (Some(300), Some(301)));
    let c = isolated_network(&db, (zone, physical), "c", TEN_ONE, 24).await;
    let e = c.unwrap_err();
    assert!(matches!(e.downcast_ref::<NetworkError>(), Some(NetworkError::NoFreeVlan { .. })), "{e:#}");
    nets::remove_network(&db, a.id).await?;
    assert_eq!(isolated_network(&db, (zone, physical), "d", TEN_ONE, 24).await?.vlan, Some(300));
    Ok(())
}
