"""Unmodified cloud-init in a real guest, configured by the metadata and password services.

The Debian 12 guest of scripts/cloud-guest-image.sh (Debian's cloud-init, nothing of
wasmstack in it) finds cloud-init's CloudStack datasource by the SMBIOS product the KVM
driver gives it, and asks the "virtual router" (its DHCP server) for its metadata, userdata
and password. Everything goes through the API as a user would do it: `createSSHKeyPair`
makes the key the test logs in with, `deployVirtualMachine keypair= userdata=` on a
password-enabled template, then `resetPasswordForVirtualMachine` on the stopped VM and a
start. One guest, booted twice: about 45 s each under TCG."""

import base64
import secrets
import sqlite3
import subprocess
import time

from conftest import admin_credentials
from test_config_drive_guest import cloud_web, serial_log  # noqa: F401 (fixture)
from test_instance_guest import client, domstate, host_server, virsh, wait_for, zone_with  # noqa: F401 (fixture)

MARKER = "WASMSTACK-CLOUDSTACK-USERDATA"
USERDATA = """#!/bin/sh
echo "{marker} $(hostname) keys=$(grep -c ssh- /home/debian/.ssh/authorized_keys)" > /dev/ttyS0
""".format(marker=MARKER)


def dhcp_namespace(network_id):
    return "ws-n" + "".join(c for c in network_id if c in "0123456789abcdef")[:11]


def pending_password(server, uuid):
    with sqlite3.connect(server.sqlite_path, timeout=30) as db:
        return db.execute("SELECT password_pending FROM instances WHERE uuid = ?", (uuid,)).fetchone()[0]


def test_cloud_init_takes_key_userdata_and_password_from_the_metadata_services(host_server, cloud_web, tmp_path):  # noqa: F811
    web, cloud_url = cloud_web
    cs = client(admin_credentials(host_server))
    tag = secrets.token_hex(3)
    bridge = "ws-m" + tag
    uuid = None
    try:
        # The zone's DNS server is the network's router address, where none listens: the
        # datasource first looks up the name data-server, which fails at once there rather
        # than after 10 s of timeouts against an unreachable server (each boot).
        z = zone_with(cs, web, tag, "KVM", "qemu:///system", bridge, "10.96.0.0/24", "3570-3579", 1024, dns="10.96.0.1")
        net = z["network"]
        assert net["gateway"] == "10.96.0.1", net
        t = cs.registerTemplate(name="deb" + tag, url=cloud_url + "/cloud.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["zone"]["id"], ispublic=True, passwordenabled=True)["template"][0]
        wait_for("the Debian template download", lambda: cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"], 300)

        kp = cs.createSSHKeyPair(name="k" + tag)["keypair"]
        key = tmp_path / "key"
        key.write_text(kp["privatekey"])
        key.chmod(0o600)

        userdata = base64.b64encode(USERDATA.encode()).decode()
        started = time.monotonic()
        vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=t["id"], networkids=net["id"], name="md-" + tag, keypair=kp["name"], userdata=userdata)["virtualmachine"]
        uuid = vm["id"]
        first_password = vm.get("password")
        assert first_password, vm
        assert vm["keypairs"] == kp["name"], vm
        assert "<entry name='product'>CloudStack KVM Hypervisor</entry>" in virsh("dumpxml", uuid).stdout

        log = serial_log(uuid)
        line = "{} md-{} keys=1".format(MARKER, tag)
        wait_for(line, lambda: log.is_file() and line in log.read_text(errors="replace"), 300)
        print("deploy API call to the userdata marker: {:.1f} s".format(time.monotonic() - started))
        # cloud-init asked the password server for the password, which was handed out once.
        wait_for("the guest's password fetch", lambda: pending_password(host_server, uuid) is None, 60)

        ip = cs.listVirtualMachines(id=uuid)["virtualmachine"][0]["nic"][0]["ipaddress"]
        ns = dhcp_namespace(net["id"])

        def in_guest(command):
            ssh = ["ip", "netns", "exec", ns, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "debian@" + ip, command]
            return subprocess.run(ssh, capture_output=True, text=True, timeout=90)

        tried = []

        def logged_in():
            done = in_guest("hostname")
            tried.append(done.stderr.strip())
            return done.returncode == 0 and done.stdout.strip() == "md-" + tag

        def wait_logged_in(what):
            try:
                wait_for(what, logged_in, 240)
            except AssertionError:
                print("ssh said:", tried[-1:], "\nthe guest said:\n" + log.read_text(errors="replace")[-4000:])
                raise

        wait_logged_in("an ssh login with the created key pair")

        # From inside the guest, as cloud-init asked: its own data, and no second password.
        router = "$(sed -n 's/.*dhcp-server-identifier \\([0-9.]*\\);/\\1/p' /var/lib/dhcp/*.leases | tail -1)"
        got = in_guest("wget -q -O - http://{r}/latest/meta-data/instance-id; echo; wget -q -O - http://{r}/latest/meta-data/local-hostname; echo; "
                       "wget -q -O - --header 'DomU_Request: send_my_password' http://{r}:8080/".format(r=router))
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == [uuid, "md-" + tag, "saved_password"], got.stdout

        # A new password on the stopped VM reaches the guest on its next boot, once.
        # The stop is a clean shutdown: the guest's systemd-logind acts on ACPI's power button
        # and the kernel powers off, which it says last on the console (a stop that runs out
        # of time powers the VM off with no such line). So nothing cloud-init wrote, such as
        # the SSH host keys the second login checks, can be lost.
        stopping = time.monotonic()
        cs.stopVirtualMachine(id=uuid)
        print("stopVirtualMachine: {:.1f} s".format(time.monotonic() - stopping))
        said = log.read_text(errors="replace")
        assert "reboot: Power down" in said, "not a clean shutdown; the guest said:\n" + said[-3000:]
        reset = cs.resetPasswordForVirtualMachine(id=uuid)["virtualmachine"]
        assert reset["password"] and reset["password"] != first_password
        assert pending_password(host_server, uuid) == reset["password"]
        cs.startVirtualMachine(id=uuid)
        wait_for("the guest's fetch of the new password", lambda: pending_password(host_server, uuid) is None, 240)
        wait_logged_in("an ssh login after the restart")
        again = in_guest("wget -q -O - --header 'DomU_Request: send_my_password' http://{r}:8080/".format(r=router))
        assert again.stdout.strip() == "saved_password", again.stdout

        cs.destroyVirtualMachine(id=uuid, expunge=True)
        uuid = None
        # Its DHCP service and namespace go with the network.
        cs.deleteNetwork(id=net["id"])
    finally:
        if uuid:
            virsh("destroy", uuid)
            virsh("undefine", uuid)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
