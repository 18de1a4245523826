"""Parallel callers, as Terraform/cloudstack-go and CI pipelines are: every write must succeed on
either backend (a busy database is waited for, never reported to the client as a 530)."""

import secrets
from concurrent.futures import ThreadPoolExecutor

import wire

WORKERS = 8
ACCOUNTS = 32


def test_parallel_account_create_and_delete(admin):
    api = admin.api()
    prefix = "par" + secrets.token_hex(3)

    def create(i):
        name = "{}x{}".format(prefix, i)
        r = api.raw("createAccount", username=name, password="pw", email=name + "@example.org", firstname="P", lastname="Q", accounttype=0)
        return name, r.status_code, r.text[:300]

    with ThreadPoolExecutor(WORKERS) as pool:
        created = list(pool.map(create, range(ACCOUNTS)))
    failed = [c for c in created if c[1] != 200]
    assert not failed, "{} of {} parallel createAccount calls failed, e.g. {}".format(len(failed), ACCOUNTS, failed[:2])

    listed = api("listAccounts", keyword=prefix)
    assert listed["count"] == ACCOUNTS
    ids = [a["id"] for a in listed["account"]]

    def delete(account_id):
        r = api.raw("deleteAccount", id=account_id)
        if r.status_code != 200:
            return r.status_code, r.text[:300]
        job = api.wait_job(wire.unwrap(r)[1]["jobid"])
        return job["jobstatus"], job.get("jobresult")

    with ThreadPoolExecutor(WORKERS) as pool:
        deleted = list(pool.map(delete, ids))
    failed = [d for d in deleted if d[0] != 1]
    assert not failed, "{} of {} parallel deleteAccount calls failed, e.g. {}".format(len(failed), ACCOUNTS, failed[:2])
    assert api("listAccounts", keyword=prefix) == {}
