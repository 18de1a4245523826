//! Async jobs, persisted: a command that takes time answers at once with a job id;
//! the work runs on the server's runtime and its result (or failure) is stored for
//! queryAsyncJobResult. Jobs a stopped server left running are failed at the next start.

use std::future::Future;

use serde_json::{Map, Value};
use sqlx::FromRow;

use crate::api::error::ApiError;
use crate::auth::store::{Arg, Scope, fetch_page};
use crate::auth::{Caller, Owned, Owner, RoleType};
use crate::db::{Db, DbError, new_uuid, now_ms};

/// Job states, as CloudStack numbers them.
pub const IN_PROGRESS: i64 = 0;
pub const SUCCEEDED: i64 = 1;
pub const FAILED: i64 = 2;

#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub uuid: String,
    pub user_id: i64,
    pub account_id: i64,
    pub domain_id: i64,
    pub cmd: String,
    pub command: String,
    pub instance_type: Option<String>,
    pub instance_id: Option<String>,
    pub status: i64,
    pub result_code: i64,
    pub result: Option<String>,
    pub server: String,
    pub created: i64,
    pub completed: Option<i64>,
    pub user_uuid: Option<String>,
    pub account_uuid: Option<String>,
    pub account: Option<String>,
    pub domain_uuid: Option<String>,
    pub domain_path: Option<String>,
    /// The submitting account's type, for who may see the job.
    pub account_type: Option<i64>,
}

impl Owned for JobRow {
    fn owner(&self) -> Owner<'_> {
        Owner {
            account_id: self.account_id,
            // An account that cannot be found is treated as a root admin's.
            account_type: self.account_type.unwrap_or(RoleType::Admin.account_type()),
            domain_path: self.domain_path.as_deref().unwrap_or_default(),
        }
    }
}

const JOB_SELECT: &str = "SELECT j.id, j.uuid, j.user_id, j.account_id, j.domain_id, j.cmd, j.command, j.instance_type, \
     j.instance_id, j.status, j.result_code, j.result, j.server, j.created, j.completed, u.uuid AS user_uuid, \
     a.uuid AS account_uuid, a.name AS account, d.uuid AS domain_uuid, d.path AS domain_path, a.account_type \
     FROM async_jobs j LEFT JOIN users u ON u.id = j.user_id LEFT JOIN accounts a ON a.id = j.account_id \
     LEFT JOIN domains d ON d.id = j.domain_id WHERE 1 = 1";

/// How a job ended: the result object (wrapped once, e.g. `{"account":{…}}`) or the
/// error, whose code the job's result reports as the API would.
pub type Outcome = Result<Map<String, Value>, ApiError>;

/// What a new job is about.
pub struct JobSpec<'a> {
    /// CloudStack's command class name, shown as `cmd`.
    pub cmd: &'a str,
    /// The API command name.
    pub command: &'a str,
    /// The resource it acts on, e.g. ("Account", uuid).
    pub instance: Option<(&'a str, String)>,
}

/// A job row written in a transaction that is not committed yet.
#[must_use = "a recorded job must be started once its transaction is committed"]
pub struct Recorded {
    id: i64,
    uuid: String,
}

/// Submits and tracks jobs.
#[derive(Clone)]
pub struct Jobs {
    db: Db,
    server: String,
}

impl Jobs {
    pub fn new(db: Db, server: String) -> Self {
        Jobs { db, server }
    }

    /// The id of this management server, recorded on each job it runs.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Records a job and starts `work` in the background; returns the job's UUID. The job
    /// row is committed before the work starts and before the id is returned: a job that
    /// could not be recorded fails the request and never runs.
    pub async fn submit<F>(&self, caller: &Caller, spec: JobSpec<'_>, work: F) -> Result<String, DbError>
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let mut tx = self.db.begin().await?;
        let job = self.record(&mut tx, caller, spec).await?;
        tx.commit().await?;
        Ok(self.start(job, work))
    }

    /// Records a job within `tx`, beside the rows its request makes, so that both are
    /// stored or neither is; `start` it once `tx` is committed.
    pub async fn record(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        spec: JobSpec<'_>,
    ) -> Result<Recorded, DbError> {
        let uuid = new_uuid();
        let (itype, iid) = spec.instance.map_or((None, None), |(t, i)| (Some(t.to_owned()), Some(i)));
        // Always in a transaction: on SQLite, `INSERT … RETURNING` outside one commits only
        // when the statement is reset after its row is read, and a failure there is not
        // reported, so the id could name a row that was never stored.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO async_jobs (uuid, user_id, account_id, domain_id, cmd, command, instance_type, instance_id, \
             status, result_code, server, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10) RETURNING id",
        )
        .bind(&uuid)
        .bind(caller.user.id)
        .bind(caller.user.account_id)
        .bind(caller.user.domain_id)
        .bind(spec.cmd)
        .bind(spec.command)
        .bind(itype)
        .bind(iid)
        .bind(&self.server)
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?;
        Ok(Recorded { id, uuid })
    }

    /// Starts the work of a recorded (and committed) job; returns the job's UUID.
    pub fn start<F>(&self, job: Recorded, work: F) -> String
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let db = self.db.clone();
        let id = job.id;
        tokio::spawn(async move {
            // A panic in the work must still end the job, not leave it pending.
            let outcome = match tokio::spawn(work).await {
                Ok(o) => o,
                Err(e) => Err(ApiError::internal(format!("the job crashed: {e}"))),
            };
            if let Err(e) = finish(&db, id, outcome).await {
                tracing::error!(job = id, "recording a job's result failed: {e}");
            }
        });
        job.uuid
    }

    /// Fails the jobs this server left in progress when it stopped; returns how many.
    pub async fn recover(&self) -> Result<u64, DbError> {
        let text = "The management server stopped while this job was running; check the resource's state and retry";
        let result = serde_json::json!({ "errorcode": 530, "errortext": text }).to_string();
        let done = sqlx::query("UPDATE async_jobs SET status = 2, result_code = 530, result = $1, completed = $2 WHERE status = 0 AND server = $3")
            .bind(result)
            .bind(now_ms())
            .bind(&self.server)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn get(&self, uuid: &str) -> Result<Option<JobRow>, DbError> {
        let sql = format!("{JOB_SELECT} AND j.uuid = $1");
        Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(self.db.pool()).await?)
    }

    /// Jobs within `scope`, newest first.
    pub async fn list(
        &self,
        scope: &Scope,
        since_ms: Option<i64>,
        page: Option<(u32, u32)>,
    ) -> Result<(Vec<JobRow>, i64), DbError> {
        let mut sql = JOB_SELECT.to_owned();
        let mut args = Vec::new();
        scope.push(&mut sql, &mut args, "j.account_id", "d.path", "j.domain_id");
        if let Some(t) = since_ms {
            args.push(Arg::Int(t));
            sql.push_str(&format!(" AND j.created >= ${}", args.len()));
        }
        fetch_page(&self.db, sql, &args, "j.id DESC", page).await
    }

    /// Waits until a job leaves IN_PROGRESS (for tests and the CLI).
    pub async fn wait(&self, uuid: &str) -> Result<Option<JobRow>, DbError> {
        loop {
            match self.get(uuid).await? {
                Some(j) if j.status == IN_PROGRESS => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                other => return Ok(other),
            }
        }
    }
}

/// How often recording a job's result is tried while the database is busy.
const FINISH_ATTEMPTS: u32 = 5;

/// Records how a job ended. The work is done by then, so a busy database is waited out
/// a few times rather than leaving the job in progress until the next restart.
async fn finish(db: &Db, id: i64, outcome: Outcome) -> Result<(), DbError> {
    let (status, code, result) = match outcome {
        Ok(obj) => (SUCCEEDED, 0, Value::Object(obj)),
        Err(e) => {
            let code = e.code.code();
            (FAILED, i64::from(code), serde_json::json!({ "errorcode": code, "errortext": e.text }))
        }
    };
    let result = result.to_string();
    let mut attempt = 1;
    loop {
        let done = sqlx::query(
            "UPDATE async_jobs SET status = $1, result_code = $2, result = $3, completed = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(code)
        .bind(&result)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await
        .map_err(DbError::from);
        match done {
            Err(DbError::Busy(e)) if attempt < FINISH_ATTEMPTS => {
                tracing::warn!(job = id, "recording a job's result: the database is busy ({e}); trying again");
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
                attempt += 1;
            }
            other => return other.map(|_| ()),
        }
    }
}
