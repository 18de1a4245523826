//! The `/client/api` endpoint: reads parameters, authenticates (API key signature or
//! session), validates against the command table, hands a typed request to the
//! orchestrator and renders the reply in CloudStack's envelopes. Beside it, the console
//! proxy's WebSocket and the plugin upload endpoint.

mod console;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Map, Value, json};

use crate::api::commands::{self, Command};
use crate::api::error::ApiError;
use crate::api::params::{Params, decode_form_bytes};
use crate::api::render::{Format, Reply, render};
use crate::api::request::Request;
use crate::api::signing;
use crate::auth::Caller;
use crate::auth::store::{self, UserRow};
use crate::events::{self, Event};
use crate::orchestrate::Orchestrator;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Idle time after which a session ends, in seconds.
pub const SESSION_TIMEOUT_S: i64 = 1800;

/// The API routes, to be nested into the server's router.
pub fn routes(orchestrator: Orchestrator) -> Router {
    let state = Arc::new(orchestrator);
    Router::new()
        .route("/client/api", any(handle))
        // Some HTTP clients add a slash; `{*rest}` does not match an empty rest, and the
        // console's fallback would answer with its HTML.
        .route("/client/api/", any(handle))
        .route("/client/api/{*rest}", any(handle))
        .route(crate::orchestrate::consoles::SOCKET_PATH, axum::routing::get(console::socket))
        .route(crate::orchestrate::consoles::CHECK_PATH, axum::routing::get(console::check))
        .route(&format!("{}/{{id}}", crate::orchestrate::plugins_api::UPLOAD_PATH), axum::routing::post(upload::plugin))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// One answered request: status, body, and the cookies to set.
struct Answer {
    format: Format,
    command: Option<&'static str>,
    reply: Reply,
    cookies: Vec<String>,
}

impl Answer {
    fn error(format: Format, command: Option<&'static str>, e: ApiError) -> Self {
        Answer { format, command, reply: Reply::Error(e), cookies: Vec::new() }
    }
}

async fn handle(
    State(app): State<Arc<Orchestrator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = answer(&app, &method, &uri, &headers, body).await;
    let text = render(answer.format, answer.command, &answer.reply);
    let status = StatusCode::from_u16(answer.reply.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, answer.format.content_type())
        .header("X-Content-Type-Options", "nosniff")
        .header("X-XSS-Protection", "1;mode=block");
    // Bounded, on one line: an error text may quote what a client or a driver sent.
    if let Reply::Error(e) = &answer.reply
        && let Ok(v) = HeaderValue::from_str(&e.text.chars().take(1024).collect::<String>().replace(['\r', '\n'], " "))
    {
        response = response.header("X-Description", v);
    }
    for c in answer.cookies {
        response = response.header(header::SET_COOKIE, c);
    }
    response.body(Body::from(text)).expect("a valid response")
}

async fn answer(app: &Orchestrator, method: &Method, uri: &Uri, headers: &HeaderMap, body: Body) -> Answer {
    let query = match decode_form_bytes(uri.query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(e) => return Answer::error(Format::Xml, None, e),
    };
    // The format must be known to report body errors in it, so look at the query first
    // (the last value of a repeated name wins, as in `Params`).
    let last = |name: &str| query.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let early_format = Format::from_param(last("response"));
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let command = last("command").and_then(commands::find).map(|c| c.name);
            let e = ApiError::invalid_param(format!("The request body is larger than the limit of {MAX_BODY} bytes"));
            return Answer::error(early_format, command, e);
        }
    };
    let form = if is_form(headers) { decode_form_bytes(&body) } else { Ok(Vec::new()) };
    let form = match form {
        Ok(f) => f,
        Err(e) => return Answer::error(early_format, None, e),
    };
    let params = Params::new(query, form).with_post(*method == Method::POST);
    let format = Format::of(&params);
    let known = params.command().and_then(commands::find);
    let name = known.map(|c| c.name);
    if let Err(e) = params.validate() {
        return Answer::error(format, name, e);
    }
    match params.command() {
        Some("login") => return login(app, method, &params, format).await,
        Some("logout") => return logout(app, headers, format).await,
        _ => {}
    }
    let (caller, cmd) = match authenticate(app, headers, &params, known).await {
        Ok(ok) => ok,
        Err(e) => return Answer::error(format, name, e),
    };
    let result = async {
        cmd.validate(&params)?;
        let request = Request::parse(cmd, &params)?;
        app.execute(&caller, cmd, request).await
    }
    .await;
    match result {
        Ok(reply) => Answer { format, command: Some(cmd.name), reply, cookies: Vec::new() },
        Err(e) => Answer::error(format, Some(cmd.name), e),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// Finds who is calling: by API key and signature, else by session. The checks run
/// in CloudStack's order: key, user state, command, role, then the signature.
async fn authenticate(
    app: &Orchestrator,
    headers: &HeaderMap,
    params: &Params,
    cmd: Option<&'static Command>,
) -> Result<(Caller, &'static Command), ApiError> {
    if let Some(api_key) = params.get("apikey") {
        signing::check_expiry(params.raw(), chrono::Utc::now())?;
        let (user, secret) = match app.keys.get(api_key) {
            Some(hit) => hit,
            None => {
                let user = store::user_by_api_key(&app.db, api_key).await?.ok_or_else(ApiError::unauthorized)?;
                let secret: Arc<str> = user
                    .secret_key
                    .as_deref()
                    .and_then(|s| app.sealer.open(s))
                    .ok_or_else(ApiError::unauthorized)?
                    .into();
                let user = Arc::new(user);
                app.keys.put(api_key, user.clone(), secret.clone());
                (user, secret)
            }
        };
        let caller = active_caller(user, None)?;
        let cmd = command_for(&caller, params, cmd)?;
        let signature = params.get("signature").ok_or_else(ApiError::unauthorized)?;
        if !signing::verify(params.raw(), signature, &secret) {
            return Err(ApiError::unauthorized());
        }
        return Ok((caller, cmd));
    }
    let cookies = cookies(headers);
    let session_id =
        cookies.iter().find(|(k, _)| k == "JSESSIONID").map(|(_, v)| v.split('.').next().unwrap_or(v).to_owned());
    let cookie_key = cookies.iter().find(|(k, _)| k == "sessionkey").map(|(_, v)| v.clone());
    let param_key = params.get("sessionkey").map(str::to_owned);
    let Some(session_id) = session_id else {
        if params.command().is_none() {
            return Err(ApiError::bad_request("no command given"));
        }
        return Err(ApiError::unauthorized());
    };
    // CloudStack's default: the session key must come both as cookie and as parameter,
    // equal. A session presented without it is ended: its cookie may have been stolen.
    let key = match param_key {
        Some(k) if cookie_key.as_deref() == Some(k.as_str()) => k,
        _ => {
            store::end_session(&app.db, &session_id).await?;
            return Err(ApiError::unauthorized());
        }
    };
    let Some(user_id) = store::session_user(&app.db, &session_id, &key, SESSION_TIMEOUT_S * 1000).await? else {
        store::end_session(&app.db, &session_id).await?;
        return Err(ApiError::unauthorized());
    };
    let user = Arc::new(store::user_by_id(&app.db, user_id).await?.ok_or_else(ApiError::unauthorized)?);
    let caller = active_caller(user, Some(session_id))?;
    let cmd = command_for(&caller, params, cmd)?;
    Ok((caller, cmd))
}

fn active_caller(user: Arc<UserRow>, session: Option<String>) -> Result<Caller, ApiError> {
    if !user.active() {
        return Err(ApiError::unauthorized());
    }
    Ok(Caller { role: user.role(), user, session })
}

/// The command, if it exists (case-sensitively) and the caller's role may run it.
fn command_for(caller: &Caller, params: &Params, cmd: Option<&'static Command>) -> Result<&'static Command, ApiError> {
    let requested = params.command().unwrap_or("");
    match cmd {
        Some(c) if c.roles.allows(caller.role) => Ok(c),
        _ => Err(ApiError::new(
            crate::api::error::ErrorCode::Unauthorized,
            None,
            format!(
                "The given command '{requested}' either does not exist, is not available for user, or not available from ip address"
            ),
        )),
    }
}

/// The login session a request's JSESSIONID cookie names.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookies(headers)
        .into_iter()
        .find(|(k, _)| k == "JSESSIONID")
        .map(|(_, v)| v.split('.').next().unwrap_or(&v).to_owned())
}

fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

async fn login(app: &Orchestrator, method: &Method, params: &Params, format: Format) -> Answer {
    let cmd = commands::find("login").expect("login is in the table");
    let fail = |e| Answer::error(format, Some("login"), e);
    if method != Method::POST {
        return fail(ApiError::method_not_allowed("Please use HTTP POST to authenticate using this API"));
    }
    if let Err(e) = cmd.validate(params) {
        return fail(e);
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let path = match domain_path(app, params).await {
        Ok(p) => p,
        Err(e) => {
            // As long as a wrong password: the timing must not tell which domain ids exist.
            crate::auth::passwords::verify(password, crate::auth::passwords::NO_ONE).await;
            return fail(e);
        }
    };
    let user = match app.password_login(username, &path, password).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let (session_id, key) = match store::create_session(&app.db, user.id).await {
        Ok(s) => s,
        Err(e) => return fail(e.into()),
    };
    let who = Caller { role: user.role(), user: Arc::new(user.clone()), session: None };
    let event = Event::info("USER.LOGIN", format!("user {} has logged in from the API", user.username)).on(
        "User",
        &user.uuid,
        &user.username,
    );
    if let Err(e) = events::record(&app.db, Some(&who), event).await {
        return fail(e.into());
    }
    let mut body = Map::new();
    let fields = json!({
        "username": user.username,
        "userid": user.uuid,
        "domainid": user.domain_uuid,
        "timeout": SESSION_TIMEOUT_S,
        "account": user.account_name,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "type": user.account_type.to_string(),
        "timezone": user.timezone,
        "timezoneoffset": user.timezone.as_ref().map(|_| "0.0"),
        "registered": "false",
        "sessionkey": key,
        "is2faenabled": "false",
        "is2faverified": "false",
        "passwordchangerequired": user.password_change_required != 0,
    });
    for (k, v) in crate::orchestrate::views::object(fields) {
        body.insert(k, v);
    }
    if user.role() == crate::auth::RoleType::Admin {
        body.insert("managementserverid".into(), Value::String(app.jobs.server().to_owned()));
    }
    Answer {
        format,
        command: Some("login"),
        reply: Reply::Flat(body),
        cookies: vec![
            format!("JSESSIONID={session_id}; Path=/client; HttpOnly"),
            format!("sessionkey={key}; Path=/client; HttpOnly; SameSite=Lax"),
        ],
    }
}

/// The domain a login names: `domainId` (UUID) first, else `domain` as a path, else ROOT.
async fn domain_path(app: &Orchestrator, params: &Params) -> Result<String, ApiError> {
    if let Some(id) = params.get("domainid") {
        let d = match id.parse::<i64>() {
            Ok(n) => store::domain_by_id(&app.db, n).await?,
            Err(_) => store::domain_by_uuid(&app.db, id).await?,
        };
        return d.map(|d| d.path).ok_or_else(ApiError::login_failed);
    }
    let raw = params.get("domain").unwrap_or("/").trim();
    Ok(login_path(raw))
}

/// A login's domain path normalised as CloudStack stores it: "/" for ROOT, "/a/b/" for a
/// child; a leading "ROOT" segment is CloudStack's display form of "/".
fn login_path(raw: &str) -> String {
    let inner = raw.trim_matches('/');
    let inner = match inner.strip_prefix("ROOT") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => inner,
    };
    if inner.is_empty() { "/".to_owned() } else { format!("/{inner}/") }
}

async fn logout(app: &Orchestrator, headers: &HeaderMap, format: Format) -> Answer {
    let cookies = cookies(headers);
    if let Some((_, id)) = cookies.iter().find(|(k, _)| k == "JSESSIONID") {
        let id = id.split('.').next().unwrap_or(id);
        if let Err(e) = store::end_session(&app.db, id).await {
            return Answer::error(format, Some("logout"), e.into());
        }
    }
    let mut body = Map::new();
    body.insert("description".into(), "success".into());
    let expired = cookies.iter().map(|(k, _)| format!("{k}=; Path=/client; Max-Age=0")).collect();
    Answer { format, command: Some("logout"), reply: Reply::Flat(body), cookies: expired }
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_paths() {
        assert_eq!(super::login_path("/"), "/");
        assert_eq!(super::login_path(""), "/");
        assert_eq!(super::login_path("ROOT"), "/");
        assert_eq!(super::login_path("/ROOT/child/"), "/child/");
        assert_eq!(super::login_path("/child"), "/child/");
        assert_eq!(super::login_path("/ROOTS/"), "/ROOTS/");
        assert_eq!(super::login_path("ROOTS"), "/ROOTS/");
    }
}
