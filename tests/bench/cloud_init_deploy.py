#!/usr/bin/env python3
"""What cloud-init's data from the metadata and password services adds to a real guest's boot.

    tests/bench/cloud_init_deploy.py [--runs N]     (as root, in the tests' venv)

Needs what the real-guest client tests need: scripts/setup.sh (libvirtd, NFS, Open vSwitch),
scripts/build.sh, scripts/guest-image.sh and scripts/cloud-guest-image.sh; it reads the same
environment (WASMSTACK_BIN, WASMSTACK_CLOUD_GUEST_DIR, WASMSTACK_NFS_*, see scripts/test.sh).
It also uses qemu-img, sfdisk and debugfs (e2fsprogs). It is a measurement, not a test: it
prints figures and checks only that each stop was a clean shutdown (the log must be complete).

One `wasmstack serve` (SQLite), one zone on this machine's libvirtd (QEMU, TCG), one Isolated
network whose virtual router runs the DHCP, metadata and password services, and the Debian 12
cloud-init guest of scripts/cloud-guest-image.sh. Each run deploys one VM and removes it when
it is measured; the two sides alternate (with, without, with, ...), N runs each (3).

- with data: `deployVirtualMachine keypair= userdata=` on a password-enabled template, so
  cloud-init's CloudStack datasource gets a key, a userdata script and a password to set.
  The script writes a marker with the guest's uptime to the serial console.
- without data: the same image registered as a template without passwords, deployed without
  key pair and userdata, on the same network and offering.

Why this baseline: the KVM driver always gives the guest the SMBIOS product that makes
cloud-init pick the CloudStack datasource, so a boot that never asks the services does not
exist for this image; booting it on a different datasource (or none) would run different
cloud-init stages and compare two different boots. Both sides therefore boot the same image
through the same stages up to the same line, cloud-init's final message on the console
("Cloud-init v. ... finished at ... Up N seconds"): the difference between the sides is what
the data costs (fetching userdata, key and password and acting on them). What the services
themselves cost, the time cloud-init spends finding the datasource and fetching from it, is
cloud-init's own `init-network/search-CloudStack` event (as `cloud-init analyze blame` reports
it), reported beside it for both sides, with the other events that differ most between the
sides. They come from /var/log/cloud-init.log on the guest's disk, read after the VM is
stopped (a clean shutdown) with qemu-img and debugfs, the same way on both sides.

The zone's DNS server is the network's router address, where nothing answers DNS: the guest's
lookups are refused at once, as a reachable DNS server answers "no such name". That matters
because the datasource first looks up the name `data-server` (a CloudStack virtual router
answers it with its own address; this one has no DNS service) before it reads the router's
address from the DHCP lease: with an unreachable DNS server that lookup alone takes 10 s
(glibc's 5 s timeout, twice), on both sides, inside search-CloudStack.

Figures, medians of the runs per side:
- deploy API call to the final message, on the host's clock (the deploy includes defining and
  starting the domain; the template is copied to the pool by a warm-up deploy of each first);
- the final message's uptime, on the guest's clock (kernel start to the end of cloud-final);
- with data only: deploy to the userdata marker, and the marker's uptime;
- cloud-init's search-CloudStack, and the events that differ most.
Under TCG on a shared machine the boots vary by seconds (min-max is printed; on a loaded
machine two runs of 3 gave end-to-end differences of +9 s and +1 s): cloud-init's own event
times are the steadier figures for effects under a second; --runs adds samples.
"""

import argparse
import base64
import datetime
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients"))

from conftest import EXPORT_ROOT, Server, admin_credentials, file_server, guest_files, install_drivers, server_binary  # noqa: E402
from test_config_drive_guest import CLOUD_GUEST_DIR, serial_log  # noqa: E402
from test_instance_guest import GRANTS, client, start_server, virsh, zone_with  # noqa: E402

MARKER = "WASMSTACK-BENCH-USERDATA"
USERDATA = """#!/bin/sh
echo "{marker} up=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
""".format(marker=MARKER)
MARKER_RE = re.compile(MARKER + r" up=([0-9.]+)")
FINISHED_RE = re.compile(r"Cloud-init v\. \S+ finished at .*Up ([0-9.]+) seconds")
BOOT_TIMEOUT = 400
# The zone's DNS server: the Isolated network's router address (the first of the zone's guest
# CIDR), where no DNS server listens, so the guest's lookups fail at once.
ROUTER = "10.91.0.1"
SEARCH = "init-network/search-CloudStack"


def wait_line(log, pattern, timeout):
    """Polls the serial log for the first match of `pattern`; returns it and the host time then."""
    deadline = time.monotonic() + timeout
    while True:
        if log.is_file():
            m = pattern.search(log.read_text(errors="replace"))
            if m:
                return m, time.monotonic()
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else "(no serial log)"
            raise RuntimeError("no {!r} within {} s; the guest said:\n{}".format(pattern.pattern, timeout, tail))
        time.sleep(0.05)


EVENT_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - handlers\.py\[DEBUG\]: (start|finish): ([^:]+):", re.M)


def cloud_init_events(disk, scratch):
    """cloud-init's own event durations (`cloud-init analyze blame`'s), in seconds by event
    name, from /var/log/cloud-init.log on a stopped guest's root disk."""
    raw = scratch / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", disk, str(raw)], check=True, timeout=300)
    try:
        table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], check=True, capture_output=True, text=True, timeout=60).stdout)
        root = table["partitiontable"]["partitions"][1]["start"] * 512
        done = subprocess.run(["debugfs", "-R", "cat /var/log/cloud-init.log", "{}?offset={}".format(raw, root)],
                              check=True, capture_output=True, text=True, timeout=60)
        text = done.stdout
        if not text:
            ls = subprocess.run(["debugfs", "-R", "ls -l /var/log", "{}?offset={}".format(raw, root)], capture_output=True, text=True, timeout=60)
            raise RuntimeError("debugfs read nothing: {}\n{}{}".format(done.stderr, ls.stdout, ls.stderr))
    finally:
        raw.unlink(missing_ok=True)
    started, took = {}, {}
    for stamp, what, name in EVENT_RE.findall(text):
        at = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if what == "start":
            started[name] = at
        elif name in started:
            took[name] = took.get(name, 0.0) + at - started.pop(name)
    if SEARCH not in took:
        raise RuntimeError("no {} event in the guest's cloud-init.log ({} characters):\n{}".format(SEARCH, len(text), text[-2000:]))
    return took


def root_disk(xml):
    """The root disk's image, as a file name or (a disk on the NFS server) an nfs:// URL."""
    disk = re.search(r"<disk type='(\w+)' device='disk'>(.*?)</disk>", xml, re.S)
    assert disk, "no disk in the domain:\n" + xml
    if disk.group(1) == "network":
        m = re.search(r"<source protocol='nfs' name='/?([^']+)'[^>]*>\s*<host name='([^']+)'", disk.group(2))
        assert m, "the root disk is not an NFS image:\n" + disk.group(0)
        return "nfs://{}/{}".format(m.group(2), m.group(1))
    return re.search(r"<source (?:file|dev)='([^']+)'", disk.group(2)).group(1)


def one_run(cs, z, net, template, with_data, kp, scratch):
    """One deploy, measured; returns the figures and cloud-init's event durations."""
    tag = secrets.token_hex(3)
    extra = {}
    if with_data:
        extra = {"keypair": kp["name"], "userdata": base64.b64encode(USERDATA.encode()).decode()}
    started = time.monotonic()
    vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=template["id"],
                                 networkids=net["id"], name="bn-" + tag, **extra)["virtualmachine"]
    uuid = vm["id"]
    log = None
    try:
        log = serial_log(uuid)
        got = {}
        if with_data:
            assert vm.get("password"), "the password-enabled template gave no password"
            m, at = wait_line(log, MARKER_RE, BOOT_TIMEOUT)
            got["marker_host"] = at - started
            got["marker_guest"] = float(m.group(1))
        m, at = wait_line(log, FINISHED_RE, BOOT_TIMEOUT)
        got["finished_host"] = at - started
        got["finished_guest"] = float(m.group(1))
        # Stopped (a clean shutdown) so that its disk holds cloud-init's whole log.
        disk = root_disk(virsh("dumpxml", uuid).stdout)
        cs.stopVirtualMachine(id=uuid)
        said = log.read_text(errors="replace")
        assert "reboot: Power down" in said, "the stop was not a clean shutdown:\n" + said[-3000:]
        events = cloud_init_events(disk, scratch)
        got["search"] = events[SEARCH]
        return got, events
    finally:
        cs.destroyVirtualMachine(id=uuid, expunge=True)
        if log:
            log.unlink(missing_ok=True)


def warm_up(cs, z, net, template):
    """A deploy that copies the template to the pool, so that no measured run pays for it."""
    vm = cs.deployVirtualMachine(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=template["id"],
                                 networkids=net["id"], name="bw-" + secrets.token_hex(3))["virtualmachine"]
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)


def summary(values):
    return "{:6.1f}  ({:.1f}-{:.1f})".format(statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="deploys per side (3)")
    args = ap.parse_args()
    image = CLOUD_GUEST_DIR / "template.qcow2"
    if not image.is_file():
        sys.exit("run scripts/cloud-guest-image.sh first ({} is missing)".format(image))

    root = Path(tempfile.mkdtemp(prefix="wasmstack-bench-cloud-init-"))
    web_root = root / "web"
    web_root.mkdir()
    guest_files(web_root)
    (web_root / "cloud.qcow2").symlink_to(image)
    srv = Server("sqlite", root / "server")
    install_drivers(srv.data_dir)
    shutil.copyfile(server_binary().parent.parent / "wasm32-wasip2" / "release" / "vlan.wasm", srv.data_dir / "plugins" / "vlan.wasm")
    (srv.data_dir / "wasmstack.toml").write_text(GRANTS)
    tag = secrets.token_hex(3)
    bridge = "ws-b" + tag
    net = None
    cs = None
    try:
        start_server(srv)
        cs = client(admin_credentials(srv))
        with file_server(web_root) as web:
            z = zone_with(cs, web, tag, "KVM", "qemu:///system", bridge, "10.91.0.0/24", "3590-3599", 1024, dns=ROUTER)
            net = z["network"]
            assert net["gateway"] == ROUTER, net
            templates = {}
            for with_data in (True, False):
                t = cs.registerTemplate(name="bd{}{}".format(int(with_data), tag), url=web + "/cloud.qcow2", format="QCOW2", hypervisor="KVM",
                                        zoneid=z["zone"]["id"], ispublic=True, passwordenabled=with_data)["template"][0]
                templates[with_data] = t
            deadline = time.monotonic() + 600
            while not all(cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"] for t in templates.values()):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Debian templates did not download")
                time.sleep(1)

        kp = cs.createSSHKeyPair(name="bk" + tag)["keypair"]
        for t in templates.values():
            warm_up(cs, z, net, t)

        results = {True: [], False: []}
        events = {True: [], False: []}
        for i in range(args.runs):
            for with_data in (True, False):
                got, took = one_run(cs, z, net, templates[with_data], with_data, kp, root)
                results[with_data].append(got)
                events[with_data].append(took)
                print("run {} {:>12}: {}".format(i + 1, "with data" if with_data else "without data",
                                                  ", ".join("{} {:.2f} s".format(k, v) for k, v in got.items())), flush=True)

        def col(with_data, k):
            return [r[k] for r in results[with_data]]

        def median(with_data, k):
            return statistics.median(col(with_data, k))

        print("\nmedians of {} runs per side, seconds (min-max):".format(args.runs))
        print("  deploy to final message, host clock    with {}   without {}".format(summary(col(True, "finished_host")), summary(col(False, "finished_host"))))
        print("  final message uptime, guest clock      with {}   without {}".format(summary(col(True, "finished_guest")), summary(col(False, "finished_guest"))))
        print("  deploy to userdata marker, host clock  with {}".format(summary(col(True, "marker_host"))))
        print("  userdata marker uptime, guest clock    with {}".format(summary(col(True, "marker_guest"))))
        print("  cloud-init {}  with {}   without {}".format(SEARCH, summary(col(True, "search")), summary(col(False, "search"))))
        for what, k in (("host", "finished_host"), ("guest", "finished_guest")):
            w, wo = median(True, k), median(False, k)
            print("  data adds (final message, {} clock): {:+.1f} s, ratio {:.3f}".format(what, w - wo, w / wo))
        w, wo = median(True, "marker_host"), median(False, "finished_host")
        print("  marker (with) vs final message (without), host clock: {:+.1f} s, ratio {:.3f}".format(w - wo, w / wo))

        # Where the difference goes, by cloud-init's own events (stages include their modules).
        names = set().union(*events[True], *events[False])

        def event_median(with_data, name):
            return statistics.median(e.get(name, 0.0) for e in events[with_data])

        diffs = sorted(((event_median(True, n) - event_median(False, n), n) for n in names), reverse=True)
        print("\ncloud-init events that differ most (medians, seconds: with, without, difference):")
        for d, n in [x for x in diffs if "/" in x[1]][:8]:
            print("  {:<52} {:6.2f} {:6.2f} {:+6.2f}".format(n, event_median(True, n), event_median(False, n), d))
    finally:
        if cs and net:
            try:
                cs.deleteNetwork(id=net["id"])
            except Exception as e:  # the report matters more than a tidy end; say what is left
                print("could not delete the network {}: {}".format(net["id"], e), file=sys.stderr)
        srv.close()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
        # The zone's image store and pool folders (zone_with names them by the tag).
        for name in ("gpool-" + tag, "gtpl-" + tag):
            shutil.rmtree(EXPORT_ROOT / name, ignore_errors=True)


if __name__ == "__main__":
    main()
