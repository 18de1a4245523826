"""Virtual machines and their volumes through Apache Libcloud's CloudStack node driver, on a
Simulator zone: the calls a Libcloud user makes (locations, sizes, images, nodes, volumes), and
with `cs` the attachVolume/detachVolume refusals."""

import ipaddress
import secrets
import time

import pytest
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider, StorageVolumeState

from conftest import BACKENDS, admin_credentials, new_user_account
from test_instances import client, deploy, error_of, sim_zone


def lc_driver(creds):
    cls = get_driver(Provider.CLOUDSTACK)
    d = cls(key=creds.apikey, secret=creds.secret, host="127.0.0.1", port=creds.server.port, path="/client/api", secure=False)
    d.connection.poll_interval = 0.05  # default 1 s
    return d


@pytest.fixture(scope="module", params=BACKENDS)
def lc_zone(request, server_factory, web):  # noqa: F811
    """A private server per backend: Libcloud's list_sizes and list_locations read every
    offering and zone, so objects other tests leave on the shared server must not be there."""
    admin = admin_credentials(server_factory(request.param))
    cs = client(admin)
    z = sim_zone(cs, web)
    z["disk"] = cs.createDiskOffering(name="d1" + z["tag"], displaytext="1 GB", disksize=1)["diskoffering"]
    # list_images reads each template's OS type name with no fallback: the image is
    # registered with one, as CloudStack users must, in place of sim_zone's.
    os_type = cs.listOsTypes()["ostype"][0]
    t = cs.registerTemplate(name="lc" + z["tag"], url=web + "/tiny.qcow2", format="QCOW2", hypervisor="Simulator", zoneid=z["zone"]["id"], ispublic=True, ostypeid=os_type["id"])["template"][0]
    deadline = time.monotonic() + 60
    while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the template did not download"
        time.sleep(0.1)
    cs.deleteTemplate(id=z["template"]["id"])
    z["template"], z["os_type"] = t, os_type
    return admin, z


def test_libcloud_nodes_and_volumes(lc_zone):
    admin, z = lc_zone
    d = lc_driver(admin)
    [loc] = d.list_locations()
    assert (loc.id, loc.name) == (z["zone"]["id"], z["zone"]["name"])
    [size] = d.list_sizes()
    assert (size.id, size.ram, size.extra["cpu"]) == (z["offering"]["id"], 64, 1)
    [image] = d.list_images(location=loc)
    assert image.id == z["template"]["id"]
    assert image.extra["hypervisor"] == "Simulator" and image.extra["format"] == "QCOW2"
    assert image.extra["os"] == z["os_type"]["description"]

    # Libcloud sends startvm=False unless told otherwise: the node is made, Stopped.
    idle = d.create_node(name="lci-" + z["tag"], size=size, image=image, location=loc)
    assert idle.state == NodeState.STOPPED and idle.name == "lci-" + z["tag"]
    busy = d.create_node(name="lcb-" + z["tag"], size=size, image=image, location=loc, ex_start_vm=True)
    assert busy.state == NodeState.RUNNING
    cidr = ipaddress.ip_network(z["network"]["cidr"])
    nodes = {n.id: n for n in d.list_nodes(location=loc)}
    assert set(nodes) == {idle.id, busy.id}
    for n in nodes.values():
        # The NIC's address is private; there are no public addresses or forwarding rules yet.
        [ip] = n.private_ips
        assert ipaddress.ip_address(ip) in cidr and n.public_ips == []
        assert n.extra["ip_addresses"] == [] and n.extra["port_forwarding_rules"] == [] and n.extra["ip_forwarding_rules"] == []
    assert nodes[busy.id].state == NodeState.RUNNING and nodes[idle.id].state == NodeState.STOPPED
    assert d.reboot_node(busy) is True

    vol = d.create_volume(size=1, name="lv-" + z["tag"], location=loc)
    assert vol.state == StorageVolumeState.AVAILABLE and vol.size == 1
    # Hot-plugged into the running node as its second disk, then recorded on the stopped one.
    for node in (busy, idle):
        assert d.attach_volume(node, vol) is True
        disks = {v.id: v for v in d.list_volumes(node=node)}
        assert len(disks) == 2 and disks[vol.id].state == StorageVolumeState.INUSE
        assert disks[vol.id].extra["instance_id"] == node.id and disks[vol.id].extra["device_id"] == 1
        assert d.detach_volume(vol) is True
        [root] = d.list_volumes(node=node)
        assert root.extra["volume_type"] == "ROOT" and root.extra["device_id"] == 0
    [mine] = [v for v in d.list_volumes() if v.id == vol.id]
    assert mine.state == StorageVolumeState.AVAILABLE and mine.extra["instance_id"] is None
    assert d.destroy_volume(vol) is True
    assert vol.id not in {v.id for v in d.list_volumes()}

    assert d.destroy_node(busy) is True
    assert {n.id: n.state for n in d.list_nodes()}[busy.id] == NodeState.TERMINATED
    for node in (busy, idle):
        assert d.destroy_node(node, ex_expunge=True) is True
    assert d.list_nodes() == []


def test_attach_refusals(admin, web):  # noqa: F811
    cs = client(admin)
    z = sim_zone(cs, web)
    disk = cs.createDiskOffering(name="d1" + z["tag"], displaytext="1 GB", disksize=1)["diskoffering"]

    def volume(api=cs):
        return api.createVolume(name="v" + secrets.token_hex(3), diskofferingid=disk["id"], zoneid=z["zone"]["id"])["volume"]

    vm = deploy(cs, z)
    data, other = volume(), volume()
    got = cs.attachVolume(id=data["id"], virtualmachineid=vm["id"])["volume"]
    assert got["virtualmachineid"] == vm["id"] and got["deviceid"] == 1 and got["vmname"] == vm["name"]
    assert got["vmstate"] == "Running" and got["state"] == "Ready" and got["type"] == "DATADISK"
    [root] = cs.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"]
    assert root["virtualmachineid"] == vm["id"] and root["deviceid"] == 0

    refusals = [
        # Already attached, here or anywhere.
        (dict(id=data["id"], virtualmachineid=vm["id"]), 536, "already attached"),
        # A root disk never moves; device 0 is the root disk's, device 1 is taken.
        (dict(id=root["id"], virtualmachineid=vm["id"]), 431, "root disk"),
        (dict(id=other["id"], virtualmachineid=vm["id"], deviceid=0), 431, "deviceid"),
        (dict(id=other["id"], virtualmachineid=vm["id"], deviceid=1), 536, "taken"),
    ]
    for params, code, text in refusals:
        err = error_of(lambda: cs.attachVolume(**params))
        assert err["errorcode"] == code and text in err["errortext"], (params, err)
    # An attached volume is not deleted, nor detached twice.
    err = error_of(lambda: cs.deleteVolume(id=data["id"]))
    assert err["errorcode"] == 536 and "detach" in err["errortext"], err
    err = error_of(lambda: cs.detachVolume(id=root["id"]))
    assert err["errorcode"] == 431 and "root disk" in err["errortext"], err

    # Another account's volume does not attach to this VM; that account cannot even see the VM.
    user = new_user_account(admin)
    ucs = client(user)
    theirs = volume(ucs)
    err = error_of(lambda: cs.attachVolume(id=theirs["id"], virtualmachineid=vm["id"]))
    assert err["errorcode"] == 531 and "account" in err["errortext"], err
    err = error_of(lambda: ucs.attachVolume(id=theirs["id"], virtualmachineid=vm["id"]))
    assert err["errorcode"] == 531, err
    err = error_of(lambda: ucs.detachVolume(id=data["id"]))
    assert err["errorcode"] == 531, err

    # A Stopped VM gets the disk too, at the next free device; a Destroyed one gets none.
    cs.stopVirtualMachine(id=vm["id"])
    got = cs.attachVolume(id=other["id"], virtualmachineid=vm["id"])["volume"]
    assert got["deviceid"] == 2 and got["vmstate"] == "Stopped"
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    # Detached by VM and device, the volume is free again.
    got = cs.detachVolume(virtualmachineid=vm["id"], deviceid=2)["volume"]
    assert got["id"] == other["id"] and "virtualmachineid" not in got and "deviceid" not in got
    err = error_of(lambda: cs.detachVolume(id=other["id"]))
    assert err["errorcode"] == 431 and "not attached" in err["errortext"], err
    cs.destroyVirtualMachine(id=vm["id"])
    err = error_of(lambda: cs.attachVolume(id=other["id"], virtualmachineid=vm["id"]))
    assert err["errorcode"] == 431 and "Destroyed" in err["errortext"], err

    # Expunging the VM leaves its data disk, detached and deletable.
    cs.expungeVirtualMachine(id=vm["id"])
    [left] = cs.listVolumes(id=data["id"])["volume"]
    assert "virtualmachineid" not in left and left["state"] == "Ready"
    for v in (data, other):
        cs.deleteVolume(id=v["id"])
    ucs.deleteVolume(id=theirs["id"])
    assert cs.listVolumes(zoneid=z["zone"]["id"], listall=True) == {}


def test_public_address_listings(admin):
    """A new account holds no public addresses: the lists Libcloud's list_nodes reads are
    empty for it, and their filters are still checked."""
    cs = client(new_user_account(admin, "la"))
    for command in ("listPublicIpAddresses", "listPortForwardingRules", "listIpForwardingRules"):
        assert getattr(cs, command)(listall=True, page=1, pagesize=10) == {}
    ghost = "6d2b0fa4-0000-4000-8000-" + secrets.token_hex(6)
    err = error_of(lambda: cs.listPublicIpAddresses(zoneid=ghost))
    assert err["errorcode"] == 431 and "zone" in err["errortext"], err
    err = error_of(lambda: cs.listPortForwardingRules(virtualmachineid=ghost))
    assert err["errorcode"] == 431, err
