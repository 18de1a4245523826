"""Guest networking through the `cs` client: physical networks with VLAN ranges, traffic
types, the default network offerings, Isolated/Shared/L2 networks with their VLANs and IP
ranges, who sees which network, and bad input that must allocate nothing."""

import secrets

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import new_user_account
from test_bad_inputs import fingerprint


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.2, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def offering_id(cs, name):
    found = cs.listNetworkOfferings(name=name)["networkoffering"]
    assert len(found) == 1, found
    return found[0]["id"]


def advanced_zone(cs, vlan="100-102"):
    """An Advanced zone with a VLAN physical network carrying Guest traffic on bridge ws-…"""
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zn" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2", guestcidraddress="10.1.0.0/24")["zone"]
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"], vlan=vlan, isolationmethods="VLAN")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="ws-g" + tag)
    cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
    return zone, phys


def test_default_offerings_are_listed(admin):
    cs = client(admin)
    offerings = cs.listNetworkOfferings()["networkoffering"]
    names = {o["name"]: o for o in offerings}
    for wanted in ("DefaultIsolatedNetworkOfferingWithSourceNatService", "DefaultSharedNetworkOffering", "DefaultL2NetworkOffering"):
        assert wanted in names, sorted(names)
    iso = names["DefaultIsolatedNetworkOfferingWithSourceNatService"]
    assert iso["guestiptype"] == "Isolated" and iso["state"] == "Enabled" and iso["isdefault"] is True
    assert {"name": "Dhcp", "provider": [{"name": "VirtualRouter"}]} in iso["service"]
    # CloudStack's L2 offering with a config drive: its UserData service comes on a config-2 ISO.
    cd = names["DefaultL2NetworkOfferingConfigDrive"]
    assert cd["service"] == [{"name": "UserData", "provider": [{"name": "ConfigDrive"}]}], cd
    shared = cs.listNetworkOfferings(guestiptype="shared")["networkoffering"]
    assert shared and all(o["guestiptype"] == "Shared" for o in shared)
    assert cs.listNetworkOfferings(forvpc="true") == {}


def test_physical_network_and_traffic_types(admin):
    cs = client(admin)
    zone, phys = advanced_zone(cs, vlan="200-210,205-220")
    got = cs.listPhysicalNetworks(id=phys["id"])["physicalnetwork"][0]
    assert got["vlan"] == "200-220" and got["state"] == "Enabled" and got["isolationmethods"] == "VLAN"
    assert got["zoneid"] == zone["id"]
    types = cs.listTrafficTypes(physicalnetworkid=phys["id"])["traffictype"]
    assert [t["traffictype"] for t in types] == ["Guest"] and types[0]["kvmnetworklabel"].startswith("ws-g")
    assert "already carries Guest" in error_of(lambda: cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest"))["errortext"]
    # updatePhysicalNetwork vlan adds ranges; removevlan takes some away.
    cs.updatePhysicalNetwork(id=phys["id"], vlan="300-301")
    cs.updatePhysicalNetwork(id=phys["id"], removevlan="210-220")
    assert cs.listPhysicalNetworks(id=phys["id"])["physicalnetwork"][0]["vlan"] == "200-209,300-301"


def test_isolated_networks_get_distinct_vlans_until_the_range_runs_out(admin):
    cs = client(admin)
    zone, phys = advanced_zone(cs, vlan="100-102")
    iso = offering_id(cs, "DefaultIsolatedNetworkOfferingWithSourceNatService")
    nets = [cs.createNetwork(name="n%d" % i, networkofferingid=iso, zoneid=zone["id"])["network"] for i in range(3)]
    assert sorted(n["vlan"] for n in nets) == ["100", "101", "102"]
    for n in nets:
        assert n["type"] == "Isolated" and n["state"] == "Allocated" and n["cidr"] == "10.1.0.0/24" and n["gateway"] == "10.1.0.1"
        assert n["broadcasturi"] == "vlan://" + n["vlan"]
    err = error_of(lambda: cs.createNetwork(name="n3", networkofferingid=iso, zoneid=zone["id"]))
    assert err["errorcode"] == 533 and "No free VLAN left in the range 100-102" in err["errortext"], err
    # The range must keep VLANs in use.
    err = error_of(lambda: cs.updatePhysicalNetwork(id=phys["id"], removevlan="101"))
    assert err["errorcode"] == 536 and "VLAN 101 is in use" in err["errortext"], err
    # Deleting a network releases its VLAN for the next one.
    freed = nets[1]
    cs.deleteNetwork(id=freed["id"])
    again = cs.createNetwork(name="n4", networkofferingid=iso, zoneid=zone["id"])["network"]
    assert again["vlan"] == freed["vlan"]
    assert cs.listNetworks(zoneid=zone["id"], listall="true")["count"] == 3
    # A physical network in use cannot go.
    assert error_of(lambda: cs.deletePhysicalNetwork(id=phys["id"]))["errorcode"] == 536


def test_shared_network_ranges(admin):
    cs = client(admin)
    zone, phys = advanced_zone(cs, vlan="100-199")
    shared = offering_id(cs, "DefaultSharedNetworkOffering")
    net = cs.createNetwork(name="sh", networkofferingid=shared, zoneid=zone["id"], vlan="150", gateway="10.50.0.1", netmask="255.255.255.0", startip="10.50.0.10", endip="10.50.0.20")["network"]
    assert net["type"] == "Shared" and net["acltype"] == "Domain" and net["vlan"] == "150" and net["state"] == "Setup"
    ranges = cs.listVlanIpRanges(networkid=net["id"])["vlaniprange"]
    assert [(r["startip"], r["endip"], r["vlan"]) for r in ranges] == [("10.50.0.10", "10.50.0.20", "vlan://150")]
    added = cs.createVlanIpRange(networkid=net["id"], startip="10.50.0.30", endip="10.50.0.40", gateway="10.50.0.1", netmask="255.255.255.0")["vlan"]
    assert added["cidr"] == "10.50.0.0/24" and added["networkid"] == net["id"]
    err = error_of(lambda: cs.createVlanIpRange(networkid=net["id"], startip="10.50.0.35", endip="10.50.0.45"))
    assert err["errorcode"] == 431 and "overlaps the range 10.50.0.30-10.50.0.40" in err["errortext"], err
    assert cs.listVlanIpRanges(networkid=net["id"])["count"] == 2
    cs.deleteVlanIpRange(id=added["id"])
    assert cs.listVlanIpRanges(networkid=net["id"])["count"] == 1
    # Isolated networks take no ranges.
    iso = cs.createNetwork(name="iso", networkofferingid=offering_id(cs, "DefaultIsolatedNetworkOfferingWithSourceNatService"), zoneid=zone["id"])["network"]
    assert "IP ranges are for Shared networks" in error_of(lambda: cs.createVlanIpRange(networkid=iso["id"], startip="10.1.0.5"))["errortext"]


def test_basic_zone_flat_network_with_pod_range(admin):
    cs = client(admin)
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zb" + tag, networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"], gateway="10.60.0.1", netmask="255.255.255.0", startip="10.60.0.2", endip="10.60.0.9")["pod"]
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"])["physicalnetwork"]
    assert "isolationmethods" not in phys
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="ws-f" + tag)
    shared = offering_id(cs, "DefaultSharedNetworkOffering")
    # A flat physical network has no VLANs at all.
    assert "is flat" in error_of(lambda: cs.createNetwork(name="x", networkofferingid=shared, zoneid=zone["id"], vlan="5", gateway="10.60.0.1", netmask="255.255.255.0"))["errortext"]
    err = error_of(lambda: cs.createNetwork(name="x", networkofferingid=offering_id(cs, "DefaultIsolatedNetworkOfferingWithSourceNatService"), zoneid=zone["id"]))
    assert "for Isolated networks" in err["errortext"], err
    net = cs.createNetwork(name="guest", networkofferingid=shared, zoneid=zone["id"], gateway="10.60.0.1", netmask="255.255.255.0")["network"]
    assert "vlan" not in net and net["broadcastdomaintype"] == "Native"
    r = cs.createVlanIpRange(podid=pod["id"], startip="10.60.0.100", endip="10.60.0.150", forvirtualnetwork="false")["vlan"]
    assert r["networkid"] == net["id"] and r["podid"] == pod["id"] and r["vlan"] == "untagged"
    assert cs.listVlanIpRanges(podid=pod["id"])["count"] == 1


def test_who_sees_and_changes_which_network(admin):
    cs = client(admin)
    zone, _ = advanced_zone(cs, vlan="100-199")
    iso = offering_id(cs, "DefaultIsolatedNetworkOfferingWithSourceNatService")
    shared = cs.createNetwork(name="everyone", networkofferingid=offering_id(cs, "DefaultSharedNetworkOffering"), zoneid=zone["id"], vlan="120", gateway="10.70.0.1", netmask="255.255.255.0")["network"]
    alice, bob = new_user_account(admin, "na"), new_user_account(admin, "nb")
    a, b = client(alice), client(bob)
    mine = a.createNetwork(name="mine", networkofferingid=iso, zoneid=zone["id"])["network"]
    owner = cs.listAccounts(id=alice.accountid)["account"][0]["name"]
    assert mine["account"] == owner and "vlan" not in mine  # VLANs are for root admins' eyes
    seen = {n["id"] for n in a.listNetworks(zoneid=zone["id"])["network"]}
    assert seen == {mine["id"], shared["id"]}
    assert {n["id"] for n in b.listNetworks(zoneid=zone["id"])["network"]} == {shared["id"]}
    assert error_of(lambda: b.deleteNetwork(id=mine["id"]))["errorcode"] == 531
    assert error_of(lambda: a.deleteNetwork(id=shared["id"]))["errorcode"] == 531
    assert error_of(lambda: a.createNetwork(name="s", networkofferingid=offering_id(cs, "DefaultSharedNetworkOffering"), zoneid=zone["id"], gateway="10.71.0.1", netmask="255.255.255.0"))["errorcode"] == 531
    assert error_of(lambda: a.createNetwork(name="v", networkofferingid=iso, zoneid=zone["id"], vlan="130"))["errorcode"] == 531
    assert error_of(lambda: a.listPhysicalNetworks())["errorcode"] == 401
    renamed = a.updateNetwork(id=mine["id"], name="renamed", displaytext="mine, renamed")["network"]
    assert renamed["name"] == "renamed" and renamed["displaytext"] == "mine, renamed"
    # No real (non-simulated) host in this zone: nothing to build, and said so.
    done = a.restartNetwork(id=mine["id"])
    assert done["success"] is True and "no Up host of a real hypervisor" in done["displaytext"], done
    assert a.listNics(virtualmachineid=mine["id"]) == {}
    a.deleteNetwork(id=mine["id"])
    assert a.listNetworks(id=mine["id"]) == {} or a.listNetworks(id=mine["id"])["count"] == 0


@pytest.fixture(scope="module")
def bad_world(server_factory):
    srv = server_factory("sqlite")
    from conftest import admin_credentials

    admin = admin_credentials(srv)
    cs = client(admin)
    zone, phys = advanced_zone(cs, vlan="100-110")
    shared = offering_id(cs, "DefaultSharedNetworkOffering")
    iso = offering_id(cs, "DefaultIsolatedNetworkOfferingWithSourceNatService")
    used = cs.createNetwork(name="used", networkofferingid=shared, zoneid=zone["id"], vlan="105", gateway="10.80.0.1", netmask="255.255.255.0", startip="10.80.0.10", endip="10.80.0.20")["network"]
    return srv, cs, zone, phys, shared, iso, used


BAD_NETWORKS = [
    ("overlapping CIDR", dict(vlan="106", gateway="10.80.0.129", netmask="255.255.255.128"), "overlaps network used"),
    ("gateway outside the CIDR", dict(iso=True, gateway="192.168.7.1"), "is outside the zone's guest CIDR 10.1.0.0/24"),
    ("range outside the CIDR", dict(vlan="106", gateway="10.81.0.1", netmask="255.255.255.0", startip="10.81.1.5"), "outside the network's CIDR 10.81.0.0/24"),
    ("start IP after end IP", dict(vlan="106", gateway="10.82.0.1", netmask="255.255.255.0", startip="10.82.0.50", endip="10.82.0.10"), "is after the end IP"),
    ("VLAN outside the range", dict(vlan="300", gateway="10.83.0.1", netmask="255.255.255.0"), "VLAN 300 is outside the VLAN range 100-110"),
    ("VLAN in use", dict(vlan="105", gateway="10.84.0.1", netmask="255.255.255.0"), "VLAN 105 is already used by network used"),
    ("malformed netmask", dict(vlan="106", gateway="10.85.0.1", netmask="255.0.255.0"), "is not a netmask"),
    ("netmask not an address", dict(vlan="106", gateway="10.85.0.1", netmask="255.255.255"), "is not an IP address"),
    ("malformed VLAN", dict(vlan="vlan://x", gateway="10.86.0.1", netmask="255.255.255.0"), "is not a VLAN ID"),
    ("gateway is the network address", dict(vlan="106", gateway="10.87.0.0", netmask="255.255.255.0"), "network's own or broadcast address"),
]


@pytest.mark.parametrize("case", BAD_NETWORKS, ids=[c[0] for c in BAD_NETWORKS])
def test_bad_network_input_allocates_nothing(bad_world, case):
    srv, cs, zone, phys, shared, iso, used = bad_world
    _, params, text = case
    params = dict(params)
    offering = iso if params.pop("iso", False) else shared
    before = fingerprint(srv.sqlite_path)
    err = error_of(lambda: cs.createNetwork(name="bad", networkofferingid=offering, zoneid=zone["id"], **params))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    assert fingerprint(srv.sqlite_path) == before


BAD_RANGES = [
    ("overlapping range", dict(startip="10.80.0.15", endip="10.80.0.30"), "overlaps the range 10.80.0.10-10.80.0.20"),
    ("start after end", dict(startip="10.80.0.60", endip="10.80.0.50"), "is after the end IP"),
    ("outside the CIDR", dict(startip="10.80.1.1"), "outside the network's CIDR"),
    ("another gateway", dict(startip="10.80.0.70", gateway="10.80.0.254"), "is not the gateway of network used"),
    ("malformed netmask", dict(startip="10.80.0.70", netmask="255.255.0.255"), "is not a netmask"),
    ("another VLAN", dict(startip="10.80.0.70", vlan="107"), "is not the VLAN of network used"),
]


@pytest.mark.parametrize("case", BAD_RANGES, ids=[c[0] for c in BAD_RANGES])
def test_bad_range_input_allocates_nothing(bad_world, case):
    srv, cs, zone, phys, shared, iso, used = bad_world
    _, params, text = case
    before = fingerprint(srv.sqlite_path)
    err = error_of(lambda: cs.createVlanIpRange(networkid=used["id"], **params))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    assert fingerprint(srv.sqlite_path) == before


def test_bad_physical_network_input(bad_world):
    srv, cs, zone, phys, *_ = bad_world
    before = fingerprint(srv.sqlite_path)
    for params, text in [
        (dict(vlan="300-200", isolationmethods="VLAN"), "is not a VLAN range"),
        (dict(vlan="1-5000", isolationmethods="VLAN"), "is not a VLAN range"),
        (dict(isolationmethods="GRE"), "isolationmethods: GRE; the loaded network drivers serve"),
        (dict(vlan="200-300"), "A flat physical network (no isolation method) cannot have VLANs"),
    ]:
        err = error_of(lambda: cs.createPhysicalNetwork(name="bad", zoneid=zone["id"], **params))
        assert err["errorcode"] == 431 and text in err["errortext"], (params, err)
    err = error_of(lambda: cs.updatePhysicalNetwork(id=phys["id"], removevlan="105"))
    assert err["errorcode"] == 536, err
    assert fingerprint(srv.sqlite_path) == before


def test_l2_networks_have_a_vlan_and_no_addresses(admin):
    cs = client(admin)
    zone, _ = advanced_zone(cs, vlan="400-401")
    l2 = cs.createNetwork(name="l2", networkofferingid=offering_id(cs, "DefaultL2NetworkOffering"), zoneid=zone["id"])["network"]
    assert l2["type"] == "L2" and l2["vlan"] == "400" and "cidr" not in l2 and "gateway" not in l2
    assert not l2.get("service")
    err = error_of(lambda: cs.createNetwork(name="l2b", networkofferingid=offering_id(cs, "DefaultL2NetworkOffering"), zoneid=zone["id"], gateway="10.9.0.1", netmask="255.255.255.0"))
    assert err["errorcode"] == 431 and "L2 networks have no addresses" in err["errortext"], err
    # The VLAN offering wants one named, from the range.
    with_vlan = offering_id(cs, "DefaultL2NetworkOfferingVlan")
    assert "needs a VLAN" in error_of(lambda: cs.createNetwork(name="l2c", networkofferingid=with_vlan, zoneid=zone["id"]))["errortext"]
    named = cs.createNetwork(name="l2d", networkofferingid=with_vlan, zoneid=zone["id"], vlan="401")["network"]
    assert named["vlan"] == "401"
    assert "IP ranges are for Shared networks" in error_of(lambda: cs.createVlanIpRange(networkid=named["id"], startip="10.9.0.5"))["errortext"]
