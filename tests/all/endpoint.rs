//! The endpoint capability end to end: a hypervisor driver made with `plugins new`, whose
//! `probe-host` sends one request through `endpoint.send`, against HTTP servers run by the
//! test on a unix socket and on a loopback port. A granted socket answers; every refusal
//! (not granted, a link, a header the host owns, an oversized answer, a server that never
//! answers, another socket or origin than the granted one, `..` or a link leading out of a
//! granted folder, no grant at all) is its own test, and none of the refused requests
//! reaches a server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmstack::plugins::{DriverError, HostFacts, PluginError, PluginHost};

use crate::driver_kit::{build_crate, replace_function, target_dir, wasmstack};
use crate::support::{Sandbox, install_file};

const NAME: &str = "endpointer";
/// The deadline of the driver's calls in the stalled-server test.
const SHORT: Duration = Duration::from_millis(1000);
/// How late past its deadline a call may end: the epoch tick, waking up, unwinding.
const MARGIN: Duration = Duration::from_millis(700);

/// `probe-host(text)`: the text is "ENDPOINT METHOD PATH [H:NAME=VALUE]... [B:BYTES]"; the
/// answer's status comes back as `cpus`, its body's length as `cpu-mhz`, the start of its
/// body as `cpu-model` and its content-type as `hypervisor-version`.
const PROBE: &str = "fn probe_host(url: String) -> Result<HostFacts, DriverError> {
        use wasmstack::driver::endpoint::{send, Request};
        let mut words = url.split(' ');
        let endpoint = words.next().unwrap_or_default().to_owned();
        let method = words.next().unwrap_or_default().to_owned();
        let path = words.next().unwrap_or_default().to_owned();
        let (mut headers, mut body) = (Vec::new(), Vec::new());
        for w in words {
            if let Some(h) = w.strip_prefix(\"H:\") {
                let (n, v) = h.split_once('=').unwrap_or((h, \"\"));
                headers.push((n.to_owned(), v.to_owned()));
            } else if let Some(n) = w.strip_prefix(\"B:\") {
                body = vec![b'x'; n.parse().unwrap_or(0)];
            }
        }
        let answer = send(&endpoint, &Request { method, path, headers, body })?;
        let kind = answer.headers.iter().find(|(n, _)| n == \"content-type\").map(|(_, v)| v.clone());
        Ok(HostFacts {
            cpus: answer.status.into(),
            cpu_mhz: answer.body.len() as u32,
            cpu_model: String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned(),
            memory_bytes: 0,
            hypervisor_version: kind.unwrap_or_default(),
            hardware_accel: false,
        })
    }";

/// The driver, generated and built once per test run.
fn driver() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let dir = target_dir().join("driver-kit").join(NAME);
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, out, err) = wasmstack(&["plugins", "new", "--kind", "hypervisor", NAME, dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let lib = dir.join("src/lib.rs");
    let src = replace_function(&std::fs::read_to_string(&lib).unwrap(), "probe-host", PROBE);
    std::fs::write(&lib, src).unwrap();
    let wasm = build_crate(&dir, NAME);
    *built = Some(wasm.clone());
    wasm
}

/// A host with the driver loaded and `grants` (TOML lines) under its `[plugin.endpointer]`.
fn host(grants: &str, timeout: Duration) -> (Sandbox, PluginHost) {
    let sb = Sandbox::new();
    install_file(&driver(), &sb.plugins().join(format!("{NAME}.wasm")));
    let host = sb.host(&format!("[plugin.{NAME}]\n{grants}\ntimeout-ms = {}\n", timeout.as_millis()));
    let events = host.scan();
    assert!(events.iter().all(|e| e.loaded), "{events:?}");
    (sb, host)
}

fn probe(host: &PluginHost, text: &str) -> Result<HostFacts, PluginError> {
    host.hypervisor(NAME).unwrap().probe_host(text)
}

fn driver_error(result: Result<HostFacts, PluginError>) -> DriverError {
    match result {
        Err(PluginError::Driver { error, .. }) => error,
        other => panic!("expected a driver error, got {other:?}"),
    }
}

/// What a test server saw of one request: its head as sent, and its body.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A test HTTP server: how many connections it accepted, and the requests it read.
#[derive(Clone, Default)]
struct Server {
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves each connection from `incoming` on a thread of its own: reads one request
    /// (its head, then Content-Length bytes) and writes what `answer` makes of it.
    fn run<S: Read + Write + Send + 'static>(
        &self,
        incoming: impl Iterator<Item = S> + Send + 'static,
        answer: fn(&Seen) -> Vec<u8>,
    ) {
        let server = self.clone();
        std::thread::spawn(move || {
            for stream in incoming {
                server.accepted.fetch_add(1, Ordering::SeqCst);
                let server = server.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let seen = Seen { head, body };
                    server.seen.lock().unwrap().push(seen.clone());
                    let _ = reader.get_mut().write_all(&answer(&seen));
                });
            }
        });
    }

    /// A server on a unix socket at `path`.
    fn unix(path: &Path, answer: fn(&Seen) -> Vec<u8>) -> Self {
        let server = Server::default();
        let listener = UnixListener::bind(path).expect("a unix socket");
        server.run(std::iter::from_fn(move || listener.accept().ok().map(|(s, _)| s)), answer);
        server
    }

    /// A server on a loopback port, and the port.
    fn tcp(answer: fn(&Seen) -> Vec<u8>) -> (Self, u16) {
        let server = Server::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().unwrap().port();
        server.run(std::iter::from_fn(move || listener.accept().ok().map(|(s, _)| s)), answer);
        (server, port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// What a cloud-hypervisor answers to `vm.info`, and a 204 to anything else.
fn ch_api(seen: &Seen) -> Vec<u8> {
    if seen.head.starts_with("GET /api/v1/vm.info ") {
        let body = r#"{"state":"Running","memory_actual_size":536870912}"#;
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .into_bytes()
    } else {
        b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()
    }
}

/// A folder for sockets and the endpoint grant covering its `*.sock`.
fn socket_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("endpoint = [\"unix://{}/*.sock\"]", dir.path().display());
    (dir, grant)
}

#[test]
fn a_granted_socket_answers() {
    let (dir, grant) = socket_dir();
    let socket = dir.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let (_sb, host) = host(&grant, Duration::from_secs(10));
    let endpoint = format!("unix://{}", socket.display());

    let facts = probe(&host, &format!("{endpoint} GET /api/v1/vm.info H:Accept=application/json")).unwrap();
    assert_eq!(facts.cpus, 200);
    assert_eq!(facts.cpu_model, r#"{"state":"Running","memory_actual_size":536870912}"#);
    assert_eq!(facts.hypervisor_version, "application/json", "header names come lower-case");

    let facts = probe(&host, &format!("{endpoint} PUT /api/v1/vm.resize B:5")).unwrap();
    assert_eq!((facts.cpus, facts.cpu_mhz), (204, 0));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].head,
        "GET /api/v1/vm.info HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        seen[1].head,
        "PUT /api/v1/vm.resize HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(seen[1].body, b"xxxxx");
}

#[test]
fn a_socket_not_granted_is_denied() {
    let (dir, _) = socket_dir();
    let socket = dir.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let (_sb, host) = host("endpoint = [\"unix:///run/ch/*.sock\"]", Duration::from_secs(10));
    let endpoint = format!("unix://{}", socket.display());

    let DriverError::Denied(text) = driver_error(probe(&host, &format!("{endpoint} GET /api/v1/vm.info"))) else {
        panic!("not denied");
    };
    assert_eq!(
        text,
        format!(
            "endpoint access to \"{endpoint}\" is not granted to plugin \"{NAME}\"; an operator can add \
             endpoint = [\"{endpoint}\"] under [plugin.{NAME}] in the server configuration"
        )
    );
    assert_eq!(server.accepted(), 0, "a denied request never reaches the socket");
}

#[test]
fn a_symlink_to_a_granted_socket_is_refused() {
    let (dir, grant) = socket_dir();
    let socket = dir.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&socket, &link).unwrap();
    let (_sb, host) = host(&grant, Duration::from_secs(10));

    let endpoint = format!("unix://{}", link.display());
    let DriverError::Denied(text) = driver_error(probe(&host, &format!("{endpoint} GET /api/v1/vm.info"))) else {
        panic!("not denied");
    };
    assert!(text.contains(&format!("{} is a symbolic link", link.display())), "{text}");
    assert_eq!(server.accepted(), 0, "the link was not followed");
    // The socket itself, by its real path, answers.
    assert_eq!(probe(&host, &format!("unix://{} GET /api/v1/vm.info", socket.display())).unwrap().cpus, 200);
}

#[test]
fn a_stalled_server_ends_the_call_at_its_deadline() {
    let (dir, grant) = socket_dir();
    let stalled = dir.path().join("stalled.sock");
    // Reads the request, then says nothing and keeps the connection open.
    let server = Server::unix(&stalled, |_| {
        std::thread::sleep(Duration::from_secs(600));
        Vec::new()
    });
    let healthy = dir.path().join("vm1.sock");
    Server::unix(&healthy, ch_api);
    let (_sb, host) = host(&grant, SHORT);

    let started = Instant::now();
    let err = probe(&host, &format!("unix://{} GET /api/v1/vm.info", stalled.display())).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, PluginError::Timeout { limit_ms: 1000, .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{NAME} timed out in probe-host after 1000 ms"));
    assert!(took >= SHORT && took < SHORT + MARGIN, "ended after {took:?}");
    assert_eq!(server.seen().len(), 1, "the request was sent");
    // The driver's next call is served as usual.
    assert_eq!(probe(&host, &format!("unix://{} GET /api/v1/vm.info", healthy.display())).unwrap().cpus, 200);
}

#[test]
fn an_oversized_body_fails_the_call() {
    let (dir, grant) = socket_dir();
    let socket = dir.path().join("big.sock");
    // 16 MiB and one byte, framed by the close, so the host finds out by reading.
    Server::unix(&socket, |_| {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        answer.resize(answer.len() + (16 << 20) + 1, b'x');
        answer
    });
    let (_sb, host) = host(&grant, Duration::from_secs(20));

    let endpoint = format!("unix://{}", socket.display());
    let DriverError::Failed(text) = driver_error(probe(&host, &format!("{endpoint} GET /api/v1/vm.counters"))) else {
        panic!("not failed");
    };
    assert_eq!(text, format!("{endpoint}: the answer's body is longer than 16 MiB"));
}

#[test]
fn a_header_the_host_owns_is_an_invalid_spec() {
    let (dir, grant) = socket_dir();
    let socket = dir.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let (_sb, host) = host(&grant, Duration::from_secs(10));

    let endpoint = format!("unix://{}", socket.display());
    let DriverError::InvalidSpec(text) = driver_error(probe(&host, &format!("{endpoint} GET / H:Host=elsewhere")))
    else {
        panic!("not an invalid spec");
    };
    assert_eq!(text, format!("{endpoint}: header \"Host\" is set by the host; leave it out"));
    assert_eq!(server.accepted(), 0);
}

#[test]
fn an_http_origin_on_loopback_works_when_granted() {
    let (server, port) = Server::tcp(ch_api);
    let (_sb, host) = host(&format!("endpoint = [\"http://127.0.0.1:{port}\"]"), Duration::from_secs(10));

    let facts = probe(&host, &format!("http://127.0.0.1:{port} GET /api/v1/vm.info")).unwrap();
    assert_eq!((facts.cpus, facts.hypervisor_version.as_str()), (200, "application/json"));
    assert!(server.seen()[0].head.starts_with(&format!("GET /api/v1/vm.info HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")));
    // Another port on the same address is another origin, not granted.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = other.local_addr().unwrap().port();
    let denied = driver_error(probe(&host, &format!("http://127.0.0.1:{other} GET /api/v1/vm.info")));
    assert!(matches!(denied, DriverError::Denied(_)), "{denied:?}");
}

#[test]
fn a_grant_for_one_socket_allows_no_other() {
    let (dir, _) = socket_dir();
    let granted = dir.path().join("vm1.sock");
    let other = dir.path().join("vm2.sock");
    Server::unix(&granted, ch_api);
    let server = Server::unix(&other, ch_api);
    let (_sb, host) = host(&format!("endpoint = [\"unix://{}\"]", granted.display()), Duration::from_secs(10));

    assert_eq!(probe(&host, &format!("unix://{} GET /api/v1/vm.info", granted.display())).unwrap().cpus, 200);
    let endpoint = format!("unix://{}", other.display());
    let denied = driver_error(probe(&host, &format!("{endpoint} GET /api/v1/vm.info")));
    assert!(
        matches!(&denied, DriverError::Denied(t) if t.starts_with(&format!("endpoint access to \"{endpoint}\" is not granted"))),
        "{denied:?}"
    );
    // An http origin is not a socket, whatever the grant's path.
    let denied = driver_error(probe(&host, "http://localhost GET /api/v1/vm.info"));
    assert!(matches!(denied, DriverError::Denied(_)), "{denied:?}");
    assert_eq!(server.accepted(), 0);
}

#[test]
fn dot_dot_cannot_climb_out_of_a_granted_folder() {
    let (dir, grant) = socket_dir();
    // A socket beside the granted folder, and a path to it that the grant's `*` would match.
    let outside = tempfile::tempdir().unwrap();
    let socket = outside.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let (_sb, host) = host(&grant, Duration::from_secs(10));

    // Both folders are in the same temporary folder, so this path leads to the socket.
    let name = outside.path().file_name().unwrap().to_str().unwrap();
    let escape = format!("unix://{}/../{name}/vm1.sock", dir.path().display());
    assert!(std::fs::metadata(format!("{}/../{name}/vm1.sock", dir.path().display())).is_ok());
    let DriverError::InvalidSpec(text) = driver_error(probe(&host, &format!("{escape} GET /api/v1/vm.info"))) else {
        panic!("not refused");
    };
    assert_eq!(
        text,
        format!("endpoint \"{escape}\": the path must name a socket without `.`, `..`, `//` or a trailing `/`")
    );
    assert_eq!(server.accepted(), 0, "nothing outside the folder was reached");
}

#[test]
fn a_linked_folder_cannot_lead_out_of_a_granted_folder() {
    let (dir, grant) = socket_dir();
    let outside = tempfile::tempdir().unwrap();
    let server = Server::unix(&outside.path().join("vm1.sock"), ch_api);
    // `DIR/out.sock/vm1.sock` matches `DIR/*.sock`; `out.sock` is a link to the other folder.
    let link = dir.path().join("out.sock");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    let (_sb, host) = host(&grant, Duration::from_secs(10));

    let endpoint = format!("unix://{}/vm1.sock", link.display());
    let DriverError::Denied(text) = driver_error(probe(&host, &format!("{endpoint} GET /api/v1/vm.info"))) else {
        panic!("not denied");
    };
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(server.accepted(), 0, "the link was not followed");
}

#[test]
fn an_http_grant_allows_no_other_host_port_or_scheme() {
    let (server, port) = Server::tcp(ch_api);
    let (_sb, host) = host(&format!("endpoint = [\"http://127.0.0.1:{port}\"]"), Duration::from_secs(10));
    assert_eq!(probe(&host, &format!("http://127.0.0.1:{port} GET /")).unwrap().cpus, 204);

    // A name for the same address is another host: grants match what the driver names.
    for other in [format!("http://localhost:{port}"), format!("http://127.0.0.2:{port}"), "http://127.0.0.1".to_owned()]
    {
        let DriverError::Denied(text) = driver_error(probe(&host, &format!("{other} GET /"))) else {
            panic!("{other} not denied");
        };
        assert!(text.contains("is not granted to plugin \"endpointer\""), "{text}");
    }
    let DriverError::InvalidSpec(text) = driver_error(probe(&host, &format!("https://127.0.0.1:{port} GET /"))) else {
        panic!("https not refused");
    };
    assert!(text.contains("https is not supported"), "{text}");
    for other in [format!("ftp://127.0.0.1:{port}"), format!("http://127.0.0.1:{port}/api")] {
        let err = driver_error(probe(&host, &format!("{other} GET /")));
        assert!(matches!(err, DriverError::InvalidSpec(_)), "{other}: {err:?}");
    }
    assert_eq!(server.accepted(), 1, "only the granted origin was reached");
}

#[test]
fn a_plugin_without_an_endpoint_grant_reaches_nothing() {
    let (dir, _) = socket_dir();
    let socket = dir.path().join("vm1.sock");
    let server = Server::unix(&socket, ch_api);
    let (tcp, port) = Server::tcp(ch_api);
    let (_sb, host) = host("", Duration::from_secs(10));

    for endpoint in [format!("unix://{}", socket.display()), format!("http://127.0.0.1:{port}")] {
        let err = driver_error(probe(&host, &format!("{endpoint} GET /")));
        assert!(matches!(err, DriverError::Denied(_)), "{endpoint}: {err:?}");
    }
    assert_eq!((server.accepted(), tcp.accepted()), (0, 0));
}
