//! deployVirtualMachine end to end: the time from the API call to the job's Running, on
//! the Simulator and on real QEMU, against libvirt defining and starting the very same
//! domain XML directly (the `virt` crate) in the same run; then deploy throughput with
//! 1, 4 and 16 concurrent clients on the Simulator.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench deploy
//!
//! Needs root, libvirtd, nfs-ganesha and Open vSwitch running (scripts/setup.sh), the
//! components built (scripts/build.sh) and the tiny guest (scripts/guest-image.sh;
//! `WASMSTACK_GUEST_DIR`, default ~/.cache/wasmstack/guest). `WASMSTACK_NFS_URL` and
//! `WASMSTACK_NFS_EXPORT_DIR` name the export as for the tests. `BENCH_RUNS` (20) and
//! `BENCH_QEMU_RUNS` (20) set the latency runs, `BENCH_DEPLOYS` (160, at most what the
//! Simulator host holds) the deploys per throughput level, `BENCH_ACCEL` (tcg) the QEMU
//! cluster's acceleration. `RUST_LOG=wasmstack=debug` logs each driver call and tool
//! run with the time it took.
//!
//! A latency run deploys a VM through the API and waits for its job (polled every
//! millisecond on the Simulator, every 5 ms on QEMU); then, untimed, stops it through the API and undefines its domain, and
//! times `define` + `start` of the XML libvirt had for it (on QEMU with the root disk
//! swapped for a new overlay of the same template, made untimed: a deploy starts a
//! disk never opened before, and so must the baseline); untimed again, powers that
//! off (the VM is Stopped, as the server has it) and expunges the VM through the API.
//! The Simulator zone has no primary pool (its domains need no disk); the QEMU zone has
//! its root disks on NFS and its NIC on an Open vSwitch VLAN, all made by the drivers.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use virt::connect::Connect;
use virt::domain::Domain;

use support::{Conn, call, ms, p50_p99, wait_job_every};

const SIMULATOR: &str = "test:///default";
const QEMU: &str = "qemu:///system";

fn env_num(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
}

fn nfs_url() -> String {
    std::env::var("WASMSTACK_NFS_URL").unwrap_or_else(|_| "nfs://127.0.0.1/export".into())
}

fn export_dir() -> PathBuf {
    std::env::var_os("WASMSTACK_NFS_EXPORT_DIR")
        .map_or_else(|| home().join(".cache/wasmstack/nfs/export"), PathBuf::from)
}

/// What the bench made on this host outside the server's data folder, removed when
/// dropped, so that a panic still leaves the host as it was.
struct Leftovers {
    bridge: String,
    folders: Vec<PathBuf>,
    domains: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = std::process::Command::new(args[0]).args(&args[1..]).output();
        };
        for uuid in &self.domains {
            run(&["virsh", "-c", QEMU, "destroy", uuid]);
            run(&["virsh", "-c", QEMU, "undefine", uuid]);
            if let Ok(logs) = std::fs::read_dir("/var/log/libvirt/qemu") {
                for log in logs.flatten() {
                    if log.file_name().to_string_lossy().ends_with(&format!("-{uuid}.serial.log")) {
                        let _ = std::fs::remove_file(log.path());
                    }
                }
            }
        }
        run(&["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", &self.bridge]);
        for f in &self.folders {
            let _ = std::fs::remove_dir_all(f);
        }
    }
}

/// An API client: one keep-alive connection and the admin's keys.
struct Api {
    conn: Conn,
    key: String,
    secret: String,
}

impl Api {
    async fn call(&mut self, params: &[(&str, &str)]) -> Value {
        call(&mut self.conn, &self.key, &self.secret, params, true).await
    }

    /// Runs an async command to its end, polling its job every `poll`.
    async fn job(&mut self, params: &[(&str, &str)], poll: Duration) -> Value {
        let submitted = call(&mut self.conn, &self.key, &self.secret, params, false).await;
        let job = submitted["jobid"].as_str().expect("a job id");
        let done = wait_job_every(&mut self.conn, &self.key, &self.secret, job, poll).await;
        assert_eq!(done["jobstatus"], 1, "{params:?}: {done}");
        done["jobresult"].clone()
    }

    /// Deploys and waits for the job; returns the VM's uuid and the time taken.
    async fn deploy(&mut self, z: &Zone) -> (String, Duration) {
        self.deploy_with(z, true).await
    }

    async fn deploy_with(&mut self, z: &Zone, start: bool) -> (String, Duration) {
        let t = Instant::now();
        let params = [
            ("command", "deployVirtualMachine"),
            ("zoneid", z.zone.as_str()),
            ("templateid", z.template.as_str()),
            ("serviceofferingid", z.offering.as_str()),
            ("startvm", if start { "true" } else { "false" }),
        ];
        let submitted = call(&mut self.conn, &self.key, &self.secret, &params, false).await;
        let job = submitted["jobid"].as_str().expect("a job id");
        let done = wait_job_every(&mut self.conn, &self.key, &self.secret, job, z.poll).await;
        let took = t.elapsed();
        assert_eq!(done["jobstatus"], 1, "the deploy failed: {done}");
        let vm = &done["jobresult"]["virtualmachine"];
        assert_eq!(vm["state"], if start { "Running" } else { "Stopped" }, "{vm}");
        (vm["id"].as_str().unwrap().to_owned(), took)
    }
}

/// A QEMU deploy in two halves, each against libvirt's own share of it: deploy without
/// starting (NIC, disk, define) against `define` alone, and startVirtualMachine against
/// `start` alone. Returns p50s: (build, define, start via API, start alone).
async fn halves(api: &mut Api, z: &Zone, runs: usize, left: &mut Leftovers) -> [Duration; 4] {
    let conn = Connect::open(Some(QEMU)).expect("opening libvirt");
    let mut lat: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        let (vm, took) = api.deploy_with(z, false).await;
        left.domains.push(vm.clone());
        lat[0].push(took);
        let dom = Domain::lookup_by_uuid_string(&conn, &vm).expect("the VM's domain");
        let xml = dom.get_xml_desc(0).unwrap();
        dom.undefine().unwrap();
        let t = Instant::now();
        let dom = Domain::define_xml(&conn, &xml).expect("defining the same XML");
        lat[1].push(t.elapsed());
        let t = Instant::now();
        api.job(&[("command", "startVirtualMachine"), ("id", &vm)], z.poll).await;
        lat[2].push(t.elapsed());
        api.call(&[("command", "stopVirtualMachine"), ("id", &vm), ("forced", "true")]).await;
        let t = Instant::now();
        dom.create().expect("starting it");
        lat[3].push(t.elapsed());
        dom.destroy().unwrap();
        api.call(&[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")]).await;
    }
    lat.map(|l| p50_p99(l).0)
}

/// The ids a deploy names, and how often its job is polled.
struct Zone {
    zone: String,
    template: String,
    offering: String,
    network: String,
    poll: Duration,
}

/// An enabled Advanced zone with one host at `uri`, an NFS image store with the tiny
/// template ready, an Isolated VLAN network on `bridge` and an offering; with an NFS
/// primary pool when `pool` names its folder on the export.
async fn zone(api: &mut Api, tag: &str, uri: &str, web: &str, bridge: &str, pool: Option<&str>, memory: &str) -> Zone {
    let hypervisor = if uri == SIMULATOR { "Simulator" } else { "KVM" };
    let zone = api
        .call(&[
            ("command", "createZone"),
            ("name", &format!("z{tag}")),
            ("networktype", "Advanced"),
            ("dns1", "10.0.0.53"),
            ("internaldns1", "10.0.0.53"),
            ("guestcidraddress", "10.128.0.0/16"),
        ])
        .await["zone"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pod = api.call(&[("command", "createPod"), ("name", &format!("p{tag}")), ("zoneid", &zone)]).await["pod"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let accel = std::env::var("BENCH_ACCEL").unwrap_or_else(|_| "tcg".into());
    let mut cluster_params = vec![
        ("command", "addCluster"),
        ("clustername", "c"),
        ("clustertype", "CloudManaged"),
        ("hypervisor", hypervisor),
        ("podid", &pod),
        ("zoneid", &zone),
    ];
    if hypervisor == "KVM" {
        cluster_params.push(("accel", &accel));
    }
    let cluster = api.call(&cluster_params).await["cluster"][0]["id"].as_str().unwrap().to_owned();
    api.call(&[
        ("command", "addHost"),
        ("hypervisor", hypervisor),
        ("podid", &pod),
        ("zoneid", &zone),
        ("clusterid", &cluster),
        ("url", uri),
        ("username", "root"),
        ("password", "password"),
    ])
    .await;
    let nfs = nfs_url();
    if let Some(folder) = pool {
        api.call(&[
            ("command", "createStoragePool"),
            ("name", &format!("sp{tag}")),
            ("url", &format!("{nfs}/{folder}")),
            ("zoneid", &zone),
            ("clusterid", &cluster),
            ("scope", "cluster"),
        ])
        .await;
    }
    api.call(&[
        ("command", "addImageStore"),
        ("provider", "NFS"),
        ("name", &format!("st{tag}")),
        ("url", &format!("{nfs}/ws-bench-deploy-{tag}-store")),
        ("zoneid", &zone),
    ])
    .await;
    let template = api
        .call(&[
            ("command", "registerTemplate"),
            ("name", &format!("tiny{tag}")),
            ("displaytext", "tiny"),
            ("url", &format!("{web}/tiny.qcow2")),
            ("format", "QCOW2"),
            ("hypervisor", hypervisor),
            ("zoneid", &zone),
            ("ispublic", "true"),
        ])
        .await["template"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = Instant::now();
    while api.call(&[("command", "listTemplates"), ("templatefilter", "all"), ("id", &template)]).await["template"][0]["isready"]
        != true
    {
        assert!(start.elapsed() < Duration::from_secs(120), "the template did not download");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let phys = api
        .call(&[
            ("command", "createPhysicalNetwork"),
            ("name", &format!("ph{tag}")),
            ("zoneid", &zone),
            ("vlan", "3540-3549"),
            ("isolationmethods", "VLAN"),
        ])
        .await["physicalnetwork"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(&[
        ("command", "addTrafficType"),
        ("physicalnetworkid", &phys),
        ("traffictype", "Guest"),
        ("kvmnetworklabel", bridge),
    ])
    .await;
    api.call(&[("command", "updatePhysicalNetwork"), ("id", &phys), ("state", "Enabled")]).await;
    let offerings = api
        .call(&[("command", "listNetworkOfferings"), ("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")])
        .await;
    let iso = offerings["networkoffering"][0]["id"].as_str().unwrap().to_owned();
    let network = api
        .call(&[
            ("command", "createNetwork"),
            ("name", &format!("n{tag}")),
            ("networkofferingid", &iso),
            ("zoneid", &zone),
        ])
        .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let offering = api
        .call(&[
            ("command", "createServiceOffering"),
            ("name", &format!("so{tag}")),
            ("displaytext", "bench"),
            ("cpunumber", "1"),
            ("cpuspeed", "10"),
            ("memory", memory),
        ])
        .await["serviceoffering"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(&[("command", "updateZone"), ("id", &zone), ("allocationstate", "Enabled")]).await;
    // A Simulator deploy takes milliseconds, so its job is polled every millisecond. A
    // QEMU start takes a quarter of a second of CPU on a small machine, and a poll
    // every millisecond would take CPU from it that libvirt alone never loses: polled
    // every 5 ms, which adds 2.5 ms on average to what is measured through the API.
    let poll = Duration::from_millis(if uri == SIMULATOR { 1 } else { 5 });
    Zone { zone, template, offering, network, poll }
}

/// Deploy latencies through the API and of libvirt alone on the same XML, alternating.
async fn latency(
    api: &mut Api,
    z: &Zone,
    uri: &str,
    runs: usize,
    left: &mut Leftovers,
) -> (Vec<Duration>, Vec<Duration>) {
    let conn = Connect::open(Some(uri)).expect("opening libvirt");
    let (mut through_api, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (vm, took) = api.deploy(z).await;
        if uri == QEMU {
            left.domains.push(vm.clone());
        }
        through_api.push(took);
        api.call(&[("command", "stopVirtualMachine"), ("id", &vm), ("forced", "true")]).await;
        let dom = Domain::lookup_by_uuid_string(&conn, &vm).expect("the VM's domain");
        let mut xml = dom.get_xml_desc(0).unwrap();
        dom.undefine().unwrap();
        // The deploy started a root disk never opened before; libvirt alone gets one too.
        let fresh = (uri == QEMU).then(|| fresh_root_disk(&mut xml));
        let t = Instant::now();
        let dom = Domain::define_xml(&conn, &xml).expect("defining the same XML");
        dom.create().expect("starting it");
        raw.push(t.elapsed());
        dom.destroy().unwrap();
        if let Some(file) = fresh {
            std::fs::remove_file(file).unwrap();
        }
        api.call(&[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")]).await;
        assert!(Domain::lookup_by_uuid_string(&conn, &vm).is_err(), "the expunged VM's domain is still defined");
    }
    (through_api, raw)
}

/// Points a QEMU domain's root disk at a new overlay on the same template, made now
/// (untimed) with qemu-img, as the deploy's own disk was: a first start opens a disk
/// the NFS server has not served before, which a second start of the same disk would
/// not. Returns the new file on the export, to remove.
fn fresh_root_disk(xml: &mut String) -> PathBuf {
    let names: Vec<String> = xml
        .split("<source protocol='nfs' name='")
        .skip(1)
        .map(|rest| rest[..rest.find('\'').unwrap()].to_owned())
        .collect();
    let (disk, template) = (&names[0], &names[1]);
    let copy = disk.replace(".qcow2", "-libvirt-alone.qcow2");
    let url = nfs_url();
    let server = &url[..url[6..].find('/').unwrap() + 6];
    let done = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .args([format!("{server}{template}"), format!("{server}{copy}")])
        .output()
        .unwrap();
    assert!(done.status.success(), "qemu-img create: {}", String::from_utf8_lossy(&done.stderr));
    *xml = xml.replace(&format!("name='{disk}'"), &format!("name='{copy}'"));
    let export_path = &url[server.len()..];
    export_dir().join(copy.strip_prefix(export_path).unwrap().trim_start_matches('/'))
}

/// Deploys `total` VMs with `clients` concurrent clients; returns VMs per second and
/// the latencies. The VMs are expunged afterwards (untimed): every level starts on an
/// empty host.
async fn throughput(
    addr: std::net::SocketAddr,
    key: &str,
    secret: &str,
    z: &Arc<Zone>,
    clients: usize,
    total: usize,
) -> (f64, Vec<Duration>) {
    let tickets = Arc::new(AtomicUsize::new(total));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (tickets, z) = (tickets.clone(), z.clone());
        let (key, secret) = (key.to_owned(), secret.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut api = Api { conn: Conn::open(addr).await, key, secret };
            let (mut lat, mut vms) = (Vec::new(), Vec::new());
            while tickets.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                let (vm, took) = api.deploy(&z).await;
                lat.push(took);
                vms.push(vm);
            }
            (api, lat, vms)
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let per_second = total as f64 / start.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut cleanups = Vec::new();
    for (mut api, lat, vms) in done {
        all.extend(lat);
        cleanups.push(tokio::spawn(async move {
            for vm in vms {
                api.call(&[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")]).await;
            }
        }));
    }
    for c in cleanups {
        c.await.unwrap();
    }
    (per_second, all)
}

/// Where a QEMU deploy's time goes, by the driver calls it makes besides libvirt's,
/// each called as the server calls it (off the runtime, on the same pool and network):
/// (root disk made, NIC prepared, the same disk made by `qemu-img create`
/// alone) per run. Each is undone untimed.
async fn pieces(
    o: &wasmstack::orchestrate::Orchestrator,
    network: &str,
    host: &str,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let (pool, base): (String, String) = sqlx::query_as(
        "SELECT s.url, tp.path FROM template_pools tp JOIN storage_pools s ON s.id = tp.pool_id ORDER BY tp.pool_id DESC",
    )
    .fetch_one(o.db.pool())
    .await
    .unwrap();
    let n = wasmstack::cloud::networks::network(&o.db, network).await.unwrap().unwrap();
    let spec = wasmstack::orchestrate::networks::spec_with_dhcp(&o.db, &n).await.unwrap();
    let nfs = o.plugins.storage("nfs").unwrap();
    let vlan = o.plugins.network("vlan").unwrap();
    let (mut disk, mut nic, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let folder = export_dir().join(pool.rsplit('/').next().unwrap());
    for k in 0..runs {
        let (d, p, b, name) = (nfs.clone(), pool.clone(), base.clone(), uuid::Uuid::new_v4().to_string());
        let t = Instant::now();
        let path = tokio::task::spawn_blocking(move || {
            // As the server does: the locator comes back with the volume, no `locate` call.
            d.create_volume(&p, &name, 64 << 20, Some(&b)).unwrap().path
        })
        .await
        .unwrap();
        disk.push(t.elapsed());
        let (d, p) = (nfs.clone(), pool.clone());
        tokio::task::spawn_blocking(move || d.delete_volume(&p, &path).unwrap()).await.unwrap();

        let name = format!("bench-{}.qcow2", uuid::Uuid::new_v4());
        let (backing, target) = (format!("{pool}/{base}"), format!("{pool}/{name}"));
        let t = Instant::now();
        let done = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &backing, &target, "64M"])
            .output()
            .unwrap();
        bare.push(t.elapsed());
        assert!(done.status.success(), "qemu-img create: {}", String::from_utf8_lossy(&done.stderr));
        std::fs::remove_file(folder.join(&name)).unwrap();

        let card = wasmstack::plugins::NicSpec {
            id: uuid::Uuid::new_v4().to_string(),
            mac: format!("02:00:0b:e0:00:{k:02x}"),
            ip: Some(format!("10.128.200.{}", k + 10)),
            hostname: Some(format!("bench{k}")),
        };
        let (v, h, s, c) = (vlan.clone(), host.to_owned(), spec.clone(), card.clone());
        let t = Instant::now();
        tokio::task::spawn_blocking(move || v.prepare_nic(&h, &s, &c).unwrap()).await.unwrap();
        nic.push(t.elapsed());
        let (v, h, s) = (vlan.clone(), host.to_owned(), spec.clone());
        tokio::task::spawn_blocking(move || v.release_nic(&h, &s, &card).unwrap()).await.unwrap();
    }
    (disk, nic, bare)
}

fn report(what: &str, through_api: Vec<Duration>, raw: Vec<Duration>) {
    let n = through_api.len();
    // Each run's own difference: a slow QEMU start lands on both sides of it, so its
    // median moves less with the machine's noise than the difference of the medians.
    let mut paired: Vec<f64> = through_api.iter().zip(&raw).map(|(a, r)| ms(*a) - ms(*r)).collect();
    paired.sort_by(f64::total_cmp);
    let paired_p50 = paired[paired.len() / 2];
    let (a50, a99) = p50_p99(through_api);
    let (r50, r99) = p50_p99(raw);
    println!("{what}, {n} runs:");
    println!("  deployVirtualMachine → Running  p50 {:>8.2} ms  p99 {:>8.2} ms", ms(a50), ms(a99));
    println!("  libvirt define + start alone    p50 {:>8.2} ms  p99 {:>8.2} ms", ms(r50), ms(r99));
    println!(
        "  ratio {:.2}x at p50 (overhead {:+.1} ms, {:+.0}%)",
        a50.as_secs_f64() / r50.as_secs_f64(),
        ms(a50) - ms(r50),
        (a50.as_secs_f64() / r50.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "  paired: overhead p50 {paired_p50:+.1} ms per deploy, {:+.1}% of libvirt alone",
        paired_p50 / ms(r50) * 100.0
    );
}

fn main() {
    // RUST_LOG=wasmstack=debug shows each driver call and qemu-img run with its time.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .init();
    }
    let runs = env_num("BENCH_RUNS", 20);
    let qemu_runs = env_num("BENCH_QEMU_RUNS", 20);
    let deploys = env_num("BENCH_DEPLOYS", 160);
    let guest =
        std::env::var_os("WASMSTACK_GUEST_DIR").map_or_else(|| home().join(".cache/wasmstack/guest"), PathBuf::from);
    let template = std::fs::read(guest.join("template.qcow2")).expect("the tiny guest; run scripts/guest-image.sh");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let bridge = format!("ws-bd{tag}");
    let pool = format!("ws-bench-deploy-{tag}-pool");
    let mut left = Leftovers {
        bridge: bridge.clone(),
        folders: ["sim", "kvm"]
            .iter()
            .map(|k| export_dir().join(format!("ws-bench-deploy-{tag}{k}-store")))
            .chain([export_dir().join(&pool)])
            .collect(),
        domains: Vec::new(),
    };
    let grants = format!(
        "[plugin.kvm]\nlibvirt = [\"{SIMULATOR}\", \"{QEMU}\"]\ntimeout-ms = 60000\n\n\
         [plugin.nfs]\nimages = [\"{}\"]\ntimeout-ms = 60000\n\n\
         [plugin.vlan]\nnetdev = [\"ws-\"]\ntimeout-ms = 30000\n\n\
         [downloads]\nallowed-internal-sites = [\"127.0.0.1/32\"]  # the template's HTTP server\n",
        nfs_url()
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (addr, o, key, secret, _data) =
            support::start_server_with(|dir| support::install_plugins(dir, &["kvm", "nfs", "vlan"], &grants)).await;
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web_url = format!("http://{}", web.local_addr().unwrap());
        let bytes = axum::body::Bytes::from(template);
        let app = axum::Router::new().route("/tiny.qcow2", axum::routing::get(move || async move { bytes.clone() }));
        tokio::spawn(async move { axum::serve(web, app).await.unwrap() });
        let mut api = Api { conn: Conn::open(addr).await, key: key.clone(), secret: secret.clone() };

        let sim = zone(&mut api, &format!("{tag}sim"), SIMULATOR, &web_url, &format!("ws-bs{tag}"), None, "32").await;
        let (warm, _) = api.deploy(&sim).await; // the network's first NIC, the driver instances
        api.call(&[("command", "destroyVirtualMachine"), ("id", &warm), ("expunge", "true")]).await;
        let (a, r) = latency(&mut api, &sim, SIMULATOR, runs, &mut left).await;
        report("Simulator (test:///default, no disk)", a, r);

        let kvm = zone(&mut api, &format!("{tag}kvm"), QEMU, &web_url, &bridge, Some(&pool), "64").await;
        // The first deploy copies the template onto the pool and builds the network's
        // DHCP service: once per pool and network, not part of a deploy's cost.
        let (first, took) = api.deploy(&kvm).await;
        left.domains.push(first.clone());
        println!("QEMU: first deploy (template copied to the pool, network built) {:.0} ms", ms(took));
        api.call(&[("command", "destroyVirtualMachine"), ("id", &first), ("expunge", "true")]).await;
        let (a, r) = latency(&mut api, &kvm, QEMU, qemu_runs, &mut left).await;
        let (api_p50, raw_p50) = (p50_p99(a.clone()).0, p50_p99(r.clone()).0);
        report(&format!("QEMU ({QEMU}, TCG unless BENCH_ACCEL, root disk on NFS, NIC on OVS)"), a, r);
        let hosts = api.call(&[("command", "listHosts"), ("zoneid", &kvm.zone)]).await;
        let host = hosts["host"][0]["name"].as_str().unwrap().to_owned();
        let (disk, nic, bare) = pieces(&o, &kvm.network, &host, qemu_runs).await;
        println!(
            "  where the time goes: root disk made p50 {:.1} ms (qemu-img create alone {:.1} ms), \
             NIC prepared p50 {:.1} ms",
            ms(p50_p99(disk).0),
            ms(p50_p99(bare.clone()).0),
            ms(p50_p99(nic).0)
        );
        let [build, define, start, start_alone] = halves(&mut api, &kvm, qemu_runs, &mut left).await;
        println!(
            "  in halves: deploy without start p50 {:.1} ms (define alone {:.1} ms); \
             startVirtualMachine p50 {:.1} ms (start alone {:.1} ms)",
            ms(build),
            ms(define),
            ms(start),
            ms(start_alone)
        );
        // The same work done with the bare tools: the overlay made, then define + start.
        let tools = p50_p99(bare).0 + raw_p50;
        println!(
            "  against qemu-img create + define + start (sum of p50s, {:.1} ms): {:.2}x",
            ms(tools),
            api_p50.as_secs_f64() / tools.as_secs_f64()
        );
        api.call(&[("command", "deleteNetwork"), ("id", &kvm.network)]).await;

        // A level never asks for more than the Simulator host holds at 32 MB a VM.
        let hosts = api.call(&[("command", "listHosts"), ("zoneid", &sim.zone)]).await;
        let clusters = api.call(&[("command", "listClusters"), ("zoneid", &sim.zone)]).await;
        let ratio: f64 = clusters["cluster"][0]["memoryovercommitratio"].as_str().unwrap_or("1").parse().unwrap();
        let room = (hosts["host"][0]["memorytotal"].as_f64().unwrap() / f64::from(1 << 20) * ratio / 32.0) as usize;
        let deploys = deploys.min(room);
        let sim = Arc::new(sim);
        println!("Simulator deploy throughput, {deploys} deploys per level:");
        for clients in [1, 4, 16] {
            let (per_second, lat) = throughput(addr, &key, &secret, &sim, clients, deploys).await;
            let (p50, p99) = p50_p99(lat);
            println!(
                "  {clients:>2} clients  {per_second:>7.1} VMs/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                ms(p50),
                ms(p99)
            );
        }
    });
    drop(left);
}
