"""Bad requests, table-driven: each gets the exact status, errorcode, cserrorcode and text the
server's code defines, and none of them changes the database (a fingerprint of every table but
`sessions` and `schema_migrations`, before and after). SQLite only: the fingerprint reads the file."""

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Optional

import pytest
import requests

import wire
from conftest import ADMIN_PASSWORD, admin_credentials, new_user_account

ABSENT = object()  # the reply must not carry cserrorcode (CloudStack's early 401s)


def fingerprint(db_path) -> dict:
    """table -> (row count, sha256 of the rows in full column order)."""
    con = sqlite3.connect("file:{}?mode=ro".format(db_path), uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for t in tables:
            if t in ("sessions", "schema_migrations"):
                continue
            ncols = len(con.execute('SELECT * FROM "{}" LIMIT 0'.format(t)).description)
            order = ", ".join(str(i + 1) for i in range(ncols))
            rows = con.execute('SELECT * FROM "{}" ORDER BY {}'.format(t, order)).fetchall()
            out[t] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return out
    finally:
        con.close()


@dataclass
class World:
    """What the cases act with, made once outside the fingerprint window."""

    server: object
    admin: object  # Creds
    user: object  # an enabled account-type-0 user with keys
    disabled: object  # a user with keys, disabled
    other: object  # another account-type-0 user with keys
    domadmin: object  # a domain admin (account type 2) of a child domain, with keys
    admin_job: str  # a job of the admin's

    def send(self, params, method="GET", who=None, **kw):
        who = who or self.admin
        return wire.send(self.server.endpoint, wire.signed(params, who.apikey, who.secret, **kw), method)


@pytest.fixture(scope="module")
def world(server_factory) -> World:
    srv = server_factory("sqlite")
    admin = admin_credentials(srv)
    user = new_user_account(admin, "usr")
    other = new_user_account(admin, "oth")
    disabled = new_user_account(admin, "dis")
    child = admin.api()("createDomain", name="child")["domain"]
    domadmin = new_user_account(admin, "dad", account_type=2, domainid=child["id"])
    before = fingerprint(srv.sqlite_path)
    job = admin.api()("disableUser", id=disabled.userid)["jobid"]
    assert admin.api().wait_job(job)["jobstatus"] == 1
    # The fingerprint sees a real change (so an unchanged one means something).
    assert fingerprint(srv.sqlite_path) != before
    return World(srv, admin, user, disabled, other, domadmin, job)


def new_account_params(**extra):
    name = "bad" + uuid.uuid4().hex[:8]
    p = {"command": "createAccount", "username": name, "password": "pw", "email": name + "@example.org", "firstname": "F", "lastname": "L", "accounttype": "0"}
    p.update(extra)
    return p


@dataclass
class Case:
    id: str
    call: Callable[[World], requests.Response]
    status: int
    text: str  # must be in errortext
    cs: object = ABSENT  # expected cserrorcode, or ABSENT
    wrapper: Optional[str] = None  # expected top-level key; default <command>response
    command: str = "createAccount"
    extra: dict = field(default_factory=dict)


def resign_with(secret):
    def call(w):
        p = wire.signed(new_account_params(), w.admin.apikey, w.admin.secret)
        p["signature"] = wire.sign(p, secret)
        return wire.send(w.server.endpoint, p)

    return call


def without_signature(w):
    p = wire.signed(new_account_params(), w.admin.apikey, w.admin.secret)
    del p["signature"]
    return wire.send(w.server.endpoint, p)


def oversized(w):
    # command and response in the query so that the error can name them; 1 MiB + 100 in the body.
    p = wire.signed(new_account_params(response="json"), w.admin.apikey, w.admin.secret)
    query = {"command": p.pop("command"), "response": p.pop("response")}
    body = wire.encode_form(p)
    body += "&pad=" + "x" * ((1 << 20) + 100 - len(body) - 5)
    assert len(body) > 1 << 20
    r = requests.post(w.server.endpoint + "?" + wire.encode_form(query), data=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=wire.TIMEOUT)
    return r


def login_by_get(w):
    return requests.get(w.server.endpoint, params={"command": "login", "username": "admin", "password": ADMIN_PASSWORD, "response": "json"}, timeout=wire.TIMEOUT)


NOT_AVAILABLE = "either does not exist, is not available for user, or not available from ip address"
UPPER_ID = str(uuid.uuid4()).upper()

CASES = [
    Case("bad-signature", resign_with("not-the-secret"), 401, wire.UNAUTHORIZED_TEXT),
    Case("missing-signature", without_signature, 401, wire.UNAUTHORIZED_TEXT),
    Case("unknown-api-key", lambda w: wire.send(w.server.endpoint, wire.signed(new_account_params(), "no-such-key-" + uuid.uuid4().hex, w.admin.secret)), 401, wire.UNAUTHORIZED_TEXT),
    Case("disabled-users-key", lambda w: w.send(new_account_params(), who=w.disabled), 401, wire.UNAUTHORIZED_TEXT),
    Case("expired-v3", lambda w: w.send(new_account_params(), expires=wire.expires_in(timedelta(minutes=-1))), 401, wire.UNAUTHORIZED_TEXT),
    Case("unparseable-v3-expires", lambda w: w.send(new_account_params(), expires="tomorrow"), 401, wire.UNAUTHORIZED_TEXT),
    Case("v3-without-expires", lambda w: w.send(new_account_params(signatureVersion="3")), 401, wire.UNAUTHORIZED_TEXT),
    Case("unknown-command", lambda w: w.send({"command": "listFoo"}), 401, "The given command 'listFoo' " + NOT_AVAILABLE, wrapper="errorresponse"),
    Case("wrong-case-command", lambda w: w.send({"command": "listaccounts"}), 401, "The given command 'listaccounts' " + NOT_AVAILABLE, wrapper="errorresponse"),
    Case("long-unknown-command", lambda w: w.send({"command": "list" + "x" * 200000}, method="POST"), 401, "The given command 'listxxxx", wrapper="errorresponse"),
    Case(
        "missing-required-param",
        lambda w: w.send({k: v for k, v in new_account_params().items() if k != "email"}),
        431,
        "Unable to execute API command createaccount due to missing parameter email",
        cs=9999,
    ),
    Case(
        "malformed-map-param",
        lambda w: w.send(new_account_params(**{"accountdetails[0.key": "x"})),
        430,
        "Unable to decode parameter accountdetails[0.key; if specifying an object array",
        cs=9999,
    ),
    Case(
        "uppercase-uuid",
        lambda w: w.send({"command": "listUsers", "id": UPPER_ID}),
        431,
        "Invalid parameter id value={} due to incorrect long value format".format(UPPER_ID),
        cs=4350,
        command="listUsers",
    ),
    Case(
        "garbage-uuid",
        lambda w: w.send({"command": "listUsers", "id": "12; DROP TABLE users"}),
        431,
        "Invalid parameter id value=12; DROP TABLE users due to incorrect long value format",
        cs=4350,
        command="listUsers",
    ),
    Case(
        "control-char-in-name",
        lambda w: w.send({"command": "listAccounts", "name": "\x01"}),
        431,
        "Invalid value of parameter name: control characters are not allowed",
        cs=4350,
        command="listAccounts",
    ),
    Case(
        "control-char-in-create",
        lambda w: w.send(new_account_params(firstname="tab\there")),
        431,
        "Invalid value of parameter firstname: control characters are not allowed",
        cs=4350,
    ),
    Case(
        "page-without-pagesize",
        lambda w: w.send({"command": "listAccounts", "page": "1"}),
        431,
        '"pagesize" parameter is required when "page" is specified',
        cs=9999,
        command="listAccounts",
    ),
    Case(
        "pagesize-501",
        lambda w: w.send({"command": "listAccounts", "page": "1", "pagesize": "501"}),
        431,
        "Page size can't exceed max allowed page size value: 500",
        cs=4350,
        command="listAccounts",
    ),
    Case("oversized-body", oversized, 431, "The request body is larger than the limit of 1048576 bytes", cs=4350),
    Case("login-by-get", login_by_get, 405, "Please use HTTP POST to authenticate using this API", command="login"),
    Case("user-calls-admin-command", lambda w: w.send(new_account_params(), who=w.user), 401, "The given command 'createAccount' " + NOT_AVAILABLE),
    Case(
        "user-disables-other-user",
        lambda w: w.send({"command": "disableUser", "id": w.other.userid}, who=w.user),
        401,
        "The given command 'disableUser' " + NOT_AVAILABLE,
        command="disableUser",
    ),
    Case(
        "user-reads-admin-user",
        lambda w: w.send({"command": "listUsers", "id": w.admin.userid}, who=w.user),
        531,
        "The caller does not have permission to access user ",
        cs=4365,
        command="listUsers",
    ),
    Case(
        "user-reads-other-account",
        lambda w: w.send({"command": "listAccounts", "id": w.other.accountid}, who=w.user),
        531,
        "The caller does not have permission to access account ",
        cs=4365,
        command="listAccounts",
    ),
    Case(
        "user-updates-other-user",
        lambda w: w.send({"command": "updateUser", "id": w.other.userid, "firstname": "Mallory"}, who=w.user),
        531,
        "The caller does not have permission to access user ",
        cs=4365,
        command="updateUser",
    ),
    Case(
        "user-registers-keys-for-other",
        lambda w: w.send({"command": "registerUserKeys", "id": w.other.userid}, who=w.user),
        531,
        "The caller does not have permission to access user ",
        cs=4365,
        command="registerUserKeys",
    ),
    Case(
        "user-reads-admins-job",
        lambda w: w.send({"command": "queryAsyncJobResult", "jobid": w.admin_job}, who=w.user),
        531,
        "The caller does not have permission to access job ",
        cs=4365,
        command="queryAsyncJobResult",
    ),
    Case(
        "domain-admin-reads-root-account",
        lambda w: w.send({"command": "listAccounts", "id": w.admin.accountid}, who=w.domadmin),
        531,
        "The caller does not have permission to access account ",
        cs=4365,
        command="listAccounts",
    ),
    Case(
        "domain-admin-creates-root-admin",
        lambda w: w.send(new_account_params(accounttype="1"), who=w.domadmin),
        531,
        "A DomainAdmin cannot create an account of role type Admin",
        cs=4365,
    ),
    Case(
        "domain-admin-creates-in-root-domain",
        lambda w: w.send(new_account_params(domainid=w.admin.domainid), who=w.domadmin),
        531,
        "The caller does not have permission to access domain ",
        cs=4365,
    ),
    Case(
        "domain-admin-deletes-root-admin",
        lambda w: w.send({"command": "deleteAccount", "id": w.admin.accountid}, who=w.domadmin),
        531,
        "The caller does not have permission to access account ",
        cs=4365,
        command="deleteAccount",
    ),
]


def test_signer_matches_fact_sheet_vectors():
    """The hand-written signer these cases rely on reproduces the documented vectors (§2.2)."""
    doc = {"apikey": "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg", "command": "listUsers", "response": "json"}
    assert wire.canonical(doc) == "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg&command=listusers&response=json"
    assert wire.sign(doc, "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ") == "TTpdDq/7j/J58XCRHomKoQXEQds="
    v3 = {"apiKey": "KEY", "command": "listZones", "response": "json", "signatureVersion": "3", "expires": "2030-01-01T00:00:00+0000"}
    assert wire.sign(v3, "SECRET") == "5Rv1j2g0zpFsbziV2b79kZX5Sq8="
    deploy = {"apiKey": "KEY", "command": "deployVirtualMachine", "response": "json", "serviceofferingid": "a", "templateid": "b", "zoneid": "c", "displayname": "my vm*1", "userdata": "SGk="}
    assert wire.sign(deploy, "SECRET") == "VFAkEH96gJJxlLWtRHR1eE1dKrM="


def test_own_signing_is_accepted(world):
    """The same requests, signed right, do succeed: the failures below are about the fault."""
    for kw in ({}, {"v3": True}):
        r = world.send({"command": "listAccounts", "name": "admin"}, **kw)
        assert r.status_code == 200, r.text
    r = world.send({"command": "listAccounts", "name": "admin", "page": "1", "pagesize": "500"}, method="POST")
    assert r.status_code == 200, r.text
    assert world.send({"command": "listUsers", "id": world.user.userid}, who=world.user).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(world, case):
    before = fingerprint(world.server.sqlite_path)
    r = case.call(world)
    assert r.status_code == case.status, r.text
    key, body = wire.unwrap(r)
    assert key == (case.wrapper or case.command.lower() + "response")
    assert body["errorcode"] == case.status
    assert case.text in body["errortext"], body
    if case.cs is ABSENT:
        assert "cserrorcode" not in body, body
    else:
        assert body["cserrorcode"] == case.cs, body
    assert body["uuidList"] == []
    # The reply also names the problem in X-Description, as CloudStack does (its first 1024 characters).
    assert r.headers.get("X-Description") == body["errortext"][:1024].replace("\r", " ").replace("\n", " ")
    assert fingerprint(world.server.sqlite_path) == before
