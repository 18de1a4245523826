"""Unmodified cloud-init in a real guest, configured from a config drive.

The Debian 12 guest of scripts/cloud-guest-image.sh (Debian's cloud-init package, nothing
of wasmstack in it) is deployed through the API on a Shared network whose offering has its
UserData service given by ConfigDrive, on the local libvirtd (QEMU under TCG), an NFS pool
and Open vSwitch. Its SSH key is recorded for it as the key pair API records keys; its
userdata script writes a marker with the host name to the serial console; then the test
logs in with the key, from the network's DHCP namespace. One guest: it takes about 45 s to
boot under TCG."""

import base64
import os
import re
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import admin_credentials, file_server
from test_instance_guest import client, domstate, host_server, virsh, wait_for, zone_with  # noqa: F401 (fixture)

CLOUD_GUEST_DIR = Path(os.environ.get("WASMSTACK_CLOUD_GUEST_DIR", os.path.expanduser("~/.cache/wasmstack/cloud-guest")))
MARKER = "WASMSTACK-CLOUD-INIT-USERDATA"
USERDATA = """#!/bin/sh
echo "{marker} $(hostname) keys=$(grep -c ssh- /home/debian/.ssh/authorized_keys)" > /dev/ttyS0
""".format(marker=MARKER)


@pytest.fixture(scope="module")
def cloud_web(tmp_path_factory, web):
    """The tiny guest's files (zone_with registers them) and the cloud-init guest as cloud.qcow2."""
    template = CLOUD_GUEST_DIR / "template.qcow2"
    assert template.is_file(), "run scripts/cloud-guest-image.sh first"
    root = tmp_path_factory.mktemp("cloudweb")
    (root / "cloud.qcow2").symlink_to(template)
    with file_server(root) as url:
        yield web, url


def serial_log(uuid):
    xml = virsh("dumpxml", uuid).stdout
    m = re.search(r"<serial type='file'>\s*<source path='([^']+)'", xml)
    assert m, "the domain has no serial log file:\n" + xml
    return Path(m.group(1))


def test_cloud_init_takes_key_and_userdata_from_the_config_drive(host_server, cloud_web, tmp_path):  # noqa: F811
    web, cloud_url = cloud_web
    cs = client(admin_credentials(host_server))
    tag = secrets.token_hex(3)
    bridge = "ws-c" + tag
    uuid = None
    log = None
    try:
        z = zone_with(cs, web, tag, "KVM", "qemu:///system", bridge, "10.97.0.0/24", "3560-3569", 1024)
        t = cs.registerTemplate(name="deb" + tag, url=cloud_url + "/cloud.qcow2", format="QCOW2", hypervisor="KVM", zoneid=z["zone"]["id"], ispublic=True)["template"][0]
        wait_for("the Debian template download", lambda: cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"], 300)
        offering = cs.listNetworkOfferings(name="DefaultSharedNetworkOfferingWithConfigDrive")["networkoffering"][0]
        assert {"name": "UserData", "provider": [{"name": "ConfigDrive"}]} in offering["service"], offering
        net = cs.createNetwork(name="cd" + tag, displaytext="cd", networkofferingid=offering["id"], zoneid=z["zone"]["id"], vlan="3569", gateway="10.98.0.1", netmask="255.255.255.0", startip="10.98.0.10", endip="10.98.0.40")["network"]

        # Stopped first, so that the key is recorded before the first boot, as a deploy
        # with keypair= records it.
        userdata = base64.b64encode(USERDATA.encode()).decode()
        vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=t["id"], networkids=net["id"], name="cg-" + tag, userdata=userdata, startvm=False)["virtualmachine"]
        uuid = vm["id"]
        key = tmp_path / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cfgdrive@test", "-f", str(key)], check=True, timeout=30)
        public = (tmp_path / "key.pub").read_text().strip()
        with sqlite3.connect(host_server.sqlite_path, timeout=30) as db:
            (row,) = db.execute("SELECT id FROM instances WHERE uuid = ?", (uuid,)).fetchone()
            db.execute("INSERT INTO instance_ssh_keys (instance_id, name, public_key) VALUES (?, 'test', ?)", (row, public))

        started = time.monotonic()
        assert cs.startVirtualMachine(id=uuid)["virtualmachine"]["state"] == "Running"
        assert domstate(uuid) == "running"
        xml = virsh("dumpxml", uuid).stdout
        assert "<entry name='product'>CloudStack KVM Hypervisor</entry>" in xml, xml
        assert re.search(r"<disk type='\w+' device='cdrom'>(?:(?!</disk>).)*config-2\.iso", xml, re.S), xml
        log = serial_log(uuid)
        line = "{} cg-{} keys=1".format(MARKER, tag)
        wait_for(line, lambda: log.is_file() and line in log.read_text(errors="replace"), 300)
        print("start API call to the userdata marker: {:.1f} s".format(time.monotonic() - started))

        ip = cs.listVirtualMachines(id=uuid)["virtualmachine"][0]["nic"][0]["ipaddress"]
        ns = "ws-n" + "".join(c for c in net["id"] if c in "0123456789abcdef")[:11]
        ssh = ["ip", "netns", "exec", ns, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "debian@" + ip, "hostname"]

        tried = []

        def logged_in():
            done = subprocess.run(ssh, capture_output=True, text=True, timeout=60)
            tried.append(done.stderr.strip())
            return done.returncode == 0 and done.stdout.strip() == "cg-" + tag

        try:
            wait_for("an ssh login with the key", logged_in, 120)
        except AssertionError:
            seen = [ln for ln in log.read_text(errors="replace").splitlines() if "ci-info" in ln or "dhclient" in ln.lower() or "ssh" in ln.lower()]
            print("ssh said:", tried[-1:], "\nthe guest said:\n" + "\n".join(seen[-60:]))
            raise
        cs.destroyVirtualMachine(id=uuid, expunge=True)
        uuid = None
        # Its DHCP service and namespace go with the network.
        cs.deleteNetwork(id=net["id"])
    finally:
        if uuid:
            virsh("destroy", uuid)
            virsh("undefine", uuid)
        if log:
            log.unlink(missing_ok=True)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
