"""Primary storage pools and image stores on a real NFS server (nfs-ganesha started by
scripts/setup.sh), attached through the NFS storage driver."""

import os
import secrets
import time
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import NFS_URL

EXPORT_DIR = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post")


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


@pytest.fixture
def cluster(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zs" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    return zone, pod, cluster, tag


def test_nfs_pool_and_store_lifecycle(admin, cluster):
    cs = client(admin)
    zone, pod, cl, tag = cluster
    folder = "pool-" + tag
    pool = cs.createStoragePool(name="ps" + tag, url="{}/{}".format(NFS_URL, folder), zoneid=zone["id"], podid=pod["id"], clusterid=cl["id"], scope="cluster")["storagepool"]
    assert (pool["type"], pool["scope"], pool["state"], pool["driver"]) == ("NetworkFilesystem", "CLUSTER", "Up", "nfs")
    assert pool["clusterid"] == cl["id"] and pool["ipaddress"] == "127.0.0.1"
    # Capacity comes from the server, through the driver.
    assert pool["disksizetotal"] > 0 and 0 <= pool["disksizeused"] <= pool["disksizetotal"]
    # Attaching prepared the pool's folder on the export.
    assert (EXPORT_DIR / folder).is_dir()
    assert [p["id"] for p in cs.listStoragePools(clusterid=cl["id"])["storagepool"]] == [pool["id"]]

    store = cs.addImageStore(provider="NFS", name="is" + tag, url="{}/sec-{}".format(NFS_URL, tag), zoneid=zone["id"])["imagestore"]
    assert (store["providername"], store["protocol"], store["scope"], store["zoneid"]) == ("NFS", "nfs", "ZONE", zone["id"])
    legacy = cs.addSecondaryStorage(url="{}/sec2-{}".format(NFS_URL, tag), zoneid=zone["id"])
    assert "secondarystorage" in legacy, legacy
    assert {s["id"] for s in cs.listImageStores(zoneid=zone["id"])["imagestore"]} == {store["id"], legacy["secondarystorage"]["id"]}

    err = error_of(lambda: cs.deleteZone(id=zone["id"]))
    assert err["errorcode"] == 536 and pool["name"] in err["errortext"] and store["name"] in err["errortext"], err
    err = error_of(lambda: cs.deleteCluster(id=cl["id"]))
    assert err["errorcode"] == 536 and pool["name"] in err["errortext"], err

    assert cs.deleteStoragePool(id=pool["id"]) == {"success": True}
    for s in (store, legacy["secondarystorage"]):
        assert cs.deleteImageStore(id=s["id"]) == {"success": True}
    assert cs.listStoragePools(clusterid=cl["id"]) == {}
    assert cs.deleteCluster(id=cl["id"]) == {"success": True}


@pytest.mark.parametrize(
    "url, code, text",
    [
        ("iscsi://10.0.0.5/iqn.2024-01.x:y/0", 431, "iscsi:// is not supported"),
        ("nfs://127.0.0.1", 431, "nfs://server/path"),
        ("nfs://10.9.9.9/export/x", 534, "not granted"),
    ],
)
def test_bad_pool_urls_create_nothing(admin, cluster, url, code, text):
    cs = client(admin)
    zone, pod, cl, tag = cluster
    err = error_of(lambda: cs.createStoragePool(name="bad" + tag, url=url, zoneid=zone["id"], clusterid=cl["id"]))
    assert err["errorcode"] == code and text in err["errortext"], err
    assert cs.listStoragePools(clusterid=cl["id"]) == {}


def test_unreachable_nfs_server_fails_in_bounded_time(admin, cluster):
    cs = client(admin)
    zone, pod, cl, tag = cluster
    started = time.monotonic()
    err = error_of(lambda: cs.createStoragePool(name="gone" + tag, url="nfs://127.0.0.2/export/x", zoneid=zone["id"], clusterid=cl["id"]))
    assert time.monotonic() - started < 25
    assert err["errorcode"] == 534 and "127.0.0.2" in err["errortext"], err
    assert cs.listStoragePools(clusterid=cl["id"]) == {}
