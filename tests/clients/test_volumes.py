"""Volumes and snapshots on a real NFS pool (nfs-ganesha started by scripts/setup.sh),
made through the NFS storage driver. The export folder is read directly to check what
the driver did, and qemu-img inspects the files."""

import json
import os
import secrets
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import NFS_URL, new_user_account, psql

EXPORT_DIR = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))
GIB = 1 << 30


def client(creds):
    """A cs client that waits for async jobs and returns their results."""
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def qemu_info(path: Path) -> dict:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def qemu_snapshots(path: Path) -> list:
    return [s["name"] for s in qemu_info(path).get("snapshots", [])]


def qemu_io(path: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)], capture_output=True, text=True, timeout=30)


def files_in(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def pool(admin):
    """A zone with one NFS pool (in its own folder of the export) and a 1 GB offering."""
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zv" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cl = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    folder = EXPORT_DIR / ("vpool-" + tag)
    sp = cs.createStoragePool(name="vp" + tag, url="{}/{}".format(NFS_URL, folder.name), zoneid=zone["id"], clusterid=cl["id"], scope="cluster")["storagepool"]
    offering = cs.createDiskOffering(name="d1-" + tag, displaytext="1 GB", disksize=1)["diskoffering"]
    yield {"zone": zone, "pool": sp, "folder": folder, "offering": offering, "tag": tag}
    # Whatever a failed test left, so the pool can go.
    for v in cs.listVolumes(zoneid=zone["id"], listall=True).get("volume", []):
        cs.deleteVolume(id=v["id"])
    cs.deleteStoragePool(id=sp["id"])


def wait_job(cs, jobid: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        j = cs.queryAsyncJobResult(jobid=jobid, fetch_result=False)
        if j["jobstatus"] != 0:
            return j
        time.sleep(0.2)
    raise AssertionError("job {} did not finish".format(jobid))


def test_volume_lifecycle_on_nfs(admin, pool):
    cs = client(admin)
    zone, sp, folder, offering = pool["zone"], pool["pool"], pool["folder"], pool["offering"]

    # The async-create reply names the volume at once.
    first = cs.createVolume(name="data1", diskofferingid=offering["id"], zoneid=zone["id"], fetch_result=False)
    assert set(first) == {"id", "jobid"}, first
    job = wait_job(cs, first["jobid"])
    assert (job["jobstatus"], job["jobresultcode"], job["jobinstancetype"], job["jobinstanceid"]) == (1, 0, "Volume", first["id"]), job
    vol = job["jobresult"]["volume"]
    assert vol["id"] == first["id"]
    assert (vol["name"], vol["type"], vol["state"], vol["size"]) == ("data1", "DATADISK", "Ready", GIB)
    assert (vol["zoneid"], vol["zonename"], vol["storageid"], vol["storage"]) == (zone["id"], zone["name"], sp["id"], sp["name"])
    assert (vol["diskofferingid"], vol["diskofferingname"], vol["storagetype"], vol["provisioningtype"]) == (offering["id"], offering["name"], "shared", "thin")
    assert (vol["account"], vol["domainid"], vol["destroyed"], vol["hypervisor"]) == ("admin", admin.domainid, False, "Simulator")
    assert vol["path"].startswith("volumes/") and "created" in vol

    # The driver made a 1 GB qcow2 file where `path` says, in the pool's folder.
    file = folder / vol["path"]
    info = qemu_info(file)
    assert (info["format"], info["virtual-size"]) == ("qcow2", GIB)
    assert [v["id"] for v in cs.listVolumes(id=vol["id"])["volume"]] == [vol["id"]]
    assert cs.listVolumes(storageid=sp["id"])["volume"][0]["path"] == vol["path"]
    assert cs.listStoragePools(id=sp["id"])["storagepool"][0]["disksizeallocated"] == GIB

    # Data written before a snapshot comes back when the volume is reverted to it.
    assert qemu_io(file, "write -P 0xab 0 64k").returncode == 0
    snap = cs.createSnapshot(volumeid=vol["id"], name="before")["snapshot"]
    assert (snap["name"], snap["volumeid"], snap["volumename"], snap["volumetype"], snap["state"]) == ("before", vol["id"], "data1", "DATADISK", "CreatedOnPrimary")
    assert (snap["snapshottype"], snap["intervaltype"], snap["locationtype"], snap["revertable"]) == ("MANUAL", "MANUAL", "PRIMARY", True)
    assert (snap["virtualsize"], snap["zoneid"], snap["account"]) == (GIB, zone["id"], "admin")
    assert qemu_snapshots(file) == [snap["id"]]
    assert [s["id"] for s in cs.listSnapshots(volumeid=vol["id"])["snapshot"]] == [snap["id"]]
    assert qemu_io(file, "write -P 0xcd 0 64k").returncode == 0

    # Growing: the file is bigger, the volume says so.
    grown = cs.resizeVolume(id=vol["id"], size=2)["volume"]
    assert (grown["size"], grown["state"]) == (2 * GIB, "Ready")
    assert qemu_info(file)["virtual-size"] == 2 * GIB
    # Shrinking is refused before anything changes.
    err = error_of(lambda: cs.resizeVolume(id=vol["id"], size=1))
    assert err["errorcode"] == 431 and "shrinkok" in err["errortext"], err
    assert qemu_info(file)["virtual-size"] == 2 * GIB
    # Asked to anyway, the driver refuses (qcow2 only grows) and the job says why.
    err = error_of(lambda: cs.resizeVolume(id=vol["id"], size=1, shrinkok=True))
    assert err["errorcode"] == 431 and "only grow" in err["errortext"], err
    assert qemu_info(file)["virtual-size"] == 2 * GIB
    assert cs.listVolumes(id=vol["id"])["volume"][0]["state"] == "Ready"

    # Reverting brings back the data and the size the snapshot was taken at.
    reverted = cs.revertSnapshot(id=snap["id"])
    assert reverted["snapshot"]["id"] == snap["id"], reverted
    assert qemu_io(file, "read -P 0xab 0 64k").returncode == 0
    assert qemu_info(file)["virtual-size"] == GIB
    now = cs.listVolumes(id=vol["id"])["volume"][0]
    assert (now["size"], now["state"]) == (GIB, "Ready")

    assert cs.deleteSnapshot(id=snap["id"]) == {"success": True}
    assert qemu_snapshots(file) == []
    assert cs.listSnapshots(volumeid=vol["id"]) == {}

    # A snapshot kept until the volume goes is deleted with it, and the reply says so.
    kept = cs.createSnapshot(volumeid=vol["id"])["snapshot"]
    assert kept["name"].startswith("data1_")
    gone = cs.deleteVolume(id=vol["id"])
    assert gone["success"] is True and "1 snapshot" in gone["displaytext"], gone
    assert not file.exists()
    assert files_in(folder / "volumes") == [] and files_in(folder / "snapshots") == []
    assert cs.listVolumes(id=vol["id"]) == {} and cs.listSnapshots(id=kept["id"]) == {}
    assert cs.listStoragePools(id=sp["id"])["storagepool"][0]["disksizeallocated"] == 0
    events = {e["type"] for e in cs.listEvents(resourceid=vol["id"]).get("event", [])}
    assert {"VOLUME.CREATE", "VOLUME.RESIZE", "VOLUME.DELETE"} <= events, events
    events = {e["type"] for e in cs.listEvents(resourceid=snap["id"]).get("event", [])}
    assert {"SNAPSHOT.CREATE", "SNAPSHOT.REVERT", "SNAPSHOT.DELETE"} <= events, events


def test_customized_offering_and_pool_in_use(admin, pool):
    cs = client(admin)
    zone, sp, folder = pool["zone"], pool["pool"], pool["folder"]
    custom = cs.createDiskOffering(name="dc-" + pool["tag"], displaytext="custom", customized=True)["diskoffering"]
    vol = cs.createVolume(name="c3", diskofferingid=custom["id"], size=3, zoneid=zone["id"])["volume"]
    assert vol["size"] == 3 * GIB and qemu_info(folder / vol["path"])["virtual-size"] == 3 * GIB
    # A pool holding volumes cannot be forgotten.
    err = error_of(lambda: cs.deleteStoragePool(id=sp["id"]))
    assert err["errorcode"] == 536 and "1 volume" in err["errortext"], err
    # Resizing through a fixed offering takes its size.
    bigger = cs.createDiskOffering(name="d5-" + pool["tag"], displaytext="5 GB", disksize=5)["diskoffering"]
    vol = cs.resizeVolume(id=vol["id"], diskofferingid=bigger["id"])["volume"]
    assert (vol["size"], vol["diskofferingid"]) == (5 * GIB, bigger["id"])
    assert cs.deleteVolume(id=vol["id"]) == {"success": True}
    assert files_in(folder / "volumes") == []


def test_users_own_their_volumes(admin, pool):
    zone, folder, offering = pool["zone"], pool["folder"], pool["offering"]
    alice_creds = new_user_account(admin)
    alice, bob = client(alice_creds), client(new_user_account(admin))
    vol = alice.createVolume(name="mine", diskofferingid=offering["id"], zoneid=zone["id"])["volume"]
    assert vol["account"] != "admin"
    assert [v["id"] for v in alice.listVolumes()["volume"]] == [vol["id"]]
    assert bob.listVolumes() == {}
    for call in (
        lambda: bob.deleteVolume(id=vol["id"]),
        lambda: bob.listVolumes(id=vol["id"]),
        lambda: bob.resizeVolume(id=vol["id"], size=2),
        lambda: bob.createSnapshot(volumeid=vol["id"]),
    ):
        err = error_of(call)
        assert err["errorcode"] == 531, err
    snap = alice.createSnapshot(volumeid=vol["id"])["snapshot"]
    assert bob.listSnapshots() == {}
    for call in (lambda: bob.revertSnapshot(id=snap["id"]), lambda: bob.deleteSnapshot(id=snap["id"])):
        err = error_of(call)
        assert err["errorcode"] == 531, err
    assert (folder / vol["path"]).exists() and qemu_snapshots(folder / vol["path"]) == [snap["id"]]
    # Admins see every account's volumes.
    assert vol["id"] in [v["id"] for v in client(admin).listVolumes(listall=True)["volume"]]
    # Her account cannot be deleted while it owns the volume: nothing would clean it up.
    err = error_of(lambda: client(admin).deleteAccount(id=alice_creds.accountid))
    assert err["errorcode"] == 536 and "volume(s) mine" in err["errortext"], err
    assert alice.deleteVolume(id=vol["id"])["success"] is True
    assert files_in(folder / "volumes") == []
    assert client(admin).deleteAccount(id=alice_creds.accountid)["success"] is True


@pytest.mark.parametrize(
    "params, text",
    [
        ({}, "diskofferingid"),
        ({"diskofferingid": "fixed", "zoneid": None}, "zoneid"),
        ({"diskofferingid": "custom"}, "customized"),
        ({"diskofferingid": "custom", "size": 0}, "at least 1"),
        ({"size": 0}, "at least 1"),
        ({"size": -2}, "at least 1"),
        ({"diskofferingid": "fixed", "size": 7}, "fixed size"),
        ({"diskofferingid": "fixed", "zoneid": "00000000-0000-4000-8000-000000000000"}, "zone"),
        ({"diskofferingid": "00000000-0000-4000-8000-000000000000"}, "disk offering"),
        ({"diskofferingid": "fixed", "name": "  "}, "name"),
    ],
)
def test_bad_volume_requests_create_nothing(admin, pool, params, text):
    cs = client(admin)
    zone, folder = pool["zone"], pool["folder"]
    custom = cs.createDiskOffering(name="dcb-" + secrets.token_hex(3), displaytext="custom", customized=True)["diskoffering"]
    args = {"zoneid": zone["id"]}
    for k, v in params.items():
        if v is None:
            args.pop(k)
        else:
            args[k] = {"custom": custom["id"], "fixed": pool["offering"]["id"]}.get(v, v)
    err = error_of(lambda: cs.createVolume(fetch_result=False, **args))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
    assert files_in(folder / "volumes") == []


def test_a_zone_without_room_is_533(admin, pool):
    cs = client(admin)
    zone, sp = pool["zone"], pool["pool"]
    huge = sp["disksizetotal"] * 2 // GIB + 1
    err = error_of(lambda: cs.createVolume(size=huge, zoneid=zone["id"], fetch_result=False))
    assert err["errorcode"] == 533 and zone["name"] in err["errortext"] and "no primary storage" in err["errortext"], err
    bare = cs.createZone(name="zb" + pool["tag"], networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    err = error_of(lambda: cs.createVolume(size=1, zoneid=bare["id"], fetch_result=False))
    assert err["errorcode"] == 533 and bare["name"] in err["errortext"], err
    assert cs.listVolumes(listall=True, zoneid=zone["id"]) == {}


def _insert_pool(server, zone_uuid: str, name: str, url: str):
    """A pool row as if its NFS server had been up when it was added (the API attaches
    through the driver, so it cannot add an unreachable one)."""
    sql = (
        "INSERT INTO storage_pools (uuid, name, zone_id, scope, url, driver, pool_type, address, path, hypervisor, state, "
        "capacity_bytes, used_bytes, allocated_bytes, created) VALUES ('{uuid}', '{name}', "
        "(SELECT id FROM zones WHERE uuid = '{zone}'), 'ZONE', '{url}', 'nfs', 'NetworkFilesystem', '127.0.0.2', '/export/x', "
        "'Simulator', 'Up', {cap}, 0, 0, {now})"
    ).format(uuid=uuid.uuid4(), name=name, zone=zone_uuid, url=url, cap=1 << 40, now=int(time.time() * 1000))
    if server.backend == "sqlite":
        with sqlite3.connect(server.sqlite_path, timeout=30) as db:
            db.execute(sql)
    else:
        psql(server.database_url, sql)


def test_unreachable_pool_fails_the_job_and_leaves_nothing(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zu" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    _insert_pool(admin.server, zone["id"], "down" + tag, "nfs://127.0.0.2/export/x")
    started = time.monotonic()
    err = error_of(lambda: cs.createVolume(name="v", size=1, zoneid=zone["id"]))
    assert time.monotonic() - started < 60
    assert err["errorcode"] == 534 and "127.0.0.2" in err["errortext"], err
    assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
    sp = cs.listStoragePools(zoneid=zone["id"])["storagepool"][0]
    assert sp["disksizeallocated"] == 0
    assert cs.deleteStoragePool(id=sp["id"]) == {"success": True}
