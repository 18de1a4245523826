"""Virtual machines on real parts, and the reconciler that keeps their recorded state in step
with the hosts.

On the local libvirtd (QEMU under TCG), an NFS image store and pool and a VLAN network
on Open vSwitch: the tiny guest's template boots, gets its NIC's address from the network's
DHCP service and prints it on its serial console; stop, start and reboot show in virsh; a
domain powered off behind the server's back is found Stopped; expunging leaves neither a
domain nor a root disk. On the Simulator: a VM a crash left Starting is settled when the
server starts again, with an event."""

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cs import CloudStack

from conftest import LOOPBACK_DOWNLOADS, NFS_URL, Server, admin_credentials, install_drivers, server_binary

EXPORT_DIR = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))
QEMU = "qemu:///system"
# Short, so that the tests see a pass soon after a change.
RECONCILE_SECS = "1"

GRANTS = """
[plugin.kvm]
libvirt = ["test:///default", "qemu:///system"]
timeout-ms = 60000

[plugin.nfs]
images = ["{nfs}"]
timeout-ms = 60000

[plugin.vlan]
netdev = ["ws-"]
timeout-ms = 30000
""".format(nfs=NFS_URL) + LOOPBACK_DOWNLOADS


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=300)


def virsh(*args):
    return subprocess.run(["virsh", "-c", QEMU, *args], capture_output=True, text=True, timeout=60)


def domstate(uuid):
    done = virsh("domstate", uuid)
    return done.stdout.strip() if done.returncode == 0 else None


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.2)


def start_server(root):
    """A server with a 1 s reconcile interval; the variable only reaches the child."""
    old = os.environ.get("WASMSTACK_RECONCILE_SECS")
    os.environ["WASMSTACK_RECONCILE_SECS"] = RECONCILE_SECS
    try:
        return root.start()
    finally:
        if old is None:
            del os.environ["WASMSTACK_RECONCILE_SECS"]
        else:
            os.environ["WASMSTACK_RECONCILE_SECS"] = old


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    """A server allowed to drive this machine: qemu:///system, the NFS export, ws-* devices."""
    srv = Server("sqlite", tmp_path_factory.mktemp("wasmstack-guest"))
    install_drivers(srv.data_dir)
    wasm_dir = server_binary().parent.parent / "wasm32-wasip2" / "release"
    shutil.copyfile(wasm_dir / "vlan.wasm", srv.data_dir / "plugins" / "vlan.wasm")
    (srv.data_dir / "wasmstack.toml").write_text(GRANTS)
    start_server(srv)
    yield srv
    srv.close()


def zone_with(cs, web, tag, hypervisor, url, bridge, cidr, vlans, memory, dns="10.0.0.53", public=None):
    """An enabled Advanced zone: one host, an NFS store and pool, a ready template, a VLAN
    physical network carrying Guest traffic on `bridge` (and Public traffic on `public`,
    a bridge label, when given), an Isolated network, an offering."""
    zone = cs.createZone(name="zg" + tag, networktype="Advanced", dns1=dns, internaldns1=dns, guestcidraddress=cidr)["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    extra = {"accel": "tcg"} if hypervisor == "KVM" else {}
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor=hypervisor, podid=pod["id"], zoneid=zone["id"], **extra)["cluster"][0]
    host = cs.addHost(hypervisor=hypervisor, podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url=url, username="root", password="password")["host"][0]
    pool = cs.createStoragePool(name="gp" + tag, url="{}/gpool-{}".format(NFS_URL, tag), zoneid=zone["id"], clusterid=cluster["id"], scope="cluster")["storagepool"]
    cs.addImageStore(provider="NFS", name="gs" + tag, url="{}/gtpl-{}".format(NFS_URL, tag), zoneid=zone["id"])
    t = cs.registerTemplate(name="tiny" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor=hypervisor, zoneid=zone["id"], ispublic=True)["template"][0]
    wait_for("the template download", lambda: cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"], 120)
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan=vlans, isolationmethods="VLAN")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel=bridge)
    if public:
        cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Public", kvmnetworklabel=public)
    cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
    iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
    net = cs.createNetwork(name="gn" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
    offering = cs.createServiceOffering(name="gso" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=memory)["serviceoffering"]
    cs.updateZone(id=zone["id"], allocationstate="Enabled")
    return {"zone": zone, "host": host, "pool": pool, "template": t, "network": net, "offering": offering, "iso": iso}


def serial_log(uuid):
    """The file the domain's first serial port writes to, from its definition."""
    xml = virsh("dumpxml", uuid).stdout
    m = re.search(r"<serial type='file'>\s*<source path='([^']+)'", xml)
    assert m, "the domain has no serial log file:\n" + xml
    return Path(m.group(1))


def ovs_port_tag(port):
    """The VLAN tag of an OVS port, None when there is no such port."""
    got = subprocess.run(["ovs-vsctl", "--timeout=5", "get", "port", port, "tag"], capture_output=True, text=True, timeout=30)
    return got.stdout.strip() if got.returncode == 0 else None


def sync_events(cs, vm):
    return [e for e in cs.listEvents(type="VM.SYNC", listall=True).get("event", []) if e.get("resourceid") == vm["id"]]


def test_a_real_guest_boots_gets_its_address_and_goes_away(host_server, web):
    cs = client(admin_credentials(host_server))
    tag = secrets.token_hex(3)
    bridge = "ws-g" + tag
    uuid = None
    log = None
    try:
        z = zone_with(cs, web, tag, "KVM", QEMU, bridge, "10.94.0.0/24", "3520-3529", 256)
        started = time.monotonic()
        vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], name="g-" + tag)["virtualmachine"]
        uuid = vm["id"]
        assert vm["state"] == "Running" and vm["hypervisor"] == "KVM", vm
        ip = cs.listVirtualMachines(id=uuid)["virtualmachine"][0]["nic"][0]["ipaddress"]
        assert domstate(uuid) == "running"
        net = cs.listNetworks(id=z["network"]["id"])["network"][0]
        assert net["state"] == "Implemented", net
        # The network's DHCP service lives in a namespace whose link to the VLAN is an OVS
        # port, both named after the network.
        service = "ws-n" + "".join(c for c in net["id"] if c in "0123456789abcdef")[:11]
        assert ovs_port_tag(service) == "3520"
        log = serial_log(uuid)
        line = "WASMSTACK-GUEST-IP {}/24".format(ip)
        wait_for(line, lambda: log.is_file() and line in log.read_text(errors="replace"), 180)
        print("deploy API call to the guest's address line: {:.1f} s".format(time.monotonic() - started))

        assert cs.stopVirtualMachine(id=uuid)["virtualmachine"]["state"] == "Stopped"
        assert domstate(uuid) == "shut off"
        assert cs.startVirtualMachine(id=uuid)["virtualmachine"]["state"] == "Running"
        assert domstate(uuid) == "running"
        wait_for("the guest's marker after the start", lambda: "WASMSTACK-GUEST-UP" in log.read_text(errors="replace"), 180)
        ups = log.read_text(errors="replace").count("WASMSTACK-GUEST-UP")
        # The tiny guest ignores ACPI, so only a forced reboot (a reset) restarts it: a
        # second boot on the console.
        assert cs.rebootVirtualMachine(id=uuid, forced=True)["virtualmachine"]["state"] == "Running"
        wait_for("a second boot after the reboot", lambda: log.read_text(errors="replace").count("WASMSTACK-GUEST-UP") > ups, 180)
        assert domstate(uuid) == "running"

        # Powered off behind the server's back: the reconciler records what the host says.
        assert virsh("destroy", uuid).returncode == 0
        wait_for("the VM to be found Stopped", lambda: cs.listVirtualMachines(id=uuid)["virtualmachine"][0]["state"] == "Stopped", 30)
        [ev] = sync_events(cs, vm)
        assert ev["level"] == "WARN" and "reports it stopped" in ev["description"], ev

        [root] = cs.listVolumes(virtualmachineid=uuid, type="ROOT", listall=True)["volume"]
        # The pool keeps its template copy in templates/ and volumes in volumes/.
        volumes = EXPORT_DIR / ("gpool-" + tag) / "volumes"
        assert [p for p in volumes.iterdir() if p.is_file()], "no root disk in the pool's folder"
        cs.destroyVirtualMachine(id=uuid, expunge=True)
        wait_for("the VM to go", lambda: not cs.listVirtualMachines(id=uuid, listall=True).get("virtualmachine"), 60)
        assert domstate(uuid) is None and virsh("dominfo", uuid).returncode != 0, "libvirt still knows the domain"
        left = [p.name for p in volumes.iterdir()]
        assert not left, "the root disk outlived its VM: {}".format(left)
        assert not cs.listVolumes(id=root["id"], listall=True).get("volume")
        # Deleting the network tears down what the deploy built on the host.
        cs.deleteNetwork(id=net["id"])
        assert ovs_port_tag(service) is None, "the DHCP port outlived its network"
    finally:
        if uuid:
            virsh("destroy", uuid)
            virsh("undefine", uuid)
        if log:
            log.unlink(missing_ok=True)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)


def test_a_vm_a_crash_left_starting_is_settled_at_start(server_factory, web):
    srv = server_factory("sqlite")
    cs = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    z = zone_with(cs, web, tag, "Simulator", "test:///default", "ws-s" + tag, "10.95.0.0/24", "120-129", 64)
    deploy = dict(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"])
    vm = cs.deployVirtualMachine(**deploy)["virtualmachine"]
    assert vm["state"] == "Running"

    # A crash during a start leaves the VM Starting; the Simulator keeps domains only as
    # long as the server process, so after the restart its host does not know the VM.
    srv.stop()
    with sqlite3.connect(srv.sqlite_path) as db:
        db.execute("UPDATE instances SET state = 'Starting' WHERE uuid = ?", (vm["id"],))
    start_server(srv)
    cs = client(admin_credentials(srv))
    wait_for("the VM to be settled", lambda: cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["state"] == "Stopped", 30)
    [ev] = sync_events(cs, vm)
    assert ev["level"] == "INFO" and "left Starting" in ev["description"] and "does not know it" in ev["description"], ev
