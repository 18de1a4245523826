//! What the API benchmarks share: a keep-alive HTTP/1.1 client connection that speaks
//! just enough of the protocol, and signed request paths.

#![allow(dead_code)] // each benchmark uses its own part

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmstack::api::signing;

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Read buffer, kept: the client's own cost must stay small next to the server's.
    chunk: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn::from_stream(TcpStream::connect(addr).await.expect("connecting"))
    }

    /// A connection from a given local address (one of several a namespace holds).
    pub async fn open_from(addr: SocketAddr, from: std::net::IpAddr) -> Conn {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).expect("binding the source address");
        Conn::from_stream(socket.connect(addr).await.expect("connecting"))
    }

    fn from_stream(stream: TcpStream) -> Conn {
        stream.set_nodelay(true).unwrap();
        Conn { stream, buf: Vec::with_capacity(64 << 10), chunk: vec![0u8; 64 << 10] }
    }

    /// Sends a GET and reads the whole reply; returns the status and the body.
    pub async fn get(&mut self, path: &str) -> (u16, &[u8]) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
        let (status, _, body) = self.read_reply().await;
        (status, body)
    }

    /// Sends a form POST (with extra header lines, each ending in CRLF) and reads the
    /// whole reply; returns the status, the head and the body.
    pub async fn post_form(&mut self, path: &str, headers: &str, form: &str) -> (u16, String, &[u8]) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n{headers}\r\n{form}",
            form.len()
        );
        self.stream.write_all(req.as_bytes()).await.unwrap();
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> (u16, String, &[u8]) {
        self.buf.clear();
        loop {
            let n = self.stream.read(&mut self.chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&self.chunk[..n]);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap().to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .expect("a content-length");
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut self.chunk).await.unwrap();
                    assert!(n > 0, "connection closed");
                    self.buf.extend_from_slice(&self.chunk[..n]);
                }
                let status = head[9..12].parse().unwrap();
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                return (status, head, &self.buf[end + 4..end + 4 + len]);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encoding as CloudStack's clients do it.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A signature-v3 request path for `params`, valid for an hour.
pub fn signed_path(key: &str, secret: &str, params: &[(&str, &str)]) -> String {
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%z").to_string();
    let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    pairs.extend([
        ("apiKey".to_owned(), key.to_owned()),
        ("response".into(), "json".into()),
        ("signatureVersion".into(), "3".into()),
        ("expires".into(), expires),
    ]);
    let signature = signing::sign(secret, &signing::canonical(&pairs));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("/client/api?{}&signature={}", query.join("&"), encode(&signature))
}

/// The median and the 99th percentile of some latencies.
pub fn p50_p99(mut lat: Vec<Duration>) -> (Duration, Duration) {
    lat.sort();
    (lat[lat.len() / 2], lat[(lat.len() * 99 / 100).min(lat.len() - 1)])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A server on a fresh SQLite data folder, serving on a loopback port, and API keys of
/// its admin: (address, orchestrator, key, secret, data folder to keep alive).
pub async fn start_server() -> (SocketAddr, wasmstack::orchestrate::Orchestrator, String, String, tempfile::TempDir) {
    start_server_with(|_| {}).await
}

/// As `start_server`, with `prepare` run on the data folder first (plugins, grants).
pub async fn start_server_with(
    prepare: impl FnOnce(&std::path::Path),
) -> (SocketAddr, wasmstack::orchestrate::Orchestrator, String, String, tempfile::TempDir) {
    use wasmstack::server::{ServeOptions, Server};
    let data = tempfile::tempdir().unwrap();
    prepare(data.path());
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_owned(),
        database: None,
        admin_password: Some("bench-password".into()),
        web_dir: None,
    };
    let server = Server::start(&opts).await.expect("the server starts");
    let addr = server.listener.local_addr().unwrap();
    let o = server.orchestrator.clone();
    let admin = wasmstack::auth::store::user_by_login(&o.db, "admin", "/").await.unwrap().unwrap();
    let (key, secret) = wasmstack::auth::store::register_keys(&o.db, &o.sealer, admin.id).await.unwrap();
    tokio::spawn(server.run());
    (addr, o, key, secret, data)
}

/// The folder the components are built into (scripts/build.sh), or `WASMSTACK_WASM_DIR`.
pub fn wasm_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors().nth(3).expect("cargo target dir").join("wasm32-wasip2/release")
}

/// Puts built components into a data folder's plugins and writes its grants (TOML, as
/// in `wasmstack.toml`), before the server starts on it.
pub fn install_plugins(data: &std::path::Path, names: &[&str], grants: &str) {
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in names {
        let wasm = wasm_dir().join(format!("{name}.wasm"));
        std::fs::copy(&wasm, plugins.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build.sh", wasm.display()));
    }
    std::fs::write(data.join("wasmstack.toml"), grants).unwrap();
}

/// Sends one signed API call and returns the reply's object (`{command}response`);
/// panics unless it answers 200. An async command's job is waited for and its result
/// returned, unless `wait` is false.
pub async fn call(conn: &mut Conn, key: &str, secret: &str, params: &[(&str, &str)], wait: bool) -> serde_json::Value {
    let path = signed_path(key, secret, params);
    let (status, body) = conn.get(&path).await;
    let text = String::from_utf8_lossy(body).into_owned();
    assert_eq!(status, 200, "{params:?}: {text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    let name = format!("{}response", params.iter().find(|(k, _)| *k == "command").unwrap().1.to_ascii_lowercase());
    let inner = reply[&name].clone();
    match inner["jobid"].as_str() {
        Some(job) if wait => {
            let done = wait_job(conn, key, secret, job).await;
            assert_eq!(done["jobstatus"], 1, "{params:?}: {done}");
            done["jobresult"].clone()
        }
        _ => inner,
    }
}

/// Polls a job until it ends (every millisecond: the poll must not hide the job's own
/// time); returns queryAsyncJobResult's object.
pub async fn wait_job(conn: &mut Conn, key: &str, secret: &str, job: &str) -> serde_json::Value {
    wait_job_every(conn, key, secret, job, Duration::from_millis(1)).await
}

/// `wait_job`, polling every `every`.
pub async fn wait_job_every(conn: &mut Conn, key: &str, secret: &str, job: &str, every: Duration) -> serde_json::Value {
    loop {
        let path = signed_path(key, secret, &[("command", "queryAsyncJobResult"), ("jobid", job)]);
        let (status, body) = conn.get(&path).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        let reply: serde_json::Value = serde_json::from_slice(body).unwrap();
        let r = &reply["queryasyncjobresultresponse"];
        if r["jobstatus"] != 0 {
            return r.clone();
        }
        tokio::time::sleep(every).await;
    }
}
