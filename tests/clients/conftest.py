"""Real `wasmstack serve` processes for the client tests.

Each server runs the release binary on a free port with a fresh data folder, on SQLite (a file in
the data folder) or on PostgreSQL (a database created for it and dropped afterwards). Most tests
share one server per backend (`server`, session scope); tests that need a private one (restarts,
database fingerprints) use `server_factory`.

Environment:
  WASMSTACK_BIN      the server binary (default $CARGO_TARGET_DIR/release/wasmstack,
                     CARGO_TARGET_DIR defaulting to ~/.cache/wasmstack/target)
  WASMSTACK_TEST_PG  an admin URL of the PostgreSQL server for creating the test databases
                     (default postgres://wasmstack:wasmstack@127.0.0.1/postgres)
"""

import contextlib
import functools
import http.server
import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

import wire

BACKENDS = ["sqlite", "postgres"]
GUEST_DIR = Path(os.environ.get("WASMSTACK_GUEST_DIR", os.path.expanduser("~/.cache/wasmstack/guest")))
ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(12)
PG_ADMIN_URL = os.environ.get("WASMSTACK_TEST_PG", "postgres://wasmstack:wasmstack@127.0.0.1/postgres")
LISTENING = re.compile(r"wasmstack API listening on (http://\S+/client/api)")
START_TIMEOUT = 30.0


def server_binary() -> Path:
    if os.environ.get("WASMSTACK_BIN"):
        return Path(os.environ["WASMSTACK_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "wasmstack", "target")
    return Path(target) / "release" / "wasmstack"


# The KVM driver, granted the Simulator (libvirt's test driver) and a loopback TCP URI
# that nothing listens on (to test an unreachable host); qemu:///system stays ungranted.
NFS_URL = os.environ.get("WASMSTACK_NFS_URL", "nfs://127.0.0.1/export")
NFS_SMALL_URL = os.environ.get("WASMSTACK_NFS_SMALL_URL", "nfs://127.0.0.1/small")
# The test HTTP servers (file_server) listen on 127.0.0.1, which template downloads reach
# only because the operator allows it (test_url_safety checks the refusals without it).
LOOPBACK_DOWNLOADS = """
[downloads]
allowed-internal-sites = ["127.0.0.1/32"]
"""
# The storage driver may reach the test NFS exports (the small one fills up), and a
# loopback address where no NFS server runs (to test an unreachable server).
GRANTS_ONLY = """
[plugin.kvm]
libvirt = ["test:///default", "qemu+tcp://127.0.0.1:1/system"]
timeout-ms = 20000

[plugin.nfs]
images = ["{nfs}", "{small}", "nfs://127.0.0.2/export"]
timeout-ms = 20000
""".format(nfs=NFS_URL, small=NFS_SMALL_URL)
DRIVER_GRANTS = GRANTS_ONLY + LOOPBACK_DOWNLOADS


def install_drivers(data_dir: Path):
    """Puts the built drivers (KVM, NFS, VLAN, Flat) and their grants into a data folder (once)."""
    plugins = data_dir / "plugins"
    if (plugins / "kvm.wasm").exists():
        return
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release" / "kvm.wasm"
    if not wasm.is_file():
        raise RuntimeError("no KVM driver at {} (run scripts/build.sh)".format(wasm))
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wasm, plugins / "kvm.wasm")
    # NFS storage, and the network drivers serving the VLAN and Flat isolation methods
    # (physical networks take only methods a loaded driver serves).
    for name in ("nfs", "vlan", "flat"):
        other = wasm.parent / (name + ".wasm")
        if other.is_file():
            shutil.copyfile(other, plugins / (name + ".wasm"))
    (data_dir / "wasmstack.toml").write_text(DRIVER_GRANTS)


def psql(url: str, sql: str) -> str:
    """Runs one statement with psql against `url`; returns its unaligned output."""
    done = subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError("psql {!r} failed: {}".format(sql, done.stderr.strip()))
    return done.stdout.strip()


def drop_database(name: str):
    """Drops a test database; retried because a background worker may still hold it."""
    for attempt in range(20):
        try:
            psql(PG_ADMIN_URL, "DROP DATABASE IF EXISTS {} WITH (FORCE)".format(name))
            return
        except RuntimeError:
            if attempt == 19:
                raise
            time.sleep(0.5)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_LIVE = []  # every Server started in this session, for failure reports
_counter = itertools.count()


class Server:
    """One `wasmstack serve` process; can be stopped and started again on the same data."""

    def __init__(self, backend: str, root: Path):
        self.backend = backend
        self.root = root
        self.data_dir = root / "data"
        self.stdout_path = root / "stdout.log"
        self.stderr_path = root / "stderr.log"
        self.proc = None
        self.endpoint = None
        self.database_url = None
        self.pg_name = None
        if backend == "postgres":
            self.pg_name = "wasmstack_test_{}_{}".format(os.getpid(), next(_counter))
            drop_database(self.pg_name)
            psql(PG_ADMIN_URL, "CREATE DATABASE {}".format(self.pg_name))
            self.database_url = with_database(PG_ADMIN_URL, self.pg_name)
        _LIVE.append(self)

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "wasmstack.db"

    def server_id(self) -> str:
        return (self.data_dir / "server-id").read_text().strip()

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no stderr yet)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def start(self):
        binary = server_binary()
        if not binary.is_file():
            raise RuntimeError("no server binary at {} (build it, or set WASMSTACK_BIN)".format(binary))
        install_drivers(self.data_dir)
        args = [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database", self.database_url]
        env = dict(os.environ, WASMSTACK_ADMIN_PASSWORD=ADMIN_PASSWORD)
        offset = self.stdout_path.stat().st_size if self.stdout_path.exists() else 0
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(self.stdout_path, "rb") as f:
                f.seek(offset)
                m = LISTENING.search(f.read().decode(errors="replace"))
            if m:
                self.endpoint = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "wasmstack ({}) exited with {} before listening; stderr:\n{}".format(
                        self.backend, self.proc.returncode, self.stderr_tail()
                    )
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("wasmstack ({}) did not listen within {} s; stderr:\n{}".format(self.backend, START_TIMEOUT, self.stderr_tail()))
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop(signal.SIGKILL)
        if self.pg_name:
            drop_database(self.pg_name)
            self.pg_name = None
        if self in _LIVE:
            _LIVE.remove(self)

    def __repr__(self):
        return "<wasmstack {} at {}>".format(self.backend, self.endpoint)


@dataclass
class Creds:
    """API keys of one user on one server."""

    server: Server
    apikey: str
    secret: str = field(repr=False)
    userid: str
    accountid: str
    domainid: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def api(self) -> wire.Api:
        return wire.Api(self.server.endpoint, self.apikey, self.secret)


def login(endpoint: str, username: str, password: str) -> tuple:
    """A session login by form POST: (requests.Session with the cookies, loginresponse)."""
    s = requests.Session()
    r = s.post(endpoint, data={"command": "login", "username": username, "password": password, "response": "json"}, timeout=wire.TIMEOUT)
    assert r.status_code == 200, "login as {}: {} {}".format(username, r.status_code, r.text)
    return s, r.json()["loginresponse"]


def admin_credentials(server: Server) -> Creds:
    """Logs in as admin by session and registers API keys for admin with the session key."""
    s, lr = login(server.endpoint, "admin", ADMIN_PASSWORD)
    r = s.get(server.endpoint, params={"command": "registerUserKeys", "id": lr["userid"], "sessionkey": lr["sessionkey"], "response": "json"}, timeout=wire.TIMEOUT)
    assert r.status_code == 200, r.text
    keys = r.json()["registeruserkeysresponse"]["userkeys"]
    account = wire.Api(server.endpoint, keys["apikey"], keys["secretkey"])("listAccounts", name="admin")["account"][0]
    return Creds(server, keys["apikey"], keys["secretkey"], lr["userid"], account["id"], lr["domainid"])


def new_user_account(admin: Creds, prefix: str = "u", account_type: int = 0, **extra) -> Creds:
    """Creates an account (one user) as admin and registers the user's keys."""
    api = admin.api()
    name = "{}{}".format(prefix, secrets.token_hex(4))
    acct = api("createAccount", username=name, password="pw-" + name, email=name + "@example.org", firstname="F" + name, lastname="L" + name, accounttype=account_type, **extra)["account"]
    user = acct["user"][0]
    keys = api("registerUserKeys", id=user["id"])["userkeys"]
    return Creds(admin.server, keys["apikey"], keys["secretkey"], user["id"], acct["id"], acct["domainid"])


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """Starts private servers: server_factory("sqlite" | "postgres"); all closed at the end."""
    made = []

    def make(backend: str) -> Server:
        srv = Server(backend, tmp_path_factory.mktemp("wasmstack-" + backend))
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.close()


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory):
    """The shared server of one backend; tests create uniquely named objects on it."""
    srv = Server(request.param, tmp_path_factory.mktemp("wasmstack-" + request.param)).start()
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def admin(server) -> Creds:
    return admin_credentials(server)


def _servers_of(item):
    found = []
    for value in getattr(item, "funcargs", {}).values():
        for candidate in (value, getattr(value, "server", None)):
            if isinstance(candidate, Server) and candidate not in found:
                found.append(candidate)
    return found or list(_LIVE)


# The NFS export folder every test's image stores and pools live in; the run removes the
# folders it made when it ends, so repeated runs do not fill the disk.
EXPORT_ROOT = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))
_EXPORT_BEFORE: set = set()


def pytest_sessionstart(session):
    if EXPORT_ROOT.is_dir():
        _EXPORT_BEFORE.update(p.name for p in EXPORT_ROOT.iterdir())


def pytest_sessionfinish(session, exitstatus):
    if not EXPORT_ROOT.is_dir():
        return
    for p in EXPORT_ROOT.iterdir():
        if p.name not in _EXPORT_BEFORE:
            shutil.rmtree(p, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in _servers_of(item):
            report.sections.append(("wasmstack stderr ({}, {})".format(srv.backend, srv.root), srv.stderr_tail()))


@contextlib.contextmanager
def file_server(root: Path):
    """Serves a folder over HTTP on a loopback port (templates to register); yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:{}".format(httpd.server_address[1])
    finally:
        httpd.shutdown()


def guest_files(root: Path):
    """Copies the tiny guest's template (as tiny.qcow2) and ISO (tiny.iso) into `root`."""
    for src, name in ((GUEST_DIR / "template.qcow2", "tiny.qcow2"), (GUEST_DIR / "tiny.iso", "tiny.iso")):
        assert src.is_file(), "run scripts/guest-image.sh first"
        shutil.copyfile(src, root / name)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A local HTTP server with the tiny guest's template (tiny.qcow2) and ISO (tiny.iso)."""
    root = tmp_path_factory.mktemp("web")
    guest_files(root)
    with file_server(root) as url:
        yield url
