"""Public IPs through the `cs` client on a Simulator zone with public traffic: a zone
public range, acquiring and releasing addresses, the source NAT address a network gets
on its first deploy, static NAT, the router and its admin commands, and refusals with
CloudStack's codes and texts that change nothing."""

import secrets

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import new_user_account
from test_instances import sim_zone


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def public_zone(cs, web, start="198.51.100.10", end="198.51.100.20"):
    """sim_zone with Public traffic on its physical network and an untagged public range."""
    z = sim_zone(cs, web, pool=False)
    phys = cs.listPhysicalNetworks(zoneid=z["zone"]["id"])["physicalnetwork"][0]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Public", kvmnetworklabel="ws-p" + z["tag"])
    z["range"] = cs.createVlanIpRange(zoneid=z["zone"]["id"], gateway="198.51.100.1", netmask="255.255.255.0", startip=start, endip=end)["vlan"]
    return z


def ips_of(cs, **params):
    return cs.listPublicIpAddresses(**params).get("publicipaddress", [])


def test_public_ranges(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    zone = z["zone"]["id"]
    # No Public traffic yet: no physical network to put the range on.
    err = error_of(lambda: cs.createVlanIpRange(zoneid=zone, gateway="198.51.100.1", netmask="255.255.255.0", startip="198.51.100.10", endip="198.51.100.20"))
    assert err["errorcode"] == 431 and err["errortext"] == "Unable to find the default physical network with traffic=Public in the specified zone id", err
    phys = cs.listPhysicalNetworks(zoneid=zone)["physicalnetwork"][0]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Public", kvmnetworklabel="ws-p" + z["tag"])
    assert "Public" in [t["traffictype"] for t in cs.listTrafficTypes(physicalnetworkid=phys["id"])["traffictype"]]
    r = cs.createVlanIpRange(zoneid=zone, forvirtualnetwork=True, gateway="198.51.100.1", netmask="255.255.255.0", startip="198.51.100.10", endip="198.51.100.20")["vlan"]
    assert (r["forvirtualnetwork"], r["vlan"], r["cidr"], r["physicalnetworkid"]) == (True, "untagged", "198.51.100.0/24", phys["id"])
    tagged = cs.createVlanIpRange(zoneid=zone, vlan="300", gateway="203.0.113.1", netmask="255.255.255.0", startip="203.0.113.5", endip="203.0.113.6")["vlan"]
    assert tagged["vlan"] == "vlan://300"
    listed = cs.listVlanIpRanges(zoneid=zone, forvirtualnetwork=True)["vlaniprange"]
    assert {x["id"] for x in listed} == {r["id"], tagged["id"]}
    free = ips_of(cs, zoneid=zone, allocatedonly=False)
    assert len(free) == 13 and all(ip["state"] == "Free" for ip in free)
    assert ips_of(cs, zoneid=zone) == []

    err = error_of(lambda: cs.createVlanIpRange(zoneid=zone, gateway="198.51.100.1", netmask="255.255.255.0", startip="198.51.100.15", endip="198.51.100.30"))
    assert err["errorcode"] == 431 and err["errortext"] == "The IP range already has IPs that overlap with the new range. Please specify a different start IP/end IP.", err
    err = error_of(lambda: cs.createVlanIpRange(zoneid=zone, vlan="301", gateway="203.0.113.1", netmask="255.255.255.0", startip="203.0.113.50", endip="203.0.113.60"))
    assert err["errorcode"] == 431 and err["errortext"].endswith("has overlapped with the subnet. Please specify a different gateway/netmask."), err
    assert cs.listVlanIpRanges(zoneid=zone)["count"] == 2
    cs.deleteVlanIpRange(id=tagged["id"])
    assert [x["id"] for x in cs.listVlanIpRanges(zoneid=zone)["vlaniprange"]] == [r["id"]]


def test_acquire_list_and_release(admin, web):
    cs = client(admin)
    z = public_zone(cs, web)
    user = new_user_account(admin, "pi")
    ucs = client(user)
    net = ucs.createNetwork(name="pn" + z["tag"], networkofferingid=z["iso"], zoneid=z["zone"]["id"])["network"]
    nat = ucs.associateIpAddress(networkid=net["id"])["ipaddress"]
    assert nat["issourcenat"] is True and nat["state"] == "Allocated" and nat["associatednetworkid"] == net["id"]
    assert nat["ipaddress"] == "198.51.100.10" and "vlanid" not in nat
    extra = ucs.associateIpAddress(zoneid=z["zone"]["id"])["ipaddress"]
    assert extra["issourcenat"] is False and extra["associatednetworkid"] == net["id"]
    assert sorted(ip["ipaddress"] for ip in ips_of(ucs)) == ["198.51.100.10", "198.51.100.11"]
    assert ips_of(cs, id=extra["id"])[0]["vlanid"] == z["range"]["id"]

    err = error_of(lambda: ucs.disassociateIpAddress(id=nat["id"]))
    assert err["errorcode"] == 530 and err["errortext"] == "ip address is used for source nat purposes and can not be disassociated.", err
    err = error_of(lambda: cs.deleteVlanIpRange(id=z["range"]["id"]))
    assert err["errorcode"] == 431 and err["errortext"] == "2  Ips are in use. Cannot delete this vlan", err

    other = client(new_user_account(admin, "po"))
    for call in (lambda: other.disassociateIpAddress(id=extra["id"]), lambda: other.updateIpAddress(id=extra["id"], fordisplay=False)):
        assert error_of(call)["errorcode"] == 531
    assert ips_of(other) == []

    assert ucs.updateIpAddress(id=extra["id"], fordisplay=False)["ipaddress"]["fordisplay"] is False
    assert ucs.disassociateIpAddress(id=extra["id"]) == {"success": True}
    assert [ip["id"] for ip in ips_of(ucs)] == [nat["id"]]
    assert ips_of(cs, id=extra["id"], allocatedonly=False)[0]["state"] == "Free"


def test_exhausted_range_answers_533(admin, web):
    cs = client(admin)
    z = public_zone(cs, web, start="198.51.100.10", end="198.51.100.10")
    net = z["network"]
    cs.associateIpAddress(networkid=net["id"])
    before = ips_of(cs, zoneid=z["zone"]["id"], allocatedonly=False)
    err = error_of(lambda: cs.associateIpAddress(networkid=net["id"]))
    assert err["errorcode"] == 533, err
    assert err["errortext"] == "Insufficient address capacity: every address of the public IP range 198.51.100.10-198.51.100.10 of zone {} is allocated".format(z["zone"]["name"])
    assert ips_of(cs, zoneid=z["zone"]["id"], allocatedonly=False) == before


def test_source_nat_static_nat_and_router(admin, web):
    cs = client(admin)
    z = public_zone(cs, web)
    net = z["network"]
    vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], networkids=net["id"])["virtualmachine"]
    [nat] = ips_of(cs, associatednetworkid=net["id"])
    assert nat["issourcenat"] is True
    [router] = cs.listRouters(networkid=net["id"])["router"]
    assert router["name"].startswith("r-") and router["name"].endswith("-VM")
    assert (router["state"], router["role"], router["publicip"], router["guestnetworkid"]) == ("Running", "VIRTUAL_ROUTER", nat["ipaddress"], net["id"])
    assert router["requiresupgrade"] is False and router["hostid"] == z["host"]["id"]

    ip = cs.associateIpAddress(networkid=net["id"])["ipaddress"]
    err = error_of(lambda: cs.enableStaticNat(ipaddressid=nat["id"], virtualmachineid=vm["id"]))
    assert err["errorcode"] == 431 and err["errortext"].startswith("Can't enable static, ip address Ip[{}-".format(nat["ipaddress"])), err
    assert err["errortext"].endswith("is a sourceNat ip address")
    assert cs.enableStaticNat(ipaddressid=ip["id"], virtualmachineid=vm["id"]) == {"success": True}
    mapped = ips_of(cs, id=ip["id"])[0]
    assert mapped["isstaticnat"] is True and mapped["virtualmachineid"] == vm["id"] and mapped["vmipaddress"] == vm["nic"][0]["ipaddress"]
    assert cs.disableStaticNat(ipaddressid=ip["id"]) == {"success": True}
    assert ips_of(cs, id=ip["id"])[0]["isstaticnat"] is False

    # Routers are the root admin's.
    user = client(new_user_account(admin, "pr"))
    err = error_of(lambda: user.listRouters())
    assert err["errorcode"] == 401, err
    stopped = cs.stopRouter(id=router["id"])["router"]
    assert stopped["state"] == "Stopped"
    assert cs.startRouter(id=router["id"])["router"]["state"] == "Running"
    assert cs.rebootRouter(id=router["id"])["router"]["state"] == "Running"
    cs.restartNetwork(id=net["id"], cleanup=True)
    [rebuilt] = cs.listRouters(networkid=net["id"])["router"]
    assert rebuilt["id"] != router["id"] and rebuilt["publicip"] == nat["ipaddress"]
    assert cs.destroyRouter(id=rebuilt["id"])["router"]["state"] == "Destroyed"
    assert cs.listRouters(networkid=net["id"]) == {}
    err = error_of(lambda: cs.stopRouter(id=rebuilt["id"]))
    assert err["errorcode"] == 431 and err["errortext"] == "Can't find router by id", err
