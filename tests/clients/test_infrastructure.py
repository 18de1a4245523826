"""The zone wizard's commands through the `cs` client: zone -> pod -> cluster -> host, with
the host probed through the KVM driver on libvirt's test driver (the Simulator)."""

import secrets
import time

import pytest
from cs import CloudStack, CloudStackApiException


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", poll_interval=0.05, timeout=10)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def bring_up(cs, tag):
    zone = cs.createZone(name="z" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])
    assert cluster["count"] == 1, cluster
    cluster = cluster["cluster"][0]
    host = cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="http://sim/c0/h0", username="root", password="password")
    assert host["count"] == 1, host
    return zone, pod, cluster, host["host"][0]


def test_zone_to_host_bring_up_and_teardown(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone, pod, cluster, host = bring_up(cs, tag)
    assert zone["networktype"] == "Advanced" and zone["allocationstate"] == "Disabled"
    assert pod["zoneid"] == zone["id"] and pod["startip"] == ["10.1.0.10"]
    assert cluster["hypervisortype"] == "Simulator" and cluster["podid"] == pod["id"]
    # The host's figures come from probing it through the driver, not from the request.
    assert host["state"] == "Up" and host["resourcestate"] == "Enabled" and host["type"] == "Routing"
    assert host["cpunumber"] > 0 and host["memorytotal"] > 0
    assert host["hypervisorversion"].startswith("TEST ")
    assert host["clusterid"] == cluster["id"] and host["driver"] == "kvm"

    assert cs.updateZone(id=zone["id"], allocationstate="Enabled")["zone"]["allocationstate"] == "Enabled"
    assert [h["id"] for h in cs.listHosts(clusterid=cluster["id"])["host"]] == [host["id"]]
    assert [z["id"] for z in cs.listZones(id=zone["id"])["zone"]] == [zone["id"]]

    # Deleting what is in use is refused with 536, naming what uses it.
    err = error_of(lambda: cs.deleteZone(id=zone["id"]))
    assert err["errorcode"] == 536 and "p" + tag in err["errortext"], err
    err = error_of(lambda: cs.deletePod(id=pod["id"]))
    assert err["errorcode"] == 536 and "c" + tag in err["errortext"], err
    err = error_of(lambda: cs.deleteCluster(id=cluster["id"]))
    assert err["errorcode"] == 536 and host["name"] in err["errortext"], err

    # Torn down from the bottom, everything goes.
    for call, ident in [(cs.deleteHost, host), (cs.deleteCluster, cluster), (cs.deletePod, pod), (cs.deleteZone, zone)]:
        assert call(id=ident["id"]) == {"success": True}
    assert cs.listZones(id=zone["id"]) == {}
    events = [e["type"] for e in cs.listEvents(keyword=tag, fetch_list=True)]
    for kind in ["ZONE.CREATE", "POD.CREATE", "CLUSTER.CREATE", "HOST.CREATE", "ZONE.DELETE"]:
        assert kind in events, events


@pytest.mark.parametrize(
    "command, params, text",
    [
        ("createZone", {"name": "bad-nt", "networktype": "Fancy", "dns1": "8.8.8.8", "internaldns1": "10.0.0.2"}, "networktype"),
        ("createZone", {"name": "bad-dns", "networktype": "Basic", "dns1": "8.8.8", "internaldns1": "10.0.0.2"}, "dns1"),
        ("createZone", {"name": "bad-cidr", "networktype": "Basic", "dns1": "8.8.8.8", "internaldns1": "10.0.0.2", "guestcidraddress": "10.1.1.1/24"}, "host bits"),
    ],
)
def test_bad_zone_input(admin, command, params, text):
    cs = client(admin)
    err = error_of(lambda: getattr(cs, command)(**params))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    assert cs.listZones(name=params["name"]) == {}


def test_bad_pod_range_and_unknown_zone(admin):
    cs = client(admin)
    zone = cs.createZone(name="zr" + secrets.token_hex(3), networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    err = error_of(lambda: cs.createPod(name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0", startip="10.1.0.50", endip="10.1.0.10"))
    assert err["errorcode"] == 431 and "start IP" in err["errortext"], err
    err = error_of(lambda: cs.createPod(name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0", startip="10.2.0.5", endip="10.2.0.10"))
    assert err["errorcode"] == 431 and "subnet" in err["errortext"], err
    err = error_of(lambda: cs.createPod(name="p", zoneid="00000000-0000-4000-8000-000000000000"))
    assert err["errorcode"] == 431 and "zone" in err["errortext"], err
    assert cs.listPods(zoneid=zone["id"]) == {}


def test_unreachable_and_ungranted_hosts_are_refused_in_bounded_time(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zh" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cluster = cs.addCluster(clustername="k" + tag, clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], accel="tcg")["cluster"][0]
    assert cluster["accel"] == "tcg"

    started = time.monotonic()
    err = error_of(lambda: cs.addHost(hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="qemu+tcp://127.0.0.1:1/system"))
    assert time.monotonic() - started < 20
    assert err["errorcode"] == 534 and "qemu+tcp://127.0.0.1:1/system" in err["errortext"], err

    # qemu:///system is not granted to the driver in this server's configuration.
    err = error_of(lambda: cs.addHost(hypervisor="KVM", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="qemu:///system"))
    assert err["errorcode"] == 534 and "not granted" in err["errortext"], err
    # A Simulator host cannot join a KVM cluster.
    err = error_of(lambda: cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="http://sim"))
    assert err["errorcode"] == 431, err
    assert cs.listHosts(clusterid=cluster["id"]) == {}
