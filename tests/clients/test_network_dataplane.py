"""From the API down to the host: restartNetwork builds an Isolated network on the zone's
real KVM host through the `vlan` driver (an Open vSwitch bridge named by the Guest traffic
label, a DHCP service on the network's VLAN holding the gateway address), and
deleteNetwork takes the DHCP service away again. Read back with ovs-vsctl and ip."""

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from cs import CloudStack

from conftest import Server, admin_credentials, install_drivers, server_binary

GRANTS = """
[plugin.kvm]
libvirt = ["qemu:///system"]
timeout-ms = 20000

[plugin.vlan]
netdev = ["ws-"]
timeout-ms = 30000
"""


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    """A server allowed to drive this machine: qemu:///system and ws-* network devices."""
    srv = Server("sqlite", tmp_path_factory.mktemp("wasmstack-dataplane"))
    install_drivers(srv.data_dir)
    wasm_dir = server_binary().parent.parent / "wasm32-wasip2" / "release"
    shutil.copyfile(wasm_dir / "vlan.wasm", srv.data_dir / "plugins" / "vlan.wasm")
    (srv.data_dir / "wasmstack.toml").write_text(GRANTS)
    srv.start()
    yield srv
    srv.close()


def dhcp_pid(name):
    pid_file = Path("/run/wasmstack/dhcp") / name / "udhcpd.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path("/proc/{}".format(pid)).exists() else None


def test_restart_builds_the_network_and_delete_tears_it_down(host_server):
    admin = admin_credentials(host_server)
    cs = CloudStack(endpoint=admin.endpoint, key=admin.apikey, secret=admin.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=120)
    tag = secrets.token_hex(3)
    bridge = "ws-b" + tag
    try:
        zone = cs.createZone(name="zd" + tag, networktype="Advanced", dns1="10.0.0.53", internaldns1="10.0.0.53", guestcidraddress="10.93.0.0/24")["zone"]
        pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
        cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
        cs.addHost(hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="qemu:///system")
        phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan="3500-3509", isolationmethods="VLAN")["physicalnetwork"]
        cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel=bridge)
        iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
        net = cs.createNetwork(name="dp" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
        assert net["state"] == "Allocated" and net["vlan"] == "3500"

        cs.restartNetwork(id=net["id"])
        net = cs.listNetworks(id=net["id"])["network"][0]
        assert net["state"] == "Implemented" and net["dhcpserver"] == "10.93.0.1", net
        assert run("ovs-vsctl", "--timeout=5", "br-exists", bridge).returncode == 0
        service = "ws-d" + "".join(c for c in net["id"] if c in "0123456789abcdef")[:11]
        assert dhcp_pid(service), "no DHCP service {} after restartNetwork".format(service)
        # It runs in a namespace whose link to the VLAN is an OVS port, both named after the network.
        port = "ws-n" + "".join(c for c in net["id"] if c in "0123456789abcdef")[:11]
        assert run("ovs-vsctl", "--timeout=5", "get", "port", port, "tag").stdout.strip() == "3500"
        assert "10.93.0.1/24" in run("ip", "-n", port, "-o", "addr", "show", "dev", port).stdout
        # Restarting again is harmless: the drivers are idempotent.
        cs.restartNetwork(id=net["id"])
        assert dhcp_pid(service)

        cs.deleteNetwork(id=net["id"])
        assert dhcp_pid(service) is None
        assert run("ovs-vsctl", "--timeout=5", "get", "port", port, "tag").returncode != 0, "the DHCP port outlived its network"
        # The VLAN is free again.
        again = cs.createNetwork(name="dq" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
        assert again["vlan"] == "3500"
        cs.deleteNetwork(id=again["id"])
    finally:
        run("ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge)
