//! What building a router takes: network namespaces, veth links from them to bridges,
//! addresses and routes inside them, an nftables rule set applied whole, and HAProxy
//! load balancers inside them.
//!
//! A namespace is reached only by its name under `/run/netns` (a granted prefix, a
//! device name: no `/`), so a driver never names the host's namespace or a process's.
//! Programs that must run inside one (nft, sysctl, HAProxy, udhcpd) are started with
//! `nsenter --net=` on that file. Nothing a driver passes is configuration text for a
//! program that could run commands or read files: nft text is checked for statements
//! that reach outside the namespace, and HAProxy's configuration is written here from
//! typed fields.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;

use super::*;
use crate::plugins::bindings::netdev::{Balance, LbConfig, LinkPlug};
use crate::plugins::grants::Grants;

const NETNS_DIR: &str = "/run/netns";
/// Where load balancers keep their configuration and pid file, one folder each.
const LB_STATE_DIR: &str = "/run/wasmstack/lb";
/// Where the rule set last applied to each namespace is written for `nft -f`.
const NFT_STATE_DIR: &str = "/run/wasmstack/nft";
/// The largest nft text accepted: 1,000 port forwards take about 100 KiB.
pub(super) const MAX_RULESET: usize = 4 << 20;
const MAX_FRONTENDS: usize = 1024;
const MAX_SERVERS: usize = 1024;
/// Words of the nft language refused in a driver's rule set: `include` reads host files,
/// `log` writes to the host's kernel log, `osf` and `cgroupv2` look at host files, and
/// `queue` hands packets to whatever userspace program listens.
const NFT_REFUSED: [&str; 5] = ["include", "log", "osf", "cgroupv2", "queue"];

pub(super) fn ns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub(super) fn namespace_exists(name: &str) -> bool {
    ns_path(name).exists()
}

/// Whether process `pid` runs in the namespace `ns` (and not in an older one of the same
/// name that someone deleted while it ran).
pub(super) fn in_namespace(pid: i32, ns: &str) -> bool {
    let ino = |p: PathBuf| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (ino(PathBuf::from(format!("/proc/{pid}/ns/net"))), ino(ns_path(ns))) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Runs `program` inside namespace `ns`.
pub(super) fn must_in(op: &Op, ns: &str, program: &str, args: &[&str]) -> NetResult<String> {
    let net = format!("--net={}", ns_path(ns).display());
    let mut all = vec![net.as_str(), "--", program];
    all.extend_from_slice(args);
    op.must("nsenter", &all)
}

fn need_namespace(ns: &str) -> NetResult<()> {
    if namespace_exists(ns) { Ok(()) } else { Err(DriverError::NotFound(format!("no namespace {ns}")).into()) }
}

pub(super) fn create_namespace(op: &Op, name: &str) -> NetResult<()> {
    if !namespace_exists(name) {
        let (code, _, stderr) = op.run("ip", &["netns", "add", name])?;
        // Another call may have made it in between.
        if code != 0 && !namespace_exists(name) {
            return Err(DriverError::Failed(format!("ip netns add: {}", short(&stderr))).into());
        }
    }
    if state_in(name, "lo")? != Some(true) {
        op.must("ip", &["-n", name, "link", "set", "lo", "up"])?;
    }
    Ok(())
}

/// The devices inside a namespace, by name.
fn devices_in(op: &Op, ns: &str) -> NetResult<Vec<String>> {
    let out = op.must("ip", &["-n", ns, "-o", "link", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n != "lo")
        .collect())
}

pub(super) fn delete_namespace(op: &Op, name: &str, grants: &Grants) -> NetResult<()> {
    // What the host runs inside it goes first, whether the namespace is there or not.
    for lb in services_in(Path::new(LB_STATE_DIR), name) {
        stop_load_balancer(op, &lb)?;
    }
    for dhcp in services_in(Path::new(DHCP_STATE_DIR), name) {
        stop_dhcp(op, &dhcp)?;
    }
    // The rule set it last applied goes with it.
    let _ = std::fs::remove_file(Path::new(NFT_STATE_DIR).join(format!("{name}.nft")));
    if !namespace_exists(name) {
        return Ok(());
    }
    for device in devices_in(op, name)? {
        // Only links this grant could have made; their host ends may be Open vSwitch ports.
        if valid_device_name(&device) && grants.allows_netdev(&device) {
            unplug_host_end(op, &device)?;
        }
    }
    let (code, _, stderr) = op.run("ip", &["netns", "del", name])?;
    if code != 0 && namespace_exists(name) {
        return Err(DriverError::Failed(format!("ip netns del: {}", short(&stderr))).into());
    }
    Ok(())
}

/// The services (folders under `dir`) that run in namespace `ns`.
fn services_in(dir: &Path, ns: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("namespace")).is_ok_and(|n| n.trim() == ns))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}

/// Takes a link's host end off Open vSwitch, where it is a port (on a Linux bridge the
/// port goes with the device).
fn unplug_host_end(op: &Op, device: &str) -> NetResult<()> {
    if std::fs::read_link(Path::new("/sys/class/net").join(device).join("master")).is_ok() {
        return Ok(());
    }
    match op.ovs(&["--if-exists", "del-port", device]) {
        Err(NetError::Driver(DriverError::Unavailable(_))) => Ok(()),
        other => other.map(drop),
    }
}

fn is_veth(op: &Op, device: &str) -> NetResult<bool> {
    let out = op.must("ip", &["-d", "-o", "link", "show", "dev", device])?;
    Ok(out.split_whitespace().any(|w| w == "veth"))
}

fn exists_in(_op: &Op, ns: &str, device: &str) -> NetResult<bool> {
    Ok(state_in(ns, device)?.is_some())
}

pub(super) fn add_namespace_link(op: &Op, ns: &str, device: &str, plug: &LinkPlug) -> NetResult<()> {
    if plug.vlan.is_some_and(|v| v == 0 || v > 4094) {
        return Err(invalid(format!("VLAN {} is outside 1-4094", plug.vlan.unwrap_or(0))));
    }
    need_namespace(ns)?;
    let kind =
        op.bridge_kind(&plug.bridge)?.ok_or_else(|| DriverError::NotFound(format!("no bridge {}", plug.bridge)))?;
    if kind == BridgeKind::Linux && plug.vlan.is_some() {
        return Err(DriverError::Unsupported(format!(
            "{} is a Linux bridge; VLAN tags need an Open vSwitch bridge",
            plug.bridge
        ))
        .into());
    }
    let inner = exists_in(op, ns, device)?;
    if device_exists(device) && !inner {
        // A host end whose namespace went away with its peer still held somewhere (a
        // process in the old namespace): a stale link of ours, made again below.
        if !is_veth(op, device)? {
            return Err(invalid(format!("{device} exists on the host and is not a namespace link")));
        }
        unplug_host_end(op, device)?;
        op.must("ip", &["link", "del", "dev", device])?;
    } else if inner && !device_exists(device) {
        return Err(invalid(format!("{device} exists in {ns} and is not a link to the host")));
    }
    if !inner || !device_exists(device) {
        // The namespace end keeps its MAC when the link is made again (its namespace was
        // deleted, the host rebooted): neighbours' ARP caches stay right, so guests reach
        // a rebuilt router at once instead of after their entries expire.
        let mac = link_mac(ns, device);
        op.must("ip", &["link", "add", device, "type", "veth", "peer", "name", device, "address", &mac, "netns", ns])?;
    }
    match kind {
        BridgeKind::Linux => {
            let master = std::fs::read_link(Path::new("/sys/class/net").join(device).join("master")).ok();
            if master.as_deref().and_then(Path::file_name).is_none_or(|m| m != plug.bridge.as_str()) {
                op.must("ip", &["link", "set", "dev", device, "master", &plug.bridge])?;
            }
        }
        BridgeKind::Openvswitch if ovsdb_port_tag(&plug.bridge, device, op.deadline) == Some(plug.vlan) => {}
        BridgeKind::Openvswitch => {
            let tag = plug.vlan.map(|v| format!("tag={v}"));
            let mut args = vec!["--may-exist", "add-port", &plug.bridge, device, "--"];
            match &tag {
                Some(t) => args.extend(["set", "port", device, t.as_str()]),
                None => args.extend(["clear", "port", device, "tag"]),
            }
            op.ovs(&args)?;
        }
    }
    op.link_up(device)?;
    if state_in(ns, device)? != Some(true) {
        op.must("ip", &["-n", ns, "link", "set", "dev", device, "up"])?;
    }
    if kind == BridgeKind::Openvswitch {
        // Open vSwitch's userspace datapath reads the host end through a packet socket,
        // which drops the note that a checksum is still to be filled in: TCP from the
        // namespace would arrive with bad checksums, and be dropped as invalid.
        no_tx_checksum_offload(ns, device).map_err(|e| DriverError::Failed(format!("{device} in {ns}: {e}")))?;
    }
    Ok(())
}

/// A locally administered unicast MAC for the namespace end of a link, the same for the
/// same namespace and device every time (FNV-1a of both names).
fn link_mac(ns: &str, device: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain([b'/']).chain(device.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5])
}

/// Runs `f` on a thread of its own inside namespace `ns`: setns changes the namespace of
/// the calling thread only, and this one ends right after. What a namespace holds is read
/// this way with a few system calls, where a command would cost a process each; a router
/// applied again checks every piece of it.
fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    let path = ns_path(ns);
    let work = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: a valid namespace descriptor; it changes this thread's network namespace.
        if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("entering the namespace: {}", std::io::Error::last_os_error()));
        }
        f()
    });
    work.join().map_err(|_| "a namespace thread panicked".to_owned())?
}

/// An AF_INET datagram socket, for interface ioctls.
fn ioctl_socket() -> Result<std::os::fd::OwnedFd, String> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor just made, owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn ifreq(device: &str) -> Result<libc::ifreq, String> {
    if device.len() >= libc::IFNAMSIZ {
        return Err(format!("{device}: name too long"));
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(device.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// Whether `device` exists in the calling thread's namespace, and whether it is up.
fn device_state(device: &str) -> Result<Option<bool>, String> {
    use std::os::fd::AsRawFd;
    let sock = ioctl_socket()?;
    let mut ifr = ifreq(device)?;
    // SAFETY: SIOCGIFFLAGS fills the ifreq, which is alive.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENODEV) { Ok(None) } else { Err(format!("{device}: {e}")) };
    }
    // SAFETY: SIOCGIFFLAGS set the flags member.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    Ok(Some(flags & libc::IFF_UP as libc::c_short != 0))
}

/// `device_state` of a device inside `ns`.
fn state_in(ns: &str, device: &str) -> NetResult<Option<bool>> {
    let device = device.to_owned();
    inside(ns, move || device_state(&device)).map_err(|e| DriverError::Failed(format!("in {ns}: {e}")).into())
}

/// Has the kernel fill in checksums of what `device` in namespace `ns` sends, instead of
/// leaving them to the other end (`ethtool -K DEV tx off`, without ethtool).
fn no_tx_checksum_offload(ns: &str, device: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let device = device.to_owned();
    inside(ns, move || {
        let sock = ioctl_socket()?;
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        const ETHTOOL_GTXCSUM: u32 = 0x16;
        const ETHTOOL_STXCSUM: u32 = 0x17;
        let mut value = EthtoolValue { cmd: ETHTOOL_GTXCSUM, data: 0 };
        let mut ifr = ifreq(&device)?;
        ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        // SAFETY: SIOCETHTOOL reads the ifreq and the ethtool_value it points to, both alive.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) } == 0 && value.data == 0 {
            return Ok(());
        }
        let mut off = EthtoolValue { cmd: ETHTOOL_STXCSUM, data: 0 };
        ifr.ifr_ifru.ifru_data = (&mut off as *mut EthtoolValue).cast();
        // SAFETY: as above.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) } != 0 {
            return Err(format!("turning checksum offload off: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    })
}

/// The IPv4 addresses (as "a.b.c.d/p") `device` holds in the calling thread's namespace.
fn addresses_of(device: &str) -> Result<BTreeSet<String>, String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(format!("getifaddrs: {}", std::io::Error::last_os_error()));
    }
    let mut out = BTreeSet::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: a node of the list getifaddrs made, alive until freeifaddrs.
        let a = unsafe { &*at };
        at = a.ifa_next;
        // SAFETY: ifa_name is a NUL-terminated string of the same list.
        let name = unsafe { std::ffi::CStr::from_ptr(a.ifa_name) };
        if name.to_bytes() != device.as_bytes() || a.ifa_addr.is_null() || a.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: a non-null sockaddr of the list.
        if i32::from(unsafe { (*a.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET sockaddrs are sockaddr_in.
        let (addr, mask) = unsafe {
            (
                (*(a.ifa_addr as *const libc::sockaddr_in)).sin_addr.s_addr,
                (*(a.ifa_netmask as *const libc::sockaddr_in)).sin_addr.s_addr,
            )
        };
        out.insert(format!("{}/{}", Ipv4Addr::from(u32::from_be(addr)), u32::from_be(mask).count_ones()));
    }
    // SAFETY: the list getifaddrs made, freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(out)
}

/// The default route's gateway in the calling thread's namespace (from its
/// /proc/thread-self/net/route: the thread's, not the process's).
fn default_gateway() -> Result<Option<Ipv4Addr>, String> {
    let text = std::fs::read_to_string("/proc/thread-self/net/route").map_err(|e| format!("routes: {e}"))?;
    Ok(text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000")
            .then(|| u32::from_str_radix(f[2], 16).ok().map(|g| Ipv4Addr::from(u32::from_be(g))))
            .flatten()
    }))
}

pub(super) fn remove_namespace_link(op: &Op, ns: &str, device: &str) -> NetResult<()> {
    if device_exists(device) {
        if !is_veth(op, device)? {
            return Err(invalid(format!("{device} is not a namespace link; not removing it")));
        }
        unplug_host_end(op, device)?;
        op.must("ip", &["link", "del", "dev", device])?;
    } else if namespace_exists(ns) && exists_in(op, ns, device)? {
        op.must("ip", &["-n", ns, "link", "del", "dev", device])?;
    }
    Ok(())
}

/// "a.b.c.d/p", checked, in the form `ip` prints it.
fn cidr(text: &str) -> NetResult<String> {
    let (addr, prefix) = text.split_once('/').ok_or_else(|| invalid(format!("\"{text}\" is not CIDR")))?;
    let addr = ipv4(addr, "address")?;
    let prefix: u8 =
        prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| invalid(format!("\"{text}\" has a bad prefix")))?;
    Ok(format!("{addr}/{prefix}"))
}

pub(super) fn set_namespace_addresses(op: &Op, ns: &str, device: &str, addresses: &[String]) -> NetResult<()> {
    if addresses.len() > 4096 {
        return Err(invalid(format!("{} addresses, at most 4096", addresses.len())));
    }
    let want: BTreeSet<String> = addresses.iter().map(|a| cidr(a)).collect::<NetResult<_>>()?;
    need_namespace(ns)?;
    let up = state_in(ns, device)?.ok_or_else(|| DriverError::NotFound(format!("no device {device} in {ns}")))?;
    let name = device.to_owned();
    let have = inside(ns, move || addresses_of(&name)).map_err(|e| DriverError::Failed(format!("in {ns}: {e}")))?;
    for gone in have.difference(&want) {
        op.must("ip", &["-n", ns, "addr", "del", gone, "dev", device])?;
    }
    for new in want.difference(&have) {
        op.must("ip", &["-n", ns, "addr", "add", new, "dev", device])?;
    }
    if !up {
        op.must("ip", &["-n", ns, "link", "set", "dev", device, "up"])?;
    }
    Ok(())
}

/// Adds `address` to `device` inside `ns` when it does not hold it, and brings it up.
pub(super) fn ensure_address(op: &Op, ns: &str, device: &str, address: &str) -> NetResult<()> {
    let address = cidr(address)?;
    let up = state_in(ns, device)?.ok_or_else(|| DriverError::NotFound(format!("no device {device} in {ns}")))?;
    let name = device.to_owned();
    let have = inside(ns, move || addresses_of(&name)).map_err(|e| DriverError::Failed(format!("in {ns}: {e}")))?;
    if !have.contains(&address) {
        op.must("ip", &["-n", ns, "addr", "replace", &address, "dev", device])?;
    }
    if !up {
        op.must("ip", &["-n", ns, "link", "set", "dev", device, "up"])?;
    }
    Ok(())
}

pub(super) fn set_namespace_default_route(op: &Op, ns: &str, gateway: Option<&str>) -> NetResult<()> {
    let gateway = gateway.map(|g| ipv4(g, "gateway")).transpose()?;
    need_namespace(ns)?;
    let now = inside(ns, default_gateway).map_err(|e| DriverError::Failed(format!("in {ns}: {e}")))?;
    if now == gateway {
        return Ok(());
    }
    match gateway {
        Some(gw) => op.must("ip", &["-n", ns, "route", "replace", "default", "via", &gw.to_string()]).map(drop),
        // None there already is what was asked.
        None => op.run("ip", &["-n", ns, "route", "del", "default"]).map(drop),
    }
}

pub(super) fn set_namespace_forwarding(ns: &str, on: bool) -> NetResult<()> {
    need_namespace(ns)?;
    // /proc/sys/net is the namespace of the thread that opens it.
    let value = if on { "1" } else { "0" };
    inside(ns, move || {
        let path = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
            return Ok(());
        }
        std::fs::write(path, value).map_err(|e| format!("{path}: {e}"))
    })
    .map_err(|e| DriverError::Failed(format!("forwarding in {ns}: {e}")).into())
}

/// Refuses nft text that could reach outside the namespace it is applied in (see
/// NFT_REFUSED), or is too big to be a router's.
pub(super) fn check_ruleset(text: &str) -> Result<(), String> {
    if text.len() > MAX_RULESET {
        return Err(format!("the rule set is {} bytes, at most {MAX_RULESET}", text.len()));
    }
    if text.contains('\0') {
        return Err("the rule set has a NUL byte".into());
    }
    let (mut word, mut quoted, mut comment) = (String::new(), false, false);
    let check = |word: &mut String| {
        let refused = NFT_REFUSED.iter().find(|r| word.eq_ignore_ascii_case(r));
        word.clear();
        match refused {
            Some(r) => Err(format!("the rule set uses \"{r}\", which reaches outside its namespace")),
            None => Ok(()),
        }
    };
    for c in text.chars() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if quoted {
            quoted = c != '"';
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        check(&mut word)?;
        match c {
            '#' => comment = true,
            '"' => quoted = true,
            _ => {}
        }
    }
    check(&mut word)
}

pub(super) fn apply_nftables(op: &Op, ns: &str, ruleset: &str) -> NetResult<()> {
    check_ruleset(ruleset).map_err(invalid)?;
    need_namespace(ns)?;
    let io = |e: std::io::Error| DriverError::Failed(format!("nft state folder {NFT_STATE_DIR}: {e}"));
    std::fs::create_dir_all(NFT_STATE_DIR).map_err(io)?;
    // One file, one transaction: nft applies all of it or none, so the namespace never
    // runs half a rule set, and the flush makes it the whole rule set.
    let file = Path::new(NFT_STATE_DIR).join(format!("{ns}.nft"));
    std::fs::write(&file, format!("flush ruleset\n{ruleset}\n")).map_err(io)?;
    match must_in(op, ns, "nft", &["-f", &file.to_string_lossy()]) {
        Ok(_) => Ok(()),
        // The text is the driver's: nft refusing it is bad input.
        Err(NetError::Driver(DriverError::Failed(m))) => Err(invalid(m)),
        Err(e) => Err(e),
    }
}

// ------------------------------------------------------------------ HAProxy

fn lb_dir(name: &str) -> PathBuf {
    Path::new(LB_STATE_DIR).join(name)
}

fn section_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// HAProxy's configuration for `config`, written from its typed fields only.
pub(super) fn haproxy_conf(config: &LbConfig) -> NetResult<String> {
    if config.frontends.len() > MAX_FRONTENDS {
        return Err(invalid(format!("{} frontends, at most {MAX_FRONTENDS}", config.frontends.len())));
    }
    // Ports are bound before dropping root: the process then runs as nobody. 4000
    // connections need about 8,000 descriptors, within common hard limits.
    let mut conf = String::from(
        "global\n    daemon\n    maxconn 4000\n    user nobody\n    group nogroup\n\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n",
    );
    let mut names = BTreeSet::new();
    for f in &config.frontends {
        if !section_name(&f.name) {
            return Err(invalid(format!("\"{}\" is not a frontend name (1-32 letters, digits, '-', '_')", f.name)));
        }
        if !names.insert(f.name.as_str()) {
            return Err(invalid(format!("two frontends are named {}", f.name)));
        }
        if f.port == 0 {
            return Err(invalid(format!("frontend {} has port 0", f.name)));
        }
        if f.servers.len() > MAX_SERVERS {
            return Err(invalid(format!("frontend {} has {} servers, at most {MAX_SERVERS}", f.name, f.servers.len())));
        }
        let address = ipv4(&f.address, "frontend address")?;
        let balance = match f.balance {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConnections => "leastconn",
            Balance::Source => "source",
        };
        let _ = write!(
            conf,
            "\nfrontend f_{0}\n    bind {address}:{1}\n    default_backend b_{0}\n\nbackend b_{0}\n    balance {balance}\n",
            f.name, f.port
        );
        for (i, s) in f.servers.iter().enumerate() {
            if s.port == 0 {
                return Err(invalid(format!("a server of frontend {} has port 0", f.name)));
            }
            let _ = writeln!(conf, "    server s{i} {}:{}", ipv4(&s.address, "server address")?, s.port);
        }
    }
    Ok(conf)
}

/// The pid of the load balancer's HAProxy, when one started for it runs (anywhere).
fn lb_pid(name: &str) -> Option<i32> {
    let pid: i32 =
        std::fs::read_to_string(lb_dir(name).join("haproxy.pid")).ok()?.lines().next()?.trim().parse().ok()?;
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).ok()?).into_owned();
    let conf = lb_dir(name).join("haproxy.cfg");
    (cmdline.contains("haproxy") && cmdline.contains(&*conf.to_string_lossy()) && alive(pid)).then_some(pid)
}

/// Whether the load balancer runs, in the namespace it was started for.
pub(super) fn load_balancer_state(name: &str) -> ServiceState {
    let Ok(ns) = std::fs::read_to_string(lb_dir(name).join("namespace")) else { return ServiceState::Absent };
    if lb_pid(name).is_some_and(|pid| in_namespace(pid, ns.trim())) {
        ServiceState::Running
    } else {
        ServiceState::Dead
    }
}

/// Ends process `pid` and waits until it is gone.
fn end_process(op: &Op, pid: i32) -> NetResult<()> {
    let exited = ExitWatch::new(pid as u32);
    // SAFETY: kill(2) with a pid just read and checked; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    while alive(pid) {
        let now = Instant::now();
        if now >= op.deadline {
            return Err(NetError::Deadline);
        }
        match &exited {
            Some(w) => w.wait((op.deadline - now).min(Duration::from_millis(50))),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(())
}

pub(super) fn apply_load_balancer(op: &Op, config: &LbConfig) -> NetResult<()> {
    let conf = haproxy_conf(config)?;
    need_namespace(&config.namespace)?;
    let dir = lb_dir(&config.name);
    let io = |e: std::io::Error| DriverError::Failed(format!("load balancer folder {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let conf_path = dir.join("haproxy.cfg");
    let ns_file = dir.join("namespace");
    let old = lb_pid(&config.name);
    let same_ns = std::fs::read_to_string(&ns_file).is_ok_and(|n| n.trim() == config.namespace);
    let running_here = old.is_some_and(|pid| same_ns && in_namespace(pid, &config.namespace));
    if running_here && std::fs::read_to_string(&conf_path).is_ok_and(|c| c == conf) {
        return Ok(());
    }
    if let (Some(pid), false) = (old, running_here) {
        // Running in a namespace that is no longer this one's: it serves nobody.
        end_process(op, pid)?;
    }
    std::fs::write(&conf_path, &conf).map_err(io)?;
    std::fs::write(&ns_file, format!("{}\n", config.namespace)).map_err(io)?;
    let pid_path = dir.join("haproxy.pid");
    let (conf_s, pid_s) = (conf_path.to_string_lossy(), pid_path.to_string_lossy());
    let old_pid = old.filter(|_| running_here).map(|p| p.to_string());
    let mut args = vec!["-D", "-f", &*conf_s, "-p", &*pid_s];
    if let Some(p) = &old_pid {
        // A reload: the new process takes the listeners, the old one finishes its
        // connections and exits.
        args.extend(["-sf", p.as_str()]);
    } else {
        let _ = std::fs::remove_file(&pid_path);
    }
    let net = format!("--net={}", ns_path(&config.namespace).display());
    let mut all = vec![net.as_str(), "--", "haproxy"];
    all.extend_from_slice(&args);
    let (code, _, stderr) = op.run("nsenter", &all)?;
    if code != 0 {
        // HAProxy says what is wrong on an [ALERT] line, after notices.
        let alert = stderr.lines().find(|l| l.contains("[ALERT]")).unwrap_or(stderr.trim());
        let alert = alert.rsplit_once(" : ").map_or(alert, |(_, m)| m);
        return Err(DriverError::Failed(format!("haproxy: {}", short(alert))).into());
    }
    while Instant::now() < op.deadline {
        if lb_pid(&config.name).is_some_and(|pid| Some(pid) != old.filter(|_| running_here)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Err(NetError::Deadline)
}

pub(super) fn stop_load_balancer(op: &Op, name: &str) -> NetResult<()> {
    if let Some(pid) = lb_pid(name) {
        end_process(op, pid)?;
    }
    match std::fs::remove_dir_all(lb_dir(name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::Failed(format!("removing {}: {e}", lb_dir(name).display())).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::netdev::{LbFrontend, LbServer};

    #[test]
    fn link_macs_are_stable_local_and_unicast() {
        let mac = link_mac("ws-r1", "ws-g1");
        assert_eq!(mac, link_mac("ws-r1", "ws-g1"));
        assert_ne!(mac, link_mac("ws-r2", "ws-g1"));
        let first = u8::from_str_radix(&mac[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "{mac}");
    }

    #[test]
    fn rule_sets_that_reach_outside_are_refused() {
        let ok = "table ip nat {\n  chain post { type nat hook postrouting priority 100; # log here\n \
                  oif \"ws-pub\" snat to 203.0.113.5 comment \"include log\" }\n}\n";
        assert_eq!(check_ruleset(ok), Ok(()));
        for bad in [
            "include \"/etc/shadow\"",
            "table ip t { chain c { type filter hook input priority 0; log prefix \"x\" } }",
            "table ip t { chain c { type filter hook input priority 0; queue num 1 } }",
            "table ip t { chain c { type filter hook input priority 0; socket cgroupv2 level 1 \"a\" accept } }",
            "table ip t { chain c { type filter hook input priority 0; osf name \"Linux\" accept } }",
            "INCLUDE \"/root/x\"",
        ] {
            assert!(check_ruleset(bad).is_err(), "{bad}");
        }
        assert!(check_ruleset(&"#".repeat(MAX_RULESET + 1)).is_err());
        assert!(check_ruleset("table ip t {}\0").is_err());
    }

    #[test]
    fn haproxy_configuration_comes_from_typed_fields_only() {
        let frontend = |name: &str, address: &str| LbFrontend {
            name: name.into(),
            address: address.into(),
            port: 80,
            balance: Balance::LeastConnections,
            servers: vec![LbServer { address: "10.1.1.10".into(), port: 8080 }],
        };
        let config = |f: LbFrontend| LbConfig { name: "ws-lb1".into(), namespace: "ws-r1".into(), frontends: vec![f] };
        let conf = haproxy_conf(&config(frontend("web", "203.0.113.5"))).unwrap();
        assert!(conf.contains("frontend f_web\n    bind 203.0.113.5:80\n"), "{conf}");
        assert!(conf.contains("balance leastconn\n    server s0 10.1.1.10:8080\n"), "{conf}");
        // Anything that could smuggle a directive in is refused.
        assert!(haproxy_conf(&config(frontend("web\n    external-check", "203.0.113.5"))).is_err());
        assert!(haproxy_conf(&config(frontend("web", "203.0.113.5:80\n    lua-load /x"))).is_err());
        assert!(haproxy_conf(&config(frontend("web", "::1"))).is_err());
    }
}

/// Every namespace call checks every name it is given against the grant before anything
/// runs: a driver granted `ws-` reaches no namespace, device, bridge or service of
/// another name, and no name that is a path.
#[cfg(test)]
mod denials {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::plugins::bindings::netdev::{Balance, DhcpConfig, Host, LbConfig, LbFrontend, LinkPlug, ServiceState};
    use crate::plugins::bindings::types::DriverError;
    use crate::plugins::grants::Grants;
    use crate::plugins::state::CallState;

    fn state() -> CallState {
        let grants = Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap();
        CallState::new(
            "netplug".into(),
            Arc::new(grants),
            Default::default(),
            Default::default(),
            Arc::new(crate::plugins::DownloadPolicy::new(vec![])),
            64 << 20,
            Instant::now() + Duration::from_secs(30),
        )
    }

    /// The call was refused as not granted, naming `name`, and so ran nothing.
    fn denied<T: std::fmt::Debug>(outcome: wasmtime::Result<Result<T, DriverError>>, name: &str) {
        match outcome.expect("no trap") {
            Err(DriverError::Denied(m)) => {
                assert!(m.contains(&format!("\"{name}\"")) && m.contains("netdev = [\""), "{m}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    fn refused<T: std::fmt::Debug>(outcome: wasmtime::Result<Result<T, DriverError>>) {
        assert!(matches!(outcome.expect("no trap"), Err(DriverError::InvalidSpec(_))));
    }

    fn dhcp(name: &str, device: &str) -> DhcpConfig {
        DhcpConfig {
            name: name.into(),
            bridge: device.into(),
            vlan: None,
            server_address: "10.1.1.2/24".into(),
            gateway: None,
            dns: vec![],
            hosts: vec![],
        }
    }

    fn lb(name: &str, namespace: &str) -> LbConfig {
        LbConfig {
            name: name.into(),
            namespace: namespace.into(),
            frontends: vec![LbFrontend {
                name: "web".into(),
                address: "10.1.1.1".into(),
                port: 80,
                balance: Balance::RoundRobin,
                servers: vec![],
            }],
        }
    }

    #[test]
    fn namespaces_outside_the_grant_are_refused() {
        let mut s = state();
        denied(s.create_namespace("other-ns".into()), "other-ns");
        assert!(!super::namespace_exists("other-ns"), "it was made");
        denied(s.delete_namespace("other-ns".into()), "other-ns");
        denied(s.namespace_exists("other-ns".into()), "other-ns");
        // Not names at all: paths and options never reach a command.
        for bad in ["ws-/../../proc/1/ns/net", "..", "-ws", "ws-a b", "ws-0123456789abc"] {
            refused(s.create_namespace(bad.into()));
            refused(s.namespace_exists(bad.into()));
        }
    }

    #[test]
    fn links_addresses_and_routes_outside_the_grant_are_refused() {
        let mut s = state();
        let plug = |bridge: &str| LinkPlug { bridge: bridge.into(), vlan: None };
        denied(s.add_namespace_link("other-ns".into(), "ws-l1".into(), plug("ws-br")), "other-ns");
        denied(s.add_namespace_link("ws-ns".into(), "eth0".into(), plug("ws-br")), "eth0");
        denied(s.add_namespace_link("ws-ns".into(), "ws-l1".into(), plug("virbr0")), "virbr0");
        denied(s.remove_namespace_link("other-ns".into(), "ws-l1".into()), "other-ns");
        denied(s.remove_namespace_link("ws-ns".into(), "eth0".into()), "eth0");
        denied(s.set_namespace_addresses("other-ns".into(), "ws-l1".into(), vec!["10.0.0.1/24".into()]), "other-ns");
        denied(s.set_namespace_addresses("ws-ns".into(), "lo".into(), vec!["10.0.0.1/24".into()]), "lo");
        denied(s.set_namespace_default_route("other-ns".into(), Some("10.0.0.1".into())), "other-ns");
        denied(s.set_namespace_forwarding("other-ns".into(), true), "other-ns");
    }

    #[test]
    fn rule_sets_load_balancers_and_dhcp_outside_the_grant_are_refused() {
        let mut s = state();
        denied(s.apply_nftables("other-ns".into(), "table ip t {}".into()), "other-ns");
        denied(s.apply_load_balancer(lb("other-lb", "ws-ns")), "other-lb");
        denied(s.apply_load_balancer(lb("ws-lb", "other-ns")), "other-ns");
        denied(s.stop_load_balancer("other-lb".into()), "other-lb");
        denied(s.load_balancer_state("other-lb".into()), "other-lb");
        denied(s.start_namespace_dhcp("other-ns".into(), dhcp("ws-d1", "ws-l1")), "other-ns");
        denied(s.start_namespace_dhcp("ws-ns".into(), dhcp("other-d1", "ws-l1")), "other-d1");
        denied(s.start_namespace_dhcp("ws-ns".into(), dhcp("ws-d1", "eth0")), "eth0");
        // Granted names get as far as the checks of what they carry.
        refused(s.apply_nftables("ws-none".into(), "include \"/etc/shadow\"".into()));
        let mut bad = lb("ws-lb", "ws-none");
        bad.frontends[0].name = "web\n    external-check command /bin/sh".into();
        refused(s.apply_load_balancer(bad));
        assert!(matches!(s.load_balancer_state("ws-none-lb".into()).unwrap(), Ok(ServiceState::Absent)));
    }
}
