"""The role ladder, table-driven, through the `cs` client: every command by which one user
acts on another user, its account, keys or password, or on what the account owns, tried by
each caller role on each kind of target.

A caller reaches an account only where it may (root admins everywhere, domain and resource
admins their domain and the domains below, users their own account) and only if the account's
role is not above its own: Admin > ResourceAdmin > DomainAdmin > User. A refused call changes
nothing: the database reads the same before and after (every table but `sessions` and
`schema_migrations`), the target's password and keys still work, and no keys come back."""

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest
import requests
from cs import CloudStack, CloudStackApiException

import wire
from conftest import ADMIN_PASSWORD, BACKENDS, NFS_URL, admin_credentials, psql

# ---------------------------------------------------------------- the tables

# Target kinds, relative to the caller: `own` is the caller's own user and account; the others
# are fresh accounts of that role, in the caller's domain (`user`, `domadmin`, `resadmin`,
# `admin`), in a domain below it (`subuser`, `subdomadmin`), or in a domain beside it (`other`).
KINDS = ["own", "user", "domadmin", "resadmin", "admin", "subuser", "subdomadmin", "other"]

# Callers: (account type, domain). "sub" is a child of ROOT; "deep" is below "sub"; "other"
# is beside "sub". A caller in ROOT has nothing beside it.
CALLERS = {
    "user": (0, "sub"),
    "domadmin": (2, "sub"),
    "resadmin": (3, "sub"),
    "rootdomadmin": (2, "root"),
    "admin": (1, "root"),
}

# Whom each caller may act on: Y yes, - no, . no such target.
#                    own  user domadmin resadmin admin subuser subdomadmin other
REACH = {
    "user":         "Y    -    -        -        -     -       -           -",
    "domadmin":     "Y    Y    Y        -        -     Y       Y           -",
    "resadmin":     "Y    Y    Y        Y        -     Y       Y           -",
    "rootdomadmin": "Y    Y    Y        -        -     Y       Y           .",
    "admin":        "Y    Y    Y        Y        Y     Y       Y           .",
}

KIND_ROLE = {"user": 0, "domadmin": 2, "resadmin": 3, "admin": 1, "subuser": 0, "subdomadmin": 2, "other": 0}
BELOW = {"sub": "deep", "root": "sub"}
BESIDE = {"sub": "other", "root": None}

OK, DENIED, SELF, NO_API = "allowed", "denied", "refused on oneself", "not a command of the role"


@dataclass
class Ident:
    """One user with keys, and its account."""

    name: str
    password: str
    userid: str
    accountid: str
    domain_path: str  # as CloudStack shows it, e.g. ROOT/sub
    apikey: str
    secret: str = field(repr=False)


@dataclass
class Cell:
    world: object
    caller: Ident
    target: Ident
    own: bool
    volume: Optional[dict] = None  # the target's volume: id, jobid
    reply: object = None  # what an allowed call answered

    def cs(self):
        return client(self.world.endpoint, self.caller)


@dataclass
class Row:
    id: str
    call: Callable[[Cell], object]  # the command, sent by the caller through `cs`
    effect: Callable[[Cell], bool]  # whether an allowed call did what it says
    admin_only: bool = False  # not among a User's commands: refused before any reach check
    refused_on_self: bool = False  # 431 when the target is the caller itself
    volume: bool = False  # the target first makes a volume
    disable_first: Optional[str] = None  # "user" or "account": disabled first, so enabling shows


def admin_cs(c: Cell):
    return c.world.admin_cs


def the_user(c: Cell) -> dict:
    [found] = admin_cs(c).listUsers(id=c.target.userid, listall=True)["user"]
    return found


def the_account(c: Cell) -> dict:
    [found] = admin_cs(c).listAccounts(id=c.target.accountid, listall=True)["account"]
    return found


def gone(listing) -> bool:
    """Whether a listing by id no longer finds its object: an empty list, or the 431 of an
    unknown id."""
    try:
        return listing().get("count", 0) == 0
    except CloudStackApiException as e:
        return e.error.get("errorcode") == 431 and "Unable to find" in e.error.get("errortext", "")


def new_password(c: Cell) -> str:
    return "new-" + c.target.password


def update_password(c: Cell):
    extra = {"currentpassword": c.target.password} if c.own else {}
    return c.cs().updateUser(id=c.target.userid, password=new_password(c), **extra)


def keys_replaced(c: Cell) -> bool:
    new = c.reply["userkeys"]
    return (
        new["apikey"] != c.target.apikey
        and not keys_work(c.world.endpoint, c.target.apikey, c.target.secret)
        and keys_work(c.world.endpoint, new["apikey"], new["secretkey"])
    )


ROWS = [
    Row(
        "updateUser",
        lambda c: c.cs().updateUser(id=c.target.userid, firstname="Changed"),
        lambda c: the_user(c)["firstname"] == "Changed",
    ),
    Row(
        "updateUser-password",
        update_password,
        lambda c: login_status(c.world.endpoint, c.target, new_password(c)) == 200,
    ),
    Row(
        "getUserKeys",
        lambda c: c.cs().getUserKeys(id=c.target.userid),
        lambda c: c.reply["userkeys"] == {"apikey": c.target.apikey, "secretkey": c.target.secret},
    ),
    Row("registerUserKeys", lambda c: c.cs().registerUserKeys(id=c.target.userid), keys_replaced),
    Row(
        "disableUser",
        lambda c: c.cs().disableUser(id=c.target.userid),
        lambda c: the_user(c)["state"] == "disabled",
        admin_only=True,
        refused_on_self=True,
    ),
    Row(
        "enableUser",
        lambda c: c.cs().enableUser(id=c.target.userid),
        lambda c: the_user(c)["state"] == "enabled",
        admin_only=True,
        disable_first="user",
    ),
    Row(
        "deleteUser",
        lambda c: c.cs().deleteUser(id=c.target.userid),
        lambda c: gone(lambda: admin_cs(c).listUsers(id=c.target.userid, listall=True)),
        admin_only=True,
        refused_on_self=True,
    ),
    Row(
        "createUser",
        lambda c: c.cs().createUser(account=c.target.name, domainid=domain_id(c), username="x" + c.target.name, password="pw", email="x@example.org", firstname="X", lastname="Y"),
        lambda c: c.reply["user"]["accountid"] == c.target.accountid,
        admin_only=True,
    ),
    Row(
        "updateAccount",
        lambda c: c.cs().updateAccount(id=c.target.accountid, newname="renamed-" + c.target.name),
        lambda c: the_account(c)["name"] == "renamed-" + c.target.name,
        admin_only=True,
    ),
    Row(
        "disableAccount",
        lambda c: c.cs().disableAccount(id=c.target.accountid, lock=False),
        lambda c: the_account(c)["state"] == "disabled",
        admin_only=True,
        refused_on_self=True,
    ),
    Row(
        "enableAccount",
        lambda c: c.cs().enableAccount(id=c.target.accountid),
        lambda c: the_account(c)["state"] == "enabled",
        admin_only=True,
        disable_first="account",
    ),
    Row(
        "deleteAccount",
        lambda c: c.cs().deleteAccount(id=c.target.accountid),
        lambda c: gone(lambda: admin_cs(c).listAccounts(id=c.target.accountid, listall=True)),
        admin_only=True,
        refused_on_self=True,
    ),
    Row(
        "listAccounts-id",
        lambda c: c.cs().listAccounts(id=c.target.accountid),
        lambda c: [a["id"] for a in c.reply["account"]] == [c.target.accountid],
    ),
    Row(
        "listUsers-id",
        lambda c: c.cs().listUsers(id=c.target.userid),
        lambda c: [u["id"] for u in c.reply["user"]] == [c.target.userid],
    ),
    Row(
        "listVolumes-id",
        lambda c: c.cs().listVolumes(id=c.volume["id"]),
        lambda c: [v["id"] for v in c.reply["volume"]] == [c.volume["id"]],
        volume=True,
    ),
    Row(
        "deleteVolume",
        lambda c: c.cs().deleteVolume(id=c.volume["id"]),
        lambda c: gone(lambda: admin_cs(c).listVolumes(id=c.volume["id"], listall=True)),
        volume=True,
    ),
    Row(
        "queryAsyncJobResult",
        lambda c: c.cs().queryAsyncJobResult(jobid=c.volume["jobid"], fetch_result=False),
        lambda c: (c.reply["jobstatus"], c.reply["jobinstanceid"]) == (1, c.volume["id"]),
        volume=True,
    ),
]


def expected(row: Row, caller: str, kind: str) -> str:
    if row.admin_only and CALLERS[caller][0] == 0:
        return NO_API
    if REACH[caller].split()[KINDS.index(kind)] != "Y":
        return DENIED
    if kind == "own" and row.refused_on_self:
        return SELF
    return OK


CELLS = [
    pytest.param(row, caller, kind, id="{}-{}-{}".format(row.id, caller, kind))
    for row in ROWS
    for caller in CALLERS
    for kind in KINDS
    if REACH[caller].split()[KINDS.index(kind)] != "."
]


def test_the_tables_are_whole():
    """Every caller has a mark for every kind, every command is in the table, and the rows
    the tables expand to cover both outcomes for every command."""
    for caller, marks in REACH.items():
        assert len(marks.split()) == len(KINDS) and set(marks.split()) <= {"Y", "-", "."}, caller
    for row in ROWS:
        outcomes = {expected(row, c, k) for c in CALLERS for k in KINDS if REACH[c].split()[KINDS.index(k)] != "."}
        assert {OK, DENIED} <= outcomes, row.id


# ---------------------------------------------------------------- helpers


def client(endpoint: str, who: Ident) -> CloudStack:
    return CloudStack(endpoint=endpoint, key=who.apikey, secret=who.secret, method="post", fetch_result=True, poll_interval=0.05, job_timeout=60)


def login_status(endpoint: str, who: Ident, password: str) -> int:
    r = requests.post(endpoint, data={"command": "login", "username": who.name, "password": password, "domain": who.domain_path, "response": "json"}, timeout=wire.TIMEOUT)
    return r.status_code


def keys_work(endpoint: str, apikey: str, secret: str) -> bool:
    return wire.Api(endpoint, apikey, secret).raw("listCapabilities").status_code == 200


def fingerprint(srv) -> dict:
    """table -> (row count, digest of its rows), for every table but sessions and migrations."""
    skip = ("sessions", "schema_migrations")
    if srv.backend == "sqlite":
        con = sqlite3.connect("file:{}?mode=ro".format(srv.sqlite_path), uri=True)
        try:
            out = {}
            for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
                if t in skip:
                    continue
                rows = con.execute('SELECT * FROM "{}"'.format(t)).fetchall()
                out[t] = (len(rows), hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest())
            return out
        finally:
            con.close()
    tables = psql(srv.database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    parts = [
        "SELECT '{t}' || ' ' || COUNT(*) || ' ' || COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM \"{t}\" x".format(t=t)
        for t in tables
        if t not in skip
    ]
    lines = psql(srv.database_url, " UNION ALL ".join(parts)).splitlines()
    return {t: (n, d) for t, n, d in (line.split(" ") for line in lines)}


def domain_id(c: Cell) -> str:
    return c.world.domain_ids[c.target.domain_path]


def error_of(e: CloudStackApiException) -> dict:
    assert isinstance(e.error, dict), e
    return e.error


# ---------------------------------------------------------------- the world


@dataclass
class World:
    server: object
    endpoint: str
    admin: object  # conftest.Creds of the built-in admin
    admin_cs: CloudStack
    domains: dict  # "root"/"sub"/"deep"/"other" -> display path
    domain_ids: dict  # display path -> UUID
    zone: dict
    offering: dict
    callers: dict = field(default_factory=dict)  # caller name -> Ident, made once

    def account(self, account_type: int, domain: str, prefix: str = "t") -> Ident:
        """A fresh account of one user, with keys, made by the root admin."""
        name = "{}{}".format(prefix, secrets.token_hex(4))
        password = "pw-" + name
        path = self.domains[domain]
        acct = self.admin_cs.createAccount(
            username=name,
            password=password,
            email=name + "@example.org",
            firstname="F",
            lastname="L",
            accounttype=account_type,
            domainid=self.domain_ids[path],
        )["account"]
        user = acct["user"][0]
        keys = self.admin_cs.registerUserKeys(id=user["id"])["userkeys"]
        return Ident(name, password, user["id"], acct["id"], path, keys["apikey"], keys["secretkey"])

    def volume_of(self, who: Ident) -> dict:
        """A volume `who` makes for itself, and the job that made it."""
        first = client(self.endpoint, who).createVolume(name="v" + who.name, diskofferingid=self.offering["id"], zoneid=self.zone["id"], fetch_result=False)
        deadline = time.monotonic() + 60
        while True:
            j = client(self.endpoint, who).queryAsyncJobResult(jobid=first["jobid"], fetch_result=False)
            if j["jobstatus"] != 0:
                break
            assert time.monotonic() < deadline, "volume job did not finish"
            time.sleep(0.05)
        assert j["jobstatus"] == 1, j
        return {"id": first["id"], "jobid": first["jobid"]}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, server_factory):
    srv = server_factory(request.param)
    admin = admin_credentials(srv)
    acs = CloudStack(endpoint=srv.endpoint, key=admin.apikey, secret=admin.secret, method="post", fetch_result=True, poll_interval=0.05, job_timeout=60)
    sub = acs.createDomain(name="sub")["domain"]
    deep = acs.createDomain(name="deep", parentdomainid=sub["id"])["domain"]
    other = acs.createDomain(name="other")["domain"]
    root = acs.listDomains(id=admin.domainid)["domain"][0]
    domains = {"root": root["path"], "sub": sub["path"], "deep": deep["path"], "other": other["path"]}
    domain_ids = {d["path"]: d["id"] for d in (root, sub, deep, other)}

    # Volumes on an NFS pool, for the resource rows.
    tag = secrets.token_hex(3)
    zone = acs.createZone(name="zr" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")["zone"]
    pod = acs.createPod(name="p" + tag, zoneid=zone["id"])["pod"]
    cl = acs.addCluster(clustername="c" + tag, clustertype="CloudManaged", hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pool = acs.createStoragePool(name="rp" + tag, url="{}/roles-{}".format(NFS_URL, tag), zoneid=zone["id"], clusterid=cl["id"], scope="cluster")["storagepool"]
    offering = acs.createDiskOffering(name="d1-" + tag, displaytext="1 GB", disksize=1)["diskoffering"]

    w = World(srv, srv.endpoint, admin, acs, domains, domain_ids, zone, offering)
    for name, (account_type, domain) in CALLERS.items():
        w.callers[name] = w.account(account_type, domain, prefix="c")
    yield w
    for v in acs.listVolumes(zoneid=zone["id"], listall=True).get("volume", []):
        acs.deleteVolume(id=v["id"])
    acs.deleteStoragePool(id=pool["id"])


def target_for(w: World, caller: str, kind: str) -> Ident:
    domain = CALLERS[caller][1]
    where = {"subuser": BELOW[domain], "subdomadmin": BELOW[domain], "other": BESIDE[domain]}.get(kind, domain)
    assert where is not None, (caller, kind)
    return w.account(KIND_ROLE[kind], where)


# ---------------------------------------------------------------- the table test


@pytest.mark.parametrize("row,caller,kind", CELLS)
def test_role_ladder(world, row: Row, caller: str, kind: str):
    want = expected(row, caller, kind)
    if kind == "own":
        # Acting on oneself may change the caller (keys, password): a caller of its own.
        me = world.account(*CALLERS[caller], prefix="o")
        target = me
    else:
        me = world.callers[caller]
        target = target_for(world, caller, kind)
    cell = Cell(world, me, target, kind == "own")
    if row.volume:
        cell.volume = world.volume_of(target)
    # Enabling must have something to change; a caller cannot be disabled, so not its own.
    disabled = row.disable_first if kind != "own" else None
    if disabled == "user":
        world.admin_cs.disableUser(id=target.userid)
    elif disabled == "account":
        world.admin_cs.disableAccount(id=target.accountid, lock=False)

    before = fingerprint(world.server)
    try:
        cell.reply = row.call(cell)
        got, err, text = OK, None, None
    except CloudStackApiException as e:
        err = error_of(e)
        text = e.response.text if e.response is not None else ""
        got = {531: DENIED, 431: SELF, 401: NO_API}.get(err.get("errorcode"), "error {}".format(err))
    assert got == want, "{} by {} on {}: {} ({})".format(row.id, caller, kind, got, err or cell.reply)

    if got == OK:
        assert row.effect(cell), "{} by {} on {} did not take effect: {}".format(row.id, caller, kind, cell.reply)
        return
    # Refused: the reason is the one expected, and nothing changed.
    if got == DENIED:
        assert err.get("cserrorcode") == 4365 and "does not have permission" in err["errortext"], err
    if got == SELF:
        assert "itself" in err["errortext"], err
    assert fingerprint(world.server) == before, "{} by {} on {} changed the database".format(row.id, caller, kind)
    assert target.secret not in text and "secretkey" not in text, text
    if disabled is None:
        assert login_status(world.endpoint, target, target.password) == 200, "the target's password no longer works"
        assert keys_work(world.endpoint, target.apikey, target.secret), "the target's keys no longer work"


# ---------------------------------------------------------------- creating accounts

# Who may create an account of which role, by accounttype and by roleid alike.
#                         User DomainAdmin ResourceAdmin Admin
CREATE = {
    "domadmin":     {0: OK, 2: OK, 3: DENIED, 1: DENIED},
    "resadmin":     {0: OK, 2: OK, 3: OK, 1: DENIED},
    "rootdomadmin": {0: OK, 2: OK, 3: DENIED, 1: DENIED},
    "admin":        {0: OK, 2: OK, 3: OK, 1: OK},
}
ROLE_TYPES = {0: "User", 1: "Admin", 2: "DomainAdmin", 3: "ResourceAdmin"}


@pytest.mark.parametrize("by", ["accounttype", "roleid"])
@pytest.mark.parametrize("caller,account_type,want", [(c, t, w) for c, row in CREATE.items() for t, w in row.items()])
def test_no_one_creates_an_account_above_their_role(world, caller, account_type, want, by):
    me = world.callers[caller]
    if by == "roleid":
        [role] = [r for r in world.admin_cs.listRoles()["role"] if r["type"] == ROLE_TYPES[account_type] and r["isdefault"]]
        how = {"roleid": role["id"]}
    else:
        how = {"accounttype": account_type}
    name = "n" + secrets.token_hex(4)
    before = fingerprint(world.server)
    try:
        acct = client(world.endpoint, me).createAccount(username=name, password="pw", email="n@example.org", firstname="F", lastname="L", **how)["account"]
    except CloudStackApiException as e:
        assert want == DENIED, e
        assert (e.error["errorcode"], e.error.get("cserrorcode")) == (531, 4365), e.error
        assert "cannot create an account of role type " + ROLE_TYPES[account_type] in e.error["errortext"], e.error
        assert fingerprint(world.server) == before
        return
    assert want == OK, acct
    assert (acct["accounttype"], acct["roletype"], acct["domainid"]) == (account_type, ROLE_TYPES[account_type], world.domain_ids[me.domain_path])


# ---------------------------------------------------------------- what lists show


def test_lists_leave_out_more_privileged_accounts(world):
    """A domain or resource admin's listings show no account above its role, nor the users,
    keys, volumes, jobs or events of one; a root admin's show them. No listing carries a
    secret key."""
    boss = world.account(1, "sub", prefix="boss")  # a root admin inside the domain admins' domain
    res = world.account(3, "sub", prefix="res")
    worker = world.account(0, "deep", prefix="wrk")
    for who in (boss, res, worker):
        world.volume_of(who)
    world.volume_of(Ident("admin", ADMIN_PASSWORD, world.admin.userid, world.admin.accountid, "ROOT", world.admin.apikey, world.admin.secret))
    privileged = {
        "domadmin": {boss.accountid, res.accountid, world.admin.accountid},
        "rootdomadmin": {boss.accountid, res.accountid, world.admin.accountid},
        "resadmin": {boss.accountid, world.admin.accountid},
        "admin": set(),
    }
    for caller, hidden in privileged.items():
        cs = client(world.endpoint, world.callers[caller])
        accounts = {a["id"] for a in cs.listAccounts(listall=True)["account"]}
        users = {u["accountid"] for u in cs.listUsers(listall=True)["user"]}
        volumes = {v["account"] for v in cs.listVolumes(listall=True).get("volume", [])}
        jobs = {j["accountid"] for j in cs.listAsyncJobs(listall=True).get("asyncjobs", [])}
        events = {e["account"] for e in cs.listEvents(listall=True).get("event", [])}
        assert worker.accountid in accounts and worker.accountid in users and worker.name in volumes, caller
        assert not hidden & accounts and not hidden & users and not hidden & jobs, caller
        hidden_names = {n for n, i in ((boss.name, boss.accountid), (res.name, res.accountid), ("admin", world.admin.accountid)) if i in hidden}
        assert not hidden_names & volumes and not hidden_names & events, caller
        if caller == "admin":
            assert {boss.accountid, res.accountid, world.admin.accountid} <= accounts
            assert {boss.name, res.name, "admin"} <= volumes
        for command in ("listAccounts", "listUsers"):
            text = wire.Api(world.endpoint, world.callers[caller].apikey, world.callers[caller].secret).raw(command, listall="true").text
            assert "secretkey" not in text and world.admin.secret not in text and boss.secret not in text
            if hidden:
                assert world.admin.apikey not in text and boss.apikey not in text


# ---------------------------------------------------------------- the way up, as it was open


def test_a_root_domain_admin_cannot_take_over_the_admin(world):
    """The attack this guards against: a domain admin of ROOT reads the built-in admin's keys,
    sets its password or gives it new keys, then acts as a root admin. Each step is refused,
    and afterwards admin's password and keys work as before."""
    mallory = world.callers["rootdomadmin"]
    cs = client(world.endpoint, mallory)
    admin_user = world.admin.userid
    before = fingerprint(world.server)
    for step in (
        lambda: cs.getUserKeys(id=admin_user),
        lambda: cs.updateUser(id=admin_user, password="owned"),
        lambda: cs.updateUser(id=admin_user, password="owned", currentpassword="guess"),
        lambda: cs.registerUserKeys(id=admin_user),
        lambda: cs.listUsers(id=admin_user),
        lambda: cs.disableUser(id=admin_user),
        lambda: cs.createUser(account="admin", domainid=world.admin.domainid, username="mallory2", password="pw", email="m@example.org", firstname="M", lastname="M"),
        lambda: cs.createAccount(username="mallory3", password="pw", email="m@example.org", firstname="M", lastname="M", accounttype=1),
    ):
        with pytest.raises(CloudStackApiException) as e:
            step()
        assert (e.value.error["errorcode"], e.value.error.get("cserrorcode")) == (531, 4365), e.value.error
        assert world.admin.secret not in e.value.response.text
    # What a root admin may do stays out of reach too.
    with pytest.raises(CloudStackApiException) as e:
        cs.createZone(name="mallory", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2")
    assert e.value.error["errorcode"] == 401
    assert fingerprint(world.server) == before
    admin = Ident("admin", ADMIN_PASSWORD, admin_user, world.admin.accountid, "ROOT", world.admin.apikey, world.admin.secret)
    assert login_status(world.endpoint, admin, ADMIN_PASSWORD) == 200
    assert login_status(world.endpoint, admin, "owned") != 200
    assert keys_work(world.endpoint, world.admin.apikey, world.admin.secret)
