"""The console proxy with a real guest under QEMU: createConsoleEndpoint hands out a
ticket, the proxy's WebSocket relays RFB to the guest's VNC display (handshake, a
framebuffer update, keystrokes that the tiny guest echoes on its serial console), and
every way of getting it wrong is refused before anything reaches the display."""

import base64
import json
import os
import secrets
import shutil
import struct
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests
import websocket
from cs import CloudStackApiException

from conftest import ADMIN_PASSWORD, Server, admin_credentials, install_drivers, login, new_user_account, server_binary
from test_instance_guest import GRANTS, client, serial_log, virsh, wait_for, zone_with

TICKET_SECS = "8"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    """A server that may drive the local libvirtd, with console tickets that last 8 s."""
    srv = Server("sqlite", tmp_path_factory.mktemp("wasmstack-console"))
    install_drivers(srv.data_dir)
    wasm_dir = server_binary().parent.parent / "wasm32-wasip2" / "release"
    shutil.copyfile(wasm_dir / "vlan.wasm", srv.data_dir / "plugins" / "vlan.wasm")
    (srv.data_dir / "wasmstack.toml").write_text(GRANTS)
    os.environ["WASMSTACK_CONSOLE_TICKET_SECS"] = TICKET_SECS
    try:
        srv.start()
    finally:
        del os.environ["WASMSTACK_CONSOLE_TICKET_SECS"]
    yield srv
    srv.close()


def socket_url(endpoint, ep):
    u = urlsplit(endpoint)
    return "ws://{}{}?{}".format(u.netloc, ep["websocket"]["path"], ep["websocket"]["extra"])


def upgrade_status(url, cookie=None):
    """Tries the WebSocket upgrade with plain HTTP: (status, body)."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    if cookie:
        headers["Cookie"] = cookie
    r = requests.get(url.replace("ws://", "http://"), headers=headers, timeout=10, stream=True)
    status, body = r.status_code, "" if r.status_code == 101 else r.text
    r.close()
    return status, body


class Rfb:
    """Just enough of an RFB 3.8 client over the proxy's WebSocket."""

    def __init__(self, url, cookie=None):
        self.ws = websocket.create_connection(url, timeout=20, subprotocols=["binary"], cookie=cookie)
        self.buf = b""

    def read(self, n):
        while len(self.buf) < n:
            frame = self.ws.recv()
            self.buf += frame if isinstance(frame, bytes) else frame.encode()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.ws.send_binary(data)

    def handshake(self):
        version = self.read(12)
        assert version.startswith(b"RFB 003."), version
        self.send(b"RFB 003.008\n")
        count = self.read(1)[0]
        types = self.read(count)
        assert 1 in types, "the display offers no 'None' security: {}".format(list(types))
        self.send(bytes([1]))
        assert struct.unpack(">I", self.read(4))[0] == 0, "security handshake failed"
        self.send(bytes([1]))  # ClientInit: shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)  # pixel format
        name = self.read(struct.unpack(">I", self.read(4))[0])
        return width, height, name

    def framebuffer_update(self, width, height):
        self.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        kind = self.read(1)[0]
        assert kind == 0, "expected a FramebufferUpdate, got message type {}".format(kind)
        self.read(1)
        return struct.unpack(">H", self.read(2))[0]

    def type_line(self, text):
        for ch in text:
            self.key(ord(ch))
        self.key(0xFF0D)  # Return

    def key(self, keysym):
        for down in (1, 0):
            self.send(struct.pack(">BBHI", 4, down, 0, keysym))

    def close(self):
        self.ws.close()


NODE_MODULES = os.path.join(os.environ.get("WASMSTACK_NODE_DIR", os.path.expanduser("~/.cache/wasmstack/node")), "node_modules")


def console_page(endpoint, page_url, shot):
    """Opens the console page in headless Chromium; returns what vnc_screenshot.cjs saw."""
    u = urlsplit(endpoint)
    script = os.path.join(os.path.dirname(__file__), "vnc_screenshot.cjs")
    done = subprocess.run(
        ["node", script, "{}://{}{}".format(u.scheme, u.netloc, page_url), str(shot)],
        capture_output=True,
        text=True,
        timeout=90,
        env=dict(os.environ, NODE_PATH=NODE_MODULES),
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    seen["log"] = done.stderr
    return seen


def vnc_clients(uuid):
    """How many viewers QEMU has on the domain's VNC display now."""
    done = virsh("qemu-monitor-command", uuid, "--hmp", "info vnc")
    assert done.returncode == 0, done.stderr
    return done.stdout.count("Client:")


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def test_console_of_a_real_guest_through_the_proxy(console_server, web):
    admin = admin_credentials(console_server)
    cs = client(admin)
    tag = secrets.token_hex(3)
    bridge = "ws-c" + tag
    uuid = None
    try:
        z = zone_with(cs, web, tag, "KVM", "qemu:///system", bridge, "10.93.0.0/24", "3530-3539", 256)
        vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], name="c-" + tag)["virtualmachine"]
        uuid = vm["id"]
        log = serial_log(uuid)
        wait_for("the guest's shell", lambda: log.is_file() and "WASMSTACK-GUEST-IP" in log.read_text(errors="replace"), 180)
        # The display listens on the host's management address only, never on all of them.
        xml = virsh("dumpxml", uuid).stdout
        assert "<graphics type='vnc'" in xml and "listen='0.0.0.0'" not in xml, xml

        ep = cs.createConsoleEndpoint(virtualmachineid=uuid)["consoleendpoint"]
        assert ep["success"] is True and ep["websocket"]["token"] in ep["url"]
        url = socket_url(console_server.endpoint, ep)
        started = time.monotonic()
        rfb = Rfb(url)
        width, height, name = rfb.handshake()
        assert width > 0 and height > 0, (width, height)
        assert rfb.framebuffer_update(width, height) >= 1
        word = "hello" + tag
        rfb.type_line(word)
        wait_for("the keystrokes on the serial console", lambda: "WASMSTACK-GUEST-KEYS " + word in log.read_text(errors="replace"), 30)
        print("console: handshake, a framebuffer update and a typed line in {:.1f} s".format(time.monotonic() - started))
        # QEMU lists the viewers connected to its display: the proxy's one while it is open.
        assert vnc_clients(uuid) == 1
        rfb.close()
        wait_for("the viewer to leave the display", lambda: vnc_clients(uuid) == 0, 10)

        # The console page in a browser shows the guest's screen.
        ep = cs.createConsoleEndpoint(virtualmachineid=uuid)["consoleendpoint"]
        shot = console_server.root / "console-page.png"
        page = console_page(console_server.endpoint, ep["url"], shot)
        assert page["status"] == "Connected" and page["lit"] > 100 and page["shown"] > 300, page
        assert shot.stat().st_size > 1000
        print("console page screenshot: {}".format(shot))

        # Used once: the same ticket again is refused, and says why.
        status, body = upgrade_status(url)
        assert (status, body) == (403, "this console token was already used; open the console again")
        # No ticket, or a made-up one.
        status, body = upgrade_status(url.split("?")[0])
        assert (status, body) == (401, "no console token given")
        status, body = upgrade_status(url.split("?")[0] + "?token=made-up")
        assert (status, body) == (403, "unknown console token")
        # Unused past its lifetime.
        ep = cs.createConsoleEndpoint(virtualmachineid=uuid)["consoleendpoint"]
        time.sleep(int(TICKET_SECS) + 1)
        status, body = upgrade_status(socket_url(console_server.endpoint, ep))
        assert (status, body) == (403, "this console token expired; open the console again")
        # None of the refused attempts reached the display.
        assert vnc_clients(uuid) == 0

        # A ticket asked for in a login session works only with that session's cookie.
        session, lr = login(console_server.endpoint, "admin", ADMIN_PASSWORD)
        r = session.get(console_server.endpoint, params={"command": "createConsoleEndpoint", "virtualmachineid": uuid, "sessionkey": lr["sessionkey"], "response": "json"})
        ep = r.json()["createconsoleendpointresponse"]["consoleendpoint"]
        status, body = upgrade_status(socket_url(console_server.endpoint, ep), cookie="JSESSIONID=someone-else")
        assert (status, body) == (403, "this console token belongs to another login session")
        r = session.get(console_server.endpoint, params={"command": "createConsoleEndpoint", "virtualmachineid": uuid, "sessionkey": lr["sessionkey"], "response": "json"})
        ep = r.json()["createconsoleendpointresponse"]["consoleendpoint"]
        jsession = session.cookies.get("JSESSIONID")
        rfb = Rfb(socket_url(console_server.endpoint, ep), cookie="JSESSIONID=" + jsession)
        assert rfb.handshake()[0] == width
        rfb.close()

        # Another user may not open it.
        user = client(new_user_account(admin))
        err = error_of(lambda: user.createConsoleEndpoint(virtualmachineid=uuid))
        assert err["errorcode"] in (431, 531) and uuid in err["errortext"], err

        # A ticket taken while it ran is refused once the VM has stopped, and the page says
        # so; a stopped VM gets no ticket at all.
        ep = cs.createConsoleEndpoint(virtualmachineid=uuid)["consoleendpoint"]
        assert cs.stopVirtualMachine(id=uuid, forced=True)["virtualmachine"]["state"] == "Stopped"
        stopped = "VM c-{} is Stopped; start it to see its console".format(tag)
        page = console_page(console_server.endpoint, ep["url"], console_server.root / "console-stopped.png")
        assert page["status"] == stopped, page
        status, body = upgrade_status(socket_url(console_server.endpoint, ep))
        assert (status, body) == (409, stopped)
        err = error_of(lambda: cs.createConsoleEndpoint(virtualmachineid=uuid))
        assert err["errorcode"] == 431 and "is Stopped" in err["errortext"], err
    finally:
        if uuid:
            virsh("destroy", uuid)
            virsh("undefine", uuid)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
