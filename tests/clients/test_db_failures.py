"""Writes the database refuses: a read-only PostgreSQL database and a SQLite file whose write
lock another process holds. Every write answers a clear 530 and no id, a job that could not be
recorded never runs, and once the database takes writes again nothing half-made is there."""

import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

import wire
from conftest import PG_ADMIN_URL, admin_credentials, new_user_account, psql
from test_instances import client, sim_zone

READ_ONLY_TEXT = "The database is read-only"
BUSY_TEXT = "The database is busy"


def writes(tag, victim, sim):
    """The writes under test, by name: (command, params). `victim` is an account to disable,
    `sim` a Simulator zone to deploy in."""
    return {
        "createDomain": dict(name="dom" + tag),
        "createZone": dict(name="zone" + tag, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2"),
        "createAccount": dict(
            username="acct" + tag, password="pw-" + tag, email=tag + "@example.org", firstname="F", lastname="L", accounttype=0
        ),
        # Async: its job must be recorded before a job id is answered.
        "disableAccount": dict(id=victim.accountid, lock="false"),
        # Async, and its instance row is written with its job.
        "deployVirtualMachine": dict(
            name="vm" + tag, serviceofferingid=sim["offering"]["id"], zoneid=sim["zone"]["id"], templateid=sim["template"]["id"]
        ),
    }


def call_all(api, calls):
    """Sends every call at once (a refused SQLite write waits out the busy timeout first)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(api.raw, name, **params) for name, params in calls.items()}
        return {name: f.result() for name, f in futures.items()}


def assert_refused(replies, text):
    for name, r in replies.items():
        key, body = wire.unwrap(r)
        assert r.status_code == 530, "{} -> {} {}".format(name, r.status_code, r.text[:300])
        assert body["errorcode"] == 530 and body["errortext"].startswith(text), (name, body)
        # No id of anything, no job id.
        assert "id" not in body and "jobid" not in body, (name, body)


def assert_nothing_made(api, tag, victim, sim, jobs_before):
    assert api("listDomains", name="dom" + tag).get("domain", []) == []
    assert api("listZones", name="zone" + tag).get("zone", []) == []
    assert api("listAccounts", name="acct" + tag, listall=True).get("account", []) == []
    [acct] = api("listAccounts", id=victim.accountid)["account"]
    assert acct["state"] == "enabled"
    assert api("listVirtualMachines", zoneid=sim["zone"]["id"], listall=True).get("virtualmachine", []) == []
    jobs = api("listAsyncJobs", listall=True).get("asyncjobs", [])
    assert [j for j in jobs if j["jobid"] not in jobs_before] == [], "a refused request left a job"
    events = api("listEvents", keyword=tag).get("event", [])
    assert events == [], events


def assert_writes_work(api, tag, victim, sim):
    """The same calls succeed once the database takes writes: the refusals were not the calls' fault."""
    calls = writes(tag, victim, sim)
    for name in ("createDomain", "createZone", "createAccount"):
        assert api(name, **calls[name])
    for name in ("disableAccount", "deployVirtualMachine"):
        job = api(name, **calls[name])["jobid"]
        done = api.wait_job(job, timeout=120)
        assert done["jobstatus"] == 1, done
    [vm] = api("listVirtualMachines", zoneid=sim["zone"]["id"], listall=True)["virtualmachine"]
    assert vm["name"] == "vm" + tag and vm["state"] == "Running"
    kinds = {e["type"] for e in api("listEvents", keyword=tag)["event"]}
    assert {"DOMAIN.CREATE", "ZONE.CREATE", "ACCOUNT.CREATE", "VM.CREATE"} <= kinds, kinds


@pytest.fixture
def long_waits(monkeypatch):
    # A refused SQLite write answers after the server's 10 s busy timeout.
    monkeypatch.setattr(wire, "TIMEOUT", 60)


def test_read_only_postgres(server_factory, web):
    srv = server_factory("postgres")
    admin = admin_credentials(srv)
    api = admin.api()
    victim = new_user_account(admin, "ro")
    sim = sim_zone(client(admin), web)
    tag = secrets.token_hex(4)
    jobs_before = {j["jobid"] for j in api("listAsyncJobs", listall=True).get("asyncjobs", [])}
    admin_url = PG_ADMIN_URL

    def set_read_only(on):
        psql(admin_url, "ALTER DATABASE {} SET default_transaction_read_only = {}".format(srv.pg_name, "on" if on else "off"))
        # The setting applies to new sessions: end the server's, its pool opens new ones.
        psql(admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'".format(srv.pg_name))

    set_read_only(True)
    try:
        # Reads still work (the API key was seen before; listing needs no write).
        assert api("listZones") is not None
        assert_refused(call_all(api, writes(tag, victim, sim)), READ_ONLY_TEXT)
    finally:
        set_read_only(False)
    assert_nothing_made(api, tag, victim, sim, jobs_before)
    assert_writes_work(api, tag, victim, sim)


def test_locked_sqlite(server_factory, web, long_waits):
    srv = server_factory("sqlite")
    admin = admin_credentials(srv)
    api = admin.api()
    victim = new_user_account(admin, "lk")
    sim = sim_zone(client(admin), web)
    tag = secrets.token_hex(4)
    jobs_before = {j["jobid"] for j in api("listAsyncJobs", listall=True).get("asyncjobs", [])}

    # Another process takes the write lock and keeps it (in WAL mode readers go on).
    holder = sqlite3.connect(str(srv.sqlite_path), isolation_level=None, timeout=30, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert api("listZones") is not None
        assert_refused(call_all(api, writes(tag, victim, sim)), BUSY_TEXT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_nothing_made(api, tag, victim, sim, jobs_before)
    assert_writes_work(api, tag, victim, sim)
