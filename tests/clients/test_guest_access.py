"""SSH key pairs, userdata and one-time passwords through real clients on a Simulator zone:
`cs` (POST and GET) and Apache Libcloud's key pair and node calls. Fingerprints are checked
against `ssh-keygen -E md5`, a generated private key against `ssh-keygen -y`, and each
refusal for CloudStack's code and text and for changing nothing."""

import base64
import secrets
import subprocess
import time

import pytest
from cs import CloudStack, CloudStackApiException
from libcloud.compute.base import NodeImage, NodeLocation, NodeSize
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

from conftest import new_user_account
from test_instances import sim_zone


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


def ssh_keygen(tmp_path, kind="ed25519"):
    """A fresh key made by ssh-keygen: (public line, MD5 fingerprint as CloudStack shows it)."""
    path = tmp_path / ("k" + secrets.token_hex(3))
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "me@example", "-f", str(path)], check=True)
    return (path.with_suffix(".pub").read_text().strip(), md5_of(path.with_suffix(".pub")))


def md5_of(public_file):
    out = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", str(public_file)], check=True, capture_output=True, text=True).stdout
    return out.split()[1].removeprefix("MD5:")


def public_of_private(tmp_path, private_pem):
    """The public line ssh-keygen derives from a private key."""
    path = tmp_path / ("p" + secrets.token_hex(3))
    path.write_text(private_pem)
    path.chmod(0o600)
    return subprocess.run(["ssh-keygen", "-y", "-f", str(path)], check=True, capture_output=True, text=True).stdout.strip()


def tenant(admin, z, prefix):
    """A user account with its own Isolated network in the zone."""
    user = new_user_account(admin, prefix)
    ucs = client(user)
    net = ucs.createNetwork(name="ga" + secrets.token_hex(3), networkofferingid=z["iso"], zoneid=z["zone"]["id"])["network"]
    return user, ucs, net


def deploy(cs, z, net, **extra):
    params = dict(serviceofferingid=z["offering"]["id"], zoneid=z["zone"]["id"], templateid=z["template"]["id"], networkids=net["id"])
    params.update(extra)
    return cs.deployVirtualMachine(**params)["virtualmachine"]


def keypairs_of(cs):
    return cs.listSSHKeyPairs().get("sshkeypair", [])


def vms_of(cs):
    return cs.listVirtualMachines().get("virtualmachine", [])


def password_template(cs, z, web):
    t = cs.registerTemplate(name="pw" + z["tag"], url=web + "/tiny.qcow2", format="QCOW2", hypervisor="Simulator", zoneid=z["zone"]["id"], ispublic=True, passwordenabled=True)["template"][0]
    deadline = time.monotonic() + 60
    while not cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the template did not download"
        time.sleep(0.1)
    assert t["passwordenabled"] is True
    return t


def test_key_pairs_through_cs(admin, web, tmp_path):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    user, ucs, net = tenant(admin, z, "ka")

    made = ucs.createSSHKeyPair(name="made")["keypair"]
    assert made["privatekey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    derived = tmp_path / "derived.pub"
    derived.write_text(public_of_private(tmp_path, made["privatekey"]) + "\n")
    assert derived.read_text().startswith("ssh-rsa ")
    assert made["fingerprint"] == md5_of(derived)

    line, fingerprint = ssh_keygen(tmp_path)
    given = ucs.registerSSHKeyPair(name="given", publickey=line)["keypair"]
    assert given["fingerprint"] == fingerprint and "privatekey" not in given
    rsa_line, rsa_fingerprint = ssh_keygen(tmp_path, "rsa")
    # The base64 of the whole line is read too.
    b64 = ucs.registerSSHKeyPair(name="b64", publickey=base64.b64encode(rsa_line.encode()).decode())["keypair"]
    assert b64["fingerprint"] == rsa_fingerprint

    listed = {k["name"]: k for k in keypairs_of(ucs)}
    assert set(listed) == {"made", "given", "b64"}
    assert all("privatekey" not in k for k in listed.values())
    assert [k["name"] for k in ucs.listSSHKeyPairs(fingerprint=fingerprint)["sshkeypair"]] == ["given"]

    refusals = [
        (dict(name="made"), "createSSHKeyPair", "A key pair with name 'made' already exists."),
        (dict(name="given", publickey=ssh_keygen(tmp_path)[0]), "registerSSHKeyPair", "A key pair with name 'given' already exists for this account."),
        (dict(name="other", publickey="ssh-rsa this is not a key"), "registerSSHKeyPair", "Public key is invalid"),
        (dict(name="other", publickey=made["privatekey"]), "registerSSHKeyPair", "Public key is invalid"),
    ]
    for params, command, text in refusals:
        err = error_of(lambda: getattr(ucs, command)(**params))
        assert (err["errorcode"], err["errortext"]) == (431, text), (command, params, err)
        assert {k["name"] for k in keypairs_of(ucs)} == {"made", "given", "b64"}

    # Deploy with a key pair and userdata; a key pair of another account is refused.
    other_user, other_cs, _ = tenant(admin, z, "kb")
    other_cs.registerSSHKeyPair(name="theirs", publickey=ssh_keygen(tmp_path)[0])
    err = error_of(lambda: deploy(ucs, z, net, keypair="theirs"))
    assert (err["errorcode"], err["errortext"]) == (431, "Not all specified keypairs exist"), err
    assert vms_of(ucs) == []
    script = "#!/bin/sh\necho hi > /tmp/marker\n" + "#" * 8000
    userdata = base64.b64encode(script.encode()).decode()
    assert 4096 < len(userdata) < 32768
    # Too long for a GET, within the limit of a POST.
    err = error_of(lambda: deploy(client(user, method="get"), z, net, keypairs="made,given", userdata=userdata))
    assert (err["errorcode"], err["errortext"]) == (431, "User data is too long for http GET request"), err
    err = error_of(lambda: deploy(ucs, z, net, userdata="not base64!"))
    assert (err["errorcode"], err["errortext"]) == (431, "User data is not base64 encoded."), err
    err = error_of(lambda: deploy(ucs, z, net, userdata=base64.b64encode(b"x" * 30000).decode()))
    assert (err["errorcode"], err["errortext"]) == (431, "User data has exceeded configurable max length: 32768"), err
    assert vms_of(ucs) == []
    vm = deploy(ucs, z, net, keypairs="made,given", userdata=userdata)
    assert vm["keypairs"] == "given,made" and "password" not in vm  # in name order
    assert ucs.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == userdata

    # Key reset: stopped VMs only; the template has no passwords.
    err = error_of(lambda: ucs.resetSSHKeyForVirtualMachine(id=vm["id"], keypair="b64"))
    assert err["errorcode"] == 431 and err["errortext"].endswith("should be stopped to do SSH Key reset"), err
    err = error_of(lambda: ucs.resetPasswordForVirtualMachine(id=vm["id"]))
    assert (err["errorcode"], err["errortext"]) == (431, "Fail to reset password for the Instance, the Template is not password enabled"), err
    ucs.stopVirtualMachine(id=vm["id"])
    reset = ucs.resetSSHKeyForVirtualMachine(id=vm["id"], keypair="b64")["virtualmachine"]
    assert reset["keypairs"] == "b64" and "password" not in reset
    assert ucs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["keypairs"] == "b64"

    assert ucs.deleteSSHKeyPair(name="given")["success"] is True
    assert {k["name"] for k in keypairs_of(ucs)} == {"made", "b64"}
    err = error_of(lambda: ucs.deleteSSHKeyPair(name="given"))
    assert err["errorcode"] == 431 and err["errortext"].startswith("A key pair with name 'given' does not exist for account"), err


def test_passwords_and_stored_userdata_through_cs(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    user, ucs, net = tenant(admin, z, "kp")
    t = password_template(cs, z, web)

    vm = deploy(ucs, z, net, templateid=t["id"])
    first = vm["password"]
    assert len(first) == 12 and vm["passwordenabled"] is True
    assert "password" not in ucs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
    err = error_of(lambda: ucs.resetPasswordForVirtualMachine(id=vm["id"]))
    assert err["errorcode"] == 431 and err["errortext"].endswith("should be stopped to do password reset"), err
    ucs.stopVirtualMachine(id=vm["id"])
    second = ucs.resetPasswordForVirtualMachine(id=vm["id"])["virtualmachine"]["password"]
    assert len(second) == 12 and second != first
    events = ucs.listEvents(type="VM.RESETPASSWORD")["event"]
    assert len(events) == 1 and second not in str(events)

    script = base64.b64encode(b"#cloud-config\nhostname: {{ ds.meta_data.host }}\n").decode()
    stored = ucs.registerUserData(name="cfg", userdata=script, params="host")["userdata"]
    assert (stored["name"], stored["userdata"], stored["params"]) == ("cfg", script, "host")
    err = error_of(lambda: ucs.registerUserData(name="cfg", userdata=base64.b64encode(b"x").decode()))
    assert (err["errorcode"], err["errortext"]) == (431, "A userdata with name cfg already exists for this account."), err
    assert [u["id"] for u in ucs.listUserData()["userdata"]] == [stored["id"]]
    made = deploy(ucs, z, net, userdataid=stored["id"], userdatadetails=[{"host": "web-1"}], startvm=False)
    assert made["userdataid"] == stored["id"] and made["userdataname"] == "cfg"
    got = ucs.getVirtualMachineUserData(virtualmachineid=made["id"])["virtualmachineuserdata"]
    assert (got["userdata"], got["userdataid"]) == (script, stored["id"])
    err = error_of(lambda: ucs.deleteUserData(id=stored["id"]))
    assert (err["errorcode"], err["errortext"]) == (530, "Userdata cfg cannot be removed as it is being used by some instances"), err

    # updateVirtualMachine: new userdata on a stopped VM.
    newer = base64.b64encode(b"#!/bin/sh\ntrue\n").decode()
    ucs.updateVirtualMachine(id=vm["id"], userdata=newer)
    assert ucs.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == newer

    # A template's linked userdata, denying overrides.
    base = base64.b64encode(b"echo base\n").decode()
    mine = cs.registerUserData(name="base" + z["tag"], userdata=base, params="role")["userdata"]
    fields = ("userdataid", "userdataname", "userdatapolicy", "userdataparams")
    listed = lambda: cs.listTemplates(templatefilter="all", id=t["id"])["template"][0]  # noqa: E731
    assert not set(fields) & set(listed()), "no userdata linked yet"
    linked = cs.linkUserDataToTemplate(templateid=t["id"], userdataid=mine["id"], userdatapolicy="DENYOVERRIDE")["template"]
    wanted = (mine["id"], mine["name"], "DENYOVERRIDE", "role")
    assert tuple(linked.get(f) for f in fields) == wanted, linked
    assert tuple(listed().get(f) for f in fields) == wanted
    before = len(vms_of(ucs))
    err = error_of(lambda: deploy(ucs, z, net, templateid=t["id"], userdata=newer))
    assert err["errorcode"] == 530 and err["errortext"].endswith("is configured to deny any userdata"), err
    assert len(vms_of(ucs)) == before
    plain = deploy(ucs, z, net, templateid=t["id"], startvm=False)
    assert ucs.getVirtualMachineUserData(virtualmachineid=plain["id"])["virtualmachineuserdata"]["userdata"] == base
    err = error_of(lambda: cs.deleteUserData(id=mine["id"]))
    assert err["errorcode"] == 530 and err["errortext"].endswith("linked to active template/templates"), err

    # linkUserDataToTemplate without a userdataid unlinks.
    unlinked = cs.linkUserDataToTemplate(templateid=t["id"])["template"]
    assert unlinked["id"] == t["id"] and not set(fields) & set(unlinked), unlinked
    assert not set(fields) & set(listed())


def test_key_pairs_and_nodes_through_libcloud(admin, web, tmp_path):
    cs = client(admin)
    z = sim_zone(cs, web, pool=False)
    user, ucs, net = tenant(admin, z, "kl")
    d = lc_driver(user)

    made = d.create_key_pair(name="lc-made")
    assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----") and len(made.fingerprint) == 47
    line, fingerprint = ssh_keygen(tmp_path)
    imported = d.import_key_pair_from_string("lc-imported", line)
    assert imported.fingerprint == fingerprint and imported.private_key is None
    pairs = {k.name: k for k in d.list_key_pairs()}
    assert set(pairs) == {"lc-made", "lc-imported"} and pairs["lc-made"].private_key is None
    assert d.get_key_pair("lc-imported").fingerprint == fingerprint

    image = NodeImage(id=z["template"]["id"], name=z["template"]["name"], driver=d)
    size = NodeSize(id=z["offering"]["id"], name=z["offering"]["name"], ram=64, disk=0, bandwidth=0, price=0, driver=d)
    loc = NodeLocation(id=z["zone"]["id"], name=z["zone"]["name"], country="", driver=d)
    node = d.create_node(name="lck-" + z["tag"], size=size, image=image, location=loc, networks=[d.ex_list_networks()[0]], ex_keyname="lc-imported", ex_userdata="#!/bin/sh\necho from-libcloud\n")
    assert node.state == NodeState.STOPPED
    vm = ucs.listVirtualMachines(id=node.id)["virtualmachine"][0]
    assert vm["keypairs"] == "lc-imported"
    got = ucs.getVirtualMachineUserData(virtualmachineid=node.id)["virtualmachineuserdata"]["userdata"]
    assert base64.b64decode(got) == b"#!/bin/sh\necho from-libcloud\n"

    # A missing key pair: Libcloud reports CloudStack's error, and no node is made.
    with pytest.raises(Exception) as e:
        d.create_node(name="lcx-" + z["tag"], size=size, image=image, location=loc, networks=[d.ex_list_networks()[0]], ex_keyname="missing")
    assert "Not all specified keypairs exist" in str(e.value)
    assert [n.id for n in d.list_nodes()] == [node.id]

    # Libcloud compares `success` with the string "true"; this server (like CloudStack's
    # JSON) answers a boolean, so it reports False while the key pair is gone.
    d.delete_key_pair(pairs["lc-made"])
    assert {k.name for k in d.list_key_pairs()} == {"lc-imported"}
