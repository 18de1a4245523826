//! The `endpoint` capability: one HTTP/1.1 request to a hypervisor's own API, at an
//! endpoint the operator granted (`endpoint = ["unix:///run/ch/*.sock"]`).
//!
//! The grant is checked against the endpoint as written; what the host then connects to
//! must be that endpoint and nothing a link makes of it: a unix socket is opened with
//! `O_PATH` and `RESOLVE_NO_SYMLINKS` (see `beneath`), and the connection goes to that
//! open file through `/proc/self/fd/N`, so a link swapped in after the check changes
//! nothing. A TCP origin is resolved and connected to; redirects are answers, never
//! followed. The request is checked before anything is opened; the host writes the
//! framing headers itself, and reads the answer (Content-Length, chunked, or up to the
//! close) up to bounds. Everything runs on a worker thread (see `blocking`) and every
//! socket wait is cut at the call's deadline, so a peer that stalls ends the call at its
//! deadline and frees the worker soon after.

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::beneath::{Beneath, BeneathError};
use super::blocking;
use crate::plugins::bindings::endpoint::{Host, Request, Response};
use crate::plugins::bindings::types::DriverError;
use crate::plugins::grants::denial;
use crate::plugins::state::{CallState, DeadlinePassed};

/// The largest request body and answer body.
pub const MAX_BODY: usize = 16 << 20;
/// The longest request path (with its query).
pub const MAX_PATH: usize = 4096;
/// The most extra header lines a request may carry.
pub const MAX_HEADERS: usize = 64;
/// The most bytes of one extra header value.
const MAX_HEADER_VALUE: usize = 8 << 10;
/// The longest header name.
const MAX_HEADER_NAME: usize = 256;
/// The most bytes of an answer's status line and headers, and of a chunked answer's trailer.
const MAX_HEAD: usize = 64 << 10;
/// The most header lines an answer may have.
const MAX_ANSWER_HEADERS: usize = 128;
/// The longest endpoint text (a unix socket's path, or a host name with its port).
const MAX_ENDPOINT: usize = 4096;
/// How much is read from the peer at a time.
const READ_CHUNK: usize = 64 << 10;

/// Headers the host writes or that would change how the exchange is framed: a driver
/// cannot set them. Lower-case.
const HOST_OWNED: [&str; 10] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "expect",
];

/// Why a request got no answer. Each maps to one `driver-error` case; the texts name the
/// endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A malformed endpoint or request.
    #[error("{0}")]
    Invalid(String),
    /// Outside what the grant allows (a symbolic link on the way to a socket).
    #[error("{0}")]
    Denied(String),
    /// Nothing answers there (yet).
    #[error("{0}")]
    Unavailable(String),
    /// The peer answered with something that is not a usable HTTP answer.
    #[error("{0}")]
    Failed(String),
    /// The call's deadline passed while waiting on the peer.
    #[error("the deadline passed")]
    Deadline,
}

impl Host for CallState {
    fn send(&mut self, endpoint: String, req: Request) -> wasmtime::Result<Result<Response, DriverError>> {
        self.check_deadline()?;
        let endpoint = match Endpoint::parse(&endpoint) {
            Ok(e) => e,
            Err(text) => return Ok(Err(DriverError::InvalidSpec(text))),
        };
        let name = endpoint.canonical();
        if !self.grants.allows_endpoint(&name) {
            return Ok(Err(DriverError::Denied(denial(&self.plugin, "endpoint", &name))));
        }
        let out = match check_request(&endpoint, &req.method, &req.path, &req.headers, req.body) {
            Ok(out) => out,
            Err(text) => return Ok(Err(DriverError::InvalidSpec(format!("{name}: {text}")))),
        };
        let deadline = self.deadline;
        let result = blocking::until(deadline, move || exchange(&endpoint, &out, deadline))?;
        self.check_deadline()?;
        Ok(match result {
            Ok(a) => Ok(Response { status: a.status, headers: a.headers, body: a.body }),
            Err(EndpointError::Deadline) => return Err(DeadlinePassed.into()),
            Err(EndpointError::Invalid(t)) => Err(DriverError::InvalidSpec(t)),
            Err(EndpointError::Denied(t)) => Err(DriverError::Denied(t)),
            Err(EndpointError::Unavailable(t)) => Err(DriverError::Unavailable(t)),
            Err(EndpointError::Failed(t)) => Err(DriverError::Failed(t)),
        })
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket, by absolute path.
    Unix(PathBuf),
    /// A TCP origin; `host` lower-case, an IPv6 address without brackets.
    Http { host: String, port: u16 },
}

impl Endpoint {
    /// Parses `unix:///ABSOLUTE/PATH` or `http://HOST[:PORT]` (a trailing `/` is the empty
    /// path and allowed; any other path, a query, a fragment or user info is not).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_port(text).map(|(e, _)| e)
    }

    /// As `parse`, and whether an http origin wrote its port out.
    fn parse_port(text: &str) -> Result<(Self, bool), String> {
        if text.len() > MAX_ENDPOINT {
            return Err(format!("an endpoint is at most {MAX_ENDPOINT} bytes"));
        }
        let bad = |why: &str| Err(format!("endpoint \"{text}\": {why}"));
        if let Some(path) = strip_scheme(text, "unix://") {
            if !path.starts_with('/') {
                return bad("a unix socket is named by an absolute path, as in unix:///run/ch/vm1.sock");
            }
            if path.contains('\0') {
                return bad("the path has a NUL byte");
            }
            let p = Path::new(path);
            let tidy = p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            // `components` hides `//` and a trailing `/`; compare the rebuilt path too.
            if !tidy || p.components().collect::<PathBuf>().as_os_str() != p.as_os_str() || path == "/" {
                return bad("the path must name a socket without `.`, `..`, `//` or a trailing `/`");
            }
            return Ok((Endpoint::Unix(p.to_owned()), false));
        }
        let Some(rest) = strip_scheme(text, "http://") else {
            if strip_scheme(text, "https://").is_some() {
                return bad("https is not supported; name an http:// origin or a unix:// socket");
            }
            return bad("not a unix:// socket or an http:// origin");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return bad("an http origin has no path or query, as in http://10.0.0.7:8080");
        }
        if authority.contains('@') {
            return bad("an http origin carries no user name or password");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((addr, after)) = v6.split_once(']') else { return bad("an unclosed `[`") };
            if addr.parse::<Ipv6Addr>().is_err() {
                return bad("not an IPv6 address between `[` and `]`");
            }
            match after {
                "" => (addr.to_ascii_lowercase(), None),
                p => match p.strip_prefix(':') {
                    Some(p) => (addr.to_ascii_lowercase(), Some(p)),
                    None => return bad("text after `]` that is not a port"),
                },
            }
        } else {
            let (h, p) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let name_ok = h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
            if h.is_empty() || h.len() > 253 || !name_ok {
                return bad("the host is not a host name or an IP address");
            }
            (h.to_ascii_lowercase(), p)
        };
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => n,
                _ => return bad("the port is not 1-65535"),
            },
        };
        Ok((
            Endpoint::Http { host, port },
            authority.contains("]:") || (!authority.contains('[') && authority.contains(':')),
        ))
    }

    /// The endpoint as grants are matched against it: `unix://PATH` or `http://HOST:PORT`
    /// (the port always written, an IPv6 address in brackets).
    pub fn canonical(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Http { host, port } if host.contains(':') => format!("http://[{host}]:{port}"),
            Endpoint::Http { host, port } => format!("http://{host}:{port}"),
        }
    }

    /// The `Host` header the request carries: what curl sends to a unix socket, or the origin.
    fn host_header(&self) -> String {
        match self {
            Endpoint::Unix(_) => "localhost".into(),
            Endpoint::Http { host, port } => {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                if *port == 80 { host } else { format!("{host}:{port}") }
            }
        }
    }
}

/// `text` after `scheme`, compared without regard to case.
fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme).then(|| &text[scheme.len()..])
}

/// Checks an `endpoint` grant and puts it in the form it is matched in: `*` stands for any
/// run of characters, as in `libvirt` grants (an endpoint never holds `..`, so a star
/// below a folder stays below it); an http origin's host is lower-case and its port
/// written out (`http://h` is kept as `http://h:80`).
pub fn grant_pattern(pattern: &str) -> Result<String, String> {
    let bad = || format!("endpoint grant \"{pattern}\" is not a unix:///PATH or http://HOST:PORT pattern");
    // A pattern is well formed when every way of filling its `*`s is; filling them with a
    // digit checks the rest (a `*` may stand for a port, a label or a file name).
    let (sample, explicit_port) = Endpoint::parse_port(&pattern.replace('*', "1")).map_err(|_| bad())?;
    match sample {
        Endpoint::Unix(_) => Ok(format!("unix://{}", &pattern["unix://".len()..])),
        Endpoint::Http { .. } => {
            let origin = pattern["http://".len()..].trim_end_matches('/').to_ascii_lowercase();
            let port = if explicit_port { "" } else { ":80" };
            Ok(format!("http://{origin}{port}"))
        }
    }
}

/// One request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The request line and header section, ready to write.
    head: Vec<u8>,
    body: Vec<u8>,
    /// A HEAD request: its answer has no body whatever its headers say.
    head_only: bool,
}

/// Checks a request and writes its head: the method, path, extra headers and body must be
/// within the contract's bounds, and no extra header may be one the host owns.
pub fn check_request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Outgoing, String> {
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("method \"{}\" is not 1-16 upper-case letters", method.escape_debug()));
    }
    if !path.starts_with('/') {
        return Err("the path must start with \"/\"".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("the path is {} bytes, more than {MAX_PATH}", path.len()));
    }
    if let Some(c) = path.chars().find(|&c| !c.is_ascii_graphic() || c == '#') {
        return Err(format!(
            "the path has {:?}; spaces, control and non-ASCII characters must be percent-encoded, and a fragment is not sent",
            c
        ));
    }
    if headers.len() > MAX_HEADERS {
        return Err(format!("{} header lines, more than {MAX_HEADERS}", headers.len()));
    }
    if body.len() > MAX_BODY {
        return Err(format!("the body is {} bytes, more than {MAX_BODY}", body.len()));
    }
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", endpoint.host_header()).into_bytes();
    for (name, value) in headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.bytes().all(token) {
            return Err(format!("header name \"{}\" is not an HTTP token", name.escape_debug()));
        }
        if HOST_OWNED.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return Err(format!("header \"{name}\" is set by the host; leave it out"));
        }
        if value.len() > MAX_HEADER_VALUE {
            return Err(format!("header \"{name}\" is {} bytes, more than {MAX_HEADER_VALUE}", value.len()));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!("header \"{name}\" has a control character (a line break?) in its value"));
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.trim_matches([' ', '\t']).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    // A body's length is always stated; so is an empty one for methods that usually carry
    // one (a PUT with no body), since some servers wait for it otherwise.
    let bodiless = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"].contains(&method);
    if !body.is_empty() || !bodiless {
        head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Outgoing { head, body, head_only: method == "HEAD" })
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Names lower-case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Connects to `endpoint`, sends `req` and reads the answer, all before `deadline`.
/// Blocks; the caller runs it on a worker thread.
pub fn exchange(endpoint: &Endpoint, req: &Outgoing, deadline: Instant) -> Result<Answer, EndpointError> {
    let name = endpoint.canonical();
    let mut peer = Peer::connect(endpoint, &name, deadline)?;
    let sent = peer.send(&req.head).and_then(|()| peer.send(&req.body));
    match (sent, peer.answer(req.head_only, &name)) {
        (_, Ok(a)) => Ok(a),
        // A peer may answer early and close without reading everything (a 413).
        (Err(e), Err(_)) => Err(peer.io_error(&name, "sending the request", e)),
        (Ok(()), Err(e)) => Err(e),
    }
}

/// A connected socket, with what was read and not yet used.
struct Peer {
    stream: Box<dyn Socket>,
    deadline: Instant,
    buf: Vec<u8>,
    at: usize,
}

/// What `Peer` needs of a socket: unix and TCP alike.
trait Socket: Read + Write + Send {
    fn set_timeouts(&self, left: Duration) -> io::Result<()>;
}

impl Socket for UnixStream {
    fn set_timeouts(&self, left: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

impl Socket for TcpStream {
    fn set_timeouts(&self, left: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

/// Time left until `deadline`; none once it passed.
fn left(deadline: Instant) -> Result<Duration, EndpointError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(EndpointError::Deadline) } else { Ok(left) }
}

/// Opens the socket at `path` without following a link anywhere on the way, and connects
/// to that very file.
fn connect_unix(path: &Path, name: &str) -> Result<UnixStream, EndpointError> {
    let file = Beneath::new(Path::new("/"), path).open(libc::O_PATH, 0).map_err(|e| match e {
        BeneathError::Link(link) => EndpointError::Denied(format!(
            "{name}: {link} is a symbolic link; the endpoint capability does not follow links, so grant and \
             name the socket by its real path"
        )),
        e if e.io_kind() == Some(io::ErrorKind::NotFound) => {
            EndpointError::Unavailable(format!("{name}: no such socket"))
        }
        e if e.io_kind() == Some(io::ErrorKind::PermissionDenied) => {
            EndpointError::Unavailable(format!("{name}: the server may not reach the socket: {e}"))
        }
        e => EndpointError::Unavailable(format!("{name}: {e}")),
    })?;
    // SAFETY: stat is plain old data, for which all zero bytes are a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open; st is a valid place to write.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } == 0 && st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(EndpointError::Invalid(format!("{name} is not a socket")));
    }
    // The open file, not the path again: what was checked is what is connected to.
    UnixStream::connect(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| EndpointError::Unavailable(format!("{name}: {e}")))
}

fn connect_tcp(host: &str, port: u16, name: &str, deadline: Instant) -> Result<TcpStream, EndpointError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| EndpointError::Unavailable(format!("{name}: cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(EndpointError::Deadline),
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or_else(|| format!("{host} has no address"), |e| e.to_string());
    Err(EndpointError::Unavailable(format!("{name}: {why}")))
}

impl Peer {
    fn connect(endpoint: &Endpoint, name: &str, deadline: Instant) -> Result<Self, EndpointError> {
        left(deadline)?;
        let stream: Box<dyn Socket> = match endpoint {
            Endpoint::Unix(path) => Box::new(connect_unix(path, name)?),
            Endpoint::Http { host, port } => Box::new(connect_tcp(host, *port, name, deadline)?),
        };
        Ok(Peer { stream, deadline, buf: Vec::new(), at: 0 })
    }

    /// A failed read or write: the deadline when it timed out, otherwise the peer's fault.
    fn io_error(&self, name: &str, doing: &str, e: io::Error) -> EndpointError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => EndpointError::Deadline,
            _ if Instant::now() >= self.deadline => EndpointError::Deadline,
            _ => EndpointError::Failed(format!("{name}: {doing}: {e}")),
        }
    }

    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let left = left(self.deadline).map_err(|_| io::ErrorKind::TimedOut)?;
            self.stream.set_timeouts(left)?;
            let n = match self.stream.write(&bytes[..bytes.len().min(READ_CHUNK)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Reads more from the peer into the buffer; how much (0 at the end).
    fn fill(&mut self) -> io::Result<usize> {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        let left = left(self.deadline).map_err(|_| io::ErrorKind::TimedOut)?;
        self.stream.set_timeouts(left)?;
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let got = loop {
            match self.stream.read(&mut self.buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(start + *got.as_ref().unwrap_or(&0));
        got
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    /// Reads the answer: interim (1xx) answers are skipped, the body framed as its headers
    /// say.
    fn answer(&mut self, head_only: bool, name: &str) -> Result<Answer, EndpointError> {
        loop {
            let (status, headers) = self.head(name)?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut answer = Answer { status, headers, body: Vec::new() };
            if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
                return Ok(answer);
            }
            let chunked = field(&answer.headers, "transfer-encoding")
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .last()
                .map(|c| c.eq_ignore_ascii_case("chunked"));
            let lengths: Vec<String> = field(&answer.headers, "content-length")
                .flat_map(|v| v.split(','))
                .map(|l| l.trim().to_owned())
                .collect();
            answer.body = match chunked {
                Some(true) => self.chunked(name)?,
                // A transfer coding other than chunked last: the body runs to the close.
                Some(false) => self.until_close(name)?,
                None if lengths.is_empty() => self.until_close(name)?,
                None => {
                    let n = lengths[0].as_str();
                    let Ok(len) = n.parse::<u64>() else {
                        return Err(EndpointError::Failed(format!("{name}: Content-Length \"{n}\" is not a number")));
                    };
                    if lengths.iter().any(|l| *l != n) {
                        return Err(EndpointError::Failed(format!("{name}: the answer states two lengths")));
                    }
                    if len > MAX_BODY as u64 {
                        return Err(too_big(name, Some(len)));
                    }
                    self.exact(len as usize, name)?
                }
            };
            return Ok(answer);
        }
    }

    /// Reads a status line and headers.
    fn head(&mut self, name: &str) -> Result<(u16, Vec<(String, String)>), EndpointError> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_ANSWER_HEADERS];
            let mut parsed = httparse::Response::new(&mut slots);
            let pending = &self.buf[self.at..];
            match parsed.parse(pending) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = parsed.code.unwrap_or(0);
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    self.at += n;
                    return Ok((status, headers));
                }
                Ok(httparse::Status::Partial) if pending.len() > MAX_HEAD => {
                    return Err(EndpointError::Failed(format!(
                        "{name}: the answer's header is longer than {} KiB",
                        MAX_HEAD >> 10
                    )));
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(EndpointError::Failed(format!(
                        "{name}: the answer has more than {MAX_ANSWER_HEADERS} header lines"
                    )));
                }
                Err(e) => return Err(EndpointError::Failed(format!("{name}: not an HTTP/1.x answer ({e})"))),
            }
            let was_empty = self.pending().is_empty() && self.at == 0;
            match self.fill() {
                Ok(0) if was_empty => {
                    return Err(EndpointError::Unavailable(format!("{name}: closed the connection without answering")));
                }
                Ok(0) => return Err(EndpointError::Failed(format!("{name}: the answer ended inside its header"))),
                Ok(_) => {}
                Err(e) => return Err(self.io_error(name, "reading the answer", e)),
            }
        }
    }

    /// Exactly `len` body bytes.
    fn exact(&mut self, len: usize, name: &str) -> Result<Vec<u8>, EndpointError> {
        let mut body = Vec::with_capacity(len.min(READ_CHUNK));
        while body.len() < len {
            if self.pending().is_empty() {
                match self.fill() {
                    Ok(0) => {
                        return Err(EndpointError::Failed(format!(
                            "{name}: the answer ended after {} of its {len} bytes",
                            body.len()
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(self.io_error(name, "reading the answer", e)),
                }
            }
            let take = self.pending().len().min(len - body.len());
            body.extend_from_slice(&self.buf[self.at..self.at + take]);
            self.at += take;
        }
        Ok(body)
    }

    /// Everything up to the close, at most `MAX_BODY` bytes.
    fn until_close(&mut self, name: &str) -> Result<Vec<u8>, EndpointError> {
        let mut body = Vec::new();
        loop {
            body.extend_from_slice(self.pending());
            self.at = self.buf.len();
            if body.len() > MAX_BODY {
                return Err(too_big(name, None));
            }
            match self.fill() {
                Ok(0) => return Ok(body),
                Ok(_) => {}
                Err(e) => return Err(self.io_error(name, "reading the answer", e)),
            }
        }
    }

    /// One line ending in CRLF (or LF), without it; at most `MAX_HEAD` bytes.
    fn line(&mut self, name: &str) -> Result<Vec<u8>, EndpointError> {
        loop {
            if let Some(i) = self.pending().iter().position(|&b| b == b'\n') {
                let line =
                    self.buf[self.at..self.at + i].strip_suffix(b"\r").unwrap_or(&self.buf[self.at..self.at + i]);
                let line = line.to_vec();
                self.at += i + 1;
                return Ok(line);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(EndpointError::Failed(format!("{name}: a chunk line longer than {} KiB", MAX_HEAD >> 10)));
            }
            match self.fill() {
                Ok(0) => return Err(EndpointError::Failed(format!("{name}: the chunked answer ended early"))),
                Ok(_) => {}
                Err(e) => return Err(self.io_error(name, "reading the answer", e)),
            }
        }
    }

    /// A chunked body, the trailer read and dropped.
    fn chunked(&mut self, name: &str) -> Result<Vec<u8>, EndpointError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(name)?;
            let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let size = std::str::from_utf8(size).unwrap_or("").trim_matches([' ', '\t']);
            let Ok(size) = u64::from_str_radix(size, 16) else {
                return Err(EndpointError::Failed(format!(
                    "{name}: bad chunk size line \"{}\"",
                    String::from_utf8_lossy(&line).escape_debug()
                )));
            };
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > MAX_BODY as u64 {
                return Err(too_big(name, None));
            }
            body.extend(self.exact(size as usize, name)?);
            if !self.line(name)?.is_empty() {
                return Err(EndpointError::Failed(format!("{name}: a chunk longer than its size line says")));
            }
        }
        let mut trailer = 0;
        loop {
            let line = self.line(name)?;
            if line.is_empty() {
                return Ok(body);
            }
            trailer += line.len();
            if trailer > MAX_HEAD {
                return Err(EndpointError::Failed(format!("{name}: the answer's trailer is too long")));
            }
        }
    }
}

/// The values of the header `name` (lower-case).
fn field<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn too_big(name: &str, stated: Option<u64>) -> EndpointError {
    let size = stated.map_or_else(String::new, |n| format!(" of {n} bytes"));
    EndpointError::Failed(format!("{name}: the answer's body{size} is longer than {} MiB", MAX_BODY >> 20))
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    use super::*;

    fn unix(p: &str) -> Endpoint {
        Endpoint::Unix(PathBuf::from(p))
    }

    #[test]
    fn endpoints_parse_into_one_canonical_form() {
        let http = |h: &str, port| Endpoint::Http { host: h.into(), port };
        assert_eq!(Endpoint::parse("unix:///run/ch/vm1.sock").unwrap(), unix("/run/ch/vm1.sock"));
        assert_eq!(Endpoint::parse("http://10.0.0.7:8080").unwrap(), http("10.0.0.7", 8080));
        assert_eq!(Endpoint::parse("HTTP://Hyper.Example/").unwrap(), http("hyper.example", 80));
        assert_eq!(Endpoint::parse("http://[::1]:9").unwrap().canonical(), "http://[::1]:9");
        assert_eq!(Endpoint::parse("http://h").unwrap().canonical(), "http://h:80");
        assert_eq!(http("h", 8080).host_header(), "h:8080");
        assert_eq!(http("::1", 80).host_header(), "[::1]");
        for bad in [
            "unix://run/ch.sock",
            "unix:///run/../etc/x.sock",
            "unix:///run/./x",
            "unix:///run//x",
            "unix:///run/ch/",
            "unix:///",
            "unix:///a\0b",
            "http://h/api",
            "http://h?x",
            "http://u@h",
            "http://h:0",
            "http://h:99999",
            "http://h:+80",
            "http://-h",
            "http://h_1",
            "http://[::1",
            "http://[zz]:80",
            "https://h",
            "tcp://h:1",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Endpoint::parse("https://h").unwrap_err().contains("https is not supported"));
    }

    #[test]
    fn grant_patterns_are_checked_and_matched() {
        assert_eq!(grant_pattern("unix:///run/ch/*.sock").unwrap(), "unix:///run/ch/*.sock");
        assert_eq!(grant_pattern("http://10.0.0.7").unwrap(), "http://10.0.0.7:80");
        assert_eq!(grant_pattern("HTTP://Hyper:8080/").unwrap(), "http://hyper:8080");
        assert_eq!(grant_pattern("http://10.0.0.*:*").unwrap(), "http://10.0.0.*:*");
        for bad in ["unix://run/*", "unix:///run/../*", "http://h/api/*", "/run/x.sock", "libvirt:///x", "http://*@h"] {
            assert!(grant_pattern(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Outgoing, String> {
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
        check_request(&unix("/s"), method, path, &headers, body.to_vec())
    }

    #[test]
    fn requests_are_checked_and_framed_by_the_host() {
        let r = req("PUT", "/api/v1/vm.boot", &[("Accept", " application/json ")], b"").unwrap();
        assert_eq!(
            String::from_utf8(r.head).unwrap(),
            "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = req("GET", "/api/v1/vm.info?x=1", &[], b"").unwrap();
        assert!(!String::from_utf8(r.head).unwrap().contains("Content-Length"));
        assert!(req("HEAD", "/", &[], b"").unwrap().head_only);
        let err = |m: &str, p: &str, h: &[(&str, &str)], b: &[u8]| req(m, p, h, b).unwrap_err();
        assert!(err("get", "/", &[], b"").contains("upper-case"));
        assert!(err("GET", "api", &[], b"").contains("start with"));
        assert!(err("GET", "/a b", &[], b"").contains("percent-encoded"));
        assert!(err("GET", "/a\r\nX: y", &[], b"").contains("percent-encoded"));
        assert!(err("GET", &format!("/{}", "a".repeat(MAX_PATH)), &[], b"").contains("more than 4096"));
        assert_eq!(
            err("GET", "/", &[("Content-Length", "5")], b""),
            "header \"Content-Length\" is set by the host; leave it out"
        );
        assert!(err("GET", "/", &[("transfer-encoding", "chunked")], b"").contains("set by the host"));
        assert!(err("GET", "/", &[("X-A", "b\r\nHost: evil")], b"").contains("control character"));
        assert!(err("GET", "/", &[("X A", "b")], b"").contains("not an HTTP token"));
        let many: Vec<(&str, &str)> = vec![("X-A", "b"); MAX_HEADERS + 1];
        assert!(err("GET", "/", &many, b"").contains("more than 64"));
        assert!(err("PUT", "/", &[], &vec![0; MAX_BODY + 1]).contains("more than 16777216"));
    }

    /// A unix-socket server answering each connection with `answer` after reading the
    /// request head; what it read is sent back over the channel.
    fn serve(answer: Vec<u8>) -> (tempfile::TempDir, PathBuf, std::sync::mpsc::Receiver<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let mut reader = io::BufReader::new(s);
                let mut head = String::new();
                while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
                let _ = tx.send(head);
                let _ = reader.get_mut().write_all(&answer);
            }
        });
        (dir, path, rx)
    }

    fn call(path: &Path, method: &str) -> Result<Answer, EndpointError> {
        let ep = Endpoint::Unix(path.to_owned());
        let r = check_request(&ep, method, "/api/v1/vm.info", &[], Vec::new()).unwrap();
        exchange(&ep, &r, Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn reads_answers_framed_by_length_by_chunks_and_by_the_close() {
        let (_d, p, rx) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}extra".to_vec());
        let a = call(&p, "GET").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(
            a.headers,
            [("content-type".into(), "application/json".into()), ("content-length".into(), "2".into())]
        );
        assert!(rx.recv().unwrap().starts_with("GET /api/v1/vm.info HTTP/1.1\r\nHost: localhost\r\n"));

        let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        let (_d, p, _rx) = serve(chunked.to_vec());
        assert_eq!(call(&p, "GET").unwrap().body, b"abcde");

        let (_d, p, _rx) = serve(b"HTTP/1.0 404 Not Found\r\n\r\nno such vm".to_vec());
        let a = call(&p, "GET").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"no such vm"[..]), "an error status is an answer");

        let (_d, p, _rx) = serve(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".to_vec());
        assert_eq!(call(&p, "PUT").unwrap().body, b"");
        let (_d, p, _rx) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec());
        assert_eq!(call(&p, "HEAD").unwrap().body, b"");
    }

    #[test]
    fn refuses_answers_that_are_too_big_or_malformed() {
        let failed = |answer: &[u8]| {
            let (_d, p, _rx) = serve(answer.to_vec());
            match call(&p, "GET") {
                Err(EndpointError::Failed(t)) => t,
                other => panic!("{other:?}"),
            }
        };
        let stated = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(failed(stated.as_bytes()).ends_with("the answer's body of 16777217 bytes is longer than 16 MiB"));
        let mut long = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        long.resize(long.len() + MAX_BODY + 1, b'x');
        assert!(failed(&long).ends_with("the answer's body is longer than 16 MiB"));
        let chunk = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n", MAX_BODY + 1);
        assert!(failed(chunk.as_bytes()).ends_with("is longer than 16 MiB"));
        assert!(failed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").contains("ended after 3 of its 9 bytes"));
        assert!(failed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab").contains("two lengths"));
        assert!(failed(b"SSH-2.0-OpenSSH\r\n\r\n").contains("not an HTTP/1.x answer"));
        assert!(failed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").contains("bad chunk size"));
        let (_d, p, _rx) = serve(Vec::new());
        assert!(matches!(call(&p, "GET"), Err(EndpointError::Unavailable(t)) if t.ends_with("without answering")));
    }

    #[test]
    fn sockets_are_reached_only_by_their_real_path() {
        let (dir, p, _rx) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec());
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        match call(&link, "GET") {
            Err(EndpointError::Denied(t)) => assert!(t.contains("is a symbolic link"), "{t}"),
            other => panic!("{other:?}"),
        }
        let folder_link = dir.path().join("via");
        std::os::unix::fs::symlink(dir.path(), &folder_link).unwrap();
        assert!(matches!(call(&folder_link.join("api.sock"), "GET"), Err(EndpointError::Denied(_))));
        assert!(matches!(call(&dir.path().join("none.sock"), "GET"), Err(EndpointError::Unavailable(_))));
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert!(
            matches!(call(&dir.path().join("file"), "GET"), Err(EndpointError::Invalid(t)) if t.ends_with("is not a socket"))
        );
        assert_eq!(call(&p, "GET").unwrap().status, 200);
    }

    #[test]
    fn a_silent_peer_is_left_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let ep = Endpoint::Unix(path);
        let r = check_request(&ep, "GET", "/", &[], Vec::new()).unwrap();
        let started = Instant::now();
        let got = exchange(&ep, &r, started + Duration::from_millis(200));
        assert!(matches!(got, Err(EndpointError::Deadline)), "{got:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        drop(listener);
    }
}
