//! Runs API commands in-process as one caller, through the same table check, parsing and
//! orchestrator as an HTTP request, without HTTP or signing. The demo set-up uses it to
//! build its cloud, and the in-process test tier to drive the orchestrator.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::api::commands;
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::render::Reply;
use crate::api::request::Request;
use crate::auth::{Caller, store};
use crate::db::DbError;
use crate::orchestrate::Orchestrator;

/// Why a command run through an `Operator` failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The API refused the command or its job failed; `code` is CloudStack's error code.
    #[error("{command}: {text}")]
    Command { command: String, code: u32, text: String },
    #[error("no user {0}")]
    NoUser(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OperatorError {
    /// The API's error code (431, 530…), if the API answered.
    pub fn code(&self) -> Option<u32> {
        match self {
            OperatorError::Command { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One caller's way into the orchestrator.
pub struct Operator<'a> {
    orch: &'a Orchestrator,
    caller: Caller,
}

impl<'a> Operator<'a> {
    /// Acts as the user `login` of the domain at `domain_path` ("/" for ROOT).
    pub async fn as_user(orch: &'a Orchestrator, login: &str, domain_path: &str) -> Result<Self, OperatorError> {
        let user = store::user_by_login(&orch.db, login, domain_path)
            .await?
            .ok_or_else(|| OperatorError::NoUser(login.to_owned()))?;
        Ok(Operator { orch, caller: Caller { role: user.role(), user: std::sync::Arc::new(user), session: None } })
    }

    /// The command's reply as the API would render it (an accepted job stays a job).
    pub async fn reply(&self, command: &str, params: &[(&str, &str)]) -> Result<Reply, OperatorError> {
        let failed = |e: ApiError| OperatorError::Command {
            command: command.to_owned(),
            code: u32::from(e.code.code()),
            text: e.text,
        };
        let cmd = commands::find(command).ok_or_else(|| failed(ApiError::unsupported("no such command")))?;
        let mut pairs = vec![("command".to_owned(), command.to_owned())];
        pairs.extend(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let params = Params::from_pairs(pairs);
        let run = async {
            params.validate()?;
            cmd.validate(&params)?;
            let request = Request::parse(cmd, &params)?;
            self.orch.execute(&self.caller, cmd, request).await
        };
        match run.await.map_err(failed)? {
            Reply::Error(e) => Err(failed(e)),
            reply => Ok(reply),
        }
    }

    /// The command's one object: a created thing, or the finished job's result.
    pub async fn call(&self, command: &str, params: &[(&str, &str)]) -> Result<Map<String, Value>, OperatorError> {
        match self.reply(command, params).await? {
            Reply::Object { value, .. } | Reply::Flat(value) => Ok(value),
            Reply::List { items, .. } => Ok(items.into_iter().next().unwrap_or_default()),
            Reply::Success { .. } => Ok(Map::new()),
            Reply::AsyncJob { job_id, .. } => self.job_result(command, &job_id).await,
            Reply::Error(_) => unreachable!("reply() turns errors into Err"),
        }
    }

    /// Waits for a job and returns its one object, or its error as the API reported it.
    pub async fn job_result(&self, command: &str, job_id: &str) -> Result<Map<String, Value>, OperatorError> {
        let gone = || OperatorError::Command { command: command.to_owned(), code: 530, text: "its job is gone".into() };
        let job = self.orch.jobs.wait(job_id).await?.ok_or_else(gone)?;
        let result: Value = serde_json::from_str(job.result.as_deref().unwrap_or("{}")).unwrap_or_default();
        if job.result_code != 0 {
            return Err(OperatorError::Command {
                command: command.to_owned(),
                code: result["errorcode"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(530),
                text: result["errortext"].as_str().unwrap_or("failed").to_owned(),
            });
        }
        // The result holds one object under its name.
        Ok(result.as_object().and_then(|m| m.values().find_map(Value::as_object)).cloned().unwrap_or_default())
    }

    /// The items of a list command (all of them, on one page unless `page` is given).
    pub async fn list(&self, command: &str, params: &[(&str, &str)]) -> Result<Vec<Map<String, Value>>, OperatorError> {
        match self.reply(command, params).await? {
            Reply::List { items, .. } => Ok(items),
            _ => Ok(Vec::new()),
        }
    }

    /// Waits up to `limit` for a template's download into the image store; a failed
    /// download is an error with its reason.
    pub async fn wait_template(&self, template_id: &str, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let listed = self
                .list("listTemplates", &[("templatefilter", "all"), ("id", template_id)])
                .await
                .map_err(|e| e.to_string())?;
            let t = listed.first().cloned().unwrap_or_default();
            if t.get("isready").and_then(Value::as_bool) == Some(true) {
                return Ok(());
            }
            let status = t.get("status").and_then(Value::as_str).unwrap_or_default().to_owned();
            // While it runs the status reads "Downloading" or "42% Downloaded"; a
            // failed download leaves the reason there.
            if !status.is_empty() && !status.contains("Download") && status != "Creating" {
                return Err(status);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("still \"{status}\" after {} s", limit.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `id` of an object, or "" when it has none.
pub fn id(object: &Map<String, Value>) -> String {
    object.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()
}
