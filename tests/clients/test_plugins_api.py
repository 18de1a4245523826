"""listPlugins (wasmstack's own command, for the console's plugins page) through the `cs` client:
the loaded drivers with what they ask for and are granted, for admins only."""

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import new_user_account


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, poll_interval=0.05, timeout=10)


def test_list_plugins_shows_the_loaded_drivers(admin):
    reply = client(admin).listPlugins()
    plugins = {p["name"]: p for p in reply["plugin"]}
    assert reply["count"] == len(reply["plugin"])
    kvm = plugins["kvm"]
    assert kvm["kind"] == "hypervisor"
    assert kvm["state"] == "Loaded"
    assert kvm["file"] == "kvm.wasm", "only the file's name, not where the folder is"
    assert kvm["version"] and kvm["sha256"] and kvm["wit"]
    assert any(a.startswith("libvirt ") for a in kvm["asks"])
    # The suite's grants name libvirt's test driver.
    assert "libvirt test:///default" in kvm["granted"]
    assert set(kvm["missing"]) <= set(kvm["asks"])
    assert kvm["memorymib"] > 0 and kvm["timeoutms"] > 0
    assert kvm["errors"] == []

    only = client(admin).listPlugins(name="kvm")
    assert [p["name"] for p in only["plugin"]] == ["kvm"]
    paged = client(admin).listPlugins(page=1, pagesize=1)
    assert len(paged["plugin"]) == 1 and paged["count"] == reply["count"]


def test_list_plugins_is_for_admins(admin):
    user = new_user_account(admin, prefix="plug")
    with pytest.raises(CloudStackApiException) as denied:
        client(user).listPlugins()
    assert denied.value.error["errorcode"] in (401, 432)
