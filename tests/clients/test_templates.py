"""Templates and ISOs registered from a local HTTP server into an NFS image store through
the storage driver: download in the background with a digest check (MD5, SHA-1, SHA-256 or
SHA-512), CloudStack's template filters, and failures that leave nothing behind."""

import hashlib
import os
import secrets
import time
from pathlib import Path

import pytest
import requests
from cs import CloudStack, CloudStackApiException

from conftest import NFS_URL, file_server, guest_files, new_user_account

EXPORT_DIR = Path(os.environ.get("WASMSTACK_NFS_EXPORT_DIR", os.path.expanduser("~/.cache/wasmstack/nfs/export")))


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", poll_interval=0.05, timeout=30)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A local HTTP server with the tiny guest's template and an ISO-sized blob."""
    root = tmp_path_factory.mktemp("web")
    guest_files(root)
    with file_server(root) as base:
        yield base, hashlib.sha256((root / "tiny.qcow2").read_bytes()).hexdigest()


@pytest.fixture
def zone(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zt" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    store = cs.addImageStore(provider="NFS", name="st" + tag, url="{}/tpl-{}".format(NFS_URL, tag), zoneid=zone["id"])["imagestore"]
    return zone, EXPORT_DIR / ("tpl-" + tag)


def wait_for(cs, template_id, iso=False, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        if iso:
            found = cs.listIsos(isofilter="self", id=template_id)["iso"][0]
        else:
            found = cs.listTemplates(templatefilter="self", id=template_id)["template"][0]
        if found["isready"] or found["status"] not in ("Downloading",) and "Downloaded" not in found["status"]:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def files(folder):
    return sorted(p.name for p in (folder / "templates").iterdir()) if (folder / "templates").is_dir() else []


def test_register_download_filters_and_checksum(admin, web, zone):
    cs = client(admin)
    base, digest = web
    z, store_dir = zone
    name = "tiny" + secrets.token_hex(3)
    reply = cs.registerTemplate(name=name, url=base + "/tiny.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"], checksum="{SHA-256}" + digest, ispublic=False)
    assert reply["count"] == 1
    t = reply["template"][0]
    assert t["isready"] is False and t["zoneid"] == z["id"] and t["format"] == "QCOW2" and t["hypervisor"] == "KVM"
    ready = wait_for(cs, t["id"])
    assert ready["isready"] is True and ready["status"] == "Download Complete", ready
    assert ready["size"] > ready["physicalsize"] > 0
    # Exactly one file landed in the store, byte for byte what was served.
    [stored] = files(store_dir)
    assert hashlib.sha256((store_dir / "templates" / stored).read_bytes()).hexdigest() == digest

    # CloudStack's filters: the owner's executable list has it, featured and community do not.
    ids = lambda f: [x["id"] for x in cs.listTemplates(templatefilter=f, zoneid=z["id"]).get("template", [])]
    assert t["id"] in ids("executable") and t["id"] in ids("self") and t["id"] in ids("selfexecutable")
    assert t["id"] not in ids("featured") and t["id"] not in ids("community")
    # Another account does not see a private template, and may not list "all".
    other = client(new_user_account(admin, "tp"))
    assert t["id"] not in [x["id"] for x in other.listTemplates(templatefilter="executable").get("template", [])]
    assert error_of(lambda: other.listTemplates(templatefilter="all"))["errorcode"] == 531

    events = [e["type"] for e in cs.listEvents(keyword=name, fetch_list=True)]
    assert "TEMPLATE.CREATE" in events and "TEMPLATE.DOWNLOAD.SUCCESS" in events

    # Deleting it (an async job) removes the store's copy.
    assert cs.deleteTemplate(id=t["id"], fetch_result=True) == {"success": True}
    assert cs.listTemplates(templatefilter="self", id=t["id"]) == {}
    assert files(store_dir) == []


@pytest.mark.parametrize(
    "path, checksum, text",
    [
        ("/tiny.qcow2", "0" * 64, "SHA-256"),
        ("/missing.qcow2", None, "404"),
    ],
)
def test_failed_downloads_leave_nothing(admin, web, zone, path, checksum, text):
    cs = client(admin)
    base, _ = web
    z, store_dir = zone
    args = dict(name="bad" + secrets.token_hex(3), url=base + path, format="QCOW2", hypervisor="KVM", zoneid=z["id"])
    if checksum:
        args["checksum"] = checksum
    t = cs.registerTemplate(**args)["template"][0]
    done = wait_for(cs, t["id"])
    assert done["isready"] is False and text in done["status"], done
    assert files(store_dir) == []
    assert "TEMPLATE.DOWNLOAD.FAILED" in [e["type"] for e in cs.listEvents(keyword=args["name"], fetch_list=True)]


@pytest.fixture(scope="module")
def digests(web):
    """Every digest of the served template, by algorithm name as CloudStack writes it."""
    base, _ = web
    body = requests.get(base + "/tiny.qcow2", timeout=30).content
    return {name: hashlib.new(algo, body).hexdigest() for name, algo in [("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"), ("SHA-512", "sha512")]}


@pytest.mark.parametrize(
    "algo, prefixed",
    [("MD5", True), ("MD5", False), ("SHA-1", True), ("SHA-1", False), ("SHA-256", True), ("SHA-512", True), ("SHA-512", False)],
)
def test_every_checksum_form_is_checked(admin, web, zone, digests, algo, prefixed):
    """A right digest in each form CloudStack takes lets the template become ready; a wrong
    one of the same algorithm ends in an error naming that algorithm, and leaves no file."""
    cs = client(admin)
    base, _ = web
    z, store_dir = zone
    form = lambda hexdigest: ("{" + algo + "}" if prefixed else "") + hexdigest
    name = "sum" + secrets.token_hex(3)
    t = cs.registerTemplate(name=name, url=base + "/tiny.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"], checksum=form(digests[algo].upper()))["template"][0]
    shown = "{" + algo + "}" + digests[algo] if algo != "SHA-256" else digests[algo]
    assert t["checksum"] == shown, t
    ready = wait_for(cs, t["id"])
    assert ready["isready"] is True and ready["status"] == "Download Complete", ready
    assert len(files(store_dir)) == 1

    wrong = "f" * len(digests[algo])
    bad = cs.registerTemplate(name=name + "x", url=base + "/tiny.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"], checksum=form(wrong))["template"][0]
    done = wait_for(cs, bad["id"])
    assert done["isready"] is False, done
    assert "the {} digest".format(algo) in done["status"] and "did not match" in done["status"] and wrong in done["status"], done
    assert len(files(store_dir)) == 1


def test_unreachable_url_fails_in_bounded_time(admin, zone):
    cs = client(admin)
    z, store_dir = zone
    started = time.monotonic()
    t = cs.registerTemplate(name="gone" + secrets.token_hex(3), url="http://127.0.0.1:1/x.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"])["template"][0]
    done = wait_for(cs, t["id"], timeout=30)
    assert time.monotonic() - started < 30
    assert done["isready"] is False and done["status"] != "Downloading", done
    assert files(store_dir) == []


@pytest.mark.parametrize(
    "params, text",
    [
        ({"url": "ftp://example.org/x.qcow2"}, "http"),
        ({"format": "VHD"}, "QCOW2 or RAW"),
        ({"hypervisor": "XenServer"}, "the loaded hypervisor drivers serve KVM, Simulator"),
        ({"checksum": "{CRC32}d41d8cd9"}, "not supported"),
        ({"checksum": "{MD5}" + "0" * 31}, "32 hex digits"),
        ({"checksum": "{SHA-256}" + "0" * 32}, "64 hex digits"),
        ({"checksum": "z" * 32}, "not a hex digest"),
        ({"checksum": "0" * 33}, "names no algorithm"),
        ({"checksum": "{MD5" + "0" * 32}, "closing"),
        ({"zoneid": "00000000-0000-4000-8000-000000000000"}, "zone"),
    ],
)
def test_bad_registrations_create_nothing(admin, zone, params, text):
    cs = client(admin)
    z, _ = zone
    name = "bad" + secrets.token_hex(3)
    args = dict(name=name, url="http://127.0.0.1:9/x.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"])
    args.update(params)
    err = error_of(lambda: cs.registerTemplate(**args))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    assert cs.listTemplates(templatefilter="self", name=name) == {}


def test_zone_without_image_store_is_refused(admin):
    cs = client(admin)
    z = cs.createZone(name="zn" + secrets.token_hex(3), networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    err = error_of(lambda: cs.registerTemplate(name="x", url="http://127.0.0.1:9/x.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["id"]))
    assert err["errorcode"] == 431 and "no image store" in err["errortext"], err


def test_iso_registration(admin, web, zone):
    cs = client(admin)
    base, _ = web
    z, store_dir = zone
    iso = cs.registerIso(name="iso" + secrets.token_hex(3), url=base + "/tiny.iso", zoneid=z["id"], bootable=True)["iso"][0]
    ready = wait_for(cs, iso["id"], iso=True)
    assert ready["isready"] is True and ready["format"] == "ISO" and ready["bootable"] is True, ready
    assert [i["id"] for i in cs.listIsos(isofilter="self", zoneid=z["id"])["iso"]] == [iso["id"]]
    assert any(f.endswith(".iso") for f in files(store_dir))
    assert cs.deleteIso(id=iso["id"], fetch_result=True) == {"success": True}
    assert files(store_dir) == []
