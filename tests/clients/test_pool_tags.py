"""Which pool a disk lands on: a root disk goes to a pool carrying every storage tag of
the VM's service offering (a data volume, of its disk offering), and among those to the
one with the most room, not the first created. Tags no pool carries refuse the deploy
at once, and nothing is left behind. The pools are the test-only roguestore driver's:
each offers the same space, so only what is allocated on them tells them apart."""

import secrets
import shutil
import sqlite3

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import DRIVER_GRANTS, Server, admin_credentials, install_drivers, server_binary
from test_instances import deploy, sim_zone, vms_in

GRANT = '\n[plugin.roguestore]\nimages = ["file:///nowhere"]\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server("sqlite", tmp_path_factory.mktemp("pooltags"))
    install_drivers(server.data_dir)
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release" / "roguestore.wasm"
    assert wasm.is_file(), "no {} (run scripts/build.sh)".format(wasm)
    shutil.copyfile(wasm, server.data_dir / "plugins" / "roguestore.wasm")
    (server.data_dir / "wasmstack.toml").write_text(DRIVER_GRANTS + GRANT)
    server.start()
    yield server
    server.close()


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=60)


def pool(cs, z, name, tags=None):
    extra = {"tags": tags} if tags else {}
    return cs.createStoragePool(name=name + z["tag"], url="file:///nowhere/{}/{}".format(z["tag"], name), provider="roguestore", zoneid=z["zone"]["id"], scope="zone", hypervisor="Simulator", **extra)["storagepool"]


def root_pool(cs, vm):
    return cs.listVolumes(virtualmachineid=vm["id"], type="ROOT", listall=True)["volume"][0]["storage"]


def allocated(cs, z):
    return {p["name"]: p["disksizeallocated"] for p in cs.listStoragePools(zoneid=z["zone"]["id"])["storagepool"]}


def test_root_disks_follow_the_offerings_tags_and_the_room(srv, web):
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    t = z["tag"]
    pool(cs, z, "bulk", "bulk")
    pool(cs, z, "fast", "ssd,nvme")
    # A data volume goes where its disk offering's tags are: fast is now the fuller pool.
    ssd_disk = cs.createDiskOffering(name="d" + t, displaytext="ssd", disksize=1, tags="ssd")["diskoffering"]
    vol = cs.createVolume(name="v" + t, diskofferingid=ssd_disk["id"], zoneid=z["zone"]["id"])["volume"]
    assert vol["storage"] == "fast" + t, vol
    assert allocated(cs, z)["fast" + t] > allocated(cs, z)["bulk" + t]

    # Tagged for the fuller pool, the root disk still goes there.
    ssd = cs.createServiceOffering(name="ss" + t, displaytext="ssd", cpunumber=1, cpuspeed=100, memory=64, tags="ssd")["serviceoffering"]
    vm = deploy(cs, z, serviceofferingid=ssd["id"], networkids=z["network"]["id"])
    assert vm["state"] == "Running" and root_pool(cs, vm) == "fast" + t, vm

    # Untagged, it goes to the roomier pool, then to a newer, roomier one.
    vm = deploy(cs, z, networkids=z["network"]["id"])
    assert root_pool(cs, vm) == "bulk" + t, vm
    pool(cs, z, "fresh")
    vm = deploy(cs, z, networkids=z["network"]["id"])
    assert root_pool(cs, vm) == "fresh" + t, vm
    # Every tag must be carried: only fast has both.
    both = cs.createServiceOffering(name="sb" + t, displaytext="both", cpunumber=1, cpuspeed=100, memory=64, tags="nvme, ssd")["serviceoffering"]
    vm = deploy(cs, z, serviceofferingid=both["id"], networkids=z["network"]["id"])
    assert root_pool(cs, vm) == "fast" + t, vm


def test_tags_no_pool_carries_refuse_the_deploy_and_leave_nothing(srv, web):
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    t = z["tag"]
    pool(cs, z, "bulk", "bulk")
    odd = cs.createServiceOffering(name="so" + t, displaytext="odd", cpunumber=1, cpuspeed=100, memory=64, tags="bulk,tape")["serviceoffering"]
    before = allocated(cs, z)
    with sqlite3.connect(srv.sqlite_path, timeout=30) as db:
        rows = [db.execute("SELECT COUNT(*) FROM " + table).fetchone()[0] for table in ("instances", "volumes", "nics")]
    with pytest.raises(CloudStackApiException) as e:
        deploy(cs, z, serviceofferingid=odd["id"], networkids=z["network"]["id"])
    err = e.value.error
    assert err["errorcode"] == 533, err
    assert err["errortext"] == "Zone {} has no Up primary storage tagged bulk,tape for service offering so{}".format(z["zone"]["name"], t), err
    assert vms_in(cs, z["zone"]) == []
    assert allocated(cs, z) == before
    with sqlite3.connect(srv.sqlite_path, timeout=30) as db:
        after = [db.execute("SELECT COUNT(*) FROM " + table).fetchone()[0] for table in ("instances", "volumes", "nics")]
    assert after == rows


def test_tags_set_on_a_pool_later_steer_the_next_deploy(srv, web):
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web, pool=False)
    t = z["tag"]
    plain = pool(cs, z, "plain")
    odd = cs.createServiceOffering(name="st" + t, displaytext="tape", cpunumber=1, cpuspeed=100, memory=64, tags="tape")["serviceoffering"]
    with pytest.raises(CloudStackApiException) as e:
        deploy(cs, z, serviceofferingid=odd["id"], networkids=z["network"]["id"])
    assert e.value.error["errorcode"] == 533, e.value.error

    updated = cs.updateStoragePool(id=plain["id"], tags=" tape , ,slow", name="renamed" + t)["storagepool"]
    assert (updated["tags"], updated["name"]) == ("tape,slow", "renamed" + t), updated
    vm = deploy(cs, z, serviceofferingid=odd["id"], networkids=z["network"]["id"])
    assert root_pool(cs, vm) == "renamed" + t, vm

    # An empty list removes the tags; a blank name and an unknown pool are refused.
    cleared = cs.updateStoragePool(id=plain["id"], tags="")["storagepool"]
    assert not cleared.get("tags"), cleared
    with pytest.raises(CloudStackApiException) as e:
        deploy(cs, z, serviceofferingid=odd["id"], networkids=z["network"]["id"])
    assert e.value.error["errorcode"] == 533, e.value.error
    for bad in ({"id": plain["id"], "name": "  "}, {"id": "9b1c4a52-5d1e-4a8e-9a3c-2f7f4a1b2c3d", "tags": "x"}):
        with pytest.raises(CloudStackApiException) as e:
            cs.updateStoragePool(**bad)
        assert e.value.error["errorcode"] == 431, e.value.error
    assert cs.listStoragePools(id=plain["id"])["storagepool"][0]["name"] == "renamed" + t
