//! The metadata service's requests per second and latency with 100 guests' worth of
//! data, against a bare static file server on the same data, in the same run.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench metadata_service
//!
//! Needs root, Open vSwitch running (scripts/setup.sh) and the components built
//! (scripts/build.sh). `BENCH_SECS` sets the seconds per measurement (3).
//!
//! The data: a SQLite database with one Isolated network and 100 instances in it, each
//! with a NIC, two SSH keys and 1 KiB of userdata. The network is implemented by the vlan
//! driver, its DHCP service holds the 100 leases and the metadata service runs beside it
//! as the server runs it (`DbGuestData` over the database). The guests: one namespace on
//! the network's VLAN whose 100 macvlan devices have the NICs' MACs and addresses (a
//! policy route each, so a connection from an address leaves by its own device), so the
//! service's neighbour table holds 100 real entries, one per lease.
//!
//! The baseline: a hyper server in the DHCP service's namespace, on the same address
//! (port 8081, so the path is the same), serving each guest's same three files from
//! memory by the peer address, on the same runtime. The client loop is the same: from
//! the guest namespace, N clients asking round-robin over their share of the guests,
//! first over one keep-alive connection per guest (100 in all), then over a new
//! connection per request, as cloud-init asks (the service checks the neighbour table
//! once per connection, so this is its dearer case).

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use wasmstack::cloud::guest_data::DbGuestData;
use wasmstack::cloud::infra::{self, NewZone};
use wasmstack::cloud::networks::{self as nets, NetworkRow, NewNetwork, NewNic, VlanChoice};
use wasmstack::db::{Db, new_uuid, now_ms};
use wasmstack::orchestrate::networks::spec_with_dhcp;
use wasmstack::plugins::{Grants, HostConfig, NetworkDriver, NetworkSpec, NicSpec, PluginHost};

use support::{Conn, ms, p50_p99};

const GUESTS: usize = 100;
const BASELINE_PORT: u16 = 8081;

fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors().nth(3).expect("cargo target dir").join("wasm32-wasip2/release")
}

fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().expect("running a command");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdin(Stdio::null()).output();
}

/// `ip -n NS -batch -` with these lines.
fn ip_batch(ns: &str, lines: &str) {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip -batch");
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ip -batch: {}", String::from_utf8_lossy(&out.stderr));
}

/// The bridge and the guest namespace, removed however the bench ends.
struct Plumbing {
    bridge: String,
    ns: String,
    port: String,
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        quiet("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", &self.bridge, &self.port]);
        quiet("ip", &["netns", "del", &self.ns]);
        quiet("ovs-vsctl", &["--timeout=5", "--if-exists", "del-br", &self.bridge]);
    }
}

/// Shuts the driver's network down however the bench ends.
struct Implemented<'a>(&'a NetworkDriver, NetworkSpec);

impl Drop for Implemented<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown("local", &self.1) {
            eprintln!("shutting the network down: {e}");
        }
    }
}

/// Runs `f` on a thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: a namespace descriptor; it changes this thread's network namespace only.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        f()
    })
    .join()
    .unwrap()
}

/// `ethtool -K DEV tx off` for these devices inside `ns`: Open vSwitch's userspace
/// datapath does not fill checksums in.
fn no_tx_checksum_offload(ns: &str, devices: Vec<&'static str>) {
    in_netns(ns, move || {
        // SAFETY: socket(2) gives a new descriptor, owned here alone.
        let sock = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)) };
        for device in devices {
            let mut value = [0x17u32, 0];
            // SAFETY: ifreq is plain data; zeroes are a valid value.
            let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
            for (d, s) in ifr.ifr_name.iter_mut().zip(device.bytes()) {
                *d = s as libc::c_char;
            }
            ifr.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
            // SAFETY: SIOCETHTOOL reads the ifreq and the value it points to, both alive.
            assert_eq!(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) }, 0, "{device}");
        }
    })
}

/// One guest: its address, MAC and the three answers it must get.
#[derive(Clone)]
struct Guest {
    ip: Ipv4Addr,
    mac: String,
    name: String,
    files: [(&'static str, Vec<u8>); 3],
}

const PATHS: [&str; 3] = ["/latest/meta-data/", "/latest/meta-data/instance-id", "/latest/user-data"];

/// The zone, VLAN physical network, an Isolated network with the UserData service, and
/// the rows an instance needs besides itself. Returns the network and (template, offering).
async fn network(db: &Db, bridge: &str) -> (NetworkRow, (i64, i64)) {
    let zone = infra::create_zone(
        db,
        NewZone {
            name: "z-bench".into(),
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
    .await
    .unwrap();
    let zone = infra::zone(db, &zone).await.unwrap().unwrap();
    let physical = nets::create_physical(
        db,
        nets::NewPhysical {
            name: "p-bench".into(),
            zone_id: zone.id,
            vlan: Some("3990-3991".into()),
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
    nets::add_traffic_type(db, physical.id, "Guest", Some(bridge.into())).await.unwrap();
    let offering = nets::list_offerings(
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
    let (account, domain): (i64, i64) =
        sqlx::query_as("SELECT id, domain_id FROM accounts ORDER BY id LIMIT 1").fetch_one(db.pool()).await.unwrap();
    let ranges = nets::parse_vlan_ranges("3990-3991").unwrap();
    let uuid = nets::create_network(
        db,
        NewNetwork {
            name: "guests".into(),
            display_text: "guests".into(),
            zone_id: zone.id,
            physical_network_id: physical.id,
            offering_id: offering.id,
            account_id: account,
            domain_id: domain,
            guest_type: "Isolated".into(),
            acl_type: "Account".into(),
            cidr: Some((nets::ip_to_int(Ipv4Addr::new(10, 84, 0, 0)), 24)),
            gateway: Some("10.84.0.1".into()),
            vlan: VlanChoice::FromRange(ranges, "3990-3991".into()),
            dns1: None,
            dns2: None,
            network_domain: None,
            state: "Allocated".into(),
            driver: ("vlan".into(), "0.2.0".into()),
            range: None,
        },
    )
    .await
    .unwrap();
    let n = nets::network(db, &uuid).await.unwrap().unwrap();

    let now = now_ms();
    sqlx::query(
        "INSERT INTO image_stores (uuid, name, zone_id, url, protocol, provider, driver, scope, read_only, \
         capacity_bytes, used_bytes, created) VALUES ($1, 'images', $2, 'file:///x', 'file', 'local', 'local', \
         'ZONE', 0, 0, 0, $3)",
    )
    .bind(new_uuid())
    .bind(zone.id)
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    let store: i64 = sqlx::query_scalar("SELECT max(id) FROM image_stores").fetch_one(db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO templates (uuid, name, display_text, format, is_iso, hypervisor, account_id, is_public, \
         is_featured, is_extractable, password_enabled, bootable, url, template_type, zone_id, store_id, state, \
         status, size, physical_size, created) VALUES ($1, 't', 't', 'QCOW2', 0, 'KVM', $2, 1, 1, 0, 1, 1, \
         'file:///x', 'USER', $3, $4, 'Ready', 'Download Complete', 0, 0, $5)",
    )
    .bind(new_uuid())
    .bind(account)
    .bind(zone.id)
    .bind(store)
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    let template: i64 = sqlx::query_scalar("SELECT max(id) FROM templates").fetch_one(db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO service_offerings (uuid, name, display_text, cpu_number, cpu_speed, memory_mb, storage_type, \
         offer_ha, limit_cpu_use, is_system, created) VALUES ($1, 'Small', 'Small Instance', 1, 500, 512, 'shared', \
         0, 0, 0, $2)",
    )
    .bind(new_uuid())
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    let offering: i64 = sqlx::query_scalar("SELECT max(id) FROM service_offerings").fetch_one(db.pool()).await.unwrap();
    (n, (template, offering))
}

/// An instance with a NIC in `n`, two keys and 1 KiB of userdata.
async fn guest(db: &Db, n: &NetworkRow, (template, offering): (i64, i64), i: usize) -> Guest {
    let uuid = new_uuid();
    let name = format!("guest-{i:03}");
    let nic =
        nets::allocate_nic(db, n, NewNic { instance_uuid: Some(uuid.clone()), is_default: true, ..Default::default() })
            .await
            .unwrap();
    let mut script = format!("#!/bin/sh\n# {name}\n");
    while script.len() < 1024 {
        script.push_str("echo 'configuring the guest' >> /var/log/first-boot.log\n");
    }
    sqlx::query(
        "INSERT INTO instances (uuid, name, instance_name, display_name, account_id, domain_id, zone_id, \
         service_offering_id, template_id, hypervisor, state, cpus, cpu_mhz, memory_mb, user_data, \
         created) VALUES ($1, $2, $3, $2, 1, 1, $4, $5, $6, 'KVM', 'Running', 1, 500, 512, $7, $8)",
    )
    .bind(&uuid)
    .bind(&name)
    .bind(format!("i-2-{i}-VM"))
    .bind(n.zone_id)
    .bind(offering)
    .bind(template)
    .bind(base64::engine::general_purpose::STANDARD.encode(&script))
    .bind(now_ms())
    .execute(db.pool())
    .await
    .unwrap();
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM instances WHERE uuid = $1").bind(&uuid).fetch_one(db.pool()).await.unwrap();
    let keys =
        [format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:03} a@{name}"), format!("ssh-rsa AAAAB3Nza{i:03} b@{name}")];
    for (k, key) in keys.iter().enumerate() {
        sqlx::query("INSERT INTO instance_ssh_keys (instance_id, name, public_key) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(format!("key{k}"))
            .bind(key)
            .execute(db.pool())
            .await
            .unwrap();
    }
    let index = "service-offering\navailability-zone\nlocal-ipv4\nlocal-hostname\ninstance-id\nvm-id\n\
                 public-keys\ncloud-identifier\n";
    Guest {
        ip: nic.ip().unwrap(),
        mac: nic.mac.clone(),
        name,
        files: [(PATHS[0], index.into()), (PATHS[1], uuid.into_bytes()), (PATHS[2], script.into_bytes())],
    }
}

/// The baseline: each guest's files from memory, by the peer address.
async fn static_server(listener: tokio::net::TcpListener, files: Arc<HashMap<Ipv4Addr, Guest>>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let files = files.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let IpAddr::V4(ip) = peer.ip() else { unreachable!() };
                let body = files
                    .get(&ip)
                    .and_then(|g| g.files.iter().find(|(p, _)| *p == req.uri().path()))
                    .map(|(_, b)| b.clone());
                let mut r = match body {
                    Some(b) => Response::new(axum::body::Body::from(b)),
                    None => {
                        let mut r = Response::new(axum::body::Body::empty());
                        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                        r
                    }
                };
                r.headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// One measurement: `clients` clients from the guest namespace, each over its share of
/// the guests (one keep-alive connection each, or a new one per request when `fresh`),
/// asking `path` round-robin for `secs`.
/// Returns (requests per second, p50, p99).
fn measure(
    ns: &str,
    server: SocketAddr,
    guests: Arc<Vec<Guest>>,
    path: usize,
    clients: usize,
    fresh: bool,
    secs: f64,
) -> (f64, Duration, Duration) {
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut tasks = Vec::new();
            for c in 0..clients {
                let guests = guests.clone();
                tasks.push(tokio::spawn(async move {
                    let mine: Vec<&Guest> = guests.iter().skip(c).step_by(clients).collect();
                    let mut conns = Vec::new();
                    for g in &mine {
                        conns.push(Conn::open_from(server, IpAddr::V4(g.ip)).await);
                    }
                    let mut lat = Vec::with_capacity(1 << 16);
                    let mut i = 0;
                    while Instant::now() < end {
                        let k = i % conns.len();
                        let (p, want) = &mine[k].files[path];
                        let start = Instant::now();
                        let mut new_conn;
                        let conn = if fresh {
                            new_conn = Conn::open_from(server, IpAddr::V4(mine[k].ip)).await;
                            &mut new_conn
                        } else {
                            &mut conns[k]
                        };
                        let (status, body) = conn.get(p).await;
                        lat.push(start.elapsed());
                        assert!(status == 200 && body == &want[..], "{} {p}: {status}", mine[k].name);
                        i += 1;
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let n = all.len() as f64;
            let (p50, p99) = p50_p99(all);
            (n / secs, p50, p99)
        })
    })
}

/// Asks each guest's files once from its own address until the service answers right
/// (the userspace datapath learns MACs on the first packets).
fn warm_up(ns: &str, server: SocketAddr, guests: Arc<Vec<Guest>>) {
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            for g in guests.iter() {
                let give_up = Instant::now() + Duration::from_secs(10);
                loop {
                    let attempt = tokio::time::timeout(Duration::from_secs(1), async {
                        let mut c = Conn::open_from(server, IpAddr::V4(g.ip)).await;
                        for (p, want) in &g.files {
                            let (status, body) = c.get(p).await;
                            if status != 200 || body != &want[..] {
                                return false;
                            }
                        }
                        true
                    })
                    .await;
                    if attempt == Ok(true) {
                        break;
                    }
                    assert!(Instant::now() < give_up, "{} ({}) never got its data from {server}", g.name, g.ip);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    })
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    let r = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let p = Plumbing { bridge: format!("ws-mb{r}"), ns: format!("ws-mg{r}"), port: format!("ws-mv{r}") };

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, spec, guests) = runtime.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
        let db = Db::open(&url).await.unwrap();
        wasmstack::auth::store::bootstrap(&db, Some("not-used-here-1".into())).await.unwrap();
        let (n, rows) = network(&db, &p.bridge).await;
        let spec = spec_with_dhcp(&db, &n).await.map_err(|e| e.text).unwrap();
        let mut guests = Vec::new();
        for i in 0..GUESTS {
            guests.push(guest(&db, &n, rows, i).await);
        }
        (db, spec, guests)
    });
    let server_ip: Ipv4Addr =
        spec.dhcp_server.as_deref().and_then(|s| s.split('/').next()).expect("a DHCP address").parse().unwrap();

    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(wasm_dir().join("vlan.wasm"), plugins.path().join("vlan.wasm"))
        .expect("vlan.wasm; run scripts/build.sh");
    let mut config = HostConfig::new(plugins.path());
    config.grant("vlan", Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap());
    let host = PluginHost::new(config).unwrap();
    host.scan();
    let source = Arc::new(runtime.block_on(DbGuestData::new(db.clone())).unwrap());
    host.serve_guest_data(source, runtime.handle().clone(), &new_uuid());
    let vlan: NetworkDriver = host.network("vlan").expect("vlan loaded");
    must(
        "ovs-vsctl",
        &["--timeout=5", "--may-exist", "add-br", &p.bridge, "--", "set", "bridge", &p.bridge, "datapath_type=netdev"],
    );
    let att = vlan.implement("local", &spec).expect("implement");
    let _implemented = Implemented(&vlan, spec.clone());
    let started = Instant::now();
    for g in &guests {
        let nic =
            NicSpec { id: new_uuid(), mac: g.mac.clone(), ip: Some(g.ip.to_string()), hostname: Some(g.name.clone()) };
        vlan.prepare_nic("local", &spec, &nic).expect("prepare-nic");
    }
    eprintln!("{GUESTS} leases in {:.1} s", started.elapsed().as_secs_f64());

    // The guests: macvlans on one veth plugged into the network's VLAN.
    must("ip", &["netns", "add", &p.ns]);
    must(
        "ip",
        &[
            "link",
            "add",
            &p.port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            "02:00:00:84:ff:ff",
            "netns",
            &p.ns,
        ],
    );
    let mut args = vec!["--timeout=5".to_owned(), "add-port".into(), att.bridge.clone(), p.port.clone()];
    args.extend(att.vlan.map(|v| format!("tag={v}")));
    must("ovs-vsctl", &args.iter().map(String::as_str).collect::<Vec<_>>());
    must("ip", &["link", "set", &p.port, "up"]);
    for (key, value) in
        [("all.arp_ignore", "1"), ("all.arp_announce", "2"), ("all.rp_filter", "0"), ("default.rp_filter", "0")]
    {
        must("ip", &["netns", "exec", &p.ns, "sysctl", "-qw", &format!("net.ipv4.conf.{key}={value}")]);
    }
    ip_batch(&p.ns, "link set lo up\nlink set eth0 up\n");
    no_tx_checksum_offload(&p.ns, vec!["eth0"]);
    let mut batch = String::new();
    for (i, g) in guests.iter().enumerate() {
        let (dev, table) = (format!("m{i}"), 1000 + i);
        batch += &format!("link add link eth0 name {dev} address {} type macvlan mode private\n", g.mac);
        batch += &format!("link set {dev} up\naddr add {}/32 dev {dev}\n", g.ip);
        batch += &format!("route add {server_ip}/32 dev {dev} src {} table {table}\n", g.ip);
        batch += &format!("rule add from {} table {table}\n", g.ip);
    }
    // (The macvlans take eth0's offloads, checksumming off.)
    ip_batch(&p.ns, &batch);

    // The baseline, beside the service in the DHCP service's namespace.
    let dhcp_ns = format!("ws-n{}", spec.id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect::<String>());
    let baseline_addr = SocketAddr::from((server_ip, BASELINE_PORT));
    let listener = in_netns(&dhcp_ns, move || {
        let l = std::net::TcpListener::bind(baseline_addr).expect("the baseline's listener");
        l.set_nonblocking(true).unwrap();
        l
    });
    let files: Arc<HashMap<Ipv4Addr, Guest>> = Arc::new(guests.iter().map(|g| (g.ip, g.clone())).collect());
    runtime.spawn(async move { static_server(tokio::net::TcpListener::from_std(listener).unwrap(), files).await });

    let guests = Arc::new(guests);
    let service_addr = SocketAddr::from((server_ip, 80));
    warm_up(&p.ns, service_addr, guests.clone());
    warm_up(&p.ns, baseline_addr, guests.clone());

    println!(
        "metadata service vs a static file server, {GUESTS} guests round-robin, {secs} s each (req/s, p50/p99 ms); \
         keep-alive connections, then a new connection per request as cloud-init makes them:"
    );
    for (fresh, clients) in [(false, 1usize), (false, 16), (true, 1), (true, 16)] {
        let how = if fresh { "new conn" } else { "keep-alive" };
        for (k, path) in PATHS.iter().enumerate() {
            let (s_rps, s50, s99) = measure(&p.ns, service_addr, guests.clone(), k, clients, fresh, secs);
            let (b_rps, b50, b99) = measure(&p.ns, baseline_addr, guests.clone(), k, clients, fresh, secs);
            println!(
                "  {how:<10} {clients:>2} clients {path:<30} service {s_rps:>7.0} req/s {:>6.2}/{:>6.2}  static {b_rps:>7.0} req/s \
                 {:>6.2}/{:>6.2}  ratio {:.2}x (p99 {:.2}x)",
                ms(s50),
                ms(s99),
                ms(b50),
                ms(b99),
                b_rps / s_rps,
                s99.as_secs_f64() / b99.as_secs_f64(),
            );
        }
    }
    drop(_implemented);
    drop(p);
}
