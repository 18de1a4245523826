//! Which servers the server may download from on a user's behalf (template and ISO URLs).
//!
//! A user names a URL and the server fetches it, from where the server stands: without a
//! check, `http://127.0.0.1:5432/` or `http://169.254.169.254/` would make it fetch what only
//! it can reach and hand the answer back as a template. So every address a download would
//! connect to, for the URL and for each redirect, is classified here, and internal ones
//! (loopback, link-local, multicast, private, shared and reserved ranges, IPv4 written as
//! IPv6 included) are refused unless the operator lists them in `wasmstack.toml`:
//!
//! ```toml
//! [downloads]
//! allowed-internal-sites = ["10.1.2.0/24", "10.9.0.5:8080", "[fd00::5]:80"]
//! ```
//!
//! A download then connects to exactly the addresses that were checked, never to those
//! of a second lookup, which could answer differently (DNS rebinding). The unspecified
//! addresses (0.0.0.0/8, ::) are never allowed: they are no server's address, only another
//! way of reaching this host, which an operator who wants it lists by its loopback address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::RwLock;
use std::time::Duration;

/// Longest wait for a URL's host to resolve when it is registered.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of address a download would connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8, ::: a connection to them reaches this host.
    Unspecified,
    /// 169.254.0.0/16 (cloud metadata services), fe80::/10.
    LinkLocal,
    /// 224.0.0.0/4, 255.255.255.255, ff00::/8.
    Multicast,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    /// 240.0.0.0/4, 192.0.0.0/24, IPv4-compatible IPv6 and other ranges not on the internet.
    Reserved,
}

impl AddressKind {
    fn described(self) -> &'static str {
        match self {
            AddressKind::Public => "a public address",
            AddressKind::Loopback => "a loopback address",
            AddressKind::Unspecified => "an any-local address",
            AddressKind::LinkLocal => "a link-local address",
            AddressKind::Multicast => "a multicast or broadcast address",
            AddressKind::Private => "a private address",
            AddressKind::Shared => "a shared (carrier-grade NAT) address",
            AddressKind::Reserved => "a reserved address",
        }
    }
}

/// The kind of an address; IPv4 addresses written as IPv6 are judged as the IPv4 they carry.
pub fn classify(ip: IpAddr) -> AddressKind {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is: a socket
/// connecting to one reaches the other.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, c, _] = ip.octets();
    match (a, b) {
        (0, _) => AddressKind::Unspecified,
        (127, _) => AddressKind::Loopback,
        (169, 254) => AddressKind::LinkLocal,
        (10, _) | (192, 168) => AddressKind::Private,
        (172, 16..=31) => AddressKind::Private,
        (100, 64..=127) => AddressKind::Shared,
        (224..=239, _) => AddressKind::Multicast,
        _ if ip.is_broadcast() => AddressKind::Multicast,
        (240..=255, _) => AddressKind::Reserved,
        (192, 0) if c == 0 => AddressKind::Reserved,
        _ => AddressKind::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressKind {
    let s = ip.segments();
    if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d): deprecated, and no public server is reached so.
        AddressKind::Reserved
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddressKind::LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        AddressKind::Private
    } else if s[0] & 0xff00 == 0xff00 {
        AddressKind::Multicast
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix reaches the IPv4 address it carries.
        classify_v4(Ipv4Addr::from_bits(ip.to_bits() as u32))
    } else if s[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 prefixes: a site's own translators.
        AddressKind::Private
    } else if s[0] == 0x2002 {
        // 6to4 carries an IPv4 address in bits 16..48.
        let v4 = Ipv4Addr::from_bits(((s[1] as u32) << 16) | s[2] as u32);
        classify_v4(v4)
    } else if s[..4] == [0x100, 0, 0, 0] {
        // The discard-only prefix.
        AddressKind::Reserved
    } else {
        AddressKind::Public
    }
}

/// An internal network (or one address, and optionally one port) downloads may reach:
/// an entry of `[downloads] allowed-internal-sites`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalSite {
    net: IpAddr,
    prefix: u8,
    port: Option<u16>,
}

impl InternalSite {
    /// Whether a connection to `ip` (canonical) on `port` is within this site.
    fn covers(&self, ip: IpAddr, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }
}

/// Why an allowed-internal-sites entry does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{entry}\" {why}")]
pub struct BadSite {
    entry: String,
    why: &'static str,
}

impl FromStr for InternalSite {
    type Err = BadSite;

    /// `10.1.2.0/24`, `10.1.2.5`, `10.1.2.5:8080`, `10.1.2.0/24:8080`, `fd00::/8`, `[fd00::5]:80`.
    fn from_str(entry: &str) -> Result<Self, BadSite> {
        let bad = |why| BadSite { entry: entry.to_owned(), why };
        let (net, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (net, after) = rest.split_once(']').ok_or_else(|| bad("lacks its closing ]"))?;
            match after {
                "" => (net, None),
                _ => (net, Some(after.strip_prefix(':').ok_or_else(|| bad("has something other than :PORT after ]"))?)),
            }
        } else if entry.matches(':').count() == 1 {
            let (net, port) = entry.split_once(':').unwrap_or((entry, ""));
            (net, Some(port))
        } else {
            (entry, None)
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(bad("has a port that is not 1-65535")),
            },
        };
        let (addr, prefix) = match net.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (net, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("is not an IP address or network (CIDR)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| bad("has a bad prefix length"))?,
        };
        let (net, prefix) = match canonical(addr) {
            IpAddr::V4(v4) if addr.is_ipv6() => {
                if prefix < 96 {
                    return Err(bad("covers more than IPv4-mapped addresses; write the IPv4 network"));
                }
                (IpAddr::V4(v4), prefix - 96)
            }
            same => (same, prefix),
        };
        if net != masked(net, prefix) {
            return Err(bad("has bits set past its prefix length; write the network's first address"));
        }
        let only_unspecified = match net {
            IpAddr::V4(v4) => prefix >= 8 && v4.octets()[0] == 0,
            IpAddr::V6(v6) => prefix == 128 && v6.is_unspecified(),
        };
        if only_unspecified {
            return Err(bad("is an any-local address, which downloads never reach; list loopback instead"));
        }
        Ok(InternalSite { net, prefix, port })
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0)))
        }
        IpAddr::V6(v6) => {
            IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0)))
        }
    }
}

/// Why a URL may not be downloaded. The words never depend on what listens at an address:
/// nothing is connected to before the address is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only http:// and https:// URLs with a host are downloaded")]
    NotHttp,
    #[error("the URL's host cannot be resolved")]
    Unresolved,
    #[error("the URL's host did not resolve in time")]
    Slow,
    #[error("the URL's host is not allowed: it resolves to {}", .0.described())]
    Internal(AddressKind),
}

impl Refusal {
    /// The refusal as a sentence, for API replies.
    pub fn sentence(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
    }
}

/// Where a URL's requests go: its host (IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn of(url: &str) -> Result<Target, Refusal> {
        let uri: ureq::http::Uri = url.parse().map_err(|_| Refusal::NotHttp)?;
        let default_port = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => 80,
            Some(s) if s.eq_ignore_ascii_case("https") => 443,
            _ => return Err(Refusal::NotHttp),
        };
        let authority = uri.authority().ok_or(Refusal::NotHttp)?;
        let host = authority.host();
        // A port that is there but not a port (":99999") would silently mean the default one.
        let after_host = authority.as_str().rsplit('@').next().and_then(|a| a.strip_prefix(host)).unwrap_or("");
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || (!after_host.is_empty() && authority.port_u16().is_none()) {
            return Err(Refusal::NotHttp);
        }
        Ok(Target { host: host.to_owned(), port: authority.port_u16().unwrap_or(default_port) })
    }
}

/// The operator's download policy, shared by the API and the images capability.
#[derive(Debug, Default)]
pub struct DownloadPolicy {
    /// Replaced when the configuration file is reloaded.
    sites: RwLock<Vec<InternalSite>>,
    /// URLs this server serves itself and downloads from (the demo's template), allowed as
    /// written and nothing more.
    own_urls: RwLock<Vec<String>>,
}

impl DownloadPolicy {
    pub fn new(sites: Vec<InternalSite>) -> Self {
        DownloadPolicy { sites: RwLock::new(sites), own_urls: RwLock::new(Vec::new()) }
    }

    /// The internal sites the operator allowed.
    pub fn sites(&self) -> Vec<InternalSite> {
        self.sites.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the internal sites allowed (the configuration file changed).
    pub fn set_sites(&self, sites: Vec<InternalSite>) {
        *self.sites.write().unwrap_or_else(|e| e.into_inner()) = sites;
    }

    /// Allows exactly this URL, whatever its address: for what the server itself serves.
    pub fn allow_own_url(&self, url: &str) {
        let mut own = self.own_urls.write().unwrap_or_else(|e| e.into_inner());
        if !own.iter().any(|u| u == url) {
            own.push(url.to_owned());
        }
    }

    fn is_own(&self, url: &str) -> bool {
        self.own_urls.read().unwrap_or_else(|e| e.into_inner()).iter().any(|u| u == url)
    }

    /// Whether a download may connect to `addr`; if not, what kind of address it is.
    pub fn judge(&self, addr: SocketAddr) -> Result<(), AddressKind> {
        let ip = canonical(addr.ip());
        let kind = classify(ip);
        let listed = || self.sites.read().unwrap_or_else(|e| e.into_inner()).iter().any(|s| s.covers(ip, addr.port()));
        if kind == AddressKind::Public || (kind != AddressKind::Unspecified && listed()) { Ok(()) } else { Err(kind) }
    }

    /// The addresses `url`'s host resolved to, if every one of them may be reached.
    fn decide(&self, url: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refusal> {
        if found.is_empty() {
            return Err(Refusal::Unresolved);
        }
        if !self.is_own(url) {
            // All of them: a name that also points inside is refused, not trimmed.
            for addr in &found {
                self.judge(*addr).map_err(Refusal::Internal)?;
            }
        }
        Ok(found)
    }

    /// Resolves `url`'s host and checks every address, without connecting anywhere: for the
    /// API, when a URL is registered.
    pub async fn check(&self, url: &str) -> Result<Vec<SocketAddr>, Refusal> {
        let t = Target::of(url)?;
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((t.host.as_str(), t.port)))
            .await
            .map_err(|_| Refusal::Slow)?
            .map_err(|_| Refusal::Unresolved)?;
        self.decide(url, found.collect())
    }

    /// The same, blocking the thread for at most `timeout`: for a download about to connect.
    pub fn check_blocking(&self, url: &str, timeout: Duration) -> Result<(Target, Vec<SocketAddr>), Refusal> {
        let t = Target::of(url)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (host, port) = (t.host.clone(), t.port);
        // The lookup itself has no deadline; a thread left waiting on it ends on its own.
        std::thread::spawn(move || tx.send((host.as_str(), port).to_socket_addrs().map(Vec::from_iter)).ok());
        let found = match rx.recv_timeout(timeout) {
            Ok(Ok(found)) => found,
            Ok(Err(_)) => return Err(Refusal::Unresolved),
            Err(_) => return Err(Refusal::Slow),
        };
        Ok((t, self.decide(url, found)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> AddressKind {
        classify(text.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        use AddressKind::*;
        for (ip, want) in [
            ("127.0.0.1", Loopback),
            ("127.255.1.2", Loopback),
            ("::1", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Multicast),
            ("ff02::1", Multicast),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("::127.0.0.1", Reserved),
            ("::8.8.8.8", Reserved),
            ("100::1", Reserved),
            ("8.8.8.8", Public),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("100.128.0.1", Public),
            ("192.0.2.1", Public),
            ("169.253.0.1", Public),
            ("2001:4860:4860::8888", Public),
        ] {
            assert_eq!(kind(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_written_as_ipv6_is_judged_as_ipv4() {
        use AddressKind::*;
        assert_eq!(kind("::ffff:127.0.0.1"), Loopback);
        assert_eq!(kind("::ffff:169.254.169.254"), LinkLocal);
        assert_eq!(kind("::ffff:10.1.2.3"), Private);
        assert_eq!(kind("::ffff:0.0.0.0"), Unspecified);
        assert_eq!(kind("::ffff:8.8.8.8"), Public);
        assert_eq!(kind("64:ff9b::7f00:1"), Loopback);
        assert_eq!(kind("64:ff9b::a9fe:a9fe"), LinkLocal);
        assert_eq!(kind("64:ff9b::808:808"), Public);
        assert_eq!(kind("64:ff9b:1::1"), Private);
        assert_eq!(kind("2002:7f00:1::1"), Loopback);
        assert_eq!(kind("2002:c0a8:101::1"), Private);
        assert_eq!(kind("2002:808:808::1"), Public);
    }

    fn site(text: &str) -> InternalSite {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sites_parse_with_optional_prefix_and_port() {
        assert_eq!(site("10.1.2.0/24"), InternalSite { net: "10.1.2.0".parse().unwrap(), prefix: 24, port: None });
        assert_eq!(site("127.0.0.1"), InternalSite { net: "127.0.0.1".parse().unwrap(), prefix: 32, port: None });
        assert_eq!(site("127.0.0.1:8080").port, Some(8080));
        assert_eq!(site("10.0.0.0/8:80"), InternalSite { net: "10.0.0.0".parse().unwrap(), prefix: 8, port: Some(80) });
        assert_eq!(site("fd00::/8"), InternalSite { net: "fd00::".parse().unwrap(), prefix: 8, port: None });
        assert_eq!(site("[::1]:80"), InternalSite { net: "::1".parse().unwrap(), prefix: 128, port: Some(80) });
        assert_eq!(site("[fd00::/16]"), InternalSite { net: "fd00::".parse().unwrap(), prefix: 16, port: None });
        // An IPv4-mapped network is the IPv4 network.
        assert_eq!(site("::ffff:10.0.0.0/104"), site("10.0.0.0/8"));
        assert_eq!(site("::ffff:0.0.0.0/96"), site("0.0.0.0/0"));
        for (bad, why) in [
            ("10.1.2.5/24", "bits set past its prefix"),
            ("10.1.2.0/33", "prefix length"),
            ("fd00::/129", "prefix length"),
            ("example.org", "not an IP address"),
            ("10.0.0.1:0", "port"),
            ("10.0.0.1:http", "port"),
            ("[::1", "closing ]"),
            ("[::1]80", "after ]"),
            ("0.0.0.0", "any-local"),
            ("0.0.0.0/8", "any-local"),
            ("::", "any-local"),
            ("::ffff:0.0.0.0/128", "any-local"),
            ("::ffff:0:0/64", "IPv4-mapped"),
        ] {
            let err = bad.parse::<InternalSite>().unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn internal_addresses_pass_only_where_allowed() {
        let none = DownloadPolicy::default();
        assert_eq!(none.judge(addr("8.8.8.8:80")), Ok(()));
        assert_eq!(none.judge(addr("[2001:4860:4860::8888]:443")), Ok(()));
        assert_eq!(none.judge(addr("127.0.0.1:80")), Err(AddressKind::Loopback));
        assert_eq!(none.judge(addr("[::ffff:127.0.0.1]:80")), Err(AddressKind::Loopback));
        assert_eq!(none.judge(addr("10.1.2.3:80")), Err(AddressKind::Private));

        let some = DownloadPolicy::new(vec![site("10.1.2.0/24"), site("127.0.0.1:8080"), site("fd00::/8")]);
        assert_eq!(some.judge(addr("10.1.2.200:80")), Ok(()));
        assert_eq!(some.judge(addr("[::ffff:10.1.2.7]:80")), Ok(()), "a mapped address is its IPv4");
        assert_eq!(some.judge(addr("10.1.3.1:80")), Err(AddressKind::Private));
        assert_eq!(some.judge(addr("127.0.0.1:8080")), Ok(()));
        assert_eq!(some.judge(addr("127.0.0.1:8081")), Err(AddressKind::Loopback), "another port");
        assert_eq!(some.judge(addr("127.0.0.2:8080")), Err(AddressKind::Loopback), "another host");
        assert_eq!(some.judge(addr("[::1]:8080")), Err(AddressKind::Loopback));
        assert_eq!(some.judge(addr("[fd12::1]:80")), Ok(()));
        assert_eq!(some.judge(addr("[fe80::1]:80")), Err(AddressKind::LinkLocal));

        // A site as wide as everything still leaves the any-local addresses out.
        let wide = DownloadPolicy::new(vec![site("0.0.0.0/0"), site("::/0")]);
        assert_eq!(wide.judge(addr("127.0.0.1:80")), Ok(()));
        assert_eq!(wide.judge(addr("0.0.0.0:80")), Err(AddressKind::Unspecified));
        assert_eq!(wide.judge(addr("[::]:80")), Err(AddressKind::Unspecified));
    }

    #[test]
    fn targets_come_from_http_urls_only() {
        let t = |url: &str| Target::of(url);
        assert_eq!(t("http://example.org/x"), Ok(Target { host: "example.org".into(), port: 80 }));
        assert_eq!(t("HTTPS://example.org/x"), Ok(Target { host: "example.org".into(), port: 443 }));
        assert_eq!(t("http://u:p@127.1:8080/x"), Ok(Target { host: "127.1".into(), port: 8080 }));
        assert_eq!(t("http://[::1]:81/x"), Ok(Target { host: "::1".into(), port: 81 }));
        for bad in
            ["ftp://example.org/x", "file:///etc/passwd", "/relative", "http:///x", "http://h:99999/x", "http://h:/x"]
        {
            assert_eq!(t(bad), Err(Refusal::NotHttp), "{bad}");
        }
    }

    #[test]
    fn every_resolved_address_is_checked_without_connecting() {
        let policy = DownloadPolicy::default();
        let refused = |url: &str| policy.check_blocking(url, Duration::from_secs(5)).unwrap_err();
        // Loopback however it is written: getaddrinfo reads these forms as 127.0.0.1.
        for url in [
            "http://127.0.0.1:1/x",
            "http://127.1:1/x",
            "http://2130706433:1/x",
            "http://0x7f000001:1/x",
            "http://0177.0.0.1:1/x",
            "http://[::1]:1/x",
            "http://[::ffff:127.0.0.1]:1/x",
            "http://localhost:1/x",
        ] {
            assert_eq!(refused(url), Refusal::Internal(AddressKind::Loopback), "{url}");
        }
        assert_eq!(refused("http://0.0.0.0:1/x"), Refusal::Internal(AddressKind::Unspecified));
        assert_eq!(refused("http://169.254.169.254/latest/meta-data/"), Refusal::Internal(AddressKind::LinkLocal));
        assert_eq!(refused("http://192.168.0.1/"), Refusal::Internal(AddressKind::Private));
        assert_eq!(refused("http://name-that-does-not-exist.invalid/"), Refusal::Unresolved);
        assert_eq!(
            Refusal::Internal(AddressKind::Loopback).sentence(),
            "The URL's host is not allowed: it resolves to a loopback address"
        );

        // The server's own URL passes as written, and only so.
        policy.allow_own_url("http://127.0.0.1:1/demo/template.qcow2");
        let (target, found) =
            policy.check_blocking("http://127.0.0.1:1/demo/template.qcow2", Duration::from_secs(5)).unwrap();
        assert_eq!((target.port, found), (1, vec![addr("127.0.0.1:1")]));
        assert_eq!(refused("http://127.0.0.1:1/demo/other"), Refusal::Internal(AddressKind::Loopback));
    }
}
