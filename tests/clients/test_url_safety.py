"""Template and ISO URLs cannot make the server fetch what only it can reach.

A normal user registers URLs pointing at loopback (however written), the any-local address,
link-local (cloud metadata), private and other internal ranges: each is refused at once with
431, and the local HTTP servers standing there count no request. A redirect from an allowed
server to an internal one is not followed. The operator's `[downloads]
allowed-internal-sites` lets exactly the sites it lists through: one loopback port, one
loopback address; another port or address stays refused."""

import http.server
import ipaddress
import secrets
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import GRANTS_ONLY, NFS_URL, Server, admin_credentials, guest_files, install_drivers, new_user_account

SECRET = b"TOP-SECRET-" + secrets.token_hex(8).encode()


class CountingServer:
    """An HTTP server on one address that counts every request by path. It serves the tiny
    template at /tiny.qcow2, SECRET at /secret, and /redirect?to=URL redirects to URL."""

    def __init__(self, host: str, root):
        self.hits = []
        hits = self.hits
        files = {"/tiny.qcow2": (root / "tiny.qcow2").read_bytes(), "/secret": SECRET}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                path = urlsplit(self.path)
                if path.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(path.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = files.get(path.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family})
        self.httpd = server_class((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = "http://{}:{}".format("[{}]".format(host) if ":" in host else host, self.port)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_name():
    """A host name other than "localhost" that resolves to loopback addresses only, if this
    machine has one (its own name usually does, in /etc/hosts)."""
    for name in [socket.gethostname(), "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localhost6"]:
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
        except OSError:
            continue
        if found and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found):
            return name
    return None


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """allowed: 127.0.0.1 on a port the operator lists; inside: 127.0.0.1 on another port;
    other: 127.0.0.2; listed: 127.0.0.3, listed as a /32; inside6: ::1 (when there is IPv6)."""
    root = tmp_path_factory.mktemp("url-safety-web")
    guest_files(root)
    made = {"allowed": CountingServer("127.0.0.1", root), "inside": CountingServer("127.0.0.1", root)}
    made["other"] = CountingServer("127.0.0.2", root)
    made["listed"] = CountingServer("127.0.0.3", root)
    made["inside6"] = CountingServer("::1", root) if ipv6_loopback() else made["inside"]
    yield made
    for s in set(made.values()):
        s.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, sites):
    """A server whose operator allows downloads from the `allowed` port and the `listed` address."""
    s = Server("sqlite", tmp_path_factory.mktemp("wasmstack-url-safety"))
    install_drivers(s.data_dir)
    config = GRANTS_ONLY + '\n[downloads]\nallowed-internal-sites = ["127.0.0.1:{}", "127.0.0.3/32"]\n'.format(sites["allowed"].port)
    (s.data_dir / "wasmstack.toml").write_text(config)
    s.start()
    yield s
    s.close()


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", poll_interval=0.05, timeout=30)


@pytest.fixture(scope="module")
def zone_id(srv):
    admin = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    zone = admin.createZone(name="zu" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    admin.addImageStore(provider="NFS", name="su" + tag, url="{}/url-safety-{}".format(NFS_URL, tag), zoneid=zone["id"])
    return zone["id"]


@pytest.fixture(scope="module")
def user(srv):
    """A normal user: the one who would abuse the server's reach."""
    return client(new_user_account(admin_credentials(srv), "ssrf"))


def register(cs, zone_id, url, iso=False):
    name = ("iso" if iso else "tpl") + secrets.token_hex(4)
    if iso:
        return name, cs.registerIso(name=name, url=url, zoneid=zone_id, bootable=True)["iso"][0]
    return name, cs.registerTemplate(name=name, url=url, format="QCOW2", hypervisor="KVM", zoneid=zone_id)["template"][0]


def owned(cs):
    return len(cs.listTemplates(templatefilter="self").get("template", [])) + len(cs.listIsos(isofilter="self").get("iso", []))


def refusal(cs, zone_id, url, iso=False):
    """The error of registering `url`; checks that nothing was created."""
    before = owned(cs)
    with pytest.raises(CloudStackApiException) as e:
        register(cs, zone_id, url, iso)
    err = e.value.error
    assert err["errorcode"] == 431, err
    assert owned(cs) == before
    return err["errortext"]


def wait_done(cs, template_id, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        t = cs.listTemplates(templatefilter="self", id=template_id)["template"][0]
        if t["isready"] or ("Download" not in t["status"]):
            return t
        assert time.monotonic() < deadline, t
        time.sleep(0.1)


def hits(sites, *names):
    return {n: list(sites[n].hits) for n in names}


INTERNAL = [
    ("http://127.0.0.1:{inside}/secret", "a loopback address"),
    ("http://0.0.0.0:{inside}/secret", "an any-local address"),
    ("http://[::1]:{inside6}/secret", "a loopback address"),
    ("http://127.1:{inside}/secret", "a loopback address"),
    ("http://2130706433:{inside}/secret", "a loopback address"),
    ("http://0x7f000001:{inside}/secret", "a loopback address"),
    ("http://0177.0.0.1:{inside}/secret", "a loopback address"),
    ("http://[::ffff:127.0.0.1]:{inside}/secret", "a loopback address"),
    ("http://localhost:{inside}/secret", "a loopback address"),
    ("http://{name}:{inside}/secret", "a loopback address"),
    ("http://127.0.0.2:{other}/secret", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://[fe80::1]/x", "a link-local address"),
    ("http://10.0.0.1/x", "a private address"),
    ("http://172.16.0.1/x", "a private address"),
    ("http://192.168.0.1/x", "a private address"),
    ("http://[fd00::1]/x", "a private address"),
    ("http://100.64.0.1/x", "a shared (carrier-grade NAT) address"),
    ("http://224.0.0.1/x", "a multicast or broadcast address"),
]


@pytest.mark.parametrize("template, kind", INTERNAL, ids=[t for t, _ in INTERNAL])
def test_internal_urls_are_refused_before_anything_is_fetched(user, zone_id, sites, template, kind):
    name = loopback_name()
    if "{name}" in template and name is None:
        pytest.skip("no host name other than localhost resolves to loopback here")
    ports = {k: s.port for k, s in sites.items()}
    url = template.format(name=name, **ports)
    before = hits(sites, "inside", "inside6", "other")
    for iso in (False, True):
        text = refusal(user, zone_id, url, iso)
        assert text == "The URL's host is not allowed: it resolves to " + kind, text
    assert hits(sites, "inside", "inside6", "other") == before, "a refused URL was fetched"


def test_the_refusal_does_not_tell_an_open_port_from_a_closed_one(user, zone_id, sites):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    open_text = refusal(user, zone_id, "http://127.0.0.1:{}/secret".format(sites["inside"].port))
    closed_text = refusal(user, zone_id, "http://127.0.0.1:{}/secret".format(port))
    assert open_text == closed_text


def test_a_redirect_to_an_internal_url_is_not_followed(user, zone_id, sites):
    allowed, inside = sites["allowed"], sites["inside"]
    for target, kind in [
        ("http://127.0.0.1:{}/secret".format(inside.port), "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ]:
        before_allowed, before_inside = len(allowed.hits), list(inside.hits)
        url = "{}/redirect?to={}".format(allowed.base, target)
        _, t = register(user, zone_id, url)
        done = wait_done(user, t["id"])
        assert done["isready"] is False, done
        status = done["status"]
        assert "is not allowed: it resolves to a {} address".format(kind) in status, status
        assert SECRET.decode() not in status
        # The allowed server was asked; the internal one never was.
        assert len(allowed.hits) == before_allowed + 1
        assert inside.hits == before_inside


def test_the_operator_allows_exactly_the_sites_listed(user, zone_id, sites):
    allowed, listed = sites["allowed"], sites["listed"]
    ready = []
    for url in [
        allowed.base + "/tiny.qcow2",
        listed.base + "/tiny.qcow2",
        # A redirect between allowed sites is followed.
        "{}/redirect?to={}/tiny.qcow2".format(allowed.base, listed.base),
    ]:
        _, t = register(user, zone_id, url)
        done = wait_done(user, t["id"], timeout=60)
        assert done["isready"] is True and done["status"] == "Download Complete", (url, done)
        ready.append(done["id"])
    assert "/tiny.qcow2" in allowed.hits and "/tiny.qcow2" in listed.hits
    # The allowed port's neighbour and the listed address's neighbour stay out.
    before = hits(sites, "inside", "other")
    for url in ["http://127.0.0.1:{}/tiny.qcow2".format(sites["inside"].port), "{}/tiny.qcow2".format(sites["other"].base)]:
        assert refusal(user, zone_id, url) == "The URL's host is not allowed: it resolves to a loopback address"
    assert hits(sites, "inside", "other") == before
    for template_id in ready:
        user.deleteTemplate(id=template_id)
