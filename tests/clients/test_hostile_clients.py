"""The server stays up for everyone else while some clients misbehave: connections that never
finish a request are closed (and cannot crowd others out), a flood of wrong-password logins
does not stall other requests, and repeated wrong passwords lock a user for a while, the
built-in admin included but never for good.

The servers here run with short limits from `[http]` and `[login]` in wasmstack.toml."""

import os
import secrets
import socket
import threading
import time

import pytest
import requests

import wire
from conftest import ADMIN_PASSWORD, BACKENDS, Server, admin_credentials, install_drivers

MAX_CONNECTIONS = 64
HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 4.0
LOCK_S = 1.5
LIMITS = """
[http]
max-connections = {cap}
header-timeout-ms = {header}
idle-timeout-ms = {idle}

[login]
attempts-allowed = 5
lock-ms = {lock}
lock-max-ms = 60000
""".format(cap=MAX_CONNECTIONS, header=int(HEADER_TIMEOUT_S * 1000), idle=int(IDLE_TIMEOUT_S * 1000), lock=int(LOCK_S * 1000))

# How long past a timeout the server may take to act on it (a loaded CI machine).
SLACK_S = 8.0
LOGIN_FAILED = "Failed to authenticate user; please provide valid credentials"


def start_limited(backend, tmp_path_factory) -> Server:
    srv = Server(backend, tmp_path_factory.mktemp("wasmstack-limited-" + backend))
    install_drivers(srv.data_dir)
    config = srv.data_dir / "wasmstack.toml"
    config.write_text(config.read_text() + LIMITS)
    return srv.start()


@pytest.fixture(scope="module", params=BACKENDS)
def limited(request, tmp_path_factory):
    srv = start_limited(request.param, tmp_path_factory)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def limited_sqlite(tmp_path_factory):
    srv = start_limited("sqlite", tmp_path_factory)
    yield srv
    srv.close()


def open_fds(srv: Server) -> int:
    return len(os.listdir("/proc/{}/fd".format(srv.proc.pid)))


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (reads nothing else)."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Slowloris(threading.Thread):
    """Sends a request header one line at a time and never ends it."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.stop = threading.Event()

    def run(self):
        try:
            self.sock.sendall(b"GET /client/api?command=listCapabilities HTTP/1.1\r\nHost: x\r\n")
            while not self.stop.wait(0.2):
                self.sock.sendall(b"X-Padding: " + secrets.token_hex(4).encode() + b"\r\n")
        except OSError:
            pass


def test_idle_and_slow_connections_cannot_crowd_out_requests(limited_sqlite):
    """More silent and half-sent connections than the cap are held open, and meanwhile other
    clients' requests are answered, new connections each; the server's descriptors stay
    within the cap; and every held connection is closed by the server."""
    srv = limited_sqlite
    api = admin_credentials(srv).api()
    fds_before = open_fds(srv)
    silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2 * MAX_CONNECTIONS)]
    slow = [Slowloris(socket.create_connection(("127.0.0.1", srv.port))) for _ in range(MAX_CONNECTIONS // 2)]
    for s in slow:
        s.start()
    try:
        for _ in range(20):
            assert api("listCapabilities")["capability"]["cloudstackversion"]
        fds_held = open_fds(srv)
        assert fds_held <= fds_before + MAX_CONNECTIONS + 8, "{} descriptors open, {} before".format(fds_held, fds_before)
        for s in silent:
            assert closed_by_server(s, HEADER_TIMEOUT_S + SLACK_S), "a silent connection stayed open"
        for s in slow:
            assert closed_by_server(s.sock, HEADER_TIMEOUT_S + SLACK_S), "a half-sent header stayed open"
        assert api("listCapabilities")["capability"]["cloudstackversion"]
    finally:
        for s in slow:
            s.stop.set()
        for s in silent + [s.sock for s in slow]:
            s.close()


def test_header_timeout_closes_a_silent_connection_and_not_before(limited_sqlite):
    """Under the cap nothing is pushed out: a silent connection lasts its header timeout."""
    srv = limited_sqlite
    started = time.monotonic()
    held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(MAX_CONNECTIONS // 4)]
    try:
        for s in held:
            assert closed_by_server(s, HEADER_TIMEOUT_S + SLACK_S), "a silent connection stayed open"
        assert time.monotonic() - started >= HEADER_TIMEOUT_S * 0.9, "closed before the header timeout"
    finally:
        for s in held:
            s.close()


def http_get(sock: socket.socket, path: str) -> int:
    """Sends a GET on a kept-alive connection and reads the whole reply; returns the status."""
    sock.sendall("GET {} HTTP/1.1\r\nHost: x\r\n\r\n".format(path).encode())
    sock.settimeout(wire.TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection instead of answering"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head[9:12])


def test_kept_alive_connections_last_the_idle_timeout(limited_sqlite):
    """Between requests a connection waits up to the idle timeout (longer than the header
    timeout); past it, the server closes it."""
    sock = socket.create_connection(("127.0.0.1", limited_sqlite.port))
    try:
        path = "/client/api?command=listCapabilities&response=json"
        assert http_get(sock, path) == 401
        time.sleep(HEADER_TIMEOUT_S * 2)
        assert http_get(sock, path) == 401
        answered = time.monotonic()
        assert closed_by_server(sock, IDLE_TIMEOUT_S + SLACK_S), "an idle kept-alive connection stayed open"
        assert time.monotonic() - answered >= IDLE_TIMEOUT_S * 0.9, "closed before the idle timeout"
    finally:
        sock.close()


def login_form(username: str, password: str) -> dict:
    return {"command": "login", "username": username, "password": password, "response": "json"}


def post_login(srv: Server, username: str, password: str) -> requests.Response:
    return requests.post(srv.endpoint, data=login_form(username, password), timeout=wire.TIMEOUT)


def test_a_login_flood_leaves_other_requests_served(limited_sqlite):
    """32 clients send wrong passwords back to back; another client's calls, each made while
    flood logins are in flight, are all answered."""
    srv = limited_sqlite
    admin = admin_credentials(srv)
    api = admin.api()
    name = "flood" + secrets.token_hex(3)
    api("createAccount", username=name, password="pw-" + name, email=name + "@example.org", firstname="F", lastname="L", accounttype=0)
    stop = threading.Event()
    answered = []
    refused = []
    in_flight = [0]
    lock = threading.Lock()

    def flood():
        with requests.Session() as s:
            while not stop.is_set():
                with lock:
                    in_flight[0] += 1
                r = s.post(srv.endpoint, data=login_form(name, "wrong"), timeout=60)
                with lock:
                    in_flight[0] -= 1
                (refused if r.status_code == 531 else answered).append(r.status_code)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(32)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(refused) < 32 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refused, "the flood never got an answer"
        for _ in range(30):
            assert in_flight[0] > 0, "no flood login in flight"
            assert api("listCapabilities")["capability"]["cloudstackversion"]
            assert api("listUsers", username=name)["count"] == 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not answered, "wrong passwords answered {}".format(sorted(set(answered)))


def failed_exactly_as_a_wrong_password(r: requests.Response):
    assert r.status_code == 531, r.text
    key, body = wire.unwrap(r)
    assert key == "loginresponse" and body["errorcode"] == 531 and body["errortext"] == LOGIN_FAILED, body
    assert "sessionkey" not in body and "Set-Cookie" not in r.headers


def lock_events(api, user_id: str, kind: str = "USER.LOCK") -> list:
    events = api("listEvents", type=kind, listall="true").get("event", [])
    return [e for e in events if e.get("resourceid") == user_id]


def test_five_wrong_passwords_lock_a_user_until_enable_user(limited):
    srv = limited
    api = admin_credentials(srv).api()
    name = "lock" + secrets.token_hex(3)
    password = "pw-" + name
    user = api("createAccount", username=name, password=password, email=name + "@example.org", firstname="F", lastname="L", accounttype=0)["account"]["user"][0]
    keys = api("registerUserKeys", id=user["id"])["userkeys"]
    wrong = post_login(srv, name, "wrong")
    failed_exactly_as_a_wrong_password(wrong)
    for _ in range(3):
        failed_exactly_as_a_wrong_password(post_login(srv, name, "wrong"))
    assert lock_events(api, user["id"]) == [], "locked after four wrong passwords"
    failed_exactly_as_a_wrong_password(post_login(srv, name, "wrong"))
    locked = post_login(srv, name, password)
    failed_exactly_as_a_wrong_password(locked)
    assert locked.json() == wrong.json(), "a locked user's login must answer as a wrong password does"
    [event] = lock_events(api, user["id"])
    assert event["level"] == "WARN" and name in event["description"] and "5 wrong passwords" in event["description"], event
    refused = lock_events(api, user["id"], "USER.LOGIN")
    assert any("Login refused" in e["description"] for e in refused), refused
    assert api("listUsers", id=user["id"])["user"][0]["state"] == "locked"
    # Only password logins are locked: the user's keys still work.
    mine = wire.Api(srv.endpoint, keys["apikey"], keys["secretkey"])
    assert mine("listCapabilities")["capability"]["cloudstackversion"]

    assert api("enableUser", id=user["id"])["user"]["state"] == "enabled"
    r = post_login(srv, name, password)
    assert r.status_code == 200, r.text
    # A good login starts the count again: four wrong ones do not lock.
    for _ in range(4):
        failed_exactly_as_a_wrong_password(post_login(srv, name, "wrong"))
    assert post_login(srv, name, password).status_code == 200
    assert len(lock_events(api, user["id"])) == 1


def test_the_admin_lock_runs_out_and_doubles(limited):
    """The built-in admin is locked like anyone else, but every lock runs out by itself; one
    following another without a good login in between lasts twice as long."""
    srv = limited
    admin = admin_credentials(srv)
    api = admin.api()
    seen = len(lock_events(api, admin.userid))
    for _ in range(5):
        failed_exactly_as_a_wrong_password(post_login(srv, "admin", "wrong"))
    failed_exactly_as_a_wrong_password(post_login(srv, "admin", ADMIN_PASSWORD))
    events = lock_events(api, admin.userid)
    assert len(events) == seen + 1 and "locked for {:g} s".format(LOCK_S) in events[0]["description"], events
    time.sleep(LOCK_S + 0.5)
    for _ in range(5):
        failed_exactly_as_a_wrong_password(post_login(srv, "admin", "wrong"))
    events = lock_events(api, admin.userid)
    assert len(events) == seen + 2 and "locked for {:g} s".format(2 * LOCK_S) in events[0]["description"], events
    failed_exactly_as_a_wrong_password(post_login(srv, "admin", ADMIN_PASSWORD))
    # The lock runs out: the right password works again, with no one's help.
    deadline = time.monotonic() + 2 * LOCK_S + SLACK_S
    while True:
        r = post_login(srv, "admin", ADMIN_PASSWORD)
        if r.status_code == 200:
            break
        failed_exactly_as_a_wrong_password(r)
        assert time.monotonic() < deadline, "the admin is still locked"
        time.sleep(0.25)
    # That good login ends the doubling; and enableUser lifts a lock at once.
    for _ in range(5):
        failed_exactly_as_a_wrong_password(post_login(srv, "admin", "wrong"))
    events = lock_events(api, admin.userid)
    assert len(events) == seen + 3 and "locked for {:g} s".format(LOCK_S) in events[0]["description"], events
    assert api("enableUser", id=admin.userid)["user"]["state"] == "enabled"
    assert post_login(srv, "admin", ADMIN_PASSWORD).status_code == 200
