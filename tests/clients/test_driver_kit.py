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
    deadline = time.monotonic() + 20
    while True:
        try:
            pool = cs.createStoragePool(**pool_args)["storagepool"]
            break
        except CloudStackApiException as e:
            assert "not a loaded storage driver" in e.error["errortext"] and time.monotonic() < deadline, e.error
            time.sleep(0.2)
    assert pool["state"] == "Up" and (pools / "p1").is_dir()
    [listed] = cs.listPlugins(name="dirpool")["plugin"]
    assert (listed["name"], listed["kind"]) == ("dirpool", "storage"), listed

    vol = cs.createVolume(name="kit-vol", zoneid=zone["id"], size=1)["volume"]
    assert vol["storage"] == "kit-pool" and vol["size"] == 1 << 30, vol
    files = [p for p in (pools / "p1").rglob("*") if p.is_file()]
    assert len(files) == 1 and vol["id"] in files[0].name, files
    cs.deleteVolume(id=vol["id"])
    assert not [p for p in (pools / "p1").rglob("*") if p.is_file()], "the volume's file outlived it"
