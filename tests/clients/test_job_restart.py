"""Async jobs across a restart: a job this server had in progress when it stopped is failed at the
next start (core/src/jobs/mod.rs recover), so clients polling it get an answer, not a job that
stays pending forever. A job of another management server is left alone."""

import signal
import sqlite3
import time
import uuid

import pytest

from conftest import BACKENDS, admin_credentials, psql

INSERT = (
    "INSERT INTO async_jobs (uuid, user_id, account_id, domain_id, cmd, command, instance_type, instance_id, "
    "status, result_code, server, created) "
    "SELECT '{job}', u.id, u.account_id, a.domain_id, 'org.apache.cloudstack.api.command.admin.user.DisableUserCmd', "
    "'disableUser', 'User', u.uuid, 0, 0, '{server}', {now} FROM users u JOIN accounts a ON a.id = u.account_id "
    "WHERE u.uuid = '{user}'"
)


def insert_pending_job(srv, server_id: str, user_uuid: str) -> str:
    job = str(uuid.uuid4())
    sql = INSERT.format(job=job, server=server_id, now=int(time.time() * 1000), user=user_uuid)
    if srv.backend == "sqlite":
        con = sqlite3.connect(str(srv.sqlite_path))
        try:
            assert con.execute(sql).rowcount == 1
            con.commit()
        finally:
            con.close()
    else:
        psql(srv.database_url, sql)
    return job


@pytest.mark.parametrize("backend", BACKENDS)
def test_pending_job_fails_after_restart(server_factory, backend):
    srv = server_factory(backend)
    admin = admin_credentials(srv)

    srv.stop(signal.SIGTERM)
    ours = insert_pending_job(srv, srv.server_id(), admin.userid)
    theirs = insert_pending_job(srv, str(uuid.uuid4()), admin.userid)
    srv.start()  # on a new port: admin.api() follows srv.endpoint
    api = admin.api()

    # The keys registered before the restart still work (keys and their sealing key persist).
    job = api("queryAsyncJobResult", jobid=ours)
    assert job["jobid"] == ours
    assert type(job["jobstatus"]) is int and job["jobstatus"] == 2
    assert type(job["jobresultcode"]) is int and job["jobresultcode"] == 530
    assert job["jobresulttype"] == "object"
    assert job["jobresult"]["errorcode"] == 530
    assert "management server stopped" in job["jobresult"]["errortext"]
    assert set(job["jobresult"]) == {"errorcode", "errortext"}
    assert job["userid"] == admin.userid and job["jobinstancetype"] == "User"
    assert "completed" in job

    other = api("queryAsyncJobResult", jobid=theirs)
    assert other["jobstatus"] == 0 and other["jobresultcode"] == 0
    assert "jobresult" not in other and "jobresulttype" not in other
