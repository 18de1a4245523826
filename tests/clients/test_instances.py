"""Virtual machines through the `cs` client on a Simulator zone (libvirt's test driver):
deploy onto an Isolated VLAN network with a root disk on NFS, stop, start, reboot, destroy,
recover and expunge; who may see and act on a VM; bad input that allocates nothing; and
concurrent deploys that must never over-commit a host."""

import concurrent.futures
import ipaddress
import secrets
import time

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import NFS_URL, new_user_account


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def sim_zone(cs, web, pool=True):
    """An enabled Advanced zone with one Simulator host, an image store with a ready
    Simulator template, a VLAN physical network carrying Guest traffic, an Isolated
    network, a small service offering and (unless pool=False) an NFS primary pool."""
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zi" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2", guestcidraddress="10.1.0.0/24")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    host = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="test:///default", username="root", password="password")["host"][0]
    if pool:
        cs.createStoragePool(name="vp" + tag, url="{}/vmpool-{}".format(NFS_URL, tag), zoneid=zone["id"], clusterid=cluster["id"], scope="cluster")
    cs.addImageStore(provider="NFS", name="st" + tag, url="{}/vmtpl-{}".format(NFS_URL, tag), zoneid=zone["id"])
    t = cs.registerTemplate(name="tiny" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor="Simulator", zoneid=zone["id"], ispublic=True)["template"][0]
    deadline = time.monotonic() + 60
    while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the template did not download"
        time.sleep(0.1)
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan="100-110", isolationmethods="VLAN")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="ws-g" + tag)
    cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
    iso = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]["id"]
    net = cs.createNetwork(name="n" + tag, networkofferingid=iso, zoneid=zone["id"])["network"]
    offering = cs.createServiceOffering(name="so" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
    cs.updateZone(id=zone["id"], allocationstate="Enabled")
    return {"zone": zone, "cluster": cluster, "host": host, "template": t, "network": net, "offering": offering, "iso": iso, "tag": tag}


def deploy(cs, z, **extra):
    params = dict(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"])
    params.update(extra)
    return cs.deployVirtualMachine(**params)["virtualmachine"]


def vms_in(cs, zone):
    return cs.listVirtualMachines(zoneid=zone["id"], listall=True).get("virtualmachine", [])


def test_vm_lifecycle(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    net = z["network"]
    vm = deploy(cs, z, name="web-" + z["tag"], displayname="Web server", userdata="aGVsbG8=")
    assert vm["state"] == "Running" and vm["name"] == "web-" + z["tag"] and vm["displayname"] == "Web server"
    assert vm["hostid"] == z["host"]["id"] and vm["zoneid"] == z["zone"]["id"] and vm["hypervisor"] == "Simulator"
    assert (vm["cpunumber"], vm["cpuspeed"], vm["memory"]) == (1, 100, 64)
    assert vm["templateid"] == z["template"]["id"] and vm["serviceofferingid"] == z["offering"]["id"]
    [nic] = vm["nic"]
    assert nic["networkid"] == net["id"] and nic["isdefault"] is True and len(nic["macaddress"]) == 17
    assert ipaddress.ip_address(nic["ipaddress"]) in ipaddress.ip_network(net["cidr"])
    assert nic["gateway"] == net["gateway"] and nic["broadcasturi"] == "vlan://" + net["vlan"]
    # Its root disk was made from the template on the zone's primary pool.
    [root] = cs.listVolumes(zoneid=z["zone"]["id"], type="ROOT")["volume"]
    assert root["state"] == "Ready" and root["size"] > 0

    # The root disk goes with its VM, not on its own; nor does a host that runs VMs.
    err = error_of(lambda: cs.deleteVolume(id=root["id"]))
    assert err["errorcode"] == 536 and "root disk" in err["errortext"], err
    err = error_of(lambda: cs.deleteHost(id=z["host"]["id"]))
    assert err["errorcode"] == 536 and "VM" in err["errortext"], err

    listed = cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
    assert listed["state"] == "Running" and listed["nic"][0]["ipaddress"] == nic["ipaddress"]
    assert cs.listVirtualMachines(keyword="Web serv")["virtualmachine"][0]["id"] == vm["id"]
    assert [v["id"] for v in cs.listVirtualMachines(hostid=z["host"]["id"])["virtualmachine"]] == [vm["id"]]

    assert cs.stopVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    assert cs.listVirtualMachines(id=vm["id"], state="Stopped")["virtualmachine"][0]["id"] == vm["id"]
    err = error_of(lambda: cs.stopVirtualMachine(id=vm["id"]))
    assert err["errorcode"] == 431 and "Stopped" in err["errortext"], err
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    assert cs.rebootVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"

    # Destroyed, it can be recovered (Stopped) until it is expunged.
    assert cs.destroyVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Destroyed"
    assert cs.recoverVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert cs.listVirtualMachines(id=vm["id"]) == {}
    assert cs.listVolumes(zoneid=z["zone"]["id"], type="ROOT") == {}

    # Its address is free again: a new VM may have it.
    again = deploy(cs, z, ipaddress=nic["ipaddress"])
    assert again["nic"][0]["ipaddress"] == nic["ipaddress"]
    cs.destroyVirtualMachine(id=again["id"])
    assert cs.expungeVirtualMachine(id=again["id"]) == {"success": True}
    assert vms_in(cs, z["zone"]) == []
    events = [e["type"] for e in cs.listEvents(keyword=vm["name"], fetch_list=True)]
    for kind in ("VM.CREATE", "VM.STOP", "VM.START", "VM.REBOOT", "VM.DESTROY", "VM.RECOVER", "VM.EXPUNGE"):
        assert kind in events, events


def test_users_own_their_vms(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    mine = deploy(cs, z)
    user = new_user_account(admin)
    ucs = client(user)
    # A user gets its own network; the admin's is not theirs to use.
    err = error_of(lambda: deploy(ucs, z, networkids=z["network"]["id"]))
    assert err["errorcode"] == 531, err
    unet = ucs.createNetwork(name="un" + z["tag"], networkofferingid=z["iso"], zoneid=z["zone"]["id"])["network"]
    theirs = deploy(ucs, z)
    assert theirs["nic"][0]["networkid"] == unet["id"] and theirs["domainid"] == user.domainid
    assert "hostid" not in theirs and "instancename" not in theirs
    assert [v["id"] for v in ucs.listVirtualMachines()["virtualmachine"]] == [theirs["id"]]
    for call in (ucs.listVirtualMachines, ucs.stopVirtualMachine, ucs.destroyVirtualMachine):
        err = error_of(lambda: call(id=mine["id"]))
        assert err["errorcode"] == 531, err
    assert cs.listVirtualMachines(id=mine["id"])["virtualmachine"][0]["state"] == "Running"
    # The admin sees both, and may act on the user's.
    assert {mine["id"], theirs["id"]} <= {v["id"] for v in vms_in(cs, z["zone"])}
    assert cs.stopVirtualMachine(id=theirs["id"])["virtualmachine"]["state"] == "Stopped"
    for v in (mine, theirs):
        cs.destroyVirtualMachine(id=v["id"], expunge=True)


@pytest.mark.parametrize(
    "change, code, text",
    [
        ({"serviceofferingid": "6d2b0fa4-0000-4000-8000-000000000001"}, 431, "service offering"),
        ({"templateid": "6d2b0fa4-0000-4000-8000-000000000002"}, 431, "template"),
        ({"zoneid": "6d2b0fa4-0000-4000-8000-000000000003"}, 431, "zone"),
        ({"networkids": "6d2b0fa4-0000-4000-8000-000000000004"}, 431, "network"),
        ({"name": "bad_name"}, 431, "host name"),
        ({"ipaddress": "10.9.9.9"}, 431, "outside"),
        ({"userdata": "not base64!"}, 431, "base64"),
    ],
)
def test_bad_deploys_allocate_nothing(admin, web, change, code, text):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    err = error_of(lambda: deploy(cs, z, **change))
    assert err["errorcode"] == code and text in err["errortext"], err
    assert vms_in(cs, z["zone"]) == []
    # The address the bad request might have taken is still free.
    vm = deploy(cs, z, ipaddress="10.1.0.9")
    assert vm["nic"][0]["ipaddress"] == "10.1.0.9"
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_concurrent_deploys_never_overcommit_a_host(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    host = cs.listHosts(id=z["host"]["id"])["host"][0]
    cluster = cs.listClusters(id=z["cluster"]["id"])["cluster"][0]
    memory_mb = int(host["memorytotal"] // (1 << 20) * float(cluster["memoryovercommitratio"]))
    cpu_mhz = int(host["cpunumber"] * host["cpuspeed"] * float(cluster["cpuovercommitratio"]))
    # Sized so that memory runs out after twenty; fifty ask at once.
    big = cs.createServiceOffering(name="big" + z["tag"], displaytext="a twentieth", cpunumber=1, cpuspeed=10, memory=memory_mb // 20)["serviceoffering"]

    def one(_):
        try:
            return deploy(client(admin), z, serviceofferingid=big["id"])["state"]
        except CloudStackApiException as e:
            return e.error["errorcode"], e.error["errortext"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    running = [r for r in results if r == "Running"]
    refused = [r for r in results if r != "Running"]
    assert len(running) == 20, results
    assert all(code == 533 and "memory" in text for code, text in refused), refused
    vms = [v for v in vms_in(cs, z["zone"]) if v["state"] == "Running"]
    assert len(vms) == 20
    assert sum(v["memory"] for v in vms) <= memory_mb and sum(v["cpunumber"] * v["cpuspeed"] for v in vms) <= cpu_mhz
    # A full host refuses more at once, and a stopped VM frees its share.
    err = error_of(lambda: deploy(cs, z, serviceofferingid=big["id"]))
    assert err["errorcode"] == 533 and "memory" in err["errortext"], err
    cs.stopVirtualMachine(id=vms[0]["id"])
    assert deploy(cs, z, serviceofferingid=big["id"])["state"] == "Running"
    err = error_of(lambda: cs.startVirtualMachine(id=vms[0]["id"]))
    assert err["errorcode"] == 533, err
    for v in vms_in(cs, z["zone"]):
        cs.destroyVirtualMachine(id=v["id"], expunge=True)
    assert vms_in(cs, z["zone"]) == []


def test_first_deploys_share_one_template_copy_and_startvm_false(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    # Several first deploys at once on a new pool: the template is copied there once.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        vms = list(pool.map(lambda _: deploy(client(admin), z), range(4)))
    assert [v["state"] for v in vms] == ["Running"] * 4
    ips = {v["nic"][0]["ipaddress"] for v in vms}
    assert len(ips) == 4
    assert len(cs.listVolumes(zoneid=z["zone"]["id"], type="ROOT")["volume"]) == 4
    # Deployed without starting, a VM is Stopped until started.
    idle = deploy(cs, z, startvm=False)
    assert idle["state"] == "Stopped" and idle["nic"]
    assert cs.startVirtualMachine(id=idle["id"])["virtualmachine"]["state"] == "Running"
    cs.stopVirtualMachine(id=idle["id"], forced=True)
    for v in vms + [idle]:
        cs.destroyVirtualMachine(id=v["id"], expunge=True)
    assert vms_in(cs, z["zone"]) == [] and cs.listVolumes(zoneid=z["zone"]["id"], type="ROOT") == {}
