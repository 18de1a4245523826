"""Managing driver plugins over the API (admins only), through the `cs` client and plain HTTP:
uploading a `.wasm` CloudStack style (getUploadParamsForPlugin, then a multipart POST to the
signed, one-use URL), granting and revoking capabilities (saved in the server configuration, so
a restart keeps them), and reloadPlugins."""

import os
import re
import subprocess
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cs import CloudStack, CloudStackApiException

from conftest import DRIVER_GRANTS, Server, admin_credentials, install_drivers, new_user_account, server_binary

UPLOAD_SECS = 3
MAX_UPLOAD = 64 << 20
OPERATOR_NOTE = "# operator: grants reviewed by the storage team\n"


def built(name: str) -> Path:
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release" / name
    assert wasm.is_file(), "no {} (run scripts/build.sh)".format(wasm)
    return wasm


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A private server (its plugin folder changes) whose upload parameters last UPLOAD_SECS."""
    server = Server("sqlite", tmp_path_factory.mktemp("plugins-manage"))
    install_drivers(server.data_dir)
    # The upload tests bring the flat driver themselves.
    (server.data_dir / "plugins" / "flat.wasm").unlink(missing_ok=True)
    # No folder watcher: a driver appears only when the server is told (upload, reloadPlugins),
    # so the reload test sees reloadPlugins' own work.
    (server.data_dir / "wasmstack.toml").write_text(OPERATOR_NOTE + "[plugin-host]\nwatch-ms = 0\n\n" + DRIVER_GRANTS)
    os.environ["WASMSTACK_PLUGIN_UPLOAD_SECS"] = str(UPLOAD_SECS)
    try:
        server.start()
    finally:
        del os.environ["WASMSTACK_PLUGIN_UPLOAD_SECS"]
    yield server
    server.close()


@pytest.fixture(scope="module")
def admin(srv):
    return admin_credentials(srv)


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", timeout=30)


def plugins_dir(srv) -> Path:
    return srv.data_dir / "plugins"


def folder(srv):
    """What the plugin folder holds, hidden files included."""
    return sorted(p.name for p in plugins_dir(srv).iterdir())


def upload_params(creds, name):
    return client(creds).getUploadParamsForPlugin(name=name)["getuploadparams"]


def post(srv, params, data: bytes, file_name="driver.wasm", headers=None, field="file"):
    parts = urlsplit(srv.endpoint)
    url = "{}://{}{}".format(parts.scheme, parts.netloc, params["postURL"])
    sent = {"X-signature": params["signature"], "X-expires": params["expires"], "X-metadata": params["metadata"]}
    sent.update(headers or {})
    return requests.post(url, headers=sent, files={field: (file_name, data, "application/wasm")}, timeout=60)


def error_of(reply):
    return reply.json()["uploadpluginresponse"]


def listed(creds, name):
    return client(creds).listPlugins(name=name).get("plugin", [])


def test_upload_params_look_like_cloudstacks(srv, admin):
    params = upload_params(admin, "local.wasm")
    assert set(params) == {"id", "postURL", "metadata", "expires", "signature"}
    assert params["postURL"].endswith("/" + params["id"])
    for bad in ("local", "../local.wasm", "a/b.wasm", ".hidden.wasm", "x y.wasm", "Local.wasm", "local_2.wasm"):
        with pytest.raises(CloudStackApiException) as e:
            upload_params(admin, bad)
        assert e.value.error["errorcode"] == 431 and "Invalid plugin file name" in e.value.error["errortext"], bad


def test_upload_a_driver_and_it_is_loaded_at_once(srv, admin):
    assert listed(admin, "local") == []
    data = built("local.wasm").read_bytes()
    reply = post(srv, upload_params(admin, "local.wasm"), data, "local.wasm")
    assert reply.status_code == 200, reply.text
    plugin = reply.json()["uploadpluginresponse"]["plugin"]
    assert plugin["name"] == "local" and plugin["state"] == "Loaded" and plugin["file"] == "local.wasm"
    assert (plugins_dir(srv) / "local.wasm").read_bytes() == data
    assert not any(n.startswith(".upload-") for n in folder(srv)), folder(srv)
    [shown] = listed(admin, "local")
    assert shown["state"] == "Loaded" and shown["sha256"] == plugin["sha256"]


def test_upload_tokens_are_signed_short_lived_and_one_use(srv, admin):
    before = folder(srv)
    data = built("flat.wasm").read_bytes()

    params = upload_params(admin, "flat.wasm")
    forged = dict(params, metadata=params["metadata"][:-2] + "AA")
    r = post(srv, forged, data, "flat.wasm")
    assert r.status_code == 401 and "signature does not match" in error_of(r)["errortext"], r.text
    r = post(srv, params, data, "flat.wasm", headers={"X-signature": "c2lnbmF0dXJl"})
    assert r.status_code == 401 and "signature does not match" in error_of(r)["errortext"], r.text
    r = post(srv, params, data, "flat.wasm", headers={"X-signature": ""})
    assert r.status_code == 401, r.text
    assert folder(srv) == before

    expired = upload_params(admin, "flat.wasm")
    time.sleep(UPLOAD_SECS + 1)
    r = post(srv, expired, data, "flat.wasm")
    assert r.status_code == 401 and "expired" in error_of(r)["errortext"], r.text
    assert folder(srv) == before and listed(admin, "flat") == []

    once = upload_params(admin, "flat.wasm")
    r = post(srv, once, b"not a component", "flat.wasm")
    assert r.status_code == 431, r.text
    r = post(srv, once, data, "flat.wasm")
    assert r.status_code == 401 and "already used" in error_of(r)["errortext"], r.text
    assert folder(srv) == before and listed(admin, "flat") == []


def test_a_file_the_loader_refuses_leaves_nothing_behind(srv, admin):
    before = folder(srv)
    r = post(srv, upload_params(admin, "junk.wasm"), b"this is not WebAssembly", "junk.wasm")
    assert r.status_code == 431, r.text
    text = error_of(r)["errortext"]
    assert text.startswith("The plugin junk.wasm was refused: not a WebAssembly file"), text
    # A core module is not a component: the loader says so.
    r = post(srv, upload_params(admin, "core.wasm"), b"\0asm\x01\0\0\0", "core.wasm")
    assert r.status_code == 431 and "a core WebAssembly module, not a component" in error_of(r)["errortext"], r.text
    # A driver's name is its file's: NFS's driver under another name is refused, and so is an
    # upload that would replace another driver's file (the KVM driver's) with it.
    kvm_before = (plugins_dir(srv) / "kvm.wasm").read_bytes()
    for name in ("nfs2.wasm", "kvm.wasm"):
        r = post(srv, upload_params(admin, name), built("nfs.wasm").read_bytes(), name)
        expected = 'it calls itself "nfs" in describe() but was installed as {}; '.format(name)
        assert r.status_code == 431 and expected in error_of(r)["errortext"], r.text
        assert "install it as nfs.wasm" in error_of(r)["errortext"], r.text
    assert (plugins_dir(srv) / "kvm.wasm").read_bytes() == kvm_before
    assert listed(admin, "kvm")[0]["state"] == "Loaded" and listed(admin, "nfs2") == []
    # No field named file.
    r = post(srv, upload_params(admin, "junk.wasm"), b"x", "junk.wasm", field="upload")
    assert r.status_code == 431 and "no field named file" in error_of(r)["errortext"], r.text
    assert folder(srv) == before
    assert [p["name"] for p in client(admin).listPlugins()["plugin"] if p["state"] != "Loaded"] == []


def test_a_file_over_the_size_cap_is_refused(srv, admin):
    before = folder(srv)
    r = post(srv, upload_params(admin, "big.wasm"), b"\0" * (MAX_UPLOAD + 1), "big.wasm")
    assert r.status_code == 431 and "larger than the limit of 64 MiB" in error_of(r)["errortext"], r.text
    assert folder(srv) == before


def config_text(srv) -> str:
    return (srv.data_dir / "wasmstack.toml").read_text()


def test_grants_change_and_survive_a_restart(srv, admin):
    [kvm] = listed(admin, "kvm")
    missing = [c for c in kvm["missing"] if c.startswith("libvirt ")]
    assert missing, kvm
    cap = missing[0]
    reply = client(admin).updatePlugin(name="kvm", grant=cap)["plugin"]
    assert cap in reply["granted"] and cap not in reply["missing"]
    assert "libvirt test:///default" in reply["granted"], "the other grants stay"
    text = config_text(srv)
    assert cap.split(" ", 1)[1] in text and OPERATOR_NOTE.strip() in text and "timeout-ms = 20000" in text, text

    srv.stop()
    srv.start()
    [kvm] = listed(admin, "kvm")
    assert cap in kvm["granted"] and cap not in kvm["missing"], kvm

    reply = client(admin).updatePlugin(name="kvm", revoke=cap)["plugin"]
    assert cap not in reply["granted"] and cap in reply["missing"]
    srv.stop()
    srv.start()
    [kvm] = listed(admin, "kvm")
    assert cap not in kvm["granted"] and "libvirt test:///default" in kvm["granted"], kvm
    assert OPERATOR_NOTE.strip() in config_text(srv)


def test_bad_grant_requests_change_nothing(srv, admin):
    text = config_text(srv)
    [kvm] = listed(admin, "kvm")
    cases = [
        (dict(name="nosuch", grant="libvirt test:///default"), "No plugin named nosuch"),
        (dict(name="kvm", grant="libvirt nope"), 'libvirt grant "nope" is not a URI pattern'),
        (dict(name="kvm", grant="disk /dev/sda"), 'unknown capability "disk"'),
        (dict(name="kvm", grant="netdev ws-*", revoke="libvirt qemu:///nowhere"), 'has no grant "libvirt qemu:///nowhere"'),
        (dict(name="kvm", grant="images /no/scheme"), 'images grant "/no/scheme" is not a URL prefix'),
    ]
    for args, message in cases:
        with pytest.raises(CloudStackApiException) as e:
            client(admin).updatePlugin(**args)
        assert e.value.error["errorcode"] == 431 and message in e.value.error["errortext"], (args, e.value.error)
    assert config_text(srv) == text
    assert listed(admin, "kvm")[0]["granted"] == kvm["granted"]


def test_reload_plugins_rescans_the_folder(srv, admin):
    target = plugins_dir(srv) / "local.wasm"
    tmp = plugins_dir(srv) / ".local.part"
    # An earlier test in this module may have brought it: start without it.
    target.unlink(missing_ok=True)
    client(admin).reloadPlugins()
    loaded = lambda: [p for p in listed(admin, "local") if p["state"] == "Loaded"]
    assert loaded() == []
    shutil.copyfile(built("local.wasm"), tmp)
    os.replace(tmp, target)
    time.sleep(1.5)
    assert loaded() == [], "loaded with the folder watcher off"
    reply = client(admin).reloadPlugins()
    assert reply["count"] == len(reply["plugin"])
    assert "local" in [p["name"] for p in reply["plugin"]], reply
    target.unlink()
    reply = client(admin).reloadPlugins()
    assert "local" not in [p["name"] for p in reply["plugin"]], reply


def api_error(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def test_limits_and_read_grants_change_through_the_api(srv, admin):
    text = config_text(srv)
    reply = client(admin).updatePlugin(name="kvm", timeoutms=15000, memorymib=96)["plugin"]
    assert (reply["timeoutms"], reply["memorymib"]) == (15000, 96), reply
    [kvm] = listed(admin, "kvm")
    assert (kvm["timeoutms"], kvm["memorymib"]) == (15000, 96), kvm
    kvm_section = config_text(srv).split("[plugin.kvm]", 1)[1].split("\n[", 1)[0]
    assert "timeout-ms = 15000" in kvm_section and "memory-mib = 96" in kvm_section, kvm_section
    assert OPERATOR_NOTE.strip() in config_text(srv)

    # Out of range, or not a number: refused as the file would refuse it, nothing changed.
    changed = config_text(srv)
    for args, message in [
        (dict(timeoutms=0), "Invalid limits: timeoutms must be 1..=3600000"),
        (dict(memorymib=4096), "Invalid limits: memorymib must be 1..=1024, not 4096"),
        (dict(memorymib=-1), "Invalid memorymib -1: must be positive"),
    ]:
        err = api_error(lambda: client(admin).updatePlugin(name="kvm", **args))
        assert err["errorcode"] == 431 and message in err["errortext"], (args, err)
    assert config_text(srv) == changed
    assert listed(admin, "kvm")[0]["timeoutms"] == 15000

    # A read-only storage grant, shown and saved as such.
    store = "nfs://127.0.0.3/store"
    reply = client(admin).updatePlugin(name="nfs", grant="images-read " + store)["plugin"]
    assert "images-read " + store in reply["granted"] and "images " + store not in reply["granted"], reply
    assert 'images-read = ["{}"]'.format(store) in config_text(srv)
    reply = client(admin).updatePlugin(name="nfs", revoke="images-read " + store)["plugin"]
    assert "images-read " + store not in reply["granted"]

    (srv.data_dir / "wasmstack.toml").write_text(text)
    client(admin).reloadPlugins()
    [kvm] = listed(admin, "kvm")
    assert (kvm["timeoutms"], kvm["memorymib"]) == (20000, 64), kvm


def test_an_edited_file_applies_on_reload_and_a_bad_one_says_why(srv, admin):
    text = config_text(srv)
    store = "nfs://127.0.0.3/store"
    edited = text.replace("[plugin.kvm]\n", "[plugin.kvm]\nmemory-mib = 80\n", 1).replace(
        "[plugin.nfs]\n", '[plugin.nfs]\nimages-read = ["{}"]\n'.format(store), 1
    )
    assert edited != text
    (srv.data_dir / "wasmstack.toml").write_text(edited)
    time.sleep(1.5)
    assert listed(admin, "kvm")[0]["memorymib"] == 64, "applied with the watcher off"
    client(admin).reloadPlugins()
    assert listed(admin, "kvm")[0]["memorymib"] == 80
    assert "images-read " + store in listed(admin, "nfs")[0]["granted"]

    # A typo: nothing of the file is applied, and the reply and the events say why.
    bad = edited.replace("memory-mib = 80", "memory-mib = 81\nlibvrit = []", 1)
    (srv.data_dir / "wasmstack.toml").write_text(bad)
    err = api_error(lambda: client(admin).reloadPlugins())
    assert err["errorcode"] == 431, err
    assert "wasmstack.toml not applied, the previous settings stay" in err["errortext"], err
    assert "libvrit" in err["errortext"], err
    assert listed(admin, "kvm")[0]["memorymib"] == 80
    shown = [e["message"] for p in client(admin).listPlugins()["plugin"] for e in p.get("errors", [])]
    assert any("libvrit" in m and "not applied" in m for m in shown), shown
    # updatePlugin does not write over it either, and says why.
    err = api_error(lambda: client(admin).updatePlugin(name="kvm", timeoutms=1000))
    assert err["errorcode"] == 431 and "libvrit" in err["errortext"], err
    assert config_text(srv) == bad

    (srv.data_dir / "wasmstack.toml").write_text(text)
    client(admin).reloadPlugins()
    assert listed(admin, "kvm")[0]["memorymib"] == 64
    assert "images-read " + store not in listed(admin, "nfs")[0]["granted"]
    shown = [e["message"] for p in client(admin).listPlugins()["plugin"] for e in p.get("errors", [])]
    assert not any("libvrit" in m for m in shown), "a fixed file is still reported: {}".format(shown)


def test_users_cannot_manage_plugins(srv, admin):
    user = new_user_account(admin, prefix="plg")
    text = config_text(srv)
    for command, args in [
        ("getUploadParamsForPlugin", dict(name="x.wasm")),
        ("updatePlugin", dict(name="kvm", grant="libvirt qemu:///system")),
        ("reloadPlugins", {}),
    ]:
        with pytest.raises(CloudStackApiException) as e:
            getattr(client(user), command)(**args)
        assert e.value.error["errorcode"] in (401, 432), command
    assert config_text(srv) == text


def test_where_plugins_must_be_signed_the_upload_carries_the_signature(tmp_path_factory):
    """A server that trusts a key takes an uploaded driver only with its NAME.wasm.sig in the
    `signature` field, signed by that key; unsigned or signed by another key it is refused
    with the loader's reason, and nothing is left in the folder."""
    work = tmp_path_factory.mktemp("signed-upload")
    wasmstack = str(server_binary())

    def keygen(name):
        out = subprocess.run([wasmstack, "plugins", "keygen", str(work / name)], capture_output=True, text=True, check=True)
        return re.search(r"ed25519:[A-Za-z0-9+/=]+", out.stdout).group(0)

    def signed_by(key):
        copy = work / ("signed-by-" + key) / "local.wasm"
        copy.parent.mkdir()
        shutil.copyfile(built("local.wasm"), copy)
        subprocess.run([wasmstack, "plugins", "sign", "--key", str(work / key), str(copy)], capture_output=True, check=True)
        return (copy.parent / "local.wasm.sig").read_bytes()

    trusted = keygen("ops.key")
    keygen("other.key")
    server = Server("sqlite", work / "server")
    install_drivers(server.data_dir)  # unsigned: this server refuses them, which does not matter here
    (server.data_dir / "wasmstack.toml").write_text(
        '[plugin-host]\ntrusted-keys = ["{}"]\nwatch-ms = 0\n\n[plugin.local]\nimages = ["file:///"]\n'.format(trusted)
    )
    try:
        server.start()
        creds = admin_credentials(server)
        data = built("local.wasm").read_bytes()

        def upload(signature=None):
            params = client(creds).getUploadParamsForPlugin(name="local.wasm")["getuploadparams"]
            parts = urlsplit(server.endpoint)
            files = {"file": ("local.wasm", data, "application/wasm")}
            if signature is not None:
                files["signature"] = ("local.wasm.sig", signature, "application/octet-stream")
            headers = {"X-signature": params["signature"], "X-expires": params["expires"], "X-metadata": params["metadata"]}
            url = "{}://{}{}".format(parts.scheme, parts.netloc, params["postURL"])
            return requests.post(url, headers=headers, files=files, timeout=60)

        for signature, why in [(None, "unsigned: no local.wasm.sig beside it"), (signed_by("other.key"), "a key this server does not trust")]:
            r = upload(signature)
            assert r.status_code == 431 and why in r.json()["uploadpluginresponse"]["errortext"], r.text
            assert [p.name for p in (server.data_dir / "plugins").iterdir() if "local" in p.name or p.name.startswith(".")] == []
        r = upload(signed_by("ops.key"))
        assert r.status_code == 200, r.text
        assert r.json()["uploadpluginresponse"]["plugin"]["state"] == "Loaded"
        kept = sorted(p.name for p in (server.data_dir / "plugins").iterdir() if "local" in p.name or p.name.startswith("."))
        assert kept == ["local.wasm", "local.wasm.sig"], kept
    finally:
        server.close()
