"""A storage driver's answer must lie within its pool: a volume the driver places
outside it (the host's /etc/shadow, or `<pool>/../outside`) is refused with a clear
error, and no volume row keeps its path."""

import secrets
import shutil
import sqlite3

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import DRIVER_GRANTS, Server, admin_credentials, install_drivers, server_binary
from test_instances import deploy, sim_zone, vms_in

ROGUE_GRANT = '\n[plugin.roguestore]\nimages = ["file:///nowhere"]\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A private server with the test-only roguestore driver, which answers outside its pool on request."""
    server = Server("sqlite", tmp_path_factory.mktemp("locators"))
    install_drivers(server.data_dir)
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release" / "roguestore.wasm"
    assert wasm.is_file(), "no {} (run scripts/build.sh)".format(wasm)
    shutil.copyfile(wasm, server.data_dir / "plugins" / "roguestore.wasm")
    (server.data_dir / "wasmstack.toml").write_text(DRIVER_GRANTS + ROGUE_GRANT)
    server.start()
    yield server
    server.close()


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=60)


def volume_paths(server) -> list:
    with sqlite3.connect(server.sqlite_path, timeout=30) as db:
        return [row[0] for row in db.execute("SELECT path FROM volumes")]


@pytest.mark.parametrize("folder, outside", [("escape", "the file /etc/shadow"), ("dotdot", "the file /nowhere/{tag}/dotdot/../outside")])
def test_a_volume_outside_the_pool_is_refused(srv, folder, outside):
    cs = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zl" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pool = cs.createStoragePool(name="rogue" + tag, url="file:///nowhere/{}/{}".format(tag, folder), provider="roguestore", zoneid=zone["id"], scope="zone", hypervisor="Simulator")["storagepool"]
    with pytest.raises(CloudStackApiException) as e:
        cs.createVolume(name="v" + tag, size=1, zoneid=zone["id"])
    err = e.value.error
    want = "the storage driver roguestore answered a volume outside pool rogue{}: {}".format(tag, outside.format(tag=tag))
    assert want in err["errortext"], err
    assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
    assert all("shadow" not in p and "outside" not in p for p in volume_paths(srv)), volume_paths(srv)
    assert cs.listStoragePools(id=pool["id"])["storagepool"][0]["disksizeallocated"] == 0


def test_a_volume_inside_the_pool_is_made(srv):
    cs = client(admin_credentials(srv))
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zk" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    cs.createStoragePool(name="sane" + tag, url="file:///nowhere/pool" + tag, provider="roguestore", zoneid=zone["id"], scope="zone", hypervisor="Simulator")
    vol = cs.createVolume(name="v" + tag, size=1, zoneid=zone["id"])["volume"]
    assert vol["state"] == "Ready", vol


def test_a_deploy_whose_root_disk_lies_outside_the_pool_fails(srv, web):
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    cs.createStoragePool(name="rogue" + z["tag"], url="file:///nowhere/{}/escape".format(z["tag"]), provider="roguestore", zoneid=z["zone"]["id"], scope="zone", hypervisor="Simulator")
    with pytest.raises(CloudStackApiException) as e:
        deploy(cs, z, networkids=z["network"]["id"])
    want = "the storage driver roguestore answered a volume outside pool rogue{}: the file /etc/shadow".format(z["tag"])
    assert want in e.value.error["errortext"], e.value.error
    # The root disk is refused before the VM's definition is built: no VM runs, and no row keeps the path.
    assert all(vm["state"] != "Running" for vm in vms_in(cs, z["zone"])), vms_in(cs, z["zone"])
    assert all("shadow" not in p for p in volume_paths(srv)), volume_paths(srv)


def test_a_stored_volume_outside_its_pool_never_reaches_the_hypervisor(srv, web):
    """A row stored before the check, or edited in the database: its locator is checked
    again when the VM's definition is built."""
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    pool = cs.createStoragePool(name="sane" + z["tag"], url="file:///nowhere/{}/pool".format(z["tag"]), provider="roguestore", zoneid=z["zone"]["id"], scope="zone", hypervisor="Simulator")["storagepool"]
    vm = deploy(cs, z, networkids=z["network"]["id"])
    assert vm["state"] == "Running", vm
    cs.stopVirtualMachine(id=vm["id"])
    with sqlite3.connect(srv.sqlite_path, timeout=30) as db:
        db.execute("UPDATE storage_pools SET url = ? WHERE uuid = ?", ("file:///nowhere/{}/escape".format(z["tag"]), pool["id"]))
    bigger = cs.createServiceOffering(name="sb" + z["tag"], displaytext="bigger", cpunumber=1, cpuspeed=100, memory=96)["serviceoffering"]
    with pytest.raises(CloudStackApiException) as e:
        cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=bigger["id"])
    want = "the storage driver roguestore answered a volume outside pool sane{}: the file /etc/shadow".format(z["tag"])
    assert want in e.value.error["errortext"], e.value.error


def test_a_pool_outside_the_drivers_grant_gets_no_volume(srv, web):
    """The pool URL is the operator's, the grant the driver's: roguestore is granted
    file:///nowhere, and a volume it answers inside a pool at /elsewhere lies in that
    pool but outside its grant. It is refused when made, and a root disk too."""
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    pool = cs.createStoragePool(name="else" + z["tag"], url="file:///elsewhere/{}/pool".format(z["tag"]), provider="roguestore", zoneid=z["zone"]["id"], scope="zone", hypervisor="Simulator")["storagepool"]
    want = "the storage driver roguestore answered a volume outside its images grant: the file /elsewhere/{}/pool/".format(z["tag"])
    with pytest.raises(CloudStackApiException) as e:
        cs.createVolume(name="v" + z["tag"], size=1, zoneid=z["zone"]["id"])
    assert want in e.value.error["errortext"], e.value.error
    with pytest.raises(CloudStackApiException) as e:
        deploy(cs, z, networkids=z["network"]["id"])
    assert want in e.value.error["errortext"], e.value.error
    assert cs.listVolumes(zoneid=z["zone"]["id"], listall=True) == {}
    assert all("elsewhere" not in p for p in volume_paths(srv)), volume_paths(srv)
    assert all(vm["state"] != "Running" for vm in vms_in(cs, z["zone"])), vms_in(cs, z["zone"])
    assert cs.listStoragePools(id=pool["id"])["storagepool"][0]["disksizeallocated"] == 0
