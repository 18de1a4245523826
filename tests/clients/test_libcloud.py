"""Apache Libcloud's CloudStack driver: always GET, never signature v3, camelCase parameter names
in places, names lower-cased before sorting when it signs, and `~` left raw."""

import secrets

import pytest
from libcloud.common.types import ProviderError
from libcloud.compute.providers import get_driver
from libcloud.compute.types import InvalidCredsError, Provider


def driver(server, key, secret):
    cls = get_driver(Provider.CLOUDSTACK)
    d = cls(key=key, secret=secret, host="127.0.0.1", port=server.port, path="/client/api", secure=False)
    d.connection.poll_interval = 0.05  # default 1 s
    return d


def test_accounts_users_keys(admin):
    d = driver(admin.server, admin.apikey, admin.secret)
    name = "lc" + secrets.token_hex(4)
    # `accountType` and `domainId` in camelCase, as Libcloud writes them: without the server's
    # case-insensitive names the type would be missing (431) and the domain ignored.
    acct = d._sync_request(
        command="createAccount",
        params={"username": name, "password": "pw", "email": name + "@example.org", "firstname": "Lib", "lastname": "Cloud", "accountType": 0, "domainId": admin.domainid},
        method="GET",
    )["account"]
    assert acct["name"] == name and acct["accounttype"] == 0 and acct["domainid"] == admin.domainid

    user = d._sync_request(
        command="createUser",
        params={"account": name, "userName": name + "2", "password": "pw", "email": "x@example.org", "firstName": "Second", "lastName": "User", "domainId": admin.domainid},
        method="GET",
    )["user"]
    assert user["username"] == name + "2" and user["firstname"] == "Second" and user["accountid"] == acct["id"]

    keys = d._sync_request(command="registerUserKeys", params={"id": user["id"]}, method="GET")["userkeys"]
    mine = driver(admin.server, keys["apikey"], keys["secretkey"])
    seen = mine._sync_request(command="listUsers", params={"listAll": True}, method="GET")
    assert seen["count"] == 2
    assert sorted(u["username"] for u in seen["user"]) == sorted([name, name + "2"])
    accounts = mine._sync_request(command="listAccounts", method="GET")
    assert [a["id"] for a in accounts["account"]] == [acct["id"]]

    # Async through Libcloud's poller; `lock=False` is Python's spelling, false to Java too.
    result = d._async_request(command="disableAccount", params={"id": acct["id"], "lock": False}, method="GET")
    assert result["account"]["id"] == acct["id"] and result["account"]["state"] == "disabled"
    # The account's keys are refused now: Libcloud maps 401 to InvalidCredsError.
    with pytest.raises(InvalidCredsError):
        mine._sync_request(command="listAccounts", method="GET")

    assert d._async_request(command="deleteAccount", params={"id": acct["id"]}, method="GET") == {"success": True}
    assert d._sync_request(command="listAccounts", params={"name": name}, method="GET") == {}


def test_libcloud_signing_quirks_are_accepted(admin):
    """Libcloud signs with names lower-cased before sorting (`accountType` then sorts after
    `accountdetails[0].key`, before it in Java's order) and leaves `~` raw; the server accepts
    both as the fact sheet's lenient variants (core/src/api/signing.rs verify)."""
    d = driver(admin.server, admin.apikey, admin.secret)
    name = "lcq" + secrets.token_hex(4)
    acct = d._sync_request(
        command="createAccount",
        params={"username": name, "password": "pw", "email": name + "@example.org", "firstname": "Tilde~Name", "lastname": "Q", "accountType": 0, "accountdetails[0].key": "k"},
        method="GET",
    )["account"]
    assert acct["user"][0]["firstname"] == "Tilde~Name"
    d._async_request(command="deleteAccount", params={"id": acct["id"]}, method="GET")


def test_errors(admin):
    d = driver(admin.server, admin.apikey, admin.secret)
    # A missing parameter: ProviderError carrying the status and CloudStack's errortext.
    with pytest.raises(ProviderError) as missing:
        d._sync_request(command="createUser", params={"username": "x", "password": "p", "email": "e@example.org", "firstname": "f", "lastname": "l"}, method="GET")
    assert missing.value.http_code == 431
    assert missing.value.value == "Unable to execute API command createuser due to missing parameter account"

    # An account that does not exist: 431 with the id in the text.
    ghost = "00000000-0000-4000-8000-" + secrets.token_hex(6)
    with pytest.raises(ProviderError) as unknown:
        d._sync_request(command="listAccounts", params={"id": ghost}, method="GET")
    assert unknown.value.http_code == 431
    assert unknown.value.value == "Unable to find account by id or name " + ghost

    # A bad secret: 401 becomes InvalidCredsError.
    with pytest.raises(InvalidCredsError):
        driver(admin.server, admin.apikey, "not-" + admin.secret)._sync_request(command="listAccounts", method="GET")

    # An async job that fails at submission (the caller's own account) is a plain error reply.
    with pytest.raises(ProviderError) as own:
        d._async_request(command="deleteAccount", params={"id": admin.accountid}, method="GET")
    assert own.value.http_code == 431
    assert own.value.value == "An account cannot disable or delete itself"
