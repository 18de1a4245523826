"""`wasmstack serve --demo` on an empty data folder: a ready Simulator cloud in which
the `cs` client deploys an instance at once; a second start leaves the cloud as it is;
without its drivers the demo refuses to start and says why."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import ADMIN_PASSWORD, LISTENING, login, server_binary

READY_TIMEOUT = 90.0


class DemoServer:
    def __init__(self, data: Path):
        self.data = data
        self.out = data.parent / "demo-stdout.log"
        self.proc = None

    def start(self, wait_for: str):
        """Starts `serve --demo`; returns (endpoint, stdout of this start) once `wait_for` is printed."""
        offset = self.out.stat().st_size if self.out.exists() else 0
        env = dict(os.environ, WASMSTACK_ADMIN_PASSWORD=ADMIN_PASSWORD)
        args = [str(server_binary()), "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", str(self.data)]
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            text = self.out.read_bytes()[offset:].decode(errors="replace")
            if wait_for in text:
                return LISTENING.search(text).group(1), text
            assert self.proc.poll() is None, "the demo server exited:\n" + text
            assert time.monotonic() < deadline, "no {!r} within {} s:\n{}".format(wait_for, READY_TIMEOUT, text)
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def drivers_into(data: Path, names):
    wasm_dir = server_binary().parent.parent / "wasm32-wasip2" / "release"
    (data / "plugins").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(wasm_dir / (name + ".wasm"), data / "plugins" / (name + ".wasm"))


def admin_client(endpoint):
    s, lr = login(endpoint, "admin", ADMIN_PASSWORD)
    r = s.get(endpoint, params={"command": "registerUserKeys", "id": lr["userid"], "sessionkey": lr["sessionkey"], "response": "json"})
    keys = r.json()["registeruserkeysresponse"]["userkeys"]
    return CloudStack(endpoint=endpoint, key=keys["apikey"], secret=keys["secretkey"], method="post", fetch_result=True, poll_interval=0.1, job_timeout=60)


def test_demo_cloud_deploys_at_once(tmp_path):
    data = tmp_path / "data"
    drivers_into(data, ["kvm", "local", "vlan"])
    demo = DemoServer(data)
    try:
        started = time.monotonic()
        endpoint, out = demo.start("Demo cloud ready")
        ready_s = time.monotonic() - started
        print("demo ready {:.1f} s after start".format(ready_s))
        cs = admin_client(endpoint)
        [zone] = cs.listZones()["zone"]
        assert (zone["name"], zone["allocationstate"], zone["networktype"]) == ("Demo", "Enabled", "Advanced")
        [host] = cs.listHosts(zoneid=zone["id"], type="Routing")["host"]
        assert (host["hypervisor"], host["state"]) == ("Simulator", "Up")
        [pool] = cs.listStoragePools(zoneid=zone["id"])["storagepool"]
        assert pool["state"] == "Up" and pool["type"] == "Filesystem"
        [store] = cs.listImageStores(zoneid=zone["id"])["imagestore"]
        assert (store["providername"], store["protocol"]) == ("Local", "file")
        [template] = cs.listTemplates(templatefilter="featured", zoneid=zone["id"])["template"]
        assert template["isready"] is True and template["name"] == "Demo Linux"
        [offering] = cs.listServiceOfferings(name="Small")["serviceoffering"]
        [network] = cs.listNetworks(zoneid=zone["id"])["network"]
        assert network["name"] == "demo-network"
        assert template["id"] in out and offering["id"] in out

        # What a new user does next: deploy, with nothing but the zone, template and offering.
        vm = cs.deployVirtualMachine(zoneid=zone["id"], templateid=template["id"], serviceofferingid=offering["id"], name="first")["virtualmachine"]
        assert vm["state"] == "Running" and vm["nic"][0]["networkid"] == network["id"]
        [root] = cs.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"]
        assert root["storageid"] == pool["id"]
        primary = data / "demo" / "primary"
        assert any(primary.rglob("*")), "the root disk is not in the demo's primary folder"
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
        assert cs.listVirtualMachines(id=vm["id"]).get("virtualmachine", []) == []

        # The demo allows its own template's URL, not loopback: the server's other URLs
        # stay out of downloads' reach.
        base = endpoint.rsplit("/client/api", 1)[0]
        for url in [base + "/client/api", base + "/demo/template.qcow2?again"]:
            with pytest.raises(CloudStackApiException) as e:
                cs.registerTemplate(name="own", url=url, format="QCOW2", hypervisor="Simulator", zoneid=zone["id"])
            assert e.value.error["errorcode"] == 431 and "loopback" in e.value.error["errortext"], e.value.error
        demo.stop()

        # A second start keeps what is there: still one zone, and the same template.
        endpoint, out = demo.start("Demo: this data folder already has a zone")
        cs = admin_client(endpoint)
        assert [z["id"] for z in cs.listZones()["zone"]] == [zone["id"]]
        assert [t["id"] for t in cs.listTemplates(templatefilter="all")["template"]] == [template["id"]]

        # A Local image store takes only a folder; the providers the loaded drivers serve
        # (here only the local driver's) are named in the refusal.
        for provider, url, text in [
            ("Local", "nfs://127.0.0.1/export/x", "Local stores need file:///path"),
            ("NFS", "file:///tmp/x", "Image store provider NFS is not supported; the loaded storage drivers serve Local"),
            ("S3", "file:///tmp/x", "Image store provider S3 is not supported; the loaded storage drivers serve Local"),
        ]:
            with pytest.raises(CloudStackApiException) as e:
                cs.addImageStore(provider=provider, name="x", url=url, zoneid=zone["id"])
            assert e.value.error["errorcode"] == 431 and text in e.value.error["errortext"], e.value.error
        assert [s["id"] for s in cs.listImageStores()["imagestore"]] == [store["id"]]
    finally:
        demo.stop()


def test_demo_without_its_drivers_says_so(tmp_path):
    data = tmp_path / "data"
    drivers_into(data, ["kvm"])
    done = subprocess.run(
        [str(server_binary()), "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, WASMSTACK_ADMIN_PASSWORD=ADMIN_PASSWORD),
    )
    assert done.returncode != 0
    assert "demo mode needs the local driver" in done.stderr, done.stderr
    # Nothing was started or written: no database, no configuration.
    assert not (data / "wasmstack.db").exists() and not (data / "wasmstack.toml").exists()
