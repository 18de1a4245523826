"""The `cs` client (PyPI `cs`, as used by the exoscale/ngine-io Ansible modules and its CLI):
signature v3 with `expires`, GET query or POST form, async results through its own poller."""

import re
import secrets

import pytest
from cs import CloudStack, CloudStackApiException

import wire

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def client(creds, method, secret=None):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=secret or creds.secret, method=method, poll_interval=0.05, timeout=10)


@pytest.mark.parametrize("method", ["get", "post"])
def test_account_and_user_lifecycle(admin, method):
    cs = client(admin, method)
    name = "cs" + method + secrets.token_hex(4)

    # createAccount replies with the account object wrapped once, its first user inside.
    acct = cs.createAccount(username=name, password="pw", email=name + "@example.org", firstname="First", lastname="Last", accounttype=0)["account"]
    assert acct["name"] == name
    assert acct["accounttype"] == 0
    assert acct["roletype"] == "User"
    assert acct["state"] == "enabled"
    assert re.match(UUID_RE, acct["id"])
    [first] = acct["user"]
    assert first["username"] == name and first["accountid"] == acct["id"]

    # listAccounts finds it, with its user list.
    listed = cs.listAccounts(name=name)
    assert listed["count"] == 1
    [got] = listed["account"]
    assert got["id"] == acct["id"]
    assert [u["username"] for u in got["user"]] == [name]

    # A second user in that account, then keys for it.
    uname = name + "b"
    user = cs.createUser(account=name, username=uname, password="pw2", email="b@example.org", firstname="Bee", lastname="User")["user"]
    assert user["account"] == name and user["accountid"] == acct["id"] and user["state"] == "enabled"
    keys = cs.registerUserKeys(id=user["id"])["userkeys"]
    assert keys["apikey"] and keys["secretkey"] and keys["apikey"] != admin.apikey

    # The new user's own client sees only its own account, even when asking for everything.
    mine = CloudStack(endpoint=admin.endpoint, key=keys["apikey"], secret=keys["secretkey"], method=method)
    for kwargs in ({}, {"listall": True}):
        seen = mine.listAccounts(**kwargs)
        assert seen["count"] == 1, seen
        assert [a["id"] for a in seen["account"]] == [acct["id"]]
        assert sorted(u["username"] for u in seen["account"][0]["user"]) == sorted([name, uname])

    # Paging: count is the total, not the page length; past the end only count remains.
    page = cs.listUsers(account=name, page=1, pagesize=1)
    assert page["count"] == 2 and len(page["user"]) == 1
    assert cs.listUsers(account=name, page=3, pagesize=1) == {"count": 2}
    assert sorted(u["username"] for u in cs.listUsers(account=name, fetch_list=True)) == sorted([name, uname])

    # updateUser changes the name; listUsers' keyword search finds it by the new first name.
    renamed = "Renamed" + secrets.token_hex(3)
    updated = cs.updateUser(id=user["id"], firstname=renamed)["user"]
    assert updated["firstname"] == renamed and updated["username"] == uname
    found = cs.listUsers(keyword=renamed.lower())
    assert found["count"] == 1 and found["user"][0]["id"] == user["id"]
    assert cs.listUsers(keyword="no-such-" + secrets.token_hex(4)) == {}

    # disableUser is async: cs polls queryAsyncJobResult and returns the job result.
    result = cs.disableUser(id=user["id"], fetch_result=True)
    assert result["user"]["id"] == user["id"]
    assert result["user"]["state"] == "disabled"
    # ...and a disabled user's keys stop working.
    with pytest.raises(CloudStackApiException) as denied:
        mine.listAccounts()
    assert denied.value.response.status_code == 401
    assert denied.value.error["errorcode"] == 401
    # enableUser (sync) lets them back in.
    assert cs.enableUser(id=user["id"])["user"]["state"] == "enabled"
    assert mine.listAccounts()["count"] == 1

    # getUserKeys shows the registered pair; registering again replaces it, the old one dies.
    assert cs.getUserKeys(id=user["id"])["userkeys"] == keys
    rotated = cs.registerUserKeys(id=user["id"])["userkeys"]
    assert rotated["apikey"] != keys["apikey"] and rotated["secretkey"] != keys["secretkey"]
    with pytest.raises(CloudStackApiException) as old:
        mine.listAccounts()
    assert old.value.response.status_code == 401
    assert CloudStack(endpoint=admin.endpoint, key=rotated["apikey"], secret=rotated["secretkey"], method=method).listAccounts()["count"] == 1

    # queryAsyncJobResult's shape, polled by hand for disableAccount.
    submitted = cs.disableAccount(id=acct["id"], lock=False)
    assert set(submitted) == {"jobid"} and re.match(UUID_RE, submitted["jobid"])
    job = wire.Api(admin.endpoint, admin.apikey, admin.secret).wait_job(submitted["jobid"])
    assert type(job["jobstatus"]) is int and job["jobstatus"] == 1
    assert type(job["jobresultcode"]) is int and job["jobresultcode"] == 0
    assert type(job["jobprocstatus"]) is int
    assert job["jobid"] == submitted["jobid"]
    assert job["jobresulttype"] == "object"
    assert job["jobresult"]["account"]["state"] == "disabled"
    assert job["userid"] == admin.userid and job["accountid"] == admin.accountid
    assert job["jobinstancetype"] == "Account" and job["jobinstanceid"] == acct["id"]
    assert job["cmd"].endswith("DisableAccountCmd")
    for field in ("created", "completed"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$", job[field]), job[field]

    # deleteAccount: async, the job result is {"success": true}; the account is gone after.
    assert cs.deleteAccount(id=acct["id"], fetch_result=True) == {"success": True}
    assert cs.listAccounts(name=name) == {}

    # Everything above left events, each naming its resource.
    expected = {
        "ACCOUNT.CREATE": (acct["id"], 1),
        "USER.CREATE": (user["id"], 1),
        "REGISTER.USER.KEY": (user["id"], 2),
        "USER.UPDATE": (user["id"], 1),
        "USER.DISABLE": (user["id"], 1),
        "USER.ENABLE": (user["id"], 1),
        "ACCOUNT.DISABLE": (acct["id"], 1),
        "ACCOUNT.DELETE": (acct["id"], 1),
    }
    for kind, (resource, times) in expected.items():
        events = cs.listEvents(type=kind).get("event", [])
        ours = [e for e in events if e.get("resourceid") == resource]
        assert len(ours) == times, (kind, events)
        for e in ours:
            assert e["type"] == kind and e["level"] == "INFO" and e["username"] == "admin" and e["state"] == "Completed"


@pytest.mark.parametrize("method", ["get", "post"])
def test_errors(admin, method):
    cs = client(admin, method)
    name = "cserr" + secrets.token_hex(4)
    # A missing required parameter: 431 with CloudStack's text (no email here).
    with pytest.raises(CloudStackApiException) as missing:
        cs.createAccount(username=name, password="pw", firstname="F", lastname="L", accounttype=0)
    assert missing.value.response.status_code == 431
    assert missing.value.error == {
        "uuidList": [],
        "errorcode": 431,
        "cserrorcode": 9999,
        "errortext": "Unable to execute API command createaccount due to missing parameter email",
    }
    assert cs.listAccounts(name=name) == {}

    # A wrong secret: 401, the fixed text, no cserrorcode (an early 401 in CloudStack).
    with pytest.raises(CloudStackApiException) as bad:
        client(admin, method, secret=admin.secret[::-1]).listAccounts()
    assert bad.value.response.status_code == 401
    assert bad.value.error == {"uuidList": [], "errorcode": 401, "errortext": wire.UNAUTHORIZED_TEXT}


@pytest.mark.parametrize("method", ["get", "post"])
def test_endpoint_with_trailing_slash(admin, method):
    """Some HTTP clients send `/client/api/`: the API answers there, not the console's page."""
    slash = admin.endpoint + "/"
    r = wire.send(slash, wire.signed({"command": "listCapabilities"}, admin.apikey, admin.secret), method.upper())
    assert r.status_code == 200, r.text[:300]
    key, body = wire.unwrap(r)
    assert key == "listcapabilitiesresponse" and "capability" in body
    # An unsigned call there is refused the API's way too.
    r = wire.send(slash, {"command": "listZones", "response": "json"}, method.upper())
    assert r.status_code == 401 and wire.unwrap(r)[1]["errorcode"] == 401
    # cs pointed at it works as usual, async jobs included.
    cs = CloudStack(endpoint=slash, key=admin.apikey, secret=admin.secret, method=method, poll_interval=0.05, timeout=10)
    assert cs.listZones() is not None
    name = "slash" + secrets.token_hex(4)
    acct = cs.createAccount(username=name, password="pw", email=name + "@example.org", firstname="F", lastname="L", accounttype=0)["account"]
    assert cs.disableAccount(id=acct["id"], lock=False, fetch_result=True)["account"]["state"] == "disabled"
