"""Security groups through real clients on a Simulator Basic zone with security groups:
`cs` (every command, the default group, deploys into groups, refusals with CloudStack's
codes and texts that change nothing) and Apache Libcloud's security group and node calls.
What the network driver enforces on a host is tested with real guests elsewhere; here the
API, the database and the orchestration are."""

import secrets
import time

import pytest
from cs import CloudStack, CloudStackApiException
from libcloud.compute.base import NodeImage, NodeLocation, NodeSize
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from conftest import NFS_URL, new_user_account


def client(creds, method="post"):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method=method, fetch_result=True, poll_interval=0.1, job_timeout=120)


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def lc_driver(creds):
    cls = get_driver(Provider.CLOUDSTACK)
    d = cls(key=creds.apikey, secret=creds.secret, host="127.0.0.1", port=creds.server.port, path="/client/api", secure=False)
    d.connection.poll_interval = 0.05
    return d


def sg_basic_zone(cs, web):
    """An enabled Basic zone with security groups, as CloudStack's zone wizard makes one: a
    flat physical network carrying Guest traffic, a Shared network on
    DefaultSharedNetworkOfferingWithSGService, one Simulator host and a ready template."""
    tag = secrets.token_hex(3)
    zone = cs.createZone(name="zsg" + tag, networktype="Basic", securitygroupenabled=True, dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    assert zone["networktype"] == "Basic" and zone["securitygroupsenabled"] is True
    pod = cs.createPod(name="p" + tag, zoneid=zone["id"], gateway="10.66.0.1", netmask="255.255.255.0", startip="10.66.0.2", endip="10.66.0.9")["pod"]
    cluster = cs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    cs.addHost(hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"], clusterid=cluster["id"], url="test:///default", username="root", password="password")
    cs.addImageStore(provider="NFS", name="st" + tag, url="{}/sgtpl-{}".format(NFS_URL, tag), zoneid=zone["id"])
    t = cs.registerTemplate(name="tiny" + tag, url=web + "/tiny.qcow2", format="QCOW2", hypervisor="Simulator", zoneid=zone["id"], ispublic=True)["template"][0]
    deadline = time.monotonic() + 60
    while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the template did not download"
        time.sleep(0.1)
    phys = cs.createPhysicalNetwork(name="ph" + tag, zoneid=zone["id"])["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel="ws-s" + tag)
    cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
    sg_offering = cs.listNetworkOfferings(name="DefaultSharedNetworkOfferingWithSGService")["networkoffering"][0]
    assert "SecurityGroup" in [s["name"] for s in sg_offering["service"]]
    net = cs.createNetwork(name="guest" + tag, displaytext="guest", networkofferingid=sg_offering["id"], zoneid=zone["id"], gateway="10.66.0.1", netmask="255.255.255.0", startip="10.66.0.100", endip="10.66.0.150")["network"]
    assert "SecurityGroup" in [s["name"] for s in net["service"]]
    offering = cs.createServiceOffering(name="so" + tag, displaytext="small", cpunumber=1, cpuspeed=100, memory=64)["serviceoffering"]
    cs.updateZone(id=zone["id"], allocationstate="Enabled")
    return {"zone": zone, "template": t, "network": net, "offering": offering, "tag": tag}


def deploy(cs, z, **extra):
    params = dict(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], networkids=z["network"]["id"])
    params.update(extra)
    return cs.deployVirtualMachine(**params)["virtualmachine"]


def groups_of(cs):
    return {g["name"]: g for g in cs.listSecurityGroups().get("securitygroup", [])}


def snapshot(cs):
    """What a user's refusal must leave as it was: its groups with their rules, and its VMs."""
    groups = sorted((g["name"], sorted(r["ruleid"] for r in g["ingressrule"] + g["egressrule"]), g["virtualmachinecount"]) for g in groups_of(cs).values())
    vms = sorted(v["id"] for v in cs.listVirtualMachines().get("virtualmachine", []))
    return groups, vms


def test_security_groups_through_cs(admin, web):
    z = sg_basic_zone(client(admin), web)
    user = new_user_account(admin, "sg")
    ucs = client(user)
    account = ucs.listAccounts(id=user.accountid)["account"][0]["name"]
    # The default group: no rules, so ingress closed and egress open.
    groups = groups_of(ucs)
    assert list(groups) == ["default"]
    assert groups["default"]["ingressrule"] == [] and groups["default"]["egressrule"] == [] and groups["default"]["tags"] == []

    web_group = ucs.createSecurityGroup(name="web", description="web servers")["securitygroup"]
    assert web_group["name"] == "web" and web_group["account"] == account
    made = ucs.authorizeSecurityGroupIngress(securitygroupid=web_group["id"], protocol="tcp", startport=22, endport=22, cidrlist="203.0.113.0/24,198.51.100.0/24")["securitygroup"]
    assert sorted(r["cidr"] for r in made["ingressrule"]) == ["198.51.100.0/24", "203.0.113.0/24"]
    by_group = ucs.authorizeSecurityGroupIngress(**{"securitygroupname": "web", "protocol": "tcp", "startport": 80, "endport": 80, "usersecuritygrouplist[0].account": account, "usersecuritygrouplist[0].group": "default"})["securitygroup"]
    [rule] = by_group["ingressrule"]
    assert (rule["securitygroupname"], rule["account"], rule["startport"]) == ("default", account, 80)
    egress = ucs.authorizeSecurityGroupEgress(securitygroupname="web", protocol="udp", startport=53, endport=53, cidrlist="0.0.0.0/0")["securitygroup"]
    [egress_rule] = egress["egressrule"]
    listed = ucs.listSecurityGroups(securitygroupname="web")["securitygroup"][0]
    assert len(listed["ingressrule"]) == 3 and len(listed["egressrule"]) == 1

    # Deploys: the default group when none is named; the named ones otherwise.
    a = deploy(ucs, z)
    assert [g["name"] for g in a["securitygroup"]] == ["default"]
    b = deploy(ucs, z, securitygroupids=web_group["id"])
    assert [g["name"] for g in b["securitygroup"]] == ["web"]
    assert [r["ruleid"] for r in b["securitygroup"][0]["ingressrule"]] == [r["ruleid"] for r in listed["ingressrule"]]
    assert ucs.listSecurityGroups(virtualmachineid=b["id"])["securitygroup"][0]["id"] == web_group["id"]
    assert ucs.listSecurityGroups(id=web_group["id"])["securitygroup"][0]["virtualmachineids"] == [b["id"]]

    # Refusals: CloudStack's codes and texts, and nothing changed.
    other = client(new_user_account(admin, "sgo"))
    theirs = other.createSecurityGroup(name="theirs")["securitygroup"]
    before = snapshot(ucs)
    cases = [
        (lambda: ucs.authorizeSecurityGroupIngress(securitygroupname="web", protocol="tcp", startport=30, endport=20, cidrlist="0.0.0.0/0"), 431, "Invalid port range 30:20"),
        (lambda: ucs.authorizeSecurityGroupIngress(securitygroupname="web", protocol="tcp", startport=1, endport=65536, cidrlist="0.0.0.0/0"), 431, "Invalid port numbers 1:65536"),
        (lambda: ucs.authorizeSecurityGroupIngress(securitygroupname="web", protocol="sctpx", cidrlist="0.0.0.0/0"), 431, "Invalid protocol sctpx"),
        (lambda: ucs.authorizeSecurityGroupIngress(securitygroupname="web", protocol="tcp", startport=22, endport=22, cidrlist="10.0.0.0/40"), 431, "Invalid cidr 10.0.0.0/40"),
        (lambda: ucs.authorizeSecurityGroupIngress(securitygroupid=theirs["id"], protocol="tcp", startport=22, endport=22, cidrlist="0.0.0.0/0"), 531, None),
        (lambda: ucs.deleteSecurityGroup(name="web"), 536, "Cannot delete group when it's in use by virtual machines"),
        (lambda: ucs.deleteSecurityGroup(name="default"), 431, "The network group default is reserved"),
        (lambda: ucs.createSecurityGroup(name="web"), 431, "Unable to create security group, a group with name web already exists."),
        (lambda: deploy(ucs, z, securitygroupids=web_group["id"], securitygroupnames="web"), 431, "securitygroupids parameter is mutually exclusive with securitygroupnames parameter"),
        (lambda: deploy(ucs, z, securitygroupids=theirs["id"]), 531, None),
        (lambda: ucs.updateVirtualMachine(id=b["id"], securitygroupids=groups["default"]["id"]), 431, "VM {} must be stopped prior to update security groups".format(b["id"])),
    ]
    for call, code, text in cases:
        err = error_of(call)
        assert err["errorcode"] == code, err
        if text is not None:
            assert err["errortext"] == text, err
        assert snapshot(ucs) == before, text

    # A stopped VM changes groups; revoking a rule by its id.
    ucs.stopVirtualMachine(id=b["id"])
    moved = ucs.updateVirtualMachine(id=b["id"], securitygroupnames="default")["virtualmachine"]
    assert [g["name"] for g in moved["securitygroup"]] == ["default"]
    assert ucs.revokeSecurityGroupEgress(id=egress_rule["ruleid"])["success"] is True
    assert groups_of(ucs)["web"]["egressrule"] == []
    for r in groups_of(ucs)["web"]["ingressrule"]:
        ucs.revokeSecurityGroupIngress(id=r["ruleid"])
    assert ucs.deleteSecurityGroup(id=web_group["id"])["success"] is True
    assert list(groups_of(ucs)) == ["default"]


def test_security_groups_through_libcloud(admin, web):
    z = sg_basic_zone(client(admin), web)
    user = new_user_account(admin, "sgl")
    d = lc_driver(user)
    made = d.ex_create_security_group("lc-web", description="from libcloud")
    assert made["name"] == "lc-web"
    rule = d.ex_authorize_security_group_ingress("lc-web", "TCP", "0.0.0.0/0", startport=22)
    assert [(r["protocol"], r["startport"], r["endport"], r["cidr"]) for r in rule["ingressrule"]] == [("tcp", 22, 22, "0.0.0.0/0")]
    icmp = d.ex_authorize_security_group_ingress("lc-web", "ICMP", "192.0.2.0/24")
    assert [(r["icmptype"], r["icmpcode"]) for r in icmp["ingressrule"]] == [(-1, -1)]
    names = sorted(g["name"] for g in d.ex_list_security_groups())
    assert names == ["default", "lc-web"]

    image = NodeImage(id=z["template"]["id"], name=z["template"]["name"], driver=d)
    size = NodeSize(id=z["offering"]["id"], name=z["offering"]["name"], ram=64, disk=0, bandwidth=0, price=0, driver=d)
    loc = NodeLocation(id=z["zone"]["id"], name=z["zone"]["name"], country="", driver=d)
    node = d.create_node(name="lcsg-" + z["tag"], size=size, image=image, location=loc, ex_security_groups=["lc-web", "default"])
    vm = client(user).listVirtualMachines(id=node.id)["virtualmachine"][0]
    assert sorted(g["name"] for g in vm["securitygroup"]) == ["default", "lc-web"]
    assert vm["nic"][0]["networkid"] == z["network"]["id"]
    # A group with members cannot go; Libcloud reports CloudStack's error.
    with pytest.raises(Exception) as e:
        d.ex_delete_security_group("lc-web")
    assert "in use by virtual machines" in str(e.value)
    d.destroy_node(node)
