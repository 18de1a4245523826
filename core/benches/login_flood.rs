//! What password logins cost the rest of the server, on a real `wasmstack serve` process:
//!
//! (a) the p99 latency of a cheap signed request (listCapabilities) while 32 clients send
//!     wrong-password logins back to back, as a ratio to its p99 without them;
//! (b) the server's resident memory before, at its peak during, and after 200
//!     simultaneous successful logins (VmRSS and VmHWM from /proc/<pid>/status).
//!
//!   cargo bench -p wasmstack --bench login_flood        (BENCH_SECONDS=3 FLOOD=32 LOGINS=200)
//!
//! Each part runs on its own fresh server (SQLite, default settings), on loopback: the
//! binary built with this bench, or `WASMSTACK_BIN` (to compare another build), with
//! `BENCH_CONFIG` as its wasmstack.toml if set (e.g. "[login]\nhash-threads = 2").

mod support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Conn, call, encode, ms, p50_p99, signed_path};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const VICTIM_PASSWORD: &str = "victim-password";

fn env_num(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A `wasmstack serve` child process on a fresh data folder; killed when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let data = tempfile::tempdir().unwrap();
        if let Ok(config) = std::env::var("BENCH_CONFIG") {
            std::fs::write(data.path().join("wasmstack.toml"), config.replace("\\n", "\n")).unwrap();
        }
        let bin = std::env::var_os("WASMSTACK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_wasmstack").into());
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("WASMSTACK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting wasmstack serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the server exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("wasmstack API listening on http://") {
                break rest.trim_end_matches("/client/api").parse().unwrap();
            }
        };
        // Keeps reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, addr, _data: data }
    }

    /// A field of /proc/<pid>/status, in MiB (the kernel gives kB).
    fn status_mib(&self, field: &str) -> f64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"));
        kb / 1024.0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn login_form(username: &str, password: &str) -> String {
    format!("command=login&username={}&password={}&response=json", encode(username), encode(password))
}

/// Logs in as admin and registers API keys with the session: (key, secret).
async fn admin_keys(addr: SocketAddr) -> (String, String) {
    let mut conn = Conn::open(addr).await;
    let (status, head, body) = conn.post_form("/client/api", "", &login_form("admin", ADMIN_PASSWORD)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    let login: serde_json::Value = serde_json::from_slice(body).unwrap();
    let session_key = login["loginresponse"]["sessionkey"].as_str().unwrap().to_owned();
    let user = login["loginresponse"]["userid"].as_str().unwrap().to_owned();
    let session = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.trim().strip_prefix("JSESSIONID="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let cookie = format!("Cookie: JSESSIONID={session}; sessionkey={session_key}\r\n");
    let form = format!("command=registerUserKeys&id={user}&sessionkey={}&response=json", encode(&session_key));
    let (status, _, body) = conn.post_form("/client/api", &cookie, &form).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    let keys: serde_json::Value = serde_json::from_slice(body).unwrap();
    let keys = &keys["registeruserkeysresponse"]["userkeys"];
    (keys["apikey"].as_str().unwrap().to_owned(), keys["secretkey"].as_str().unwrap().to_owned())
}

/// Latencies of back-to-back GETs of `path` on one keep-alive connection for `duration`.
async fn cheap_requests(addr: SocketAddr, path: &str, duration: Duration) -> Vec<Duration> {
    let mut conn = Conn::open(addr).await;
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        let (status, body) = conn.get(path).await;
        lat.push(t.elapsed());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    }
    lat
}

async fn flood_part(seconds: u64, clients: usize) {
    let duration = Duration::from_secs(seconds);
    let server = Served::start();
    let addr = server.addr;
    let (key, secret) = admin_keys(addr).await;
    let mut conn = Conn::open(addr).await;
    let victim = "victim";
    call(
        &mut conn,
        &key,
        &secret,
        &[
            ("command", "createAccount"),
            ("username", victim),
            ("password", VICTIM_PASSWORD),
            ("email", "victim@example.org"),
            ("firstname", "V"),
            ("lastname", "W"),
            ("accounttype", "0"),
        ],
        false,
    )
    .await;
    let path = signed_path(&key, &secret, &[("command", "listCapabilities")]);
    // Warm-up, then the request alone.
    cheap_requests(addr, &path, Duration::from_millis(300)).await;
    let (alone_p50, alone_p99) = p50_p99(cheap_requests(addr, &path, duration).await);

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..clients {
        let (stop, attempts) = (stop.clone(), attempts.clone());
        flood.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let form = login_form(victim, "not-the-password");
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, _, body) = conn.post_form("/client/api", "", &form).await;
                lat.push(t.elapsed());
                assert_eq!(status, 531, "{}", String::from_utf8_lossy(body));
                attempts.fetch_add(1, Ordering::Relaxed);
            }
            lat
        }));
    }
    // Let every flood client have its first login in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = attempts.load(Ordering::Relaxed);
    let t = Instant::now();
    let (flood_p50, flood_p99) = p50_p99(cheap_requests(addr, &path, duration).await);
    let rate = (attempts.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut logins = Vec::new();
    for f in flood {
        logins.extend(f.await.unwrap());
    }
    let (login_p50, login_p99) = p50_p99(logins);

    println!("(a) listCapabilities (signed), one keep-alive connection, {seconds} s each:");
    println!("  alone                          p50 {:.3} ms  p99 {:.3} ms", ms(alone_p50), ms(alone_p99));
    println!(
        "  with {clients} clients' wrong logins  p50 {:.3} ms  p99 {:.3} ms   ({rate:.0} logins/s answered, login p50 {:.0} ms p99 {:.0} ms)",
        ms(flood_p50),
        ms(flood_p99),
        ms(login_p50),
        ms(login_p99)
    );
    println!("  ratio                          p99 {:.2}x (aim: under 3x)", ms(flood_p99) / ms(alone_p99));
}

async fn memory_part(logins: usize) {
    let server = Served::start();
    let addr = server.addr;
    // The first login has been made (for the keys): what one login leaves is in the baseline.
    admin_keys(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.status_mib("VmRSS");
    let mut conns = Vec::new();
    for _ in 0..logins {
        conns.push(Conn::open(addr).await);
    }
    let gate = Arc::new(tokio::sync::Barrier::new(logins));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let (status, _, body) = conn.post_form("/client/api", "", &login_form("admin", ADMIN_PASSWORD)).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = t.elapsed();
    let peak = server.status_mib("VmHWM");
    let after = server.status_mib("VmRSS");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = server.status_mib("VmRSS");
    println!("(b) {logins} simultaneous successful logins (all answered in {:.2} s):", took.as_secs_f64());
    println!(
        "  server RSS before {before:.0} MiB, peak {peak:.0} MiB, right after {after:.0} MiB, 2 s later {later:.0} MiB"
    );
    println!("  peak over before  {:.0} MiB (aim: peak under 300 MiB)", peak - before);
}

fn main() {
    let seconds = env_num("BENCH_SECONDS", 3) as u64;
    let clients = env_num("FLOOD", 32);
    let logins = env_num("LOGINS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        flood_part(seconds, clients).await;
        memory_part(logins).await;
    });
}
