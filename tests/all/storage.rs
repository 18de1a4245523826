//! Storage drivers end to end: the `nfs` driver against a real nfs-ganesha on loopback
//! (scripts/setup.sh starts it; scripts/test.sh names its folder), the `local` driver
//! in a scratch folder, both through the real plugin host and its `images`
//! capability. After each step the files on the storage are read directly, and must be
//! exactly what is expected.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmstack::plugins::{
    Accel, BackingImage, Capability, ConsoleSpec, Disk, DiskBus, DiskDevice, DiskFormat, DriverError, Limits, Locator,
    PluginError, PluginHost, StorageDriver, VmPower, VmSpec,
};

use crate::kvm_guest::{MARKER, QEMU, guest_template, virsh_knows, wait_for};
use crate::support::{Sandbox, new_uuid};

/// The layout `attach` makes in a pool or store.
const LAYOUT: [&str; 4] = ["", "snapshots/", "templates/", "volumes/"];

// ------------------------------------------------------------------ storage areas

/// A folder of the test's own, on the NFS export or on local disk, removed at the
/// end whatever happened.
struct Area {
    /// The folder, read directly by the test.
    dir: PathBuf,
    /// The same folder as the drivers name it.
    url: String,
}

impl Drop for Area {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Area {
    /// A fresh folder on the export nfs-ganesha serves.
    fn nfs() -> Self {
        // scripts/test.sh names the folder; scripts/setup.sh's default serves the same one.
        let dir = std::env::var_os("WASMSTACK_NFS_EXPORT_DIR").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME or WASMSTACK_NFS_EXPORT_DIR");
            Path::new(&home).join(".cache/wasmstack/nfs/export")
        });
        assert!(
            dir.join(".wasmstack-export").is_file(),
            "{} is not the folder nfs-ganesha exports; run scripts/setup.sh, or set WASMSTACK_NFS_EXPORT_DIR",
            dir.display()
        );
        let url = std::env::var("WASMSTACK_NFS_URL").unwrap_or_else(|_| "nfs://127.0.0.1/export".into());
        let name = format!("ws-test-{}", &new_uuid()[..8]);
        Area { dir: dir.join(&name), url: format!("{url}/{name}") }
    }

    /// A fresh local folder QEMU (an unprivileged user) can enter.
    fn local() -> Self {
        let dir = PathBuf::from(format!("/var/tmp/ws-test-{}", &new_uuid()[..8]));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Area { url: format!("file://{}", dir.display()), dir }
    }

    fn pool(&self) -> String {
        format!("{}/primary", self.url)
    }

    fn store(&self) -> String {
        format!("{}/secondary", self.url)
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Every file and folder below the area, folders with a trailing slash.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out);
        out.sort();
        out
    }

    /// The attached pool and store layouts plus `files`.
    fn expected(&self, files: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = ["primary/", "secondary/"]
            .iter()
            .flat_map(|root| LAYOUT.iter().map(move |d| format!("{root}{d}")))
            .chain(files.iter().map(|f| f.to_string()))
            .collect();
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            out.push(format!("{rel}/"));
            walk(base, &path, out);
        } else {
            out.push(rel);
        }
    }
}

// ------------------------------------------------------------------ images, checked locally

/// The tiny guest's template, as the HTTP server serves it.
struct Template {
    bytes: Arc<Vec<u8>>,
    sha256: String,
    virtual_size: u64,
}

fn template() -> Template {
    let path = guest_template();
    let bytes = std::fs::read(&path).unwrap();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let virtual_size = qemu_info(&path)["virtual-size"].as_u64().unwrap();
    Template { bytes: Arc::new(bytes), sha256, virtual_size }
}

fn qemu_info(path: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img").args(["info", "-U", "--output=json"]).arg(path).output().unwrap();
    assert!(out.status.success(), "qemu-img info {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn snapshots(path: &Path) -> Vec<String> {
    let info = qemu_info(path);
    let list = info["snapshots"].as_array().cloned().unwrap_or_default();
    list.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

/// Whether two images show the guest the same bytes (qemu-img compare: 0 same, 1 differ).
fn same_content(a: &Path, b: &Path) -> bool {
    let out = Command::new("qemu-img").args(["compare", "-q"]).arg(a).arg(b).output().unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("qemu-img compare failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Writes into a volume as a guest would.
fn guest_writes(path: &Path) {
    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0xab 0 64k"]).arg(path).output().unwrap();
    assert!(out.status.success(), "qemu-io: {}", String::from_utf8_lossy(&out.stderr));
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

// ------------------------------------------------------------------ a tiny HTTP server

/// Serves files over HTTP/1.1 on loopback. "/slow<path>" serves `<path>` in small
/// chunks with pauses; "/stall" accepts and never answers; "/redirect/<rest>" redirects
/// to `http://<rest>`; anything else unknown is 404.
struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(files: Vec<(&str, Arc<Vec<u8>>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let files: Arc<Vec<(String, Arc<Vec<u8>>)>> =
            Arc::new(files.into_iter().map(|(n, b)| (n.to_owned(), b)).collect());
        let (flag, count) = (stop.clone(), requests.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::Relaxed);
                let (files, flag) = (files.clone(), flag.clone());
                std::thread::spawn(move || serve(conn, &files, &flag));
            }
        });
        HttpServer { addr, stop, requests, accept: Some(accept) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, files: &[(String, Arc<Vec<u8>>)], stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    if path == "/stall" {
        let until = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let head =
            format!("HTTP/1.1 302 Found\r\nLocation: http://{rest}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = conn.write_all(head.as_bytes());
        return;
    }
    let (slow, name) = match path.strip_prefix("/slow") {
        Some(rest) => (true, rest),
        None => (false, path.as_str()),
    };
    let Some((_, body)) = files.iter().find(|(n, _)| n == name) else {
        let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    if slow {
        for chunk in body.chunks(64 << 10) {
            if stop.load(Ordering::Relaxed) || conn.write_all(chunk).and_then(|_| conn.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    } else {
        let _ = conn.write_all(body);
    }
}

// ------------------------------------------------------------------ drivers

/// A plugin host with the storage driver `driver` (and the kvm driver) granted `images`;
/// downloads may reach the test HTTP servers on 127.0.0.1.
fn host_with(sb: &Sandbox, driver: &str, images: &[&str]) -> PluginHost {
    host_with_sites(sb, driver, images, &["127.0.0.1/32"])
}

/// The same, with downloads allowed to reach these internal sites only.
fn host_with_sites(sb: &Sandbox, driver: &str, images: &[&str], sites: &[&str]) -> PluginHost {
    sb.install(&format!("{driver}.wasm"), &format!("{driver}.wasm"));
    sb.install("kvm.wasm", "kvm.wasm");
    let quoted = |list: &[&str]| list.iter().map(|g| format!("\"{g}\"")).collect::<Vec<_>>().join(", ");
    let config = format!(
        "[plugin.{driver}]\nimages = [{}]\ntimeout-ms = 60000\n\n[plugin.kvm]\nlibvirt = [\"{QEMU}\"]\ntimeout-ms = 60000\n\n\
         [downloads]\nallowed-internal-sites = [{}]\n",
        quoted(images),
        quoted(sites)
    );
    let host = sb.host(&config);
    let events = host.scan();
    assert!(events.iter().all(|e| e.loaded), "{events:?}");
    host
}

fn driver_error(err: PluginError) -> DriverError {
    match err {
        PluginError::Driver { error, .. } => error,
        other => panic!("expected a driver error, got {other:?}"),
    }
}

fn expect_denied(err: PluginError, driver: &str) -> String {
    match driver_error(err) {
        DriverError::Denied(text) => {
            assert!(text.contains(&format!("is not granted to plugin \"{driver}\"")), "{text}");
            assert!(text.contains("images = ["), "the denial does not name the grant to add: {text}");
            text
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The whole life of a volume, checking the files after each step. `locator` checks
/// what the driver says a hypervisor should open, given the image's path in the area
/// and its backing image's.
fn lifecycle(driver: &str, area: &Area, locator: impl Fn(&Locator, &str, Option<&str>)) {
    let t = template();
    let http = HttpServer::start(vec![("/tiny.qcow2", t.bytes.clone())]);
    let sb = Sandbox::new();
    let host = host_with(&sb, driver, &[&area.url]);
    let storage = host.storage(driver).expect("the storage driver is loaded");
    let (pool, store) = (area.pool(), area.store());
    let started = Instant::now();

    let usage = storage.attach(&pool).expect("attaching the pool");
    assert!(usage.total_bytes > 0 && usage.used_bytes <= usage.total_bytes, "{usage:?}");
    storage.attach(&store).expect("attaching the store");
    assert_eq!(area.tree(), area.expected(&[]));

    // An image from an HTTP server into the store, checked against its digest.
    let image = storage
        .register_image(&store, &http.url("/tiny.qcow2"), "tiny", DiskFormat::Qcow2, Some(&t.sha256))
        .expect("registering the template");
    assert_eq!((image.path.as_str(), image.virtual_size), ("templates/tiny.qcow2", t.virtual_size));
    assert_eq!(area.tree(), area.expected(&["secondary/templates/tiny.qcow2"]));
    assert_eq!(std::fs::read(area.file("secondary/templates/tiny.qcow2")).unwrap(), *t.bytes);
    let progress = host.images().transfer(&format!("{store}/{}", image.path)).expect("the download's progress");
    let size = t.bytes.len() as u64;
    assert!(progress.finished && progress.error.is_none(), "{progress:?}");
    assert_eq!((progress.bytes, progress.total), (size, Some(size)));

    // The template onto the pool, once.
    let tmpl = storage.install_template(&pool, &store, &image.path).expect("installing the template");
    assert_eq!(tmpl.path, "templates/tiny.qcow2");
    let tmpl_file = area.file("primary/templates/tiny.qcow2");
    assert!(same_content(&tmpl_file, &area.file("secondary/templates/tiny.qcow2")));
    let installed_at = modified(&tmpl_file);
    let again = storage.install_template(&pool, &store, &image.path).unwrap();
    assert_eq!(again.path, tmpl.path);
    assert_eq!(modified(&tmpl_file), installed_at, "the template was copied twice");
    let with_template = ["primary/templates/tiny.qcow2", "secondary/templates/tiny.qcow2"];
    assert_eq!(area.tree(), area.expected(&with_template));

    // A volume on the template, and a blank one.
    let vol = storage.create_volume(&pool, "vol1", 0, Some(&tmpl.path)).expect("creating a volume");
    assert_eq!((vol.path.as_str(), vol.virtual_size), ("volumes/vol1.qcow2", t.virtual_size));
    locator(&vol.locator, "primary/volumes/vol1.qcow2", Some("primary/templates/tiny.qcow2"));
    let located = storage.locate(&pool, &vol.path).unwrap();
    assert_eq!(format!("{located:?}"), format!("{:?}", vol.locator));
    let vol_file = area.file("primary/volumes/vol1.qcow2");
    let backing = qemu_info(&vol_file)["backing-filename"].as_str().unwrap().to_owned();
    assert!(backing.ends_with("/primary/templates/tiny.qcow2"), "{backing}");
    assert!(same_content(&vol_file, &tmpl_file));
    // Asked again for a name it made (the server lost the answer), the driver returns
    // that volume as it is, whatever the call asks for.
    let again = storage.create_volume(&pool, "vol1", 64 << 20, None).expect("asking for vol1 again");
    assert_eq!(format!("{again:?}"), format!("{vol:?}"));
    assert!(same_content(&vol_file, &tmpl_file));
    let blank = storage.create_volume(&pool, "blank", 64 << 20, None).expect("creating a blank volume");
    assert_eq!(blank.virtual_size, 64 << 20);
    locator(&blank.locator, "primary/volumes/blank.qcow2", None);
    let with_volumes: Vec<&str> =
        with_template.iter().copied().chain(["primary/volumes/blank.qcow2", "primary/volumes/vol1.qcow2"]).collect();
    assert_eq!(area.tree(), area.expected(&with_volumes));
    storage.delete_volume(&pool, &blank.path).unwrap();
    let with_volume: Vec<&str> = with_template.iter().copied().chain(["primary/volumes/vol1.qcow2"]).collect();
    assert_eq!(area.tree(), area.expected(&with_volume));

    // Snapshot, guest writes, the snapshot exported to the store, revert.
    storage.create_snapshot(&pool, &vol.path, "s1").expect("taking a snapshot");
    assert_eq!(snapshots(&vol_file), ["s1"]);
    let dup = storage.create_snapshot(&pool, &vol.path, "s1").unwrap_err();
    assert!(matches!(driver_error(dup), DriverError::InvalidSpec(_)));
    guest_writes(&vol_file);
    assert!(!same_content(&vol_file, &tmpl_file));
    let exported =
        storage.export_image(&pool, &vol.path, Some("s1"), &store, "vol1-s1").expect("exporting the snapshot");
    assert_eq!(exported.path, "snapshots/vol1-s1.qcow2");
    let exported_file = area.file("secondary/snapshots/vol1-s1.qcow2");
    assert!(qemu_info(&exported_file)["backing-filename"].is_null(), "an exported snapshot must stand alone");
    assert!(same_content(&exported_file, &tmpl_file), "the export holds the state at the snapshot");
    let with_export: Vec<&str> = with_volume.iter().copied().chain(["secondary/snapshots/vol1-s1.qcow2"]).collect();
    assert_eq!(area.tree(), area.expected(&with_export));
    storage.revert_snapshot(&pool, &vol.path, "s1").expect("reverting");
    assert!(same_content(&vol_file, &tmpl_file), "the guest's writes survived the revert");
    let missing = storage.revert_snapshot(&pool, &vol.path, "nope").unwrap_err();
    assert!(matches!(driver_error(missing), DriverError::NotFound(_)));
    storage.delete_snapshot(&pool, &vol.path, "s1").expect("deleting the snapshot");
    assert!(snapshots(&vol_file).is_empty());
    storage.delete_snapshot(&pool, &vol.path, "s1").expect("deleting a deleted snapshot");
    assert_eq!(area.tree(), area.expected(&with_export));

    // Resize: grows, never shrinks.
    let bigger = t.virtual_size + (64 << 20);
    let grown = storage.resize_volume(&pool, &vol.path, bigger).expect("growing the volume");
    assert_eq!(grown.virtual_size, bigger);
    assert_eq!(qemu_info(&vol_file)["virtual-size"].as_u64(), Some(bigger));
    let shrink = storage.resize_volume(&pool, &vol.path, t.virtual_size).unwrap_err();
    assert!(matches!(driver_error(shrink), DriverError::InvalidSpec(_)));

    // Delete everything; deleting twice is fine.
    storage.delete_volume(&pool, &vol.path).expect("deleting the volume");
    storage.delete_volume(&pool, &vol.path).expect("deleting a deleted volume");
    storage.delete_image(&store, &exported.path).unwrap();
    storage.delete_image(&pool, &tmpl.path).unwrap();
    storage.delete_image(&store, &image.path).unwrap();
    assert_eq!(area.tree(), area.expected(&[]), "files left behind");
    eprintln!("{driver}: volume lifecycle in {:?}", started.elapsed());
}

#[test]
fn nfs_volume_lifecycle() {
    let area = Area::nfs();
    let server_path = area.url.strip_prefix("nfs://127.0.0.1").expect("the export is on 127.0.0.1").to_owned();
    lifecycle("nfs", &area, |loc, rel, backing| {
        let Locator::Network(disk) = loc else { panic!("expected a network disk, got {loc:?}") };
        assert_eq!((disk.protocol.as_str(), disk.host.as_str(), disk.port), ("nfs", "127.0.0.1", None));
        assert_eq!(disk.path, format!("{server_path}/{rel}"));
        assert_eq!(disk.format, DiskFormat::Qcow2);
        let chain: Vec<String> = backing.iter().map(|b| format!("{server_path}/{b}")).collect();
        let got: Vec<String> = disk.backing.iter().map(|b: &BackingImage| b.path.clone()).collect();
        assert_eq!(got, chain);
        assert!(disk.backing.iter().all(|b| b.format == DiskFormat::Qcow2));
    });
}

#[test]
fn local_volume_lifecycle() {
    let area = Area::local();
    let dir = area.dir.clone();
    lifecycle("local", &area, |loc, rel, _backing| {
        let Locator::File(file) = loc else { panic!("expected a file disk, got {loc:?}") };
        assert_eq!(Path::new(&file.path), dir.join(rel));
        assert_eq!(file.format, DiskFormat::Qcow2);
    });
}

/// A primary pool's driver needs only to read the image store it copies templates from:
/// granted it as `images-read`, a deploy's steps work, and nothing on the store can be
/// written or removed through it.
#[test]
fn a_pool_driver_reads_a_store_granted_read_only() {
    let area = Area::local();
    let (pool, store) = (area.pool(), area.store());
    let on_store = area.file("secondary/templates/tiny.qcow2");
    std::fs::create_dir_all(on_store.parent().unwrap()).unwrap();
    std::fs::copy(guest_template(), &on_store).unwrap();
    let sb = Sandbox::new();
    sb.install("local.wasm", "local.wasm");
    let host =
        sb.host(&format!("[plugin.local]\nimages = [\"{pool}\"]\nimages-read = [\"{store}\"]\ntimeout-ms = 60000\n"));
    assert!(host.scan().iter().all(|e| e.loaded));
    let granted: Vec<String> =
        host.get("local").unwrap().settings.grants.capabilities().iter().map(|c| c.to_string()).collect();
    assert_eq!(granted, [format!("images {pool}"), format!("images-read {store}")]);
    let storage = host.storage("local").unwrap();

    // What a deploy from a template on the store does.
    storage.attach(&pool).expect("attaching the pool");
    storage.capacity(&store).expect("reading the store's capacity");
    let tmpl = storage.install_template(&pool, &store, "templates/tiny.qcow2").expect("copying the template");
    assert!(same_content(&area.file("primary/templates/tiny.qcow2"), &on_store));
    let vol = storage.create_volume(&pool, "vol1", 0, Some(&tmpl.path)).expect("a volume on the template");
    assert!(area.file("primary/volumes/vol1.qcow2").is_file());

    // Writing or removing on the store is refused, and says which grant is missing.
    let before = area.tree();
    let text = expect_denied(storage.delete_image(&store, "templates/tiny.qcow2").unwrap_err(), "local");
    assert!(text.contains("its images-read grant there allows reading only"), "{text}");
    expect_denied(storage.export_image(&pool, &vol.path, None, &store, "vol1-copy").unwrap_err(), "local");
    expect_denied(storage.attach(&store).unwrap_err(), "local");
    assert_eq!(area.tree(), before, "the store changed");
    assert!(same_content(&on_store, &area.file("primary/templates/tiny.qcow2")), "the template on the store changed");
    storage.delete_volume(&pool, &vol.path).expect("the pool stays the driver's own");
}

#[test]
fn the_drivers_describe_what_they_need() {
    let sb = Sandbox::new();
    let area = Area::nfs();
    let host = host_with(&sb, "nfs", &[&area.url]);
    let nfs = host.get("nfs").unwrap();
    assert_eq!(nfs.info.capabilities, [Capability::Images("nfs://".into())]);
    // The operator grants servers, not the whole scheme: the ask stays uncovered.
    assert_eq!(nfs.missing_grants(), [Capability::Images("nfs://".into())]);
    assert!(nfs.info.description.contains("images = [\"nfs://"), "{}", nfs.info.description);
    sb.install("local.wasm", "local.wasm");
    host.scan();
    assert_eq!(host.get("local").unwrap().info.capabilities, [Capability::Images("file:///".into())]);
    assert!(matches!(host.hypervisor("nfs"), Err(PluginError::NotLoaded { .. })));
    assert!(matches!(host.storage("kvm"), Err(PluginError::NotLoaded { .. })));
}

#[test]
fn a_call_outside_the_grant_never_reaches_the_server() {
    let area = Area::nfs();
    let http = HttpServer::start(vec![("/x.raw", Arc::new(vec![0u8; 4096]))]);
    let sb = Sandbox::new();
    let host = host_with(&sb, "nfs", &[&area.url]);
    let nfs = host.storage("nfs").unwrap();
    let outside = Area::nfs();
    let (reached, requests) = (host.images().reached(), http.requests());

    expect_denied(nfs.attach(&outside.pool()).unwrap_err(), "nfs");
    expect_denied(nfs.create_volume(&outside.pool(), "v", 1 << 20, None).unwrap_err(), "nfs");
    let text = expect_denied(
        nfs.register_image(&outside.store(), &http.url("/x.raw"), "x", DiskFormat::Raw, None).unwrap_err(),
        "nfs",
    );
    assert!(text.contains(&outside.url), "{text}");
    // A prefix that only looks like the grant ("…/ws-test-abc" vs "…/ws-test-abcdef").
    let lookalike = format!("{}x/primary", area.url);
    expect_denied(nfs.attach(&lookalike).unwrap_err(), "nfs");

    assert_eq!(host.images().reached(), reached, "a denied call reached storage");
    assert_eq!(http.requests(), requests, "a denied download was started");
    assert!(!outside.dir.exists() && !Path::new(&format!("{}x", area.dir.display())).exists());
}

/// The driver may name any URL: the host refuses internal addresses itself, for every
/// redirect too, without connecting to them, and lets through only the sites allowed.
#[test]
fn downloads_reach_no_internal_address_unless_allowed() {
    let area = Area::nfs();
    let payload = Arc::new(vec![7u8; 4096]);
    let inside = HttpServer::start(vec![("/x.raw", payload.clone())]);
    let allowed = HttpServer::start(vec![("/x.raw", payload.clone())]);
    let sb = Sandbox::new();
    let site = format!("127.0.0.1:{}", allowed.addr.port());
    let host = host_with_sites(&sb, "nfs", &[&area.url], &[&site]);
    let nfs = host.storage("nfs").unwrap();
    let store = area.store();
    nfs.attach(&area.pool()).unwrap();
    nfs.attach(&store).unwrap();
    let denied =
        |url: &str| match driver_error(nfs.register_image(&store, url, "x", DiskFormat::Raw, None).unwrap_err()) {
            DriverError::Denied(text) => text,
            other => panic!("{url}: expected a refusal, got {other:?}"),
        };

    let port = inside.addr.port();
    for (url, kind) in [
        // The allowed host, on another port.
        (inside.url("/x.raw"), "a loopback"),
        (format!("http://127.1:{port}/x.raw"), "a loopback"),
        (format!("http://2130706433:{port}/x.raw"), "a loopback"),
        (format!("http://0x7f000001:{port}/x.raw"), "a loopback"),
        (format!("http://localhost:{port}/x.raw"), "a loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/x.raw"), "a loopback"),
        (format!("http://[::1]:{port}/x.raw"), "a loopback"),
        (format!("http://0.0.0.0:{port}/x.raw"), "an any-local"),
        (format!("http://127.0.0.2:{}/x.raw", allowed.addr.port()), "a loopback"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "a link-local"),
        ("http://10.255.255.1/x.raw".to_owned(), "a private"),
    ] {
        let text = denied(&url);
        assert!(text.contains(&format!("is not allowed: it resolves to {kind} address")), "{url}: {text}");
    }
    assert_eq!(inside.requests(), 0, "a refused download connected");

    // Redirected from the allowed server to the internal one: asked there, never here.
    let text = denied(&allowed.url(&format!("/redirect/127.0.0.1:{port}/x.raw")));
    assert!(
        text.contains(&format!("redirected to http://127.0.0.1:{port}/x.raw")) && text.contains("loopback"),
        "{text}"
    );
    assert_eq!((allowed.requests(), inside.requests()), (1, 0));
    let text = denied(&allowed.url("/redirect/169.254.169.254/latest/meta-data/"));
    assert!(text.contains("link-local"), "{text}");
    assert_eq!(area.tree(), area.expected(&[]));

    // The allowed site itself, directly and through its own redirects (a bounded number).
    let image = nfs.register_image(&store, &allowed.url("/x.raw"), "direct", DiskFormat::Raw, None).unwrap();
    assert_eq!(image.virtual_size, 4096);
    let hop = format!("/redirect/{site}");
    let via = nfs.register_image(&store, &allowed.url(&format!("{hop}/x.raw")), "via", DiskFormat::Raw, None).unwrap();
    assert_eq!(via.virtual_size, 4096);
    let endless = allowed.url(&format!("{}/x.raw", hop.repeat(6)));
    let err = nfs.register_image(&store, &endless, "endless", DiskFormat::Raw, None).unwrap_err();
    assert!(matches!(driver_error(err), DriverError::Failed(t) if t.contains("more than 5 redirects")));
    assert_eq!(inside.requests(), 0);
}

#[test]
fn nfs_faults_fail_cleanly_and_in_bounded_time() {
    let area = Area::nfs();
    let payload = Arc::new((0..(1u32 << 20)).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let http = HttpServer::start(vec![("/data.raw", payload.clone())]);
    let sb = Sandbox::new();
    let host = host_with(&sb, "nfs", &[&area.url, "nfs://127.0.0.2/export"]);
    let nfs = host.storage("nfs").unwrap();
    let store = area.store();
    nfs.attach(&area.pool()).unwrap();
    nfs.attach(&store).unwrap();

    // A wrong digest: refused, nothing left (not even a partial file).
    let wrong = "0".repeat(64);
    let err = nfs.register_image(&store, &http.url("/data.raw"), "data", DiskFormat::Raw, Some(&wrong)).unwrap_err();
    match driver_error(err) {
        DriverError::Failed(text) => assert!(text.contains("SHA-256") && text.contains("discarded"), "{text}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(area.tree(), area.expected(&[]));
    let progress = host.images().transfer(&format!("{store}/templates/data.raw")).unwrap();
    assert!(progress.finished && progress.error.is_some(), "{progress:?}");

    // A 404: not found, nothing left.
    let err = nfs.register_image(&store, &http.url("/missing.raw"), "missing", DiskFormat::Raw, None).unwrap_err();
    assert!(matches!(driver_error(err), DriverError::NotFound(t) if t.contains("404")));
    assert_eq!(area.tree(), area.expected(&[]));

    // A format that is not what was announced: removed again.
    let err = nfs.register_image(&store, &http.url("/data.raw"), "data", DiskFormat::Qcow2, None).unwrap_err();
    assert!(matches!(driver_error(err), DriverError::InvalidSpec(t) if t.contains("not qcow2")));
    assert_eq!(area.tree(), area.expected(&[]));

    // An NFS server that does not answer: unavailable, quickly.
    for attempt in ["attach", "create-volume", "register-image"] {
        let started = Instant::now();
        let dead = "nfs://127.0.0.2/export/pool";
        let result = match attempt {
            "attach" => nfs.attach(dead).map(drop),
            "create-volume" => nfs.create_volume(dead, "v", 1 << 20, None).map(drop),
            _ => nfs.register_image(dead, &http.url("/data.raw"), "d", DiskFormat::Raw, None).map(drop),
        };
        let err = result.unwrap_err();
        assert!(matches!(driver_error(err), DriverError::Unavailable(_)), "{attempt}");
        assert!(started.elapsed() < Duration::from_secs(12), "{attempt} took {:?}", started.elapsed());
    }

    // URLs the driver does not serve.
    let reached = host.images().reached();
    for bad in ["smb://127.0.0.1/export", "file:///var/tmp/pool", "nfs://127.0.0.1", "nfs://127.0.0.1:2049/export"] {
        let err = nfs.attach(bad).unwrap_err();
        assert!(matches!(driver_error(err), DriverError::InvalidSpec(_)), "{bad}");
    }
    assert_eq!(host.images().reached(), reached);

    // An HTTP server that accepts and never answers: the download ends before the call's deadline.
    host.set_limits("nfs", Limits { memory_mib: 64, timeout: Duration::from_secs(3) }).unwrap();
    let nfs = host.storage("nfs").unwrap();
    let started = Instant::now();
    let err = nfs.register_image(&store, &http.url("/stall"), "stall", DiskFormat::Raw, None).unwrap_err();
    assert!(matches!(driver_error(err), DriverError::Unavailable(_)));
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    assert_eq!(area.tree(), area.expected(&[]));
}

#[test]
fn download_progress_is_published_while_it_runs() {
    let area = Area::nfs();
    let payload = Arc::new((0..(2u32 << 20)).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let http = HttpServer::start(vec![("/big.raw", payload.clone())]);
    let sb = Sandbox::new();
    let host = host_with(&sb, "nfs", &[&area.url]);
    let nfs = host.storage("nfs").unwrap();
    let store = area.store();
    nfs.attach(&store).unwrap();
    nfs.attach(&area.pool()).unwrap();

    let target = format!("{store}/templates/big.raw");
    let source = http.url("/slow/big.raw");
    let (driver, store2) = (nfs.clone(), store.clone());
    let download = std::thread::spawn(move || driver.register_image(&store2, &source, "big", DiskFormat::Raw, None));
    let size = payload.len() as u64;
    wait_for("a partial download in the progress map", Duration::from_secs(20), || {
        host.images().transfer(&target).is_some_and(|t| !t.finished && t.bytes > 0 && t.bytes < size)
    });
    assert!(!area.file("secondary/templates/big.raw").exists(), "the target appeared before the download ended");
    let image = download.join().unwrap().expect("the slow download");
    assert_eq!(image.virtual_size, size);
    let done = host.images().transfer(&target).unwrap();
    assert!(done.finished && done.bytes == size && done.total == Some(size), "{done:?}");
    assert_eq!(std::fs::read(area.file("secondary/templates/big.raw")).unwrap(), *payload);
    nfs.delete_image(&store, &image.path).unwrap();
    assert_eq!(area.tree(), area.expected(&[]));
}

// ------------------------------------------------------------------ a real guest on NFS

/// Destroys the test's domain if the test ends early.
struct DomainGuard(String);

impl Drop for DomainGuard {
    fn drop(&mut self) {
        if virsh_knows(&self.0) {
            let _ = Command::new("virsh").args(["-c", QEMU, "destroy", &self.0]).output();
            let _ = Command::new("virsh").args(["-c", QEMU, "undefine", &self.0]).output();
        }
    }
}

#[test]
fn a_volume_on_nfs_boots_a_real_guest() {
    let t = template();
    let area = Area::nfs();
    let http = HttpServer::start(vec![("/tiny.qcow2", t.bytes.clone())]);
    let sb = Sandbox::new();
    let host = host_with(&sb, "nfs", &[&area.url]);
    let nfs: StorageDriver = host.storage("nfs").unwrap();
    let kvm = host.hypervisor("kvm").unwrap();
    let (pool, store) = (area.pool(), area.store());
    nfs.attach(&pool).unwrap();
    nfs.attach(&store).unwrap();
    let image =
        nfs.register_image(&store, &http.url("/tiny.qcow2"), "tiny", DiskFormat::Qcow2, Some(&t.sha256)).unwrap();
    let tmpl = nfs.install_template(&pool, &store, &image.path).unwrap();
    let root = nfs.create_volume(&pool, "root", 0, Some(&tmpl.path)).unwrap();
    let locator = nfs.locate(&pool, &root.path).unwrap();
    assert!(matches!(&locator, Locator::Network(d) if d.backing.len() == 1), "{locator:?}");

    // The serial log is the only local file; QEMU's disks are reached over NFS.
    let work = tempfile::Builder::new().prefix("wasmstack-nfs-guest-").tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let serial = work.path().join("serial.log");
    let uuid = new_uuid();
    let _guard = DomainGuard(uuid.clone());
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: format!("ws-nfs-{}", &uuid[..8]),
        vcpus: 1,
        memory_mib: 256,
        accel: Accel::Tcg,
        disks: vec![Disk {
            locator: Some(locator),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        }],
        nics: vec![],
        console: ConsoleSpec { serial_log: Some(serial.to_string_lossy().into_owned()), vnc_listen: None },
    };
    kvm.create_vm(QEMU, &spec).expect("defining the guest");
    let booted = Instant::now();
    kvm.start_vm(QEMU, &uuid).expect("starting the guest from its NFS volume");
    wait_for("the guest's marker on its serial console", Duration::from_secs(90), || {
        std::fs::read_to_string(&serial).is_ok_and(|s| s.contains(MARKER))
    });
    eprintln!("guest on NFS: marker seen {:?} after start", booted.elapsed());
    assert_eq!(kvm.power_state(QEMU, &uuid).unwrap(), VmPower::Running);
    kvm.destroy_vm(QEMU, &uuid).expect("destroying the guest");
    assert!(!virsh_knows(&uuid));

    // The guest wrote to its overlay only; the template is untouched.
    assert!(same_content(&area.file("primary/templates/tiny.qcow2"), &area.file("secondary/templates/tiny.qcow2")));
    nfs.delete_volume(&pool, &root.path).unwrap();
    nfs.delete_image(&pool, &tmpl.path).unwrap();
    nfs.delete_image(&store, &image.path).unwrap();
    assert_eq!(area.tree(), area.expected(&[]));
}

// ------------------------------------------------------------------ symbolic links

/// A folder beside a test area, outside its grant, that links inside the area point
/// into; every file in it is remembered, so that the test can prove nothing in it was
/// read into the area, written, planted or deleted.
struct Outside {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Outside {
    fn beside(area: &Area) -> Self {
        let dir = area.dir.with_file_name(format!("ws-outside-{}", &new_uuid()[..8]));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let secret = dir.join("secret.qcow2");
        let made = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&secret).arg("1M").status();
        assert!(made.unwrap().success());
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::write(dir.join("keep.txt"), b"outside the grant").unwrap();
        let mut o = Outside { dir, files: Vec::new() };
        o.files = o.now();
        o
    }

    fn now(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap_or_default()))
            .collect();
        files.sort();
        files
    }

    fn untouched(&self, step: &str) {
        assert!(self.now() == self.files, "{step}: the folder outside the grant changed");
    }

    /// A link at `at` (in the area) to `target` in this folder, relative, so that it
    /// leads to the same place through the kernel and through an NFS client.
    fn link(&self, area: &Area, at: &str, target: &str) {
        let depth = at.matches('/').count() + 1;
        let up = "../".repeat(depth);
        let name = self.dir.file_name().unwrap().to_string_lossy();
        let to = if target.is_empty() { format!("{up}{name}") } else { format!("{up}{name}/{target}") };
        let path = area.file(at);
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            Ok(_) => std::fs::remove_file(&path).unwrap(),
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&to, &path).unwrap();
        assert!(path.exists(), "{at} -> {to} leads nowhere");
    }
}

/// Expects the refusal of a link.
fn expect_link_refused(result: Result<impl std::fmt::Debug, PluginError>, step: &str) {
    let err = result.expect_err(&format!("{step}: a link was followed"));
    match driver_error(err) {
        DriverError::Denied(text) => {
            assert!(text.contains("is a symbolic link; the images capability does not follow links"), "{step}: {text}")
        }
        other => panic!("{step}: expected a refusal of the link, got {other:?}"),
    }
}

/// Every driver operation that reaches a file through a link planted in the granted
/// area is refused, and nothing outside the grant is read, written or deleted.
fn links_are_refused(driver: &str, area: &Area) {
    let outside = Outside::beside(area);
    let image = std::fs::read(outside.dir.join("secret.qcow2")).unwrap();
    let sha = hex::encode(Sha256::digest(&image));
    let http = HttpServer::start(vec![("/img.qcow2", Arc::new(image))]);
    let sb = Sandbox::new();
    let host = host_with(&sb, driver, &[&area.url]);
    let storage = host.storage(driver).expect("the storage driver is loaded");
    let (pool, store) = (area.pool(), area.store());
    std::fs::create_dir_all(&area.dir).unwrap();
    std::fs::set_permissions(&area.dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    // A pool folder that is a link: attach would make its folders outside (mkdir) and
    // read the outside disk's space (capacity).
    outside.link(area, "primary", "");
    expect_link_refused(storage.attach(&pool), "attach through a linked pool folder");
    expect_link_refused(storage.capacity(&pool), "capacity through a linked pool folder");
    outside.untouched("attach");
    std::fs::remove_file(area.file("primary")).unwrap();
    storage.attach(&pool).expect("attaching the pool");
    storage.attach(&store).expect("attaching the store");

    // A volume that is a link to an outside image.
    outside.link(area, "primary/volumes/evil.qcow2", "secret.qcow2");
    let evil = "volumes/evil.qcow2";
    expect_link_refused(storage.resize_volume(&pool, evil, 64 << 20), "resize");
    expect_link_refused(storage.create_snapshot(&pool, evil, "s1"), "snapshot");
    expect_link_refused(storage.revert_snapshot(&pool, evil, "s1"), "revert");
    expect_link_refused(storage.delete_snapshot(&pool, evil, "s1"), "delete a snapshot");
    expect_link_refused(storage.export_image(&pool, evil, None, &store, "copied"), "convert from a link");
    expect_link_refused(storage.delete_volume(&pool, evil), "remove a link");
    assert!(area.file("primary/volumes/evil.qcow2").symlink_metadata().is_ok(), "the link itself went");
    assert!(!area.file("secondary/snapshots/copied.qcow2").exists(), "outside content was copied in");
    outside.untouched("volume ops");

    // A template that is a link: neither copied into the pool nor used as a backing image.
    outside.link(area, "secondary/templates/evil.qcow2", "secret.qcow2");
    expect_link_refused(storage.install_template(&pool, &store, "templates/evil.qcow2"), "install a linked template");
    assert!(!area.file("primary/templates/evil.qcow2").exists(), "outside content was copied in");
    outside.link(area, "primary/templates/evil.qcow2", "secret.qcow2");
    expect_link_refused(
        storage.create_volume(&pool, "v2", 0, Some("templates/evil.qcow2")),
        "create on a linked backing",
    );
    assert!(!area.file("primary/volumes/v2.qcow2").exists(), "a volume on an outside backing image was made");
    outside.untouched("template ops");

    // A folder that is a link: a download would land outside, a removal delete there.
    outside.link(area, "secondary/templates", "");
    expect_link_refused(
        storage.register_image(&store, &http.url("/img.qcow2"), "planted", DiskFormat::Qcow2, Some(&sha)),
        "fetch into a linked folder",
    );
    expect_link_refused(storage.delete_image(&store, "templates/secret.qcow2"), "remove through a linked folder");
    outside.untouched("folder ops");
    assert!(outside.dir.join("secret.qcow2").exists());

    // Plain files still work beside the links.
    let blank = storage.create_volume(&pool, "blank", 1 << 20, None).expect("a plain volume");
    storage.delete_volume(&pool, &blank.path).expect("deleting the plain volume");
}

#[test]
fn local_links_lead_nowhere() {
    links_are_refused("local", &Area::local());
}

#[test]
fn nfs_links_lead_nowhere() {
    links_are_refused("nfs", &Area::nfs());
}
