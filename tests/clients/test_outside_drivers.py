"""Drop in your own driver, of a kind the server has never heard of: two drivers written
outside wasmstack from `wasmstack plugins new` (sources in tests/outside), built outside the
repository and dropped into a running server, which then runs a cloud on them through `cs`.

- `lxc` serves the hypervisor type "LXC": containers through libvirt's LXC driver, in the
  daemon scripts/lxc-daemon.sh starts (WASMSTACK_LXC_URI), with no hot-plug.
- `bridge` serves the isolation method "BRIDGE": one Linux bridge per network, named from the
  network's segment, with DHCP.

Both pass `plugins check` first, as their author would run it. Before the drop-in the server
refuses both names; after it, a host of type LXC runs a
deployed VM as a real container on a BRIDGE network, whose NIC takes the address the server
assigned from the driver's DHCP service; it stops, starts and is destroyed, and hot-plugging
a disk into it is refused up front."""

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import DRIVER_GRANTS, GUEST_DIR, NFS_URL, Server, admin_credentials, file_server, install_drivers, server_binary

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = REPO / "tests" / "outside"
# Every device the bridge driver makes starts with it; its grant.
BRIDGE_PREFIX = "wsbr-"


def run(*args, timeout=60):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def lxc_uri() -> str:
    """The LXC daemon's URI: WASMSTACK_LXC_URI (scripts/test.sh sets it), else the one
    scripts/lxc-daemon.sh names. It must answer: this test proves real containers run."""
    uri = os.environ.get("WASMSTACK_LXC_URI") or run("bash", REPO / "scripts" / "lxc-daemon.sh", "--uri").stdout.strip()
    answer = run("virsh", "-q", "-c", uri, "version")
    assert answer.returncode == 0, "no LXC daemon answers at {} (run scripts/setup.sh): {}".format(uri, answer.stderr.strip())
    return uri


def cargo_target() -> Path:
    """Where the outside crates build: the shared cargo target folder, so that wit-bindgen,
    built for the in-tree drivers, is reused (and the build needs no network)."""
    return Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "wasmstack" / "target")


def build_outside(root: Path, kind: str, name: str) -> Path:
    """What an outside author does: `plugins new`, write src/, build for wasm32-wasip2."""
    crate = root / name
    made = run(server_binary(), "plugins", "new", "--kind", kind, name, crate)
    assert made.returncode == 0, made.stderr
    shutil.copytree(OUTSIDE / name / "src", crate / "src", dirs_exist_ok=True)
    # The workspace's lock pins the wit-bindgen the workspace already built.
    shutil.copyfile(REPO / "Cargo.lock", crate / "Cargo.lock")
    env = dict(os.environ, CARGO_TARGET_DIR=str(cargo_target()))
    built = subprocess.run(
        ["cargo", "build", "--release", "--target", "wasm32-wasip2", "--offline", "--quiet"],
        cwd=crate, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert built.returncode == 0, "building {}: {}".format(name, built.stderr)
    wasm = cargo_target() / "wasm32-wasip2" / "release" / "{}.wasm".format(name)
    assert wasm.is_file(), wasm
    return wasm


def passes_check(wasm: Path, *extra) -> dict:
    """`plugins check`, as an author runs it before shipping: every step passed, none skipped."""
    done = run(server_binary(), "plugins", "check", "--json", *extra, wasm, timeout=300)
    report = json.loads(done.stdout or "{}")
    steps = {s["step"]: (s["status"], s["message"]) for s in report.get("steps", [])}
    assert done.returncode == 0 and report.get("passed") is True, "{} failed its check: {}{}".format(wasm.name, steps, done.stderr)
    assert all(status == "passed" for status, _ in steps.values()), steps
    assert report["wit"] == "wasmstack:driver@0.4.0", report
    return steps


def drop_in(srv: Server, wasm: Path, name: str):
    """Writes the file aside and renames it into the plugin folder, as the docs say."""
    plugins = srv.data_dir / "plugins"
    part = plugins / ".{}.wasm.part".format(name)
    shutil.copyfile(wasm, part)
    os.replace(part, plugins / "{}.wasm".format(name))


def loaded(cs, name, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        found = cs.listPlugins(name=name).get("plugin", [])
        if found and found[0]["state"] == "Loaded":
            return found[0]
        assert time.monotonic() < deadline, "{} did not load: {}".format(name, found)
        time.sleep(0.2)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def virsh(uri, *args):
    return run("virsh", "-q", "-c", uri, *args)


def domstate(uri, name) -> str:
    done = virsh(uri, "domstate", name)
    return done.stdout.strip() if done.returncode == 0 else "missing"


def container_addresses(uri, name) -> str:
    """The IPv4 addresses inside the container, as its own `ip` sees them."""
    done = virsh(uri, "lxc-enter-namespace", name, "--noseclabel", "/bin/ip", "-4", "-o", "addr", "show")
    return done.stdout if done.returncode == 0 else done.stderr


def end_dhcp_service(net_id: str):
    """Ends the DHCP server the bridge driver started for the network, if it still runs (its
    name is the driver's: the prefix, "d", the network id's first hex digits), so that the
    test leaves nothing running on the machine, whatever the server tore down."""
    name = "{}d{}".format(BRIDGE_PREFIX, net_id.replace("-", "")[:9].lower())
    for line in run("pgrep", "-af", "udhcpd").stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        if "/{}/".format(name) in cmd:
            run("kill", pid)


@pytest.fixture(scope="module")
def outside_drivers(tmp_path_factory):
    """Both drivers, generated and built in a folder outside the repository."""
    root = tmp_path_factory.mktemp("outside-authors")
    assert REPO not in root.parents
    return {"lxc": build_outside(root, "hypervisor", "lxc"), "bridge": build_outside(root, "network", "bridge")}


@pytest.fixture
def outside_server(tmp_path):
    srv = Server("sqlite", tmp_path)
    install_drivers(srv.data_dir)
    (srv.data_dir / "wasmstack.toml").write_text(DRIVER_GRANTS)
    srv.start()
    yield srv
    srv.close()


def test_outside_hypervisor_and_network_drivers_run_a_container(outside_drivers, outside_server):
    uri = lxc_uri()
    srv = outside_server
    admin = admin_credentials(srv)
    cs = CloudStack(endpoint=admin.endpoint, key=admin.apikey, secret=admin.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=120)
    tag = secrets.token_hex(3)
    segment = 2000 + secrets.randbelow(1900)
    bridge = "{}{}".format(BRIDGE_PREFIX, segment)

    zone = cs.createZone(name="zx" + tag, networktype="Advanced", dns1="10.0.0.53", internaldns1="10.0.0.53", guestcidraddress="10.95.0.0/24")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]

    # Before the drop-in, neither name means anything to the server.
    assert "LXC" not in [h["name"] for h in cs.listHypervisors().get("hypervisor", [])]
    err = error_of(lambda: cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="LXC", podid=pod["id"], zoneid=zone["id"]))
    assert err["errorcode"] == 431 and "LXC" in err["errortext"], err
    err = error_of(lambda: cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan="{0}-{1}".format(segment, segment + 3), isolationmethods="BRIDGE"))
    assert err["errorcode"] == 431 and "BRIDGE" in err["errortext"], err

    # What its author checks before shipping: the hypervisor driver's calls against libvirt's
    # test driver, the network driver's against a scratch network on this host.
    steps = passes_check(outside_drivers["lxc"])
    assert {"create-vm", "start-vm", "stop-vm", "destroy-vm"} <= steps.keys(), steps
    steps = passes_check(outside_drivers["bridge"], "--network")
    assert steps["implement"][1].startswith("NICs plug into " + BRIDGE_PREFIX), steps

    # Dropped into the running server and granted through the API: no restart.
    for name in ("lxc", "bridge"):
        drop_in(srv, outside_drivers[name], name)
    lxc = loaded(cs, "lxc")
    assert lxc["kind"] == "hypervisor", lxc
    assert loaded(cs, "bridge")["kind"] == "network"
    cs.updatePlugin(name="lxc", grant="libvirt " + uri, timeoutms=30000)
    cs.updatePlugin(name="bridge", grant="netdev " + BRIDGE_PREFIX, timeoutms=30000)
    # listHypervisors names the new type, the driver serving it, and its (empty) facts.
    [served] = [h for h in cs.listHypervisors()["hypervisor"] if h["name"] == "LXC"]
    assert served.get("driver") == "lxc" and served.get("features", []) == [], served

    vm_name = net_id = None
    try:
        cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="LXC", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
        assert cluster["hypervisortype"] == "LXC", cluster
        [host] = cs.addHost(hypervisor="LXC", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url=uri, username="root", password="x")["host"]
        assert (host["state"], host["hypervisor"], host.get("driver")) == ("Up", "LXC", "lxc"), host
        cs.createStoragePool(name="vp" + tag, url="{}/lxcpool-{}".format(NFS_URL, tag), zoneid=zone["id"], clusterid=cluster["id"], podid=pod["id"], scope="cluster")
        cs.addImageStore(provider="NFS", name="st" + tag, url="{}/lxctpl-{}".format(NFS_URL, tag), zoneid=zone["id"])

        phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan="{0}-{1}".format(segment, segment + 3), isolationmethods="BRIDGE")["physicalnetwork"]
        assert phys["isolationmethods"] == "BRIDGE", phys
        cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="guest")
        cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
        iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
        net = cs.createNetwork(name="n" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
        net_id = net["id"]
        offering = cs.createServiceOffering(name="so" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
        cs.updateZone(id=zone["id"], allocationstate="Enabled")

        # Containers boot no disk image, but a VM is deployed from a template all the same.
        web_root = srv.root / "web"
        web_root.mkdir()
        shutil.copyfile(GUEST_DIR / "template.qcow2", web_root / "tiny.qcow2")
        with file_server(web_root) as web:
            t = cs.registerTemplate(name="ct" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor="LXC", zoneid=zone["id"], ispublic=True)["template"][0]
            deadline = time.monotonic() + 60
            while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
                assert time.monotonic() < deadline, "the template did not download"
                time.sleep(0.2)

        vm = cs.deployVirtualMachine(serviceofferingid=offering["id"], zoneid=zone["id"], templateid=t["id"], networkids=net["id"], name="ct-" + tag)["virtualmachine"]
        vm_name = vm["instancename"]
        assert (vm["state"], vm["hypervisor"], vm["hostid"]) == ("Running", "LXC", host["id"]), vm
        [nic] = vm["nic"]
        assert cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["state"] == "Running"

        [shown] = cs.listNetworks(id=net["id"])["network"]
        assert shown.get("driver") == "bridge", shown

        # A real container in the LXC daemon, on the network's own bridge, with the address
        # the server assigned, from the bridge driver's DHCP service.
        assert domstate(uri, vm_name) == "running"
        assert run("ip", "link", "show", "dev", bridge).returncode == 0, "no bridge {} for the network".format(bridge)
        deadline = time.monotonic() + 30
        while nic["ipaddress"] + "/" not in container_addresses(uri, vm_name):
            assert time.monotonic() < deadline, "the container did not get {}: {}".format(nic["ipaddress"], container_addresses(uri, vm_name))
            time.sleep(0.5)

        # Hot-plug is a fact LXC lacks: refused before the driver is asked, and nothing attached.
        data = cs.createVolume(name="d" + tag, zoneid=zone["id"], size=1)["volume"]
        err = error_of(lambda: cs.attachVolume(id=data["id"], virtualmachineid=vm["id"]))
        assert err["errorcode"] == 431 and "LXC" in err["errortext"] and "cannot hot-plug disks" in err["errortext"], err
        assert "virtualmachineid" not in cs.listVolumes(id=data["id"])["volume"][0]

        assert cs.stopVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
        assert domstate(uri, vm_name) == "shut off"
        assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
        assert domstate(uri, vm_name) == "running"

        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
        assert cs.listVirtualMachines(id=vm["id"]).get("virtualmachine", []) == []
        assert domstate(uri, vm_name) == "missing"
        cs.deleteVolume(id=data["id"])
        cs.deleteNetwork(id=net["id"])
    finally:
        if vm_name:
            virsh(uri, "destroy", vm_name)
            virsh(uri, "undefine", vm_name)
        run("ip", "link", "del", "dev", bridge)
        if net_id:
            end_dhcp_service(net_id)
