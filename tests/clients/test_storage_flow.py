"""The whole storage flow with the `cs` client, as an operator runs it: a zone with a
Simulator host, NFS primary and secondary storage, a template registered from a local HTTP
URL, a volume on it, a snapshot, a revert, deletions. After every step the files on the
export are exactly what the API says, and nothing is left at the end."""

import hashlib
import secrets
import time

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import NFS_URL
from test_templates import EXPORT_DIR, web  # noqa: F401  (the local HTTP server fixture)
from test_volumes import files_in, qemu_info, qemu_snapshots


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def tree(folder):
    """Every file below a folder, as relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def test_zone_template_volume_snapshot_and_cleanup(admin, web):  # noqa: F811
    base, digest = web
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zf" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"], gateway="10.5.0.1", netmask="255.255.255.0", startip="10.5.0.10", endip="10.5.0.20")["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    host = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="http://sim/" + tag)["host"][0]
    assert host["state"] == "Up"
    primary, secondary = EXPORT_DIR / ("fp-" + tag), EXPORT_DIR / ("fs-" + tag)
    pool = cs.createStoragePool(name="fp" + tag, url="{}/{}".format(NFS_URL, primary.name), zoneid=zone["id"], clusterid=cluster["id"])["storagepool"]
    cs.addImageStore(provider="NFS", name="fs" + tag, url="{}/{}".format(NFS_URL, secondary.name), zoneid=zone["id"])
    cs.updateZone(id=zone["id"], allocationstate="Enabled")
    assert tree(primary) == [] and tree(secondary) == []

    t = cs.registerTemplate(name="t" + tag, url=base + "/tiny.qcow2", format="QCOW2", hypervisor="KVM", zoneid=zone["id"], checksum=digest)["template"][0]
    deadline = time.monotonic() + 60
    while not cs.listTemplates(templatefilter="self", id=t["id"])["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the template never became ready"
        time.sleep(0.1)
    [stored] = tree(secondary)
    assert stored.startswith("templates/") and hashlib.sha256((secondary / stored).read_bytes()).hexdigest() == digest

    # A volume on the template: the template is copied to the pool once, the volume is an overlay.
    vol = cs.createVolume(name="v" + tag, zoneid=zone["id"], templateid=t["id"])["volume"]
    assert vol["storageid"] == pool["id"] and vol["state"] == "Ready"
    files = tree(primary)
    assert vol["path"] in files and len([f for f in files if f.startswith("templates/")]) == 1, files
    [base_copy] = [f for f in files if f.startswith("templates/")]
    assert qemu_info(primary / vol["path"])["backing-filename"].endswith(base_copy.split("/")[-1])
    second = cs.createVolume(name="w" + tag, zoneid=zone["id"], templateid=t["id"])["volume"]
    assert len([f for f in tree(primary) if f.startswith("templates/")]) == 1, "the template was copied twice"

    snap = cs.createSnapshot(volumeid=vol["id"], name="s" + tag)["snapshot"]
    assert qemu_snapshots(primary / vol["path"]) == [snap["id"]]
    assert cs.revertSnapshot(id=snap["id"])["snapshot"]["id"] == snap["id"]

    # A template made from the snapshot lands in the image store as a standalone image.
    made = cs.createTemplate(name="fromsnap" + tag, snapshotid=snap["id"])["template"]
    assert made["isready"] is True and made["zoneid"] == zone["id"] and made["format"] == "QCOW2", made
    [copy] = [f for f in tree(secondary) if f != stored]
    assert "backing-filename" not in qemu_info(secondary / copy)
    assert cs.deleteTemplate(id=made["id"]) == {"success": True}
    assert tree(secondary) == [stored]
    err = error_of(lambda: cs.createTemplate(name="nothing" + tag))
    assert err["errorcode"] == 431 and "snapshotid or volumeid" in err["errortext"], err

    # The template is in use: deleting it is refused and removes nothing.
    err = error_of(lambda: cs.deleteTemplate(id=t["id"]))
    assert err["errorcode"] == 536 and "v" + tag in err["errortext"], err
    assert base_copy in tree(primary) and tree(secondary) == [stored]

    # A snapshot backed up to secondary storage: a standalone copy in the store's snapshots/.
    backed = cs.createSnapshot(volumeid=vol["id"], name="b" + tag, locationtype="SECONDARY")["snapshot"]
    assert (backed["locationtype"], backed["state"]) == ("SECONDARY", "BackedUp"), backed
    assert "snapshots/{}.qcow2".format(backed["id"]) in tree(secondary)
    assert "backing-filename" not in qemu_info(secondary / "snapshots" / "{}.qcow2".format(backed["id"]))
    assert [x["id"] for x in cs.listSnapshots(volumeid=vol["id"], locationtype="SECONDARY")["snapshot"]] == [backed["id"]]
    assert cs.deleteSnapshot(id=backed["id"])["success"] is True
    assert tree(secondary) == [stored]
    err = error_of(lambda: cs.createSnapshot(volumeid=vol["id"], locationtype="TAPE"))
    assert err["errorcode"] == 431 and "locationtype" in err["errortext"], err

    assert cs.deleteSnapshot(id=snap["id"])["success"] is True
    assert qemu_snapshots(primary / vol["path"]) == []
    for v in (vol, second):
        assert cs.deleteVolume(id=v["id"])["success"] is True
    assert tree(primary) == [base_copy]

    # With no volume on it, the template goes, from the store and from the pool.
    assert cs.deleteTemplate(id=t["id"]) == {"success": True}
    assert tree(primary) == [] and tree(secondary) == []
    assert cs.listVolumes(zoneid=zone["id"]) == {}
