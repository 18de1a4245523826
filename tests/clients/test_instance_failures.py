"""Deploys that fail, and what they leave: nothing.

A KVM host reached over qemu+tcp://127.0.0.1:1/system (granted to the KVM driver for this) is
a small TCP relay in this file in front of the local libvirtd, so a test can make the host
unreachable, or hold a libvirt call in flight, for real. With the host gone, a deploy fails
naming the host and leaves no VM, NIC, address, volume or domain. On a Simulator zone whose
primary pool is on the small NFS export, filled up, the root disk cannot be made after the
NIC and address were taken: the job fails with the storage's message and gives them back.
A server killed (SIGKILL) while its deploy waits on libvirt, or while its root disk is made,
fails that job when it starts again, and the reconciler undoes the half-made VM. A libvirtd
that cut every connection (a restart) costs no failed call."""

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cs import CloudStack

from conftest import BACKENDS, LOOPBACK_DOWNLOADS, NFS_SMALL_URL, NFS_URL, Server, admin_credentials, install_drivers, psql, server_binary

EXPORT_DIR = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))
SMALL_DIR = Path(os.environ.get("WASMSTACK_NFS_SMALL_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/small")))
LIBVIRT_SOCK = "/var/run/libvirt/libvirt-sock"
QEMU = "qemu:///system"
DOOR = ("127.0.0.1", 1)
DOOR_URI = "qemu+tcp://127.0.0.1:1/system"
# libvirt's remote protocol: its program number, and the procedures that start a domain
# (REMOTE_PROC_DOMAIN_CREATE, REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS).
REMOTE_PROGRAM = 0x20008086
DOMAIN_START = (9, 196)
MIB = 1 << 20
FILLER = ".filler-failures"
FULL_WORDS = ("no space", "nospc", "disk full", "storage full", "not enough space", "out of space", "quota")

GRANTS = """
[plugin.kvm]
libvirt = ["test:///default", "{door}"]
timeout-ms = 60000

[plugin.nfs]
images = ["{nfs}", "{small}"]
timeout-ms = 60000

[plugin.vlan]
netdev = ["ws-"]
timeout-ms = 30000
""".format(door=DOOR_URI, nfs=NFS_URL, small=NFS_SMALL_URL) + LOOPBACK_DOWNLOADS


class LibvirtDoor:
    """A TCP relay on 127.0.0.1:1 to libvirtd's socket: open, closed (nothing listens, every
    relayed connection cut), holding requests (read but not passed on), or holding the
    replies from the first domain start on (the domain starts; its caller never hears)."""

    def __init__(self):
        self.listener = None
        self.conns = []
        self.flowing = threading.Event()
        self.flowing.set()
        self.held = 0
        self.replies = threading.Event()
        self.replies.set()
        self.hold_after_start = False
        self.starts = 0
        self.lock = threading.Lock()

    def open(self):
        if self.listener:
            return
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(DOOR)
        s.listen(16)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def close(self):
        if self.listener:
            # shutdown wakes the thread blocked in accept(); close alone would leave the
            # port listening until that call returned.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            for s in c:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.release()

    def hold(self):
        self.held = 0
        self.flowing.clear()

    def hold_replies_after_start(self):
        self.starts = 0
        self.hold_after_start = True

    def release(self):
        self.hold_after_start = False
        self.flowing.set()
        self.replies.set()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(LIBVIRT_SOCK)
            with self.lock:
                self.conns.append((client, daemon))
            threading.Thread(target=self._pump, args=(client, daemon, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(daemon, client, False), daemon=True).start()

    def _pump(self, src, dst, request):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if request and not self.flowing.is_set():
                    self.held += len(data)
                    self.flowing.wait()
                if not request:
                    self.replies.wait()
                dst.sendall(data)
                if request:
                    pending = self._watch(pending + data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _watch(self, pending):
        """Reads the requests' headers (libvirt RPC: length, program, version, procedure);
        once armed, a domain start request holds every reply after it."""
        while len(pending) >= 16:
            length = int.from_bytes(pending[:4], "big")
            if len(pending) < length:
                break
            program, procedure = int.from_bytes(pending[4:8], "big"), int.from_bytes(pending[12:16], "big")
            if program == REMOTE_PROGRAM and procedure in DOMAIN_START and self.hold_after_start:
                self.replies.clear()
                self.starts += 1
            pending = pending[length:]
        return pending


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def virsh(*args):
    return subprocess.run(["virsh", "-c", QEMU, *args], capture_output=True, text=True, timeout=60)


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def scalar(srv, query):
    """One value from the server's database, read directly (the API shows no removed rows)."""
    if srv.backend == "sqlite":
        con = sqlite3.connect(str(srv.sqlite_path))
        try:
            row = con.execute(query).fetchone()
        finally:
            con.close()
        return row[0] if row else None
    out = psql(srv.database_url, query)
    return int(out) if out.lstrip("-").isdigit() else out or None


def held_by(srv, vm_id):
    """(live NICs, addresses) the database still gives the VM."""
    nics = scalar(srv, "SELECT count(*) FROM nics WHERE instance_uuid = '{}' AND removed IS NULL".format(vm_id))
    ips = scalar(srv, "SELECT count(*) FROM guest_ips g JOIN nics n ON n.id = g.nic_id WHERE n.instance_uuid = '{}'".format(vm_id))
    return nics, ips


def root_volumes(srv, vm_id):
    """(root volume records ever made for the VM, those not removed)."""
    sql = "SELECT count(*) FROM volumes v JOIN instances i ON v.name = 'ROOT-' || i.id WHERE i.uuid = '{}'".format(vm_id)
    return scalar(srv, sql), scalar(srv, sql + " AND v.removed IS NULL")


def files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def deploy_job(cs, z, **extra):
    """Submits a deploy without waiting: (VM id, job id)."""
    params = dict(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], fetch_result=False)
    params.update(extra)
    r = cs.deployVirtualMachine(**params)
    return r["id"], r["jobid"]


def job_of(cs, job_id, timeout=120):
    return wait_for("job " + job_id, lambda: (lambda j: j if j["jobstatus"] != 0 else None)(cs.queryAsyncJobResult(jobid=job_id, fetch_result=False)), timeout)


def vms_in(cs, zone):
    return cs.listVirtualMachines(zoneid=zone["id"], listall=True).get("virtualmachine", [])


def start_server(srv):
    """Starts `srv` with a 1 s reconcile interval; the variable only reaches the child."""
    old = os.environ.get("WASMSTACK_RECONCILE_SECS")
    os.environ["WASMSTACK_RECONCILE_SECS"] = "1"
    try:
        return srv.start()
    finally:
        if old is None:
            del os.environ["WASMSTACK_RECONCILE_SECS"]
        else:
            os.environ["WASMSTACK_RECONCILE_SECS"] = old


@pytest.fixture(scope="module")
def door():
    d = LibvirtDoor()
    yield d
    d.close()


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request, tmp_path_factory):
    """A server with the KVM driver granted the door and the Simulator, the NFS driver both
    exports, and the VLAN driver ws-* devices."""
    s = Server(request.param, tmp_path_factory.mktemp("wasmstack-failures-" + request.param))
    install_drivers(s.data_dir)
    wasm_dir = server_binary().parent.parent / "wasm32-wasip2" / "release"
    shutil.copyfile(wasm_dir / "vlan.wasm", s.data_dir / "plugins" / "vlan.wasm")
    (s.data_dir / "wasmstack.toml").write_text(GRANTS)
    start_server(s)
    yield s
    s.close()


def ready_template(cs, web, tag, hypervisor, zone):
    t = cs.registerTemplate(name="tiny" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor=hypervisor, zoneid=zone["id"], ispublic=True)["template"][0]
    wait_for("the template download", lambda: cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"], 90)
    return t


def guest_network(cs, zone, tag, vlans, bridge):
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan=vlans, isolationmethods="VLAN")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel=bridge)
    cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
    iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
    return cs.createNetwork(name="n" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]


@pytest.fixture(scope="module")
def kvm_zone(srv, web, door):
    """A KVM zone whose one host is the door (open while it is added), with an NFS pool and
    store, a ready template, an Isolated VLAN network on Open vSwitch and a small offering."""
    cs = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    bridge = "ws-f" + tag
    zone = cs.createZone(name="zk" + tag, networktype="Advanced", dns1="10.0.0.53", internaldns1="10.0.0.53", guestcidraddress="10.96.0.0/24")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], accel="tcg")["cluster"][0]
    door.open()
    host = cs.addHost(hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url=DOOR_URI, username="root", password="password")["host"][0]
    pool = cs.createStoragePool(name="fp" + tag, url="{}/fpool-{}".format(NFS_URL, tag), zoneid=zone["id"], clusterid=cluster["id"], scope="cluster")["storagepool"]
    cs.addImageStore(provider="NFS", name="fs" + tag, url="{}/ftpl-{}".format(NFS_URL, tag), zoneid=zone["id"])
    t = ready_template(cs, web, tag, "KVM", zone)
    net = guest_network(cs, zone, tag, "3530-3539", bridge)
    offering = cs.createServiceOffering(name="fso" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
    cs.updateZone(id=zone["id"], allocationstate="Enabled")
    z = {"zone": zone, "host": host, "template": t, "network": net, "offering": offering, "tag": tag, "pool_dir": EXPORT_DIR / ("fpool-" + tag)}
    yield z
    door.open()
    try:
        cs = client(admin_credentials(srv))
        for v in vms_in(cs, zone):
            cs.destroyVirtualMachine(id=v["id"], expunge=True)
        cs.deleteNetwork(id=net["id"])
    finally:
        door.close()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
        shutil.rmtree(EXPORT_DIR / ("fpool-" + tag), ignore_errors=True)
        shutil.rmtree(EXPORT_DIR / ("ftpl-" + tag), ignore_errors=True)


def redeploy_with(cs, z, ip):
    """Deploys (not started) with `ip`, checks the domain is on the host, then expunges it."""
    vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], ipaddress=ip, startvm=False)["virtualmachine"]
    try:
        assert vm["state"] == "Stopped" and vm["nic"][0]["ipaddress"] == ip, vm
        assert virsh("domstate", vm["id"]).stdout.strip() == "shut off"
        assert len(files(z["pool_dir"] / "volumes")) == 1
    finally:
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert virsh("dominfo", vm["id"]).returncode != 0, "the domain outlived its VM"
    assert files(z["pool_dir"] / "volumes") == []


def test_a_deploy_onto_an_unreachable_host_fails_and_leaves_nothing(srv, door, kvm_zone):
    z = kvm_zone
    cs = client(admin_credentials(srv))
    door.close()
    ip = "10.96.0.50"
    vm_id, job_id = deploy_job(cs, z, ipaddress=ip)
    job = job_of(cs, job_id)
    err = job["jobresult"]
    assert job["jobstatus"] == 2 and err["errorcode"] == 534, job
    # Named as the operator knows it (a host's name may be as short as "vm").
    assert "on host {}:".format(z["host"]["name"]) in err["errortext"], err
    # Nothing of it stays: no VM, NIC, address, volume (record or file) or domain.
    assert vms_in(cs, z["zone"]) == []
    assert scalar(srv, "SELECT state FROM instances WHERE uuid = '{}' AND removed IS NOT NULL".format(vm_id)) == "Error"
    assert held_by(srv, vm_id) == (0, 0)
    # It had got as far as the domain: its root disk was made, and is gone again.
    assert root_volumes(srv, vm_id) == (1, 0)
    assert cs.listVolumes(zoneid=z["zone"]["id"], listall=True) == {}
    assert files(z["pool_dir"] / "volumes") == []
    assert virsh("dominfo", vm_id).returncode != 0
    # With the host back, the next deploy gets the same address.
    door.open()
    redeploy_with(cs, z, ip)


def test_a_root_disk_that_cannot_be_made_gives_back_the_nic_and_address(srv, web):
    cs = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    if not os.path.ismount(SMALL_DIR):
        pytest.fail("{} is not mounted: run scripts/setup.sh".format(SMALL_DIR))
    store_dir, pool_dir = SMALL_DIR / ("ftpl-" + tag), SMALL_DIR / ("fpool-" + tag)
    zone = cs.createZone(name="zs" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2", guestcidraddress="10.97.0.0/24")["zone"]
    try:
        pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
        cl = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
        cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cl["id"], url="test:///default", username="root", password="password")
        cs.addImageStore(provider="NFS", name="st" + tag, url="{}/{}".format(NFS_SMALL_URL, store_dir.name), zoneid=zone["id"])
        cs.createStoragePool(name="sp" + tag, url="{}/{}".format(NFS_SMALL_URL, pool_dir.name), zoneid=zone["id"], clusterid=cl["id"], scope="cluster")
        t = ready_template(cs, web, tag, "Simulator", zone)
        guest_network(cs, zone, tag, "120-129", "ws-s" + tag)
        offering = cs.createServiceOffering(name="so" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
        cs.updateZone(id=zone["id"], allocationstate="Enabled")
        z = {"zone": zone, "template": t, "offering": offering}

        # The pool has ~1 MiB left: the template's first copy onto it, after the NIC and its
        # address were taken, runs out of space.
        st = os.statvfs(SMALL_DIR)
        with open(SMALL_DIR / FILLER, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize - MIB)
        ip = "10.97.0.40"
        vm_id, job_id = deploy_job(cs, z, ipaddress=ip)
        job = job_of(cs, job_id)
        err = job["jobresult"]
        assert job["jobstatus"] == 2, job
        assert "to pool sp" + tag in err["errortext"] and any(w in err["errortext"].lower() for w in FULL_WORDS), err
        assert vms_in(cs, zone) == []
        assert held_by(srv, vm_id) == (0, 0)
        assert scalar(srv, "SELECT count(*) FROM nics WHERE instance_uuid = '{}'".format(vm_id)) == 1, "no NIC was ever made"
        assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
        assert files(pool_dir / "volumes") == [] and files(pool_dir / "templates") == []

        # With the room back, the same address goes to the next VM, which gets its disk.
        (SMALL_DIR / FILLER).unlink()
        vm = cs.deployVirtualMachine(serviceofferingid=offering["id"], zoneid=zone["id"], templateid=t["id"], ipaddress=ip)["virtualmachine"]
        assert vm["state"] == "Running" and vm["nic"][0]["ipaddress"] == ip, vm
        assert len(cs.listVolumes(virtualmachineid=vm["id"], listall=True)["volume"]) == 1
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
        assert files(pool_dir / "volumes") == []
    finally:
        (SMALL_DIR / FILLER).unlink(missing_ok=True)
        for v in vms_in(cs, zone):
            cs.destroyVirtualMachine(id=v["id"], expunge=True)
        for tpl in cs.listTemplates(templatefilter="self", zoneid=zone["id"]).get("template", []):
            cs.deleteTemplate(id=tpl["id"])
        for p in cs.listStoragePools(zoneid=zone["id"]).get("storagepool", []):
            cs.deleteStoragePool(id=p["id"])
        shutil.rmtree(store_dir, ignore_errors=True)
        shutil.rmtree(pool_dir, ignore_errors=True)


def execute(srv, statement):
    """Changes the server's database directly (while the server is stopped)."""
    if srv.backend == "sqlite":
        con = sqlite3.connect(str(srv.sqlite_path))
        try:
            con.execute(statement)
            con.commit()
        finally:
            con.close()
    else:
        psql(srv.database_url, statement)


@pytest.mark.parametrize("cut", ["waiting on libvirt", "making the root disk"])
def test_a_server_killed_during_a_deploy_undoes_it_when_it_starts_again(srv, door, kvm_zone, cut):
    z = kvm_zone
    cs = client(admin_credentials(srv))
    door.open()
    door.hold()
    ip = "10.96.0.60"
    vm_id, job_id = deploy_job(cs, z, ipaddress=ip)
    try:
        # Its NIC, address and root disk are made; the server waits on libvirt to define it.
        wait_for("the deploy to reach libvirt", lambda: door.held > 0, 60)
        assert cs.listVirtualMachines(id=vm_id)["virtualmachine"][0]["state"] == "Starting"
        assert held_by(srv, vm_id) == (1, 1) and root_volumes(srv, vm_id) == (1, 1)
        assert len(files(z["pool_dir"] / "volumes")) == 1
        srv.stop(signal.SIGKILL)
    finally:
        door.release()
    if cut == "making the root disk":
        # What a stop while the driver made the disk leaves: the disk on the pool, its
        # record planned (no path yet). Only its name, the volume's uuid, finds it.
        vm_row = scalar(srv, "SELECT id FROM instances WHERE uuid = '{}'".format(vm_id))
        execute(srv, "UPDATE volumes SET path = '', state = 'Creating' WHERE name = 'ROOT-{}'".format(vm_row))
    start_server(srv)
    cs = client(admin_credentials(srv))

    job = cs.queryAsyncJobResult(jobid=job_id, fetch_result=False)
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 530, job
    assert "management server stopped" in job["jobresult"]["errortext"], job
    # The host never got the domain: the reconciler undoes the deploy as a failed job would.
    wait_for("the half-made VM to be undone", lambda: not cs.listVirtualMachines(id=vm_id, listall=True).get("virtualmachine"), 30)
    assert scalar(srv, "SELECT state FROM instances WHERE uuid = '{}' AND removed IS NOT NULL".format(vm_id)) == "Error"
    assert held_by(srv, vm_id) == (0, 0) and root_volumes(srv, vm_id) == (1, 0)
    assert files(z["pool_dir"] / "volumes") == []
    assert virsh("dominfo", vm_id).returncode != 0
    events = [e for e in cs.listEvents(type="VM.SYNC", listall=True).get("event", []) if e.get("resourceid") == vm_id]
    assert len(events) == 1 and "deploy" in events[0]["description"], events
    redeploy_with(cs, z, ip)


def test_a_server_killed_after_its_deploy_started_the_domain_finds_it_running(srv, door, kvm_zone):
    z = kvm_zone
    cs = client(admin_credentials(srv))
    door.open()
    door.hold_replies_after_start()
    vm_id, job_id = deploy_job(cs, z, ipaddress="10.96.0.70")
    try:
        wait_for("the deploy to start the domain", lambda: door.starts > 0, 60)
        wait_for("the domain to run", lambda: virsh("domstate", vm_id).stdout.strip() == "running", 30)
        assert cs.listVirtualMachines(id=vm_id)["virtualmachine"][0]["state"] == "Starting"
        srv.stop(signal.SIGKILL)
    finally:
        door.release()
    try:
        start_server(srv)
        cs = client(admin_credentials(srv))
        job = cs.queryAsyncJobResult(jobid=job_id, fetch_result=False)
        assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 530, job
        # Everything was made and the host runs it: the VM is whole, and Running.
        wait_for("the VM to be found Running", lambda: cs.listVirtualMachines(id=vm_id)["virtualmachine"][0]["state"] == "Running", 30)
        [ev] = [e for e in cs.listEvents(type="VM.SYNC", listall=True).get("event", []) if e.get("resourceid") == vm_id]
        assert "left Starting" in ev["description"] and "reports it running" in ev["description"], ev
        assert held_by(srv, vm_id) == (1, 1) and root_volumes(srv, vm_id) == (1, 1)
        vm = cs.listVirtualMachines(id=vm_id)["virtualmachine"][0]
        assert vm["nic"][0]["ipaddress"] == "10.96.0.70"
        cs.destroyVirtualMachine(id=vm_id, expunge=True)
        assert virsh("dominfo", vm_id).returncode != 0
        assert files(z["pool_dir"] / "volumes") == []
    finally:
        virsh("destroy", vm_id)
        virsh("undefine", vm_id)
        for log in Path("/var/log/libvirt/qemu").glob("*-{}.serial.log".format(vm_id)):
            log.unlink(missing_ok=True)


def test_a_host_whose_libvirt_restarted_is_reconnected_without_a_failed_call(srv, door, kvm_zone):
    z = kvm_zone
    cs = client(admin_credentials(srv))
    door.open()
    vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], startvm=False)["virtualmachine"]
    try:
        # libvirtd restarts: every connection to it is cut, and it listens again. The
        # server's pooled connection notices at once (libvirt's event loop runs), so the
        # next call opens a fresh one instead of failing on the dead one.
        door.close()
        door.open()
        time.sleep(0.3)
        started = cs.startVirtualMachine(id=vm["id"])["virtualmachine"]
        assert started["state"] == "Running", started
        assert virsh("domstate", vm["id"]).stdout.strip() == "running"
        door.close()
        door.open()
        time.sleep(0.3)
        stopped = cs.stopVirtualMachine(id=vm["id"], forced=True)["virtualmachine"]
        assert stopped["state"] == "Stopped", stopped
        assert virsh("domstate", vm["id"]).stdout.strip() == "shut off"
    finally:
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert virsh("dominfo", vm["id"]).returncode != 0
