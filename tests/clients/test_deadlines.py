"""A driver call stuck on a libvirt daemon that never answers ends at the driver's deadline,
and meanwhile the API answers and other driver calls are served."""

import secrets
import socket
import threading
import time

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import Server, admin_credentials, install_drivers

TIMEOUT_MS = 2000


def silent_daemon():
    """A TCP port that accepts connections, reads what comes, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return listener, held


@pytest.fixture
def hung(tmp_path):
    listener, held = silent_daemon()
    uri = "qemu+tcp://127.0.0.1:{}/system".format(listener.getsockname()[1])
    srv = Server("sqlite", tmp_path)
    install_drivers(srv.data_dir)
    (srv.data_dir / "wasmstack.toml").write_text(
        '[plugin.kvm]\nlibvirt = ["test:///default", "{}"]\ntimeout-ms = {}\n'.format(uri, TIMEOUT_MS)
    )
    srv.start()
    yield srv, uri
    srv.close()
    listener.close()
    for conn in held:
        conn.close()


def test_a_hung_host_call_ends_at_the_deadline_while_the_api_serves(hung):
    srv, uri = hung
    creds = admin_credentials(srv)
    cs = CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", timeout=30)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="z" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    kvm = cs.addCluster(clustername="k" + tag, clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    sim = cs.addCluster(clustername="s" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]

    outcome = {}

    def add_hung_host():
        started = time.monotonic()
        try:
            cs.addHost(hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], clusterid=kvm["id"], url=uri)
            outcome["error"] = None
        except CloudStackApiException as e:
            outcome["error"] = e.error
        outcome["took"] = time.monotonic() - started

    stuck = threading.Thread(target=add_hung_host)
    stuck.start()
    time.sleep(0.3)
    # While the probe waits on the silent daemon: the API answers, and the same driver
    # probes a host on libvirt's test driver.
    served = 0
    while stuck.is_alive() and served < 3:
        started = time.monotonic()
        assert any(z["id"] == zone["id"] for z in cs.listZones(id=zone["id"])["zone"])
        host = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=sim["id"], url="http://sim/c{}/h{}".format(tag, served), username="root", password="password")
        assert host["host"][0]["state"] == "Up", host
        assert time.monotonic() - started < 1.5, "the API was slow while a driver call hung"
        served += 1
    assert stuck.is_alive(), "the hung call ended before the others were tried"
    assert served == 3
    stuck.join(30)
    assert not stuck.is_alive()
    err = outcome["error"]
    assert err is not None and err["errorcode"] == 534, err
    assert "timed out" in err["errortext"] and "after {} ms".format(TIMEOUT_MS) in err["errortext"], err
    assert TIMEOUT_MS / 1000 <= outcome["took"] < TIMEOUT_MS / 1000 + 1.5, outcome
