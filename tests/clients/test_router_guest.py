"""Routers with real guests: tiny QEMU guests in an Isolated VLAN network reach an
"internet" namespace through the network's router, which the vlan driver builds on the
host, and are reached from it, all driven through the `cs` client.

The internet is a namespace on the public bridge holding the public range's gateway and
the zone's DNS address, where an HTTP server logs each client's address. The guests'
beacon fetches http://<DNS>/beacon/<guest address> every second and reports on the
serial console when that starts or stops working; each guest serves a page naming it on
port 80. Needs root, libvirtd with QEMU, Open vSwitch, nftables, HAProxy and NFS
(scripts/setup.sh)."""

import re
import secrets
import subprocess
import sys


from conftest import admin_credentials, new_user_account
from test_instance_guest import QEMU, client, host_server, serial_log, start_server, virsh, wait_for, zone_with  # noqa: F401

# The public range's gateway and the zone's DNS server, both in the internet namespace.
GATEWAY = "203.0.113.1"
DNS = "192.0.2.53"

SERVER = r"""
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"internet\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(sys.argv[2], "a") as log:
            log.write("{} {}\n".format(self.client_address[0], self.path))
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], 80), Handler).serve_forever()
"""

# SIOCETHTOOL (0x8946) with ETHTOOL_STXCSUM (0x17) = 0 on eth0.
NO_TX_CHECKSUM = """
import ctypes, fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
value = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))
fcntl.ioctl(s.fileno(), 0x8946, struct.pack("16sP", b"eth0", ctypes.addressof(value)))
"""


def sh(*args, check=True):
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError("{} failed: {}".format(" ".join(args), done.stderr.strip()))
    return done


class Internet:
    """A namespace on a Linux bridge (the zone's public label) with an HTTP server."""

    def __init__(self, tag, folder):
        self.ns, self.bridge, self.link = "ws-n" + tag, "ws-p" + tag, "ws-n" + tag + "h"
        self.log = folder / "internet.log"
        self.log.touch()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "link", "set", self.link, "master", self.bridge, "up")
        for args in (["addr", "add", GATEWAY + "/24", "dev", "eth0"], ["addr", "add", DNS + "/32", "dev", "eth0"], ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"]):
            sh("ip", "-n", self.ns, *args)
        # The kernel fills in the checksums of what the internet sends (`ethtool -K eth0 tx
        # off`, without ethtool): a real uplink delivers whole packets, but a veth's
        # partial ones lose that note in Open vSwitch's userspace datapath on the guest side.
        sh("ip", "netns", "exec", self.ns, sys.executable, "-c", NO_TX_CHECKSUM)
        script = folder / "internet.py"
        script.write_text(SERVER)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, str(script), "0.0.0.0", str(self.log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("the internet's HTTP server", lambda: self.get("http://{}/".format(DNS), 1) == "internet", 15)

    def get(self, url, seconds=2):
        """The body of GET url from the internet, None when nothing answered."""
        done = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sf", "--max-time", str(seconds), url], capture_output=True, text=True, timeout=seconds + 10)
        return done.stdout.strip() if done.returncode == 0 else None

    def reaches(self, url):
        """GET with a few tries (Open vSwitch learns addresses on the first packets)."""
        for _ in range(5):
            got = self.get(url)
            if got is not None:
                return got
        return None

    def clients(self, guest, since=0):
        """The addresses the guest's beacon came from, in the log's lines from `since`."""
        lines = self.log.read_text().splitlines()[since:]
        return {line.split()[0] for line in lines if line.endswith("/beacon/" + guest)}

    def lines(self):
        return len(self.log.read_text().splitlines())

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def net_state(log):
    """The guest's last beacon report: "up", "down" or None."""
    # Anywhere in a line: the report may follow the shell's prompt.
    reports = re.findall(r"WASMSTACK-GUEST-NET (up|down)", log.read_text(errors="replace"))
    return reports[-1] if reports else None


def guest_net(log, state, what, timeout=90):
    wait_for(what, lambda: log.is_file() and net_state(log) == state, timeout)


def router_namespace(network_id):
    return "ws-r" + "".join(c for c in network_id if c in "0123456789abcdef")[:11]


def diagnose(server, networks, vms):
    """What the routers and guests look like, printed when the test fails."""
    for uuid in networks:
        ns = router_namespace(uuid)
        for args in (["addr"], ["route"], ["netns", "exec", ns, "nft", "list", "ruleset"]):
            cmd = ["ip", "-n", ns, *args] if args[0] != "netns" else ["ip", *args]
            done = sh(*cmd, check=False)
            print("$ {}\n{}{}".format(" ".join(cmd), done.stdout, done.stderr))
    for uuid in vms:
        try:
            print("serial of {}:\n{}".format(uuid, serial_log(uuid).read_text(errors="replace")[-1500:]))
        except Exception as e:
            print("no serial log of {}: {}".format(uuid, e))
    print("server log:\n" + server.stderr_tail(80))


def test_a_router_gives_real_guests_nat_firewalls_and_load_balancing(host_server, web, tmp_path):
    cs = client(admin_credentials(host_server))
    tag = secrets.token_hex(3)
    bridge = "ws-g" + tag
    internet = Internet(tag, tmp_path)
    vms, networks = [], []
    try:
        z = zone_with(cs, web, tag, "KVM", QEMU, bridge, "10.96.0.0/24", "3540-3549", 256, dns=DNS, public=internet.bridge)
        zone, net = z["zone"]["id"], z["network"]
        networks.append(net["id"])
        cs.createVlanIpRange(zoneid=zone, forvirtualnetwork=True, gateway=GATEWAY, netmask="255.255.255.0", startip="203.0.113.10", endip="203.0.113.19")

        def deploy(name, network, cs=cs):
            vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=zone, templateid=z["template"]["id"], name=name, networkids=network)["virtualmachine"]
            vms.append(vm["id"])
            log = serial_log(vm["id"])
            ip = vm["nic"][0]["ipaddress"]
            wait_for(name + "'s address", lambda: log.is_file() and "WASMSTACK-GUEST-IP {}/24".format(ip) in log.read_text(errors="replace"), 180)
            return vm, ip, log

        a, a_ip, a_log = deploy("ra-" + tag, net["id"])
        b, b_ip, b_log = deploy("rb-" + tag, net["id"])
        [snat] = cs.listPublicIpAddresses(associatednetworkid=net["id"], issourcenat=True)["publicipaddress"]
        [router] = cs.listRouters(networkid=net["id"])["router"]
        assert router["state"] == "Running" and router["publicip"] == snat["ipaddress"], router

        # Source NAT: both guests reach the internet, which sees the source NAT address.
        guest_net(a_log, "up", "guest a reaching the internet")
        guest_net(b_log, "up", "guest b reaching the internet")
        assert internet.clients(a_ip) == {snat["ipaddress"]}

        # An egress rule blocks the guests' web traffic (the default policy allows), then
        # deleting it lets it out again.
        egress = cs.createEgressFirewallRule(networkid=net["id"], protocol="tcp", startport=80, endport=80)["firewallrule"]
        guest_net(a_log, "down", "the egress rule to block guest a", 30)
        cs.deleteEgressFirewallRule(id=egress["id"])
        guest_net(a_log, "up", "guest a out again", 30)

        # Port forwarding: nothing enters before the rule; with it, guest a's page.
        pf_ip = cs.associateIpAddress(networkid=net["id"])["ipaddress"]
        pf_url = "http://{}:8080/".format(pf_ip["ipaddress"])
        assert internet.get(pf_url) is None, "ingress without a rule"
        pf = cs.createPortForwardingRule(ipaddressid=pf_ip["id"], protocol="tcp", publicport=8080, privateport=80, virtualmachineid=a["id"])["portforwardingrule"]
        assert internet.reaches(pf_url) == "wasmstack-guest " + a_ip

        # Static NAT: a second address stands for guest b both ways.
        nat_ip = cs.associateIpAddress(networkid=net["id"])["ipaddress"]
        cs.enableStaticNat(ipaddressid=nat_ip["id"], virtualmachineid=b["id"])
        nat_url = "http://{}/".format(nat_ip["ipaddress"])
        assert internet.get(nat_url) is None, "static NAT without a firewall rule"
        nat_fw = cs.createFirewallRule(ipaddressid=nat_ip["id"], protocol="tcp", startport=80, endport=80)["firewallrule"]
        assert internet.reaches(nat_url) == "wasmstack-guest " + b_ip
        wait_for("guest b's beacon from its static NAT address", lambda: nat_ip["ipaddress"] in internet.clients(b_ip), 30)

        # Load balancing over both guests.
        lb_ip = cs.associateIpAddress(networkid=net["id"])["ipaddress"]
        lb = cs.createLoadBalancerRule(publicipid=lb_ip["id"], name="web" + tag, algorithm="roundrobin", publicport=80, privateport=80, openfirewall=True)["loadbalancer"]
        cs.assignToLoadBalancerRule(id=lb["id"], virtualmachineids="{},{}".format(a["id"], b["id"]))
        lb_url = "http://{}/".format(lb_ip["ipaddress"])
        seen = {internet.reaches(lb_url) for _ in range(8)}
        assert seen == {"wasmstack-guest " + a_ip, "wasmstack-guest " + b_ip}, seen

        # A deleted router namespace comes back, rules and all (the reconciler).
        sh("ip", "netns", "del", router_namespace(net["id"]))
        wait_for("the reconciler to rebuild the router", lambda: cs.listEvents(listall=True, type="ROUTER.SYNC").get("event"), 30)
        assert internet.reaches(pf_url) == "wasmstack-guest " + a_ip

        # A server restart with the namespace gone meanwhile: the same rules work again.
        host_server.stop()
        sh("ip", "netns", "del", router_namespace(net["id"]))
        start_server(host_server)
        cs = client(admin_credentials(host_server))
        wait_for("the router rebuilt after the restart", lambda: internet.get(pf_url, 1) == "wasmstack-guest " + a_ip, 60)
        assert internet.reaches(nat_url) == "wasmstack-guest " + b_ip
        assert {internet.reaches(lb_url) for _ in range(8)} == {"wasmstack-guest " + a_ip, "wasmstack-guest " + b_ip}

        # Deleting each rule closes what it opened.
        cs.deletePortForwardingRule(id=pf["id"])
        assert internet.get(pf_url) is None, "a deleted port forward"
        cs.deleteLoadBalancerRule(id=lb["id"])
        assert internet.get(lb_url) is None, "a deleted load balancer"
        cs.deleteFirewallRule(id=nat_fw["id"])
        assert internet.get(nat_url) is None, "a deleted firewall rule"
        cs.disableStaticNat(ipaddressid=nat_ip["id"])
        since = internet.lines()
        wait_for("guest b's beacon from the source NAT address again", lambda: snat["ipaddress"] in internet.clients(b_ip, since), 30)

        # Another account's network with the same guest CIDR on the same host works beside it.
        ucs = client(new_user_account(admin_credentials(host_server), "rt"))
        other = ucs.createNetwork(name="ro" + tag, displaytext="same CIDR", networkofferingid=z["iso"], zoneid=zone, gateway="10.96.0.1", netmask="255.255.255.0")["network"]
        networks.append(other["id"])
        c, c_ip, c_log = deploy("rc-" + tag, other["id"], ucs)
        guest_net(c_log, "up", "guest c in the second network reaching the internet")
        [snat2] = ucs.listPublicIpAddresses(associatednetworkid=other["id"], issourcenat=True)["publicipaddress"]
        assert snat2["ipaddress"] != snat["ipaddress"]
        wait_for("guest c's beacon from its own network's source NAT", lambda: snat2["ipaddress"] in internet.clients(c_ip), 30)
        guest_net(a_log, "up", "guest a still out")
    except AssertionError:
        diagnose(host_server, networks, vms)
        import os, time
        if os.environ.get("HOLD"):
            open("/tmp/hold", "w").write("\n".join(networks + vms))
            time.sleep(900)
        raise
    finally:
        # Through the API first, so that routers and DHCP services go with their networks.
        cs = client(admin_credentials(host_server))
        for uuid in vms:
            try:
                cs.destroyVirtualMachine(id=uuid, expunge=True)
            except Exception as e:  # the domain is removed below in any case
                print("destroying VM {}: {}".format(uuid, e))
            virsh("destroy", uuid)
            virsh("undefine", uuid)
        for uuid in networks:
            try:
                cs.deleteNetwork(id=uuid, forced=True)
            except Exception as e:
                print("deleting network {}: {}".format(uuid, e))
            sh("ip", "netns", "del", router_namespace(uuid), check=False)
        internet.close()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
