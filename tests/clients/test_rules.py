"""The router's rules through real clients on a Simulator zone with public traffic:
firewall, egress, port forwarding and load balancing through `cs`, and through
Libcloud's CloudStack drivers where they have them (ex_create_firewall_rule,
ex_create_port_forwarding_rule, ex_create_egress_firewall_rule and their list and
delete calls, list_nodes; the load balancer driver). Refusals carry CloudStack's codes and texts and change
nothing."""

from types import SimpleNamespace

import pytest
from cs import CloudStack, CloudStackApiException
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider
from libcloud.loadbalancer.base import Algorithm, Member
from libcloud.loadbalancer.providers import get_driver as get_lb_driver
from libcloud.loadbalancer.types import Provider as LbProvider

from conftest import new_user_account
from test_public_ips import public_zone


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post", fetch_result=True, poll_interval=0.1, job_timeout=120)


def libcloud(creds):
    cls = get_driver(Provider.CLOUDSTACK)
    d = cls(key=creds.apikey, secret=creds.secret, host="127.0.0.1", port=creds.server.port, path="/client/api", secure=False)
    d.connection.poll_interval = 0.05
    return d


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def rules_of(cs, **params):
    """Every rule the caller sees, by kind: to show a refusal changed nothing."""
    return {
        "firewall": cs.listFirewallRules(listall=True, **params).get("firewallrule", []),
        "egress": cs.listEgressFirewallRules(listall=True, **params).get("firewallrule", []),
        "forwarding": cs.listPortForwardingRules(listall=True, **params).get("portforwardingrule", []),
        "balancing": cs.listLoadBalancerRules(listall=True, **params).get("loadbalancerrule", []),
    }


def refused(cs, command, code, text, **params):
    before = rules_of(cs)
    err = error_of(lambda: getattr(cs, command)(**params))
    assert (err["errorcode"], err["errortext"]) == (code, text), err
    assert rules_of(cs) == before, command


def deploy(cs, z, name):
    return cs.deployVirtualMachine(name=name, serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], networkids=z["network"]["id"])["virtualmachine"]


def test_firewall_and_egress_rules(admin, web):
    cs = client(admin)
    z = public_zone(cs, web)
    user = new_user_account(admin, "fw")
    ucs = client(user)
    net = ucs.createNetwork(name="fw" + z["tag"], networkofferingid=z["iso"], zoneid=z["zone"]["id"])["network"]
    assert net["egressdefaultpolicy"] is True
    ip = ucs.associateIpAddress(networkid=net["id"])["ipaddress"]

    ssh = ucs.createFirewallRule(ipaddressid=ip["id"], protocol="tcp", startport=22)["firewallrule"]
    assert (ssh["startport"], ssh["endport"], ssh["cidrlist"], ssh["state"]) == (22, 22, "0.0.0.0/0", "Active")
    assert (ssh["ipaddressid"], ssh["ipaddress"], ssh["networkid"], ssh["traffictype"]) == (ip["id"], ip["ipaddress"], net["id"], "Ingress")
    ping = ucs.createFirewallRule(ipaddressid=ip["id"], protocol="icmp", cidrlist="10.0.0.0/8,192.168.0.0/16")["firewallrule"]
    assert (ping["icmptype"], ping["icmpcode"], ping["cidrlist"]) == (-1, -1, "10.0.0.0/8,192.168.0.0/16")
    assert {r["id"] for r in ucs.listFirewallRules(ipaddressid=ip["id"])["firewallrule"]} == {ssh["id"], ping["id"]}

    refused(ucs, "createFirewallRule", 537, "The range specified, 20-30, conflicts with rule Rule[{}-Firewall-Active] which has 22-22".format(ssh["id"]), ipaddressid=ip["id"], protocol="tcp", startport=20, endport=30)
    refused(ucs, "createFirewallRule", 431, "publicPort is an invalid value: 0", ipaddressid=ip["id"], protocol="tcp", startport=0)
    refused(ucs, "createFirewallRule", 431, "Public port range is an invalid value: 65536", ipaddressid=ip["id"], protocol="tcp", startport=1, endport=65536)
    refused(ucs, "createFirewallRule", 431, "Start port can't be bigger than end port", ipaddressid=ip["id"], protocol="udp", startport=100, endport=99)
    # Another account's address: 531, and it does not show.
    other = client(new_user_account(admin, "fo"))
    refused(other, "createFirewallRule", 531, "The caller does not have permission to access IP address {}".format(ip["id"]), ipaddressid=ip["id"], protocol="tcp", startport=80)
    assert other.listFirewallRules() == {}

    web_out = ucs.createEgressFirewallRule(networkid=net["id"], protocol="tcp", startport=80, endport=443)["firewallrule"]
    assert (web_out["cidrlist"], web_out["traffictype"], web_out["networkid"]) == (net["cidr"], "Egress", net["id"])
    [listed] = ucs.listEgressFirewallRules(networkid=net["id"])["firewallrule"]
    assert listed["id"] == web_out["id"] and listed["startport"] == 80 and listed["endport"] == 443
    refused(ucs, "createEgressFirewallRule", 431, "[172.16.0.0/12] is not within the guest CIDR [{}]. ".format(net["cidr"]), networkid=net["id"], protocol="tcp", cidrlist="172.16.0.0/12")
    refused(ucs, "createEgressFirewallRule", 537, "The range specified, 443-443, conflicts with rule Rule[{}-Firewall-Active] which has 80-443".format(web_out["id"]), networkid=net["id"], protocol="tcp", startport=443)

    assert ucs.deleteFirewallRule(id=ssh["id"]) == {"success": True}
    assert ucs.deleteEgressFirewallRule(id=web_out["id"]) == {"success": True}
    assert [r["id"] for r in ucs.listFirewallRules()["firewallrule"]] == [ping["id"]]
    assert ucs.listEgressFirewallRules() == {}
    err = error_of(lambda: ucs.deleteFirewallRule(id=ssh["id"]))
    assert err["errorcode"] == 431, err


def test_port_forwarding(admin, web):
    cs = client(admin)
    z = public_zone(cs, web, start="198.51.100.30", end="198.51.100.40")
    vm = deploy(cs, z, "pf")
    guest = vm["nic"][0]["ipaddress"]
    ip = cs.associateIpAddress(networkid=z["network"]["id"])["ipaddress"]

    pf = cs.createPortForwardingRule(ipaddressid=ip["id"], publicport=2222, privateport=22, protocol="tcp", virtualmachineid=vm["id"])["portforwardingrule"]
    assert (pf["publicport"], pf["publicendport"], pf["privateport"], pf["privateendport"]) == ("2222", "2222", "22", "22")
    assert (pf["virtualmachineid"], pf["vmguestip"], pf["ipaddress"], pf["state"]) == (vm["id"], guest, ip["ipaddress"], "Active")
    [opened] = cs.listFirewallRules(ipaddressid=ip["id"])["firewallrule"]
    assert (opened["startport"], opened["protocol"], opened["cidrlist"]) == (2222, "tcp", "0.0.0.0/0")
    ranged = cs.createPortForwardingRule(ipaddressid=ip["id"], publicport=8000, publicendport=8010, privateport=8000, privateendport=8010, protocol="udp", virtualmachineid=vm["id"], openfirewall=False)["portforwardingrule"]
    assert len(cs.listFirewallRules(ipaddressid=ip["id"])["firewallrule"]) == 1
    assert {r["id"] for r in cs.listPortForwardingRules(virtualmachineid=vm["id"])["portforwardingrule"]} == {pf["id"], ranged["id"]}

    base = dict(ipaddressid=ip["id"], protocol="udp", virtualmachineid=vm["id"], openfirewall=False)
    refused(cs, "createPortForwardingRule", 537, "The range specified, 8005-8005, conflicts with rule Rule[{}-PortForwarding-Active] which has 8000-8010".format(ranged["id"]), publicport=8005, privateport=8005, **base)
    refused(cs, "createPortForwardingRule", 431, "Source port and destination port ranges should be of equal sizes.", publicport=9000, publicendport=9010, privateport=9000, privateendport=9001, **base)
    refused(cs, "createPortForwardingRule", 431, "privatePort is an invalid value: 70000", publicport=9000, privateport=70000, **base)
    refused(cs, "createPortForwardingRule", 431, "Start port can't be bigger than end port", publicport=9010, publicendport=9000, privateport=9010, **base)
    # A VM of another network of the same account.
    other_net = cs.createNetwork(name="o" + z["tag"], networkofferingid=z["iso"], zoneid=z["zone"]["id"])["network"]
    stranger = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], networkids=other_net["id"])["virtualmachine"]
    refused(cs, "createPortForwardingRule", 431, "Vm doesn't belong to network associated with ipAddress", ipaddressid=ip["id"], protocol="tcp", publicport=9100, privateport=22, virtualmachineid=stranger["id"])
    # A static NAT address takes no forwarding rule.
    nat = cs.associateIpAddress(networkid=z["network"]["id"])["ipaddress"]
    cs.enableStaticNat(ipaddressid=nat["id"], virtualmachineid=vm["id"])
    refused(cs, "createPortForwardingRule", 431, "Unable to create port forwarding rule; ip id={} has static nat enabled".format(nat["id"]), ipaddressid=nat["id"], protocol="tcp", publicport=22, privateport=22, virtualmachineid=vm["id"])
    # Nor is static NAT put on an address that forwards.
    err = error_of(lambda: cs.enableStaticNat(ipaddressid=ip["id"], virtualmachineid=vm["id"]))
    assert err["errorcode"] == 537 and err["errortext"].startswith("Failed to enable static nat for the ip address "), err
    assert err["errortext"].endswith(" as it already has PortForwarding rules assigned"), err

    moved = cs.updatePortForwardingRule(id=pf["id"], privateport=2022)["portforwardingrule"]
    assert (moved["publicport"], moved["privateport"]) == ("2222", "2022")
    assert cs.deletePortForwardingRule(id=pf["id"]) == {"success": True}
    assert cs.listFirewallRules(ipaddressid=ip["id"]) == {}, "its firewall rule went with it"
    assert [r["id"] for r in cs.listPortForwardingRules(ipaddressid=ip["id"])["portforwardingrule"]] == [ranged["id"]]


def test_load_balancing(admin, web):
    cs = client(admin)
    z = public_zone(cs, web, start="198.51.100.50", end="198.51.100.60")
    a, b = deploy(cs, z, "lba"), deploy(cs, z, "lbb")
    ip = cs.associateIpAddress(networkid=z["network"]["id"])["ipaddress"]
    lb = cs.createLoadBalancerRule(name="web", algorithm="roundrobin", publicport=80, privateport=8080, publicipid=ip["id"])["loadbalancer"]
    assert (lb["name"], lb["algorithm"], lb["publicport"], lb["privateport"], lb["publicip"]) == ("web", "roundrobin", "80", "8080", ip["ipaddress"])
    assert (lb["networkid"], lb["zoneid"], lb["state"]) == (z["network"]["id"], z["zone"]["id"], "Active")
    [listed] = cs.listLoadBalancerRules(publicipid=ip["id"])["loadbalancerrule"]
    assert listed["id"] == lb["id"]

    assert cs.assignToLoadBalancerRule(id=lb["id"], virtualmachineids=",".join([a["id"], b["id"]])) == {"success": True}
    members = cs.listLoadBalancerRuleInstances(id=lb["id"])["loadbalancerruleinstance"]
    assert {m["id"] for m in members} == {a["id"], b["id"]}
    refused(cs, "assignToLoadBalancerRule", 431, "VM {} with {} is already mapped to load balancer.".format(a["id"], a["nic"][0]["ipaddress"]), id=lb["id"], virtualmachineids=a["id"])
    refused(cs, "createLoadBalancerRule", 431, "Invalid algorithm: fastest", name="x", algorithm="fastest", publicport=81, privateport=80, publicipid=ip["id"])
    refused(cs, "createLoadBalancerRule", 537, "The range specified, 80-80, conflicts with rule Rule[{}-LoadBalancing-Active] which has 80-80".format(lb["id"]), name="x", algorithm="source", publicport=80, privateport=80, publicipid=ip["id"], openfirewall=False)

    assert cs.updateLoadBalancerRule(id=lb["id"], algorithm="leastconn")["loadbalancer"]["algorithm"] == "leastconn"
    assert cs.removeFromLoadBalancerRule(id=lb["id"], virtualmachineids=a["id"]) == {"success": True}
    assert [m["id"] for m in cs.listLoadBalancerRuleInstances(id=lb["id"])["loadbalancerruleinstance"]] == [b["id"]]
    assert [m["id"] for m in cs.listLoadBalancerRuleInstances(id=lb["id"], applied=False)["loadbalancerruleinstance"]] == [a["id"]]
    assert cs.deleteLoadBalancerRule(id=lb["id"]) == {"success": True}
    assert cs.listLoadBalancerRules(publicipid=ip["id"]) == {}
    assert cs.listFirewallRules(ipaddressid=ip["id"]) == {}


def test_libcloud_rules(admin, web):
    cs = client(admin)
    z = public_zone(cs, web, start="198.51.100.70", end="198.51.100.80")
    vm = deploy(cs, z, "lc")
    ip = cs.associateIpAddress(networkid=z["network"]["id"])["ipaddress"]
    d = libcloud(admin)
    [address] = [a for a in d.ex_list_public_ips() if a.id == ip["id"]]
    [node] = [n for n in d.list_nodes() if n.id == vm["id"]]

    fw = d.ex_create_firewall_rule(address, "0.0.0.0/0", "tcp", start_port=443, end_port=443)
    listed = [r for r in d.ex_list_firewall_rules() if r.id == fw.id]
    assert len(listed) == 1 and listed[0].start_port == 443 and listed[0].address.address == ip["ipaddress"]

    rule = d.ex_create_port_forwarding_rule(node, address, 22, 2222, "TCP")
    [seen] = [r for r in d.ex_list_port_forwarding_rules(ipaddress_id=ip["id"]) if r.id == rule.id]
    assert (seen.public_port, seen.private_port, seen.node.id, seen.address.address) == ("2222", "22", vm["id"], ip["ipaddress"])
    # list_nodes reads the forwarding rules too.
    [again] = [n for n in d.list_nodes() if n.id == vm["id"]]
    assert [r.id for r in again.extra["port_forwarding_rules"]] == [rule.id]
    assert d.ex_delete_port_forwarding_rule(node, rule) is True
    assert d.ex_list_port_forwarding_rules(ipaddress_id=ip["id"]) == []
    assert d.ex_delete_firewall_rule(fw) is True
    assert [r for r in d.ex_list_firewall_rules() if r.id == fw.id] == []

    out = d.ex_create_egress_firewall_rule(z["network"]["id"], z["network"]["cidr"], "udp", start_port=53, end_port=53)
    assert [r.id for r in d.ex_list_egress_firewall_rules() if r.network_id == z["network"]["id"]] == [out.id]
    assert d.ex_delete_egress_firewall_rule(out) is True


def test_libcloud_load_balancer(admin, web):
    """Libcloud's CloudStack load balancer driver: it takes an address itself, creates
    the rule without waiting for its job, attaches members, and gives the address back."""
    cs = client(admin)
    z = public_zone(cs, web, start="198.51.100.90", end="198.51.100.99")
    a, b = deploy(cs, z, "lla"), deploy(cs, z, "llb")
    cls = get_lb_driver(LbProvider.CLOUDSTACK)
    d = cls(key=admin.apikey, secret=admin.secret, host="127.0.0.1", port=admin.server.port, path="/client/api", secure=False)
    d.connection.poll_interval = 0.05
    zone = SimpleNamespace(id=z["zone"]["id"])
    lb = d.create_balancer("lc" + z["tag"], [Member(a["id"], None, None)], port=80, private_port=8080, algorithm=Algorithm.ROUND_ROBIN, location=zone, network_id=z["network"]["id"])
    assert lb is not None
    assert str(lb.port) == "80" and lb.ex_private_port == "8080"
    assert [m.id for m in d.balancer_list_members(lb)] == [a["id"]]
    assert d.balancer_attach_member(lb, Member(b["id"], None, None)) is True
    assert sorted(m.id for m in d.balancer_list_members(lb)) == sorted([a["id"], b["id"]])
    assert d.balancer_detach_member(lb, Member(a["id"], None, None)) is True
    assert [m.id for m in d.balancer_list_members(lb)] == [b["id"]]
    assert [x.id for x in d.list_balancers() if x.id == lb.id] == [lb.id]
    d.destroy_balancer(lb)
    assert cs.listLoadBalancerRules(id=lb.id) == {}
    assert cs.listPublicIpAddresses(id=lb.ex_public_ip_id, allocatedonly=False)["publicipaddress"][0]["state"] == "Free"
