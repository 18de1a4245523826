"""A primary pool whose driver may only read the image store: the `nfs` driver serves the
pool on NFS and reads templates from a store the `local` driver serves, granted as
`images-read`. A deploy copies the template and boots; the store's files are never
changed, and the pool's driver is refused a write there."""

import hashlib
import secrets
import shutil
import time
from pathlib import Path

from cs import CloudStack, CloudStackApiException

from conftest import LOOPBACK_DOWNLOADS, NFS_URL, Server, admin_credentials, file_server, guest_files, server_binary


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_pool_deploys_from_a_store_it_may_only_read(tmp_path):
    tag = secrets.token_hex(3)
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    srv = Server("sqlite", tmp_path / "server")
    plugins = srv.data_dir / "plugins"
    plugins.mkdir(parents=True)
    wasm = server_binary().parent.parent / "wasm32-wasip2" / "release"
    for driver in ("kvm", "nfs", "local", "vlan"):
        shutil.copyfile(wasm / (driver + ".wasm"), plugins / (driver + ".wasm"))
    pool_url = "{}/ro-pool-{}".format(NFS_URL, tag)
    store_url = "file://{}".format(store_dir)
    (srv.data_dir / "wasmstack.toml").write_text(
        '[plugin.kvm]\nlibvirt = ["test:///default"]\n\n'
        '[plugin.nfs]\nimages = ["{pool}"]\nimages-read = ["{store}"]\n\n'
        '[plugin.local]\nimages = ["{store}"]\n'.format(pool=pool_url, store=store_url) + LOOPBACK_DOWNLOADS
    )
    srv.start()
    try:
        cs = client(admin_credentials(srv))
        zone = cs.createZone(name="zr" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2", guestcidraddress="10.1.0.0/24")["zone"]
        pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
        cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
        cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="test:///default", username="root", password="password")
        pool = cs.createStoragePool(name="rp" + tag, url=pool_url, zoneid=zone["id"], clusterid=cluster["id"], scope="cluster")["storagepool"]
        assert pool["provider"] == "nfs", pool
        store = cs.addImageStore(provider="Local", name="rs" + tag, url=store_url, zoneid=zone["id"])["imagestore"]
        web_root = tmp_path / "web"
        web_root.mkdir()
        guest_files(web_root)
        with file_server(web_root) as web:
            t = cs.registerTemplate(name="ro" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor="Simulator", zoneid=zone["id"], ispublic=True)["template"][0]
            deadline = time.monotonic() + 60
            while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
                status = cs.listTemplates(templatefilter="all", id=t["id"])["template"][0].get("status", "")
                assert time.monotonic() < deadline, "the template did not download: " + status
                time.sleep(0.1)
        before = digests(store_dir)
        assert before, "the store holds the template"

        phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan="100-110", isolationmethods="VLAN")["physicalnetwork"]
        cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="ws-r" + tag)
        cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
        iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
        net = cs.createNetwork(name="n" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
        offering = cs.createServiceOffering(name="so" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
        cs.updateZone(id=zone["id"], allocationstate="Enabled")

        vm = cs.deployVirtualMachine(serviceofferingid=offering["id"], zoneid=zone["id"], templateid=t["id"], networkids=net["id"])["virtualmachine"]
        assert vm["state"] == "Running", vm
        root = cs.listVolumes(virtualmachineid=vm["id"])["volume"][0]
        assert root["storageid"] == pool["id"], root
        assert digests(store_dir) == before, "the store changed under a read-only grant"

        # A template made from the root disk is written into the store: refused, and the
        # store stays as it was.
        cs.stopVirtualMachine(id=vm["id"])
        try:
            cs.createTemplate(name="back" + tag, displaytext="x", volumeid=root["id"])
            refused = None
        except CloudStackApiException as e:
            refused = e.error
        assert refused is not None, "a template was written into a store the pool's driver may only read"
        assert "images-read" in refused["errortext"] and "reading only" in refused["errortext"], refused
        assert digests(store_dir) == before
        assert store["id"]
    finally:
        srv.close()
