//! What making a volume on a template costs through the NFS storage driver, for a
//! small and a large template, against `qemu-img create` run directly on the same
//! export in the same run.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench volume_from_template
//!
//! Needs the components built (scripts/build.sh), the tiny guest
//! (scripts/guest-image.sh; `WASMSTACK_GUEST_DIR`, default ~/.cache/wasmstack/guest)
//! and nfs-ganesha serving its export (scripts/setup.sh; `WASMSTACK_NFS_URL`, default
//! nfs://127.0.0.1/export, and `WASMSTACK_NFS_EXPORT_DIR`, default
//! ~/.cache/wasmstack/nfs/export). `BENCH_RUNS` sets the runs per measurement (20).
//!
//! A volume on a template is a qcow2 overlay, so once the template is on the pool
//! its cost must not depend on the template's size: the 1 GiB / 15 MB ratio of the
//! driver should be about 1. The one-time copy onto the pool is reported apart.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmstack::plugins::{DiskFormat, Grants, HostConfig, Limits, PluginError, PluginHost, StorageDriver};

/// Size of the large template the guest sees, and the bytes written into it.
const LARGE_BYTES: u64 = 1 << 30;

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
}

fn env_path(var: &str, default_under_home: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| home().join(default_under_home))
}

fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors().nth(3).expect("cargo target dir").join("wasm32-wasip2/release")
}

// ------------------------------------------------------------------ the bench's folder on the export

/// A folder of the bench's own on the NFS export, removed when dropped, so that a
/// panic anywhere below still leaves the export as it was.
struct Area {
    /// The folder as the bench reads it directly.
    dir: PathBuf,
    /// The same folder as the driver and qemu-img name it.
    url: String,
}

impl Area {
    fn new() -> Self {
        let export = env_path("WASMSTACK_NFS_EXPORT_DIR", ".cache/wasmstack/nfs/export");
        assert!(
            export.join(".wasmstack-export").is_file(),
            "{} is not the folder nfs-ganesha exports; run scripts/setup.sh, or set WASMSTACK_NFS_EXPORT_DIR",
            export.display()
        );
        let url = std::env::var("WASMSTACK_NFS_URL").unwrap_or_else(|_| "nfs://127.0.0.1/export".into());
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("kernel uuid");
        let name = format!("ws-bench-{}", &uuid.trim()[..8]);
        Area { dir: export.join(&name), url: format!("{url}/{name}") }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => eprintln!("removed {}", self.url),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("could not remove {}: {e}", self.dir.display()),
        }
    }
}

// ------------------------------------------------------------------ the large template, made once

/// A qcow2 image of 1 GiB, every cluster holding pseudo-random bytes, so that copying
/// it moves the whole GiB (zeros would be skipped by qemu-img). Kept in
/// ~/.cache/wasmstack/bench across runs: making it takes longer than the bench.
fn large_template() -> PathBuf {
    let dir = home().join(".cache/wasmstack/bench");
    let image = dir.join("template-1g.qcow2");
    if image.is_file() {
        return image;
    }
    std::fs::create_dir_all(&dir).expect("bench cache folder");
    let started = Instant::now();
    let raw = dir.join("template-1g.raw.partial");
    let partial = dir.join("template-1g.qcow2.partial");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&raw).expect("raw image"));
        // xorshift64: fast, and never all zero in a cluster; the content need not be
        // random in any stronger sense.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut chunk = vec![0u8; 8 << 20];
        for _ in 0..LARGE_BYTES / chunk.len() as u64 {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            out.write_all(&chunk).expect("writing the raw image");
        }
        out.flush().expect("writing the raw image");
    }
    run("qemu-img", &["convert", "-q", "-f", "raw", "-O", "qcow2"], &[&raw, &partial]);
    std::fs::remove_file(&raw).expect("removing the raw image");
    // Renamed only once whole, so an interrupted run makes it again.
    std::fs::rename(&partial, &image).expect("renaming the template into place");
    eprintln!("made {} in {:.1} s", image.display(), started.elapsed().as_secs_f64());
    image
}

fn run(program: &str, args: &[&str], paths: &[&Path]) {
    let out = Command::new(program).args(args).args(paths).output().expect(program);
    assert!(out.status.success(), "{program} {args:?} {paths:?}: {}", String::from_utf8_lossy(&out.stderr));
}

// ------------------------------------------------------------------ a tiny HTTP server

/// Serves local files over HTTP/1.1 on loopback, streamed from disk (the large
/// template is not held in memory), for `register_image` to download.
struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(files: HashMap<String, PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("an HTTP port");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(files);
        let flag = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let files = files.clone();
                std::thread::spawn(move || serve(conn, &files));
            }
        });
        HttpServer { addr, stop, accept: Some(accept) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, files: &HashMap<String, PathBuf>) {
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
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let Some(mut file) = files.get(path).and_then(|p| std::fs::File::open(p).ok()) else {
        let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
    if conn.write_all(head.as_bytes()).is_ok() {
        let _ = std::io::copy(&mut file, &mut conn);
    }
}

// ------------------------------------------------------------------ measuring

fn must<T>(what: &str, result: Result<T, PluginError>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

struct Stats {
    median: Duration,
    p90: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats { median: percentile(&samples, 0.5), p90: percentile(&samples, 0.9) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One template on the pool.
struct Installed {
    label: &'static str,
    tag: &'static str,
    /// Its path in the pool, as `create_volume` takes it.
    path: String,
    /// The one-time copy from the store onto the pool.
    install: Duration,
}

/// What one template's volumes cost: through the driver, and by qemu-img directly.
struct Measured {
    driver: Stats,
    qemu_img: Stats,
}

/// Creates and deletes volumes on one template, timing only the creates.
struct Bench<'a> {
    nfs: &'a StorageDriver,
    area: &'a Area,
    pool: &'a str,
}

impl Bench<'_> {
    fn driver_once(&self, template: &str, name: &str) -> Duration {
        let started = Instant::now();
        let vol = must("creating a volume", self.nfs.create_volume(self.pool, name, 0, Some(template)));
        let took = started.elapsed();
        must("deleting a volume", self.nfs.delete_volume(self.pool, &vol.path));
        took
    }

    fn qemu_img_once(&self, template: &str, name: &str) -> Duration {
        let rel = format!("volumes/{name}.qcow2");
        let (backing, target) = (format!("{}/{template}", self.pool), format!("{}/{rel}", self.pool));
        let started = Instant::now();
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &backing, &target])
            .output()
            .expect("qemu-img");
        let took = started.elapsed();
        assert!(out.status.success(), "qemu-img create {target}: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::remove_file(self.area.dir.join("primary").join(&rel)).expect("removing the qemu-img volume");
        took
    }

    /// `runs` rounds; each round makes one volume per template through the driver and
    /// one by qemu-img, so that any drift of the server (caches, writeback, other
    /// load) falls on every template and on both ways alike.
    fn measure(&self, templates: &[Installed], runs: usize) -> Vec<Measured> {
        // Unmeasured first round: the first instance and the first qemu-img start
        // from cold caches, which is not what a running server sees.
        for t in templates {
            self.driver_once(&t.path, &format!("warm-{}", t.tag));
            self.qemu_img_once(&t.path, &format!("base-warm-{}", t.tag));
        }
        let mut samples = vec![(Vec::with_capacity(runs), Vec::with_capacity(runs)); templates.len()];
        for i in 0..runs {
            for (t, (driver, qemu_img)) in templates.iter().zip(&mut samples) {
                driver.push(self.driver_once(&t.path, &format!("bench-{}-{i}", t.tag)));
                qemu_img.push(self.qemu_img_once(&t.path, &format!("base-{}-{i}", t.tag)));
            }
        }
        samples.into_iter().map(|(d, q)| Measured { driver: stats(d), qemu_img: stats(q) }).collect()
    }
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20).max(1);
    let small = env_path("WASMSTACK_GUEST_DIR", ".cache/wasmstack/guest").join("template.qcow2");
    assert!(small.is_file(), "{} is missing; run scripts/guest-image.sh", small.display());
    let large = large_template();

    let area = Area::new();
    let http = HttpServer::start(HashMap::from([
        ("/small.qcow2".to_owned(), small.clone()),
        ("/large.qcow2".to_owned(), large.clone()),
    ]));

    let plugins = tempfile::tempdir().unwrap();
    let wasm = wasm_dir().join("nfs.wasm");
    std::fs::copy(&wasm, plugins.path().join("nfs.wasm"))
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build.sh", wasm.display()));
    let mut config = HostConfig::new(plugins.path());
    config.grant("nfs", Grants::new(vec![], vec![area.url.clone()], vec![]).unwrap());
    // Registering and installing the 1 GiB template moves the whole GiB twice
    // within one call; the default 30 s deadline is for everyday calls.
    config.limit("nfs", Limits { memory_mib: 64, timeout: Duration::from_secs(600) });
    // The templates' HTTP server is on loopback, which downloads reach only where allowed.
    config.allowed_internal_sites = vec!["127.0.0.1/32".parse().unwrap()];
    let host = PluginHost::new(config).unwrap();
    let events = host.scan();
    assert!(events.iter().all(|e| e.loaded), "{events:?}");
    let nfs = must("the nfs driver", host.storage("nfs"));

    let (pool, store) = (format!("{}/primary", area.url), format!("{}/secondary", area.url));
    must("attaching the pool", nfs.attach(&pool));
    must("attaching the store", nfs.attach(&store));

    let mut installed = Vec::new();
    let mut registered = Vec::new();
    for (label, tag, file) in [("15 MB", "small", &small), ("1 GiB", "large", &large)] {
        let size = std::fs::metadata(file).unwrap().len();
        let started = Instant::now();
        let image = must(
            "registering a template",
            nfs.register_image(&store, &http.url(&format!("/{tag}.qcow2")), tag, DiskFormat::Qcow2, None),
        );
        let download = started.elapsed();
        let started = Instant::now();
        let tmpl = must("installing a template", nfs.install_template(&pool, &store, &image.path));
        let install = started.elapsed();
        eprintln!(
            "{label} template ({:.1} MiB file, {:.1} MiB virtual): registered in {:.2} s, installed in {:.2} s",
            size as f64 / (1 << 20) as f64,
            tmpl.virtual_size as f64 / (1 << 20) as f64,
            download.as_secs_f64(),
            install.as_secs_f64()
        );
        registered.push(image.path);
        installed.push(Installed { label, tag, path: tmpl.path, install });
    }
    // The copies above leave GiBs of dirty pages on the server's side; their
    // writeback would slow whatever runs next, so it is done before anything is timed.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };

    let results = Bench { nfs: &nfs, area: &area, pool: &pool }.measure(&installed, runs);
    for (t, image) in installed.iter().zip(&registered) {
        must("deleting the pool's template", nfs.delete_image(&pool, &t.path));
        must("deleting the store's template", nfs.delete_image(&store, image));
    }

    println!("volume on a template, nfs driver vs qemu-img create directly ({runs} runs each, {}):", area.url);
    for (t, m) in installed.iter().zip(&results) {
        println!("  {} template: one-time install on the pool {:>8.1} ms", t.label, ms(t.install));
        println!(
            "    create_volume via driver   median {:>7.1} ms  p90 {:>7.1} ms",
            ms(m.driver.median),
            ms(m.driver.p90)
        );
        println!(
            "    qemu-img create directly   median {:>7.1} ms  p90 {:>7.1} ms",
            ms(m.qemu_img.median),
            ms(m.qemu_img.p90)
        );
        println!(
            "    ratio driver/qemu-img      median {:>7.2}x    p90 {:>7.2}x",
            ms(m.driver.median) / ms(m.qemu_img.median),
            ms(m.driver.p90) / ms(m.qemu_img.p90)
        );
    }
    let (s, l) = (&results[0], &results[1]);
    println!(
        "  driver, 1 GiB vs 15 MB template: median {:.2}x  p90 {:.2}x  (should be about 1)",
        ms(l.driver.median) / ms(s.driver.median),
        ms(l.driver.p90) / ms(s.driver.p90)
    );
    println!(
        "  install, 1 GiB vs 15 MB template: {:.1}x  (the copy that happens once per pool)",
        ms(installed[1].install) / ms(installed[0].install)
    );
    drop(http);
    drop(area);
}
