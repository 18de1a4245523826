"""A driver written outside wasmstack, dropped into a running server: the `cs` client makes
a pool on it and a volume in that pool, with no restart.

The driver is `dirpool`, the folder-backed storage driver that tests/all/driver_kit.rs
generates with `wasmstack plugins new` and builds outside the workspace."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import DRIVER_GRANTS, Server, admin_credentials, install_drivers, server_binary


def dirpool_wasm() -> Path:
    """The built dirpool driver; built by its Rust test when this run has not built it yet."""
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release" / "dirpool.wasm"
    if not wasm.is_file():
        test = "driver_kit::an_authors_storage_driver_passes_check_and_serves_a_running_server"
        subprocess.run(["cargo", "test", "--release", "-p", "wasmstack", "--test", "all", test], check=True, timeout=1800)
    assert wasm.is_file(), "no dirpool driver at {}".format(wasm)
    return wasm


@pytest.fixture
def kit_server(tmp_path):
    srv = Server("sqlite", tmp_path)
    install_drivers(srv.data_dir)
    pools = tmp_path / "pools"
    pools.mkdir()
    (srv.data_dir / "wasmstack.toml").write_text(DRIVER_GRANTS + '\n[plugin.dirpool]\nimages = ["file://{}"]\n'.format(pools))
    srv.start()
    yield srv, pools
    srv.close()


def test_a_dropped_in_driver_serves_pools_and_volumes(kit_server):
    srv, pools = kit_server
    wasm = dirpool_wasm()
    creds = admin_credentials(srv)
    cs = CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=60)
    zone = cs.createZone(name="kit", networktype="Basic", dns1="10.0.0.53", internaldns1="10.0.0.53")["zone"]
    pool_args = dict(name="kit-pool", url="file://{}/p1".format(pools), zoneid=zone["id"], scope="zone", hypervisor="KVM", provider="dirpool")
    with pytest.raises(CloudStackApiException) as e:
        cs.createStoragePool(**pool_args)
    assert e.value.error["errorcode"] == 431 and "Storage provider dirpool is not a loaded storage driver" in e.value.error["errortext"]

    # Dropped in while the server runs: its plugin watcher loads it.
    tmp = srv.data_dir / "plugins" / ".dirpool.wasm.part"
    shutil.copyfile(wasm, tmp)
    os.replace(tmp, srv.data_dir / "plugins" / "dirpool.wasm")
    # Its schema asks for a quota: without one the server refuses, naming the detail.
    deadline = time.monotonic() + 20
    while True:
        with pytest.raises(CloudStackApiException) as e:
            cs.createStoragePool(**pool_args)
        if "not a loaded storage driver" not in e.value.error["errortext"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert e.value.error["errorcode"] == 431 and e.value.error["errortext"] == "Missing detail quota-mib: dirpool requires it", e.value.error
    for details, why in [
        ({"quota-mib": "0"}, "Invalid detail quota-mib=0: must be at least 1"),
        ({"quota-mib": "lots"}, "Invalid detail quota-mib=lots: must be a whole number"),
        ({"quota-mib": 64, "layout": "deep"}, "Invalid detail layout=deep: must be one of nested, flat"),
        ({"quota-mib": 64, "colour": "red"}, "Unknown detail colour: dirpool takes quota-mib, layout"),
    ]:
        with pytest.raises(CloudStackApiException) as e:
            cs.createStoragePool(details=details, **pool_args)
        assert (e.value.error["errorcode"], e.value.error["errortext"]) == (431, why), e.value.error
    assert "storagepool" not in cs.listStoragePools() and not (pools / "p1").exists(), "a refused pool was made"

    # The key/value form of the map, as libcloud-style callers send it; the driver reads the quota.
    pool = cs.createStoragePool(details=[{"key": "quota-mib", "value": "2048"}], **pool_args)["storagepool"]
    assert pool["state"] == "Up" and (pools / "p1").is_dir()
    [listed] = cs.listStoragePools(id=pool["id"])["storagepool"]
    assert listed["disksizetotal"] == 2048 << 20, listed
    [listed] = cs.listPlugins(name="dirpool")["plugin"]
    assert (listed["name"], listed["kind"]) == ("dirpool", "storage"), listed
    assert listed["configschema"]["properties"]["layout"]["enum"] == ["nested", "flat"], listed

    vol = cs.createVolume(name="kit-vol", zoneid=zone["id"], size=1)["volume"]
    assert vol["storage"] == "kit-pool" and vol["size"] == 1 << 30, vol
    files = [p for p in (pools / "p1").rglob("*") if p.is_file()]
    assert len(files) == 1 and vol["id"] in files[0].name, files
    cs.deleteVolume(id=vol["id"])
    assert not [p for p in (pools / "p1").rglob("*") if p.is_file()], "the volume's file outlived it"


def test_add_host_checks_the_hypervisor_drivers_settings(kit_server):
    """addHost takes the KVM driver's settings (its schema has `accel`) as details: a bad or
    unknown one is refused naming it and adds nothing; the default leaves the URL as given."""
    srv, _ = kit_server
    creds = admin_credentials(srv)
    cs = CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=60)
    zone = cs.createZone(name="hosts", networktype="Basic", dns1="10.0.0.53", internaldns1="10.0.0.53")["zone"]
    pod = cs.createPod(name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = cs.addCluster(clustername="c", clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    host_args = dict(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="test:///default", username="root", password="x")
    [kvm] = cs.listPlugins(name="kvm")["plugin"]
    assert kvm["configschema"]["properties"]["accel"]["enum"] == ["auto", "kvm", "tcg"], kvm
    for details, why in [
        ({"accel": "fast"}, "Invalid detail accel=fast: must be one of auto, kvm, tcg"),
        ({"cores": "2"}, "Unknown detail cores: kvm takes accel"),
    ]:
        with pytest.raises(CloudStackApiException) as e:
            cs.addHost(details=details, **host_args)
        assert (e.value.error["errorcode"], e.value.error["errortext"]) == (431, why), e.value.error
    assert "host" not in cs.listHosts()
    [host] = cs.addHost(details=[{"key": "accel", "value": "auto"}], **host_args)["host"]
    assert host["state"] == "Up", host
    # A setting that is not the default reaches the driver in the URL; the driver takes it
    # off before it opens libvirt, so the host still answers.
    cs.deleteHost(id=host["id"])
    [host] = cs.addHost(details=[{"key": "accel", "value": "tcg"}], **host_args)["host"]
    assert host["state"] == "Up", host
