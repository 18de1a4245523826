//! The console's side of `/client/api`: form POSTs with the session key, CloudStack's
//! reply envelopes, and async jobs polled to their end.

use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response, UrlSearchParams};

const ENDPOINT: &str = "/client/api";
const KEY_ITEM: &str = "wasmstack.sessionkey";
const USER_ITEM: &str = "wasmstack.username";
const USER_ID_ITEM: &str = "wasmstack.userid";
const MUST_CHANGE_ITEM: &str = "wasmstack.mustchange";
const DOMAIN_ITEM: &str = "wasmstack.domain";

/// Why a call failed: the API's own words when it gave any.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub text: String,
}

impl ApiError {
    fn local(text: impl Into<String>) -> Self {
        ApiError { code: 0, text: text.into() }
    }

    /// The session is gone (expired, or ended elsewhere): the console must log in again.
    pub fn is_unauthorized(&self) -> bool {
        self.code == 401
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The logged-in user, kept in sessionStorage so that a reload stays logged in (the
/// HttpOnly cookies stay with the browser; the key must be sent as a parameter too).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub key: String,
    pub username: String,
    pub user_id: String,
    /// The domain path logged in to ("/" for ROOT).
    pub domain: String,
    /// The password is a generated first one: it must be changed before anything else.
    pub must_change: bool,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

pub fn saved_session() -> Option<Session> {
    let s = storage()?;
    let key = s.get_item(KEY_ITEM).ok().flatten()?;
    let item = |name| s.get_item(name).ok().flatten().unwrap_or_default();
    Some(Session {
        key,
        username: item(USER_ITEM),
        user_id: item(USER_ID_ITEM),
        domain: item(DOMAIN_ITEM),
        must_change: item(MUST_CHANGE_ITEM) == "true",
    })
}

fn save_session(session: Option<&Session>) {
    let Some(s) = storage() else { return };
    match session {
        Some(session) => {
            let _ = s.set_item(KEY_ITEM, &session.key);
            let _ = s.set_item(USER_ITEM, &session.username);
            let _ = s.set_item(USER_ID_ITEM, &session.user_id);
            let _ = s.set_item(DOMAIN_ITEM, &session.domain);
            let _ = s.set_item(MUST_CHANGE_ITEM, if session.must_change { "true" } else { "false" });
        }
        None => {
            for item in [KEY_ITEM, USER_ITEM, USER_ID_ITEM, DOMAIN_ITEM, MUST_CHANGE_ITEM] {
                let _ = s.remove_item(item);
            }
        }
    }
}

fn js_err(e: JsValue) -> ApiError {
    ApiError::local(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// POSTs one command as a form; returns the HTTP status and the body's text.
async fn post(params: &[(&str, &str)]) -> ApiResult<(u16, String)> {
    let form = UrlSearchParams::new().map_err(js_err)?;
    for (k, v) in params {
        form.append(k, v);
    }
    form.append("response", "json");
    let headers = Headers::new().map_err(js_err)?;
    headers.set("Content-Type", "application/x-www-form-urlencoded").map_err(js_err)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::SameOrigin);
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&String::from(form.to_string())));
    let request = Request::new_with_str_and_init(ENDPOINT, &init).map_err(js_err)?;
    let window = web_sys::window().ok_or_else(|| ApiError::local("no window"))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| ApiError::local("the server cannot be reached"))?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(js_err)?).await.map_err(js_err)?;
    Ok((response.status(), text.as_string().unwrap_or_default()))
}

/// The payload inside CloudStack's `{"<command>response": {...}}`, or its error.
fn unwrap(status: u16, text: &str) -> ApiResult<Value> {
    let body: Value = serde_json::from_str(text)
        .map_err(|_| ApiError { code: status, text: format!("unexpected reply (HTTP {status})") })?;
    let payload = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("response")).map(|(_, v)| v.clone()))
        .unwrap_or(body);
    if let Some(err) = payload.get("errortext").and_then(Value::as_str) {
        let code = payload.get("errorcode").and_then(Value::as_u64).map(|c| c as u16).unwrap_or(status);
        return Err(ApiError { code, text: err.to_owned() });
    }
    if status >= 400 {
        return Err(ApiError { code: status, text: format!("HTTP {status}") });
    }
    Ok(payload)
}

/// Logs in; on success the session is saved for the later calls.
pub async fn login(username: &str, password: &str, domain: &str) -> ApiResult<Session> {
    let domain = if domain.trim().is_empty() { "/" } else { domain.trim() };
    let (status, text) =
        post(&[("command", "login"), ("username", username), ("password", password), ("domain", domain)]).await?;
    let body = unwrap(status, &text)?;
    let key = body.get("sessionkey").and_then(Value::as_str).ok_or_else(|| ApiError::local("no session key"))?;
    let session = Session {
        key: key.to_owned(),
        username: username.to_owned(),
        user_id: s(&body, "userid").to_owned(),
        domain: domain.to_owned(),
        must_change: body.get("passwordchangerequired").and_then(Value::as_bool).unwrap_or(false),
    };
    save_session(Some(&session));
    Ok(session)
}

pub async fn logout() {
    let _ = post(&[("command", "logout")]).await;
    save_session(None);
}

/// Forgets a session the server no longer knows.
pub fn drop_session() {
    save_session(None);
}

/// Runs one command with the saved session.
pub async fn call(command: &str, params: &[(&str, String)]) -> ApiResult<Value> {
    let key = saved_session().map(|s| s.key).ok_or_else(|| ApiError { code: 401, text: "not logged in".into() })?;
    let mut all: Vec<(&str, &str)> = vec![("command", command), ("sessionkey", &key)];
    all.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
    let (status, text) = post(&all).await?;
    unwrap(status, &text)
}

/// A list command's items under `object`, and the total count the server reports.
pub async fn list(command: &str, object: &str, params: &[(&str, String)]) -> ApiResult<(Vec<Value>, u64)> {
    let body = call(command, params).await?;
    let items = body.get(object).and_then(Value::as_array).cloned().unwrap_or_default();
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(items.len() as u64);
    Ok((items, count))
}

/// Waits for the browser's timer.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Starts an async command and polls its job until it ends; `progress` hears the
/// seconds waited so far. Returns the job's result object.
pub async fn run_job(command: &str, params: &[(&str, String)], progress: impl Fn(u32)) -> ApiResult<Value> {
    let started = call(command, params).await?;
    let job = started
        .get("jobid")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::local("no job id in the reply"))?
        .to_owned();
    wait_job(job, progress).await
}

/// Polls an async job until it ends; returns its result object or its error.
pub async fn wait_job(job: String, progress: impl Fn(u32)) -> ApiResult<Value> {
    let t0 = js_sys::Date::now();
    loop {
        progress(((js_sys::Date::now() - t0) / 1000.0) as u32);
        let body = call("queryAsyncJobResult", &[("jobid", job.clone())]).await?;
        match body.get("jobstatus").and_then(Value::as_u64).unwrap_or(0) {
            0 => sleep(500).await,
            1 => return Ok(body.get("jobresult").cloned().unwrap_or(Value::Null)),
            _ => {
                let result = body.get("jobresult");
                let text = result
                    .and_then(|r| r.get("errortext").and_then(Value::as_str).or_else(|| r.as_str()))
                    .unwrap_or("the job failed");
                let code = result.and_then(|r| r.get("errorcode")).and_then(Value::as_u64).unwrap_or(530) as u16;
                return Err(ApiError { code, text: text.to_owned() });
            }
        }
    }
}

/// A string field of an API object ("" when missing).
pub fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Runs a command, sync or async alike: an async one's job is waited for and its result returned.
pub async fn call_settled(command: &str, params: &[(&str, String)]) -> ApiResult<Value> {
    let reply = call(command, params).await?;
    match reply.get("jobid").and_then(Value::as_str) {
        Some(job) => wait_job(job.to_owned(), |_| ()).await,
        None => Ok(reply),
    }
}
