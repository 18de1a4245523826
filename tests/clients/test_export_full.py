"""An NFS export that fills up: nfs://127.0.0.1/small is a 64 MiB tmpfs (scripts/setup.sh)
holding a zone's image store and primary pool. Downloads and copies that run out of
space must fail with a message that says so, and leave no half-written file behind.
The tmpfs folder is read (and filled) directly, as the other storage tests do."""

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import NFS_SMALL_URL, file_server, guest_files

SMALL_DIR = Path(os.environ.get("WASMSTACK_NFS_SMALL_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/small")))
MIB = 1 << 20
BIG = 100 * MIB  # more than the whole export
FILLER = ".filler"  # dot-named: not a folder a store or pool uses
# Words an out-of-space failure may be reported with (ENOSPC, NFS3ERR_NOSPC, ...).
FULL_WORDS = ("no space", "nospc", "disk full", "storage full", "not enough space", "out of space", "quota")


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def says_full(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in FULL_WORDS)


def files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def free_bytes() -> int:
    st = os.statvfs(SMALL_DIR)
    return st.f_bavail * st.f_frsize


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A local HTTP server with the tiny guest's template and 100 MiB of random bytes
    (random, so nothing on the way can compress or skip them)."""
    if not os.path.ismount(SMALL_DIR):
        pytest.fail("{} is not mounted: run scripts/setup.sh".format(SMALL_DIR))
    root = tmp_path_factory.mktemp("web-full")
    guest_files(root)
    with open(root / "big.raw", "wb") as f:
        for _ in range(BIG // (4 * MIB)):
            f.write(os.urandom(4 * MIB))
    with file_server(root) as url:
        yield url


@pytest.fixture
def small_zone(admin):
    """A zone with its image store and its primary pool in two folders of the small export."""
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zf" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cl = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    store_dir, pool_dir = SMALL_DIR / ("tpl-" + tag), SMALL_DIR / ("vpool-" + tag)
    cs.addImageStore(provider="NFS", name="st" + tag, url="{}/{}".format(NFS_SMALL_URL, store_dir.name), zoneid=zone["id"])
    sp = cs.createStoragePool(name="vp" + tag, url="{}/{}".format(NFS_SMALL_URL, pool_dir.name), zoneid=zone["id"], clusterid=cl["id"], scope="cluster")["storagepool"]
    yield {"cs": cs, "zone": zone, "pool": sp, "store_dir": store_dir, "pool_dir": pool_dir, "tag": tag}
    # Whatever a failed test left, so the next run starts on an empty export; the folders
    # go even if the API cleanup fails (the filler first: nothing else fits beside it).
    (SMALL_DIR / FILLER).unlink(missing_ok=True)
    try:
        for v in cs.listVolumes(zoneid=zone["id"], listall=True).get("volume", []):
            cs.deleteVolume(id=v["id"])
        for t in cs.listTemplates(templatefilter="self", zoneid=zone["id"]).get("template", []):
            cs.deleteTemplate(id=t["id"])
        cs.deleteStoragePool(id=sp["id"])
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        shutil.rmtree(pool_dir, ignore_errors=True)


def wait_for(cs, template_id, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        found = cs.listTemplates(templatefilter="self", id=template_id)["template"][0]
        if found["isready"] or found["status"] != "Downloading" and "Downloaded" not in found["status"]:
            return found
        assert time.monotonic() < deadline, "still downloading after {} s: {}".format(timeout, found)
        time.sleep(0.2)


def test_template_larger_than_the_export_fails_and_leaves_nothing(admin, web, small_zone):
    cs, zone, store_dir = small_zone["cs"], small_zone["zone"], small_zone["store_dir"]
    assert free_bytes() < BIG
    name = "big" + secrets.token_hex(3)
    started = time.monotonic()
    t = cs.registerTemplate(name=name, url=web + "/big.raw", format="RAW", hypervisor="KVM", zoneid=zone["id"])["template"][0]
    done = wait_for(cs, t["id"])
    assert time.monotonic() - started < 90
    assert done["isready"] is False and done["status"] not in ("Download Complete", ""), done
    # Not a byte of the partial download stays (not even a hidden .partial file): the
    # export is as empty as before.
    assert files(store_dir / "templates") == []
    assert free_bytes() > 60 * MIB
    events = cs.listEvents(keyword=name, fetch_list=True)
    assert "TEMPLATE.DOWNLOAD.FAILED" in [e["type"] for e in events]
    assert says_full(done["status"]), "the status does not say the storage is full: {!r}".format(done["status"])


def test_volumes_that_do_not_fit_fail_cleanly(admin, web, small_zone):
    cs, zone, sp, pool_dir = small_zone["cs"], small_zone["zone"], small_zone["pool"], small_zone["pool_dir"]
    # A disk offering's volume (1 GB at least) is more than the pool may promise even thin
    # (capacity x overprovisioning): refused before any job, nothing made.
    offering = cs.createDiskOffering(name="d1-" + small_zone["tag"], displaytext="1 GB", disksize=1)["diskoffering"]
    err = error_of(lambda: cs.createVolume(name="big", diskofferingid=offering["id"], zoneid=zone["id"], fetch_result=False))
    assert err["errorcode"] == 533 and "no primary storage" in err["errortext"], err
    assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
    assert files(pool_dir / "volumes") == []

    # A volume on a template fits the accounting (16 MiB) but its first use copies the
    # 15 MiB template onto the pool: with ~1 MiB left that copy runs out of space.
    tpl = cs.registerTemplate(name="tiny" + small_zone["tag"], url=web + "/tiny.qcow2", format="QCOW2", hypervisor="KVM", zoneid=zone["id"])["template"][0]
    ready = wait_for(cs, tpl["id"])
    assert ready["isready"] is True, ready
    with open(SMALL_DIR / FILLER, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, free_bytes() - MIB)
    assert free_bytes() <= 2 * MIB
    started = time.monotonic()
    err = error_of(lambda: cs.createVolume(name="ontpl", templateid=tpl["id"], zoneid=zone["id"]))
    assert time.monotonic() - started < 90
    assert err["errorcode"] in (530, 533, 534), err
    assert cs.listVolumes(zoneid=zone["id"], listall=True) == {}
    # Neither a half-copied template nor a volume file stays on the pool.
    assert files(pool_dir / "volumes") == [] and files(pool_dir / "templates") == []

    # With the room back, the same request works: the failure left no state behind.
    (SMALL_DIR / FILLER).unlink()
    vol = cs.createVolume(name="ontpl", templateid=tpl["id"], zoneid=zone["id"])["volume"]
    assert vol["state"] == "Ready" and (pool_dir / vol["path"]).is_file(), vol
    assert cs.deleteVolume(id=vol["id"])["success"] is True
    assert files(pool_dir / "volumes") == []
    assert says_full(err["errortext"]), "the job error does not say the storage is full: {!r}".format(err["errortext"])
