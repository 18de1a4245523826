"""Changes to existing VMs through the `cs` client on the Simulator (libvirt's test driver):
scaleVirtualMachine, attachIso/detachIso, migrateVirtualMachine and findHostsForMigration,
and a start that defines again a domain its host lost (libvirt's test state is reset when
the server restarts). Every refused request answers in the API's error format and changes
nothing: the VM listing is the same before and after."""

import re
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cs import CloudStack

from conftest import admin_credentials, new_user_account
from test_instance_guest import QEMU, domstate, host_server, virsh, zone_with  # noqa: F401 (host_server is a fixture)
from test_instances import client, deploy, error_of, sim_zone, vms_in

MISSING = "6d2b0fa4-0000-4000-8000-00000000000f"


def refused(cs, z, call, code, text):
    """The call fails with `code` and `text` in its message, and no VM changed."""
    before = vms_in(cs, z["zone"])
    err = error_of(call)
    assert err["errorcode"] == code and text in err["errortext"], err
    assert vms_in(cs, z["zone"]) == before
    return err


def host_memory_mb(cs, z, host_id):
    host = cs.listHosts(id=host_id)["host"][0]
    cluster = cs.listClusters(id=z["cluster"]["id"])["cluster"][0]
    return int(host["memorytotal"] // (1 << 20) * float(cluster["memoryovercommitratio"]))


def register_iso(cs, web, zone_id, **extra):
    iso = cs.registerIso(name="iso" + secrets.token_hex(3), displaytext="Tiny ISO", url=web + "/tiny.iso", zoneid=zone_id, bootable=True, **extra)["iso"][0]
    deadline = time.monotonic() + 60
    while not cs.listIsos(isofilter="all", id=iso["id"])["iso"][0]["isready"]:
        assert time.monotonic() < deadline, "the ISO did not download"
        time.sleep(0.1)
    return iso


def test_scale_a_stopped_vm(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    vm = deploy(cs, z)
    bigger = cs.createServiceOffering(name="sb" + z["tag"], displaytext="bigger", cpunumber=2, cpuspeed=200, memory=128)["serviceoffering"]
    too_big = host_memory_mb(cs, z, z["host"]["id"]) + 1
    huge = cs.createServiceOffering(name="sh" + z["tag"], displaytext="huge", cpunumber=1, cpuspeed=100, memory=too_big)["serviceoffering"]

    # Only a Stopped VM scales.
    refused(cs, z, lambda: cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=bigger["id"]), 431, "only a Stopped VM")
    cs.stopVirtualMachine(id=vm["id"])
    # What does not fit its host, the same offering, unknown ids, a missing parameter.
    err = refused(cs, z, lambda: cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=huge["id"]), 533, "memory")
    assert "{} MB".format(too_big) in err["errortext"], err
    refused(cs, z, lambda: cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=z["offering"]["id"]), 431, "already has")
    refused(cs, z, lambda: cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=MISSING), 431, "service offering")
    refused(cs, z, lambda: cs.scaleVirtualMachine(id=MISSING, serviceofferingid=bigger["id"]), 431, "virtual machine")
    refused(cs, z, lambda: cs.scaleVirtualMachine(id=vm["id"]), 431, "serviceofferingid")

    scaled = cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=bigger["id"])["virtualmachine"]
    assert scaled["state"] == "Stopped" and scaled["serviceofferingid"] == bigger["id"], scaled
    assert (scaled["cpunumber"], scaled["cpuspeed"], scaled["memory"]) == (2, 200, 128)
    # It starts with the new size (the domain was defined again).
    started = cs.startVirtualMachine(id=vm["id"])["virtualmachine"]
    assert started["state"] == "Running" and started["memory"] == 128
    events = [e["type"] for e in cs.listEvents(keyword=vm["name"], fetch_list=True)]
    assert "VM.SCALE" in events, events
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_revert_only_the_volume_of_a_stopped_vm(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    vm = deploy(cs, z)
    [root] = cs.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"]
    snap = cs.createSnapshot(volumeid=root["id"])["snapshot"]
    # The guest has its disk open while it runs: reverting under it is refused, nothing changes.
    err = error_of(lambda: cs.revertSnapshot(id=snap["id"]))
    assert err["errorcode"] == 431 and "stop it before reverting" in err["errortext"], err
    assert cs.listVolumes(id=root["id"])["volume"][0]["state"] == "Ready"
    cs.stopVirtualMachine(id=vm["id"])
    assert cs.revertSnapshot(id=snap["id"])["snapshot"]["id"] == snap["id"]
    assert cs.listVolumes(id=root["id"])["volume"][0]["state"] == "Ready"


def test_users_scale_only_their_vms(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    mine = deploy(cs, z, startvm=False)
    ucs = client(new_user_account(admin))
    refused(cs, z, lambda: ucs.scaleVirtualMachine(id=mine["id"], serviceofferingid=z["offering"]["id"]), 531, "permission")
    cs.destroyVirtualMachine(id=mine["id"], expunge=True)


def test_attach_and_detach_an_iso(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    iso = register_iso(cs, web, z["zone"]["id"])
    vm = deploy(cs, z)

    # Nothing to detach yet; not an ISO; unknown ids.
    refused(cs, z, lambda: cs.detachIso(virtualmachineid=vm["id"]), 431, "no ISO")
    refused(cs, z, lambda: cs.attachIso(id=z["template"]["id"], virtualmachineid=vm["id"]), 431, "ISO")
    refused(cs, z, lambda: cs.attachIso(id=MISSING, virtualmachineid=vm["id"]), 431, "ISO")
    refused(cs, z, lambda: cs.attachIso(id=iso["id"], virtualmachineid=MISSING), 431, "virtual machine")
    # An ISO of another zone.
    other = sim_zone(cs, web, pool=False)
    elsewhere = register_iso(cs, web, other["zone"]["id"])
    refused(cs, z, lambda: cs.attachIso(id=elsewhere["id"], virtualmachineid=vm["id"]), 431, "not registered in the VM's zone")
    # A user's VM cannot have the admin's private ISO.
    user = new_user_account(admin)
    ucs = client(user)
    ucs.createNetwork(name="un" + z["tag"], networkofferingid=z["iso"], zoneid=z["zone"]["id"])
    theirs = deploy(ucs, z)
    refused(cs, z, lambda: ucs.attachIso(id=iso["id"], virtualmachineid=theirs["id"]), 531, "permission")

    # Into a running VM, and out again.
    attached = cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]
    assert (attached["isoid"], attached["isoname"], attached["isodisplaytext"]) == (iso["id"], iso["name"], "Tiny ISO")
    assert attached["state"] == "Running"
    assert cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["isoid"] == iso["id"]
    refused(cs, z, lambda: cs.attachIso(id=iso["id"], virtualmachineid=vm["id"]), 431, "already has ISO")
    err = error_of(lambda: cs.deleteIso(id=iso["id"]))
    assert err["errorcode"] == 536 and "attached to VM(s) " + vm["name"] in err["errortext"], err
    detached = cs.detachIso(virtualmachineid=vm["id"])["virtualmachine"]
    assert "isoid" not in detached and "isoname" not in detached
    refused(cs, z, lambda: cs.detachIso(virtualmachineid=vm["id"]), 431, "no ISO")

    # Into a stopped VM: it starts with it, and keeps it across a stop.
    cs.stopVirtualMachine(id=vm["id"])
    assert cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]["isoid"] == iso["id"]
    started = cs.startVirtualMachine(id=vm["id"])["virtualmachine"]
    assert started["state"] == "Running" and started["isoid"] == iso["id"]
    assert "isoid" not in cs.detachIso(virtualmachineid=vm["id"])["virtualmachine"]
    events = [e["type"] for e in cs.listEvents(keyword=vm["name"], fetch_list=True)]
    assert events.count("ISO.ATTACH") == 2 and events.count("ISO.DETACH") == 2, events
    assert cs.deleteIso(id=iso["id"]) == {"success": True}
    for v in (vm, theirs):
        cs.destroyVirtualMachine(id=v["id"], expunge=True)


def test_migrate_within_a_cluster(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    pod = cs.listPods(zoneid=z["zone"]["id"])["pod"][0]
    second = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=z["zone"]["id"], clusterid=z["cluster"]["id"], url="test:///default", username="root", password="password")["host"][0]
    hosts = {z["host"]["id"], second["id"]}
    vm = deploy(cs, z)
    src = vm["hostid"]
    [dst] = hosts - {src}

    found = cs.findHostsForMigration(id=vm["id"])["host"]
    assert [(h["id"], h["suitableformigration"]) for h in found] == [(dst, True)], found

    refused(cs, z, lambda: cs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=src), 431, "already runs on")
    refused(cs, z, lambda: cs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=MISSING), 431, "host")
    refused(cs, z, lambda: cs.migrateVirtualMachine(virtualmachineid=MISSING, hostid=dst), 431, "virtual machine")
    refused(cs, z, lambda: cs.migrateVirtualMachine(hostid=dst), 431, "virtualmachineid")
    # An admin-only command: a user does not have it.
    ucs = client(new_user_account(admin))
    err = error_of(lambda: ucs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=dst))
    assert err["errorcode"] == 401, err

    # A running VM moves, with its data disk and ISO.
    offering = cs.createDiskOffering(name="md" + z["tag"], displaytext="data", disksize=1)["diskoffering"]
    data = cs.createVolume(name="md" + z["tag"], diskofferingid=offering["id"], zoneid=z["zone"]["id"])["volume"]
    cs.attachVolume(id=data["id"], virtualmachineid=vm["id"])
    iso = register_iso(cs, web, z["zone"]["id"])
    cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])
    moved = cs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=dst)["virtualmachine"]
    assert moved["hostid"] == dst and moved["state"] == "Running" and moved["isoid"] == iso["id"], moved
    assert cs.listVolumes(id=data["id"])["volume"][0]["virtualmachineid"] == vm["id"]
    assert [h["id"] for h in cs.findHostsForMigration(id=vm["id"])["host"]] == [src]
    # A stopped one moves its definition back, and starts there.
    cs.stopVirtualMachine(id=vm["id"])
    back = cs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=src)["virtualmachine"]
    assert back["hostid"] == src and back["state"] == "Stopped", back
    started = cs.startVirtualMachine(id=vm["id"])["virtualmachine"]
    assert started["hostid"] == src and started["state"] == "Running"
    # Without hostid the other host is chosen.
    assert cs.migrateVirtualMachine(virtualmachineid=vm["id"])["virtualmachine"]["hostid"] == dst

    # A host without room for it: 533 naming what ran out.
    memory_mb = host_memory_mb(cs, z, src)
    big = cs.createServiceOffering(name="mb" + z["tag"], displaytext="most of a host", cpunumber=1, cpuspeed=10, memory=memory_mb * 6 // 10)["serviceoffering"]
    big1 = deploy(cs, z, serviceofferingid=big["id"])
    big2 = deploy(cs, z, serviceofferingid=big["id"])
    assert {big1["hostid"], big2["hostid"]} == hosts
    found = cs.findHostsForMigration(id=big1["id"])["host"]
    assert [(h["id"], h["suitableformigration"]) for h in found] == [(big2["hostid"], False)], found
    refused(cs, z, lambda: cs.migrateVirtualMachine(virtualmachineid=big1["id"], hostid=big2["hostid"]), 533, "memory")

    # A host of another cluster is refused.
    other = cs.addCluster(clustername="co" + z["tag"], clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=z["zone"]["id"])["cluster"][0]
    far = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=z["zone"]["id"], clusterid=other["id"], url="test:///default", username="root", password="password")["host"][0]
    refused(cs, z, lambda: cs.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=far["id"]), 431, "within its cluster")

    events = [e["type"] for e in cs.listEvents(keyword=vm["name"], fetch_list=True)]
    assert events.count("VM.MIGRATE") == 3, events
    for v in (vm, big1, big2):
        cs.destroyVirtualMachine(id=v["id"], expunge=True)
    assert vms_in(cs, z["zone"]) == []


def test_start_defines_a_lost_domain_again(server_factory, web):
    """libvirt's test driver keeps its domains in the server process: after a restart the
    host knows none of the VMs. The reconciler settles a migration the stop cut short as
    Stopped, and a start defines each VM again from the database (with its scaled size and
    its ISO) before starting it."""
    srv = server_factory("sqlite")
    cs = client(admin_credentials(srv))
    z = sim_zone(cs, web)
    iso = register_iso(cs, web, z["zone"]["id"])
    bigger = cs.createServiceOffering(name="rb" + z["tag"], displaytext="bigger", cpunumber=2, cpuspeed=100, memory=96)["serviceoffering"]
    running = deploy(cs, z)
    stopped = deploy(cs, z, startvm=False)
    cs.scaleVirtualMachine(id=stopped["id"], serviceofferingid=bigger["id"])
    cs.attachIso(id=iso["id"], virtualmachineid=stopped["id"])

    srv.stop()
    # As if the server had stopped in the middle of migrating it.
    con = sqlite3.connect(str(srv.sqlite_path))
    try:
        assert con.execute("UPDATE instances SET state = 'Migrating' WHERE uuid = ?", (running["id"],)).rowcount == 1
        con.commit()
    finally:
        con.close()
    srv.start()
    cs = client(admin_credentials(srv))
    deadline = time.monotonic() + 30
    while cs.listVirtualMachines(id=running["id"])["virtualmachine"][0]["state"] != "Stopped":
        assert time.monotonic() < deadline, "the reconciler did not settle the migration a stop cut short"
        time.sleep(0.2)
    [ev] = [e for e in cs.listEvents(type="VM.SYNC", listall=True)["event"] if e.get("resourceid") == running["id"]]
    assert "left Migrating by a stopped management server" in ev["description"], ev
    for v in (running, stopped):
        assert cs.startVirtualMachine(id=v["id"])["virtualmachine"]["state"] == "Running"
    assert srv.stderr_path.read_text().count("defining it again") == 2
    again = cs.listVirtualMachines(id=stopped["id"])["virtualmachine"][0]
    assert again["memory"] == 96 and again["isoid"] == iso["id"]
    # The domains exist again: stop and start work as usual.
    cs.stopVirtualMachine(id=running["id"])
    assert cs.startVirtualMachine(id=running["id"])["virtualmachine"]["state"] == "Running"
    for v in (running, stopped):
        cs.destroyVirtualMachine(id=v["id"], expunge=True)


def test_iso_scale_and_a_lost_domain_on_a_real_kvm_host(host_server, web):
    """On the local libvirtd: the ISO is hot-plugged into the running guest and unplugged
    again; a scale shows in the domain's definition; a domain undefined behind the server's
    back is defined again by the next start."""
    creds = admin_credentials(host_server)
    cs = CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=300)
    tag = secrets.token_hex(3)
    bridge = "ws-g" + tag
    uuid = None
    try:
        z = zone_with(cs, web, tag, "KVM", QEMU, bridge, "10.86.0.0/24", "3560-3569", 128)
        iso = register_iso(cs, web, z["zone"]["id"])
        vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], name="c-" + tag)["virtualmachine"]
        uuid = vm["id"]
        assert domstate(uuid) == "running"

        cdrom = re.compile(r"<disk type='network' device='cdrom'>.*?<target dev='sda' bus='scsi'/>", re.S)
        assert cs.attachIso(id=iso["id"], virtualmachineid=uuid)["virtualmachine"]["isoid"] == iso["id"]
        for flags in ([], ["--inactive"]):
            xml = virsh("dumpxml", *flags, uuid).stdout
            assert cdrom.search(xml), xml
        assert "isoid" not in cs.detachIso(virtualmachineid=uuid)["virtualmachine"]
        for flags in ([], ["--inactive"]):
            assert "device='cdrom'" not in virsh("dumpxml", *flags, uuid).stdout

        cs.stopVirtualMachine(id=uuid, forced=True)
        bigger = cs.createServiceOffering(name="kb" + tag, displaytext="bigger", cpunumber=2, cpuspeed=100, memory=192)["serviceoffering"]
        assert cs.scaleVirtualMachine(id=uuid, serviceofferingid=bigger["id"])["virtualmachine"]["cpunumber"] == 2
        xml = virsh("dumpxml", "--inactive", uuid).stdout
        assert re.search(r"<vcpu[^>]*>2</vcpu>", xml) and re.search(r"<memory unit='KiB'>196608</memory>", xml), xml

        assert virsh("undefine", uuid).returncode == 0 and domstate(uuid) is None
        assert cs.startVirtualMachine(id=uuid)["virtualmachine"]["state"] == "Running"
        assert domstate(uuid) == "running"
        assert re.search(r"<vcpu[^>]*>2</vcpu>", virsh("dumpxml", uuid).stdout)
        cs.destroyVirtualMachine(id=uuid, expunge=True)
        assert domstate(uuid) is None
    finally:
        if uuid:
            virsh("destroy", uuid)
            virsh("undefine", uuid)
            for log in Path("/var/log/libvirt/qemu").glob("*-{}.serial.log".format(uuid)):
                log.unlink(missing_ok=True)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
