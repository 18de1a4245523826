//! The driver plugins the server has loaded (listPlugins, admins only): name, version, kind,
//! what each asks for and what is granted, and the latest refusals to load a file. Operators
//! upload a `.wasm` here (getUploadParamsForPlugin, then the file POSTed to the signed URL),
//! grant or revoke what a driver asks for (updatePlugin) and rescan the folder (reloadPlugins).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{FormData, Headers, Request, RequestCredentials, RequestInit, Response};

use crate::api::{self, s};
use crate::i18n::{I18n, fill, tr};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.plugins", "Plugins", "插件"),
    ("pl.title", "Plugins", "插件"),
    ("pl.name", "Name", "名称"),
    ("pl.version", "Version", "版本"),
    ("pl.kind", "Kind", "类型"),
    ("pl.state", "State", "状态"),
    ("pl.asks", "Asks for", "申请的权限"),
    ("pl.granted", "Granted", "已授予"),
    ("pl.missing", "Not granted", "未授予"),
    ("pl.errors", "Last errors", "最近错误"),
    ("pl.file", "File", "文件"),
    ("pl.limits", "Limits", "限制"),
    ("pl.none", "No plugin is loaded.", "没有已加载的插件。"),
    ("pl.nothing", "nothing", "无"),
    ("pl.upload", "Upload a driver", "上传驱动"),
    ("pl.upload_button", "Upload", "上传"),
    (
        "pl.signature",
        "Signature (.wasm.sig), where the server takes only signed drivers",
        "签名文件（.wasm.sig），服务器只接受已签名驱动时需要",
    ),
    ("pl.choose", "Choose a .wasm file first.", "请先选择一个 .wasm 文件。"),
    ("pl.uploading", "Uploading…", "正在上传…"),
    ("pl.uploaded", "Loaded {0} {1} from {2}.", "已从 {2} 加载 {0} {1}。"),
    ("pl.reload", "Reload", "重新扫描"),
    ("pl.reloaded", "Rescanned the plugin folder: {0} plugins.", "已重新扫描插件目录：{0} 个插件。"),
    ("pl.grant", "Grant", "授予"),
    ("pl.revoke", "Revoke", "撤销"),
    ("pl.granted_now", "Granted {1} to {0}.", "已将 {1} 授予 {0}。"),
    ("pl.revoked_now", "Revoked {1} from {0}.", "已撤销 {0} 的 {1}。"),
];

/// The reply of the upload POST: the plugin as listPlugins shows it, or the refusal's text.
async fn post_file(params: &Value, file: &web_sys::File, signature: Option<web_sys::File>) -> Result<Value, String> {
    let js = |e: JsValue| e.as_string().unwrap_or_else(|| format!("{e:?}"));
    let form = FormData::new().map_err(js)?;
    form.append_with_blob_and_filename("file", file, &file.name()).map_err(js)?;
    if let Some(sig) = &signature {
        form.append_with_blob_and_filename("signature", sig, &sig.name()).map_err(js)?;
    }
    let headers = Headers::new().map_err(js)?;
    for (header, field) in [("X-signature", "signature"), ("X-expires", "expires"), ("X-metadata", "metadata")] {
        headers.set(header, s(params, field)).map_err(js)?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::SameOrigin);
    init.set_headers(&headers);
    init.set_body(&form);
    let request = Request::new_with_str_and_init(s(params, "postURL"), &init).map_err(js)?;
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the server cannot be reached".to_owned())?
        .unchecked_into();
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(js)?).await.map_err(js)?.as_string().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).map_err(|_| format!("unexpected reply (HTTP {status})"))?;
    let payload = body.get("uploadpluginresponse").cloned().unwrap_or(Value::Null);
    if let Some(err) = payload.get("errortext").and_then(Value::as_str) {
        return Err(err.to_owned());
    }
    payload.get("plugin").cloned().ok_or_else(|| format!("unexpected reply (HTTP {status})"))
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect())
        .unwrap_or_default()
}

fn caps(list: Vec<String>, class: &'static str) -> impl IntoView {
    if list.is_empty() {
        return view! { <span class="muted">{tr("pl.nothing")}</span> }.into_any();
    }
    view! { <ul class=class>{list.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul> }
        .into_any()
}

/// One capability with a button that grants or revokes it.
fn cap_actions(
    plugin: String,
    list: Vec<String>,
    class: &'static str,
    grant: bool,
    change: impl Fn(String, String, bool) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    if list.is_empty() {
        return view! { <span class="muted">{tr("pl.nothing")}</span> }.into_any();
    }
    let label = if grant { tr("pl.grant") } else { tr("pl.revoke") };
    let button_class = if grant { "grant" } else { "revoke" };
    view! {
        <ul class=class>
            {list
                .into_iter()
                .map(|c| {
                    let (p, cap) = (plugin.clone(), c.clone());
                    view! {
                        <li>
                            <code>{c.clone()}</code>
                            " "
                            <button
                                type="button"
                                class=button_class
                                data-cap=c
                                on:click=move |_| change(p.clone(), cap.clone(), grant)
                            >
                                {label}
                            </button>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
pub fn Plugins() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let rows = RwSignal::new(None::<Result<Vec<Value>, String>>);
    // The latest action's outcome: (succeeded, text).
    let status = RwSignal::new(None::<(bool, String)>);
    let busy = RwSignal::new(false);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let sig_input = NodeRef::<leptos::html::Input>::new();
    let load = move || {
        spawn_local(async move {
            let r = api::list("listPlugins", "plugin", &[]).await.map(|(items, _)| items).map_err(|e| fail(session, e));
            rows.set(Some(r));
        })
    };
    load();
    let reload = move |_| {
        busy.set(true);
        spawn_local(async move {
            match api::list("reloadPlugins", "plugin", &[]).await {
                Ok((items, _)) => {
                    status.set(Some((true, fill(lang.get_untracked(), "pl.reloaded", &[&items.len()]))));
                    rows.set(Some(Ok(items)));
                }
                Err(e) => status.set(Some((false, fail(session, e)))),
            }
            busy.set(false);
        })
    };
    let upload = move |_| {
        let file = file_input.get_untracked().and_then(|input| input.files()).and_then(|files| files.get(0));
        let Some(file) = file else {
            status.set(Some((false, tr("pl.choose")().to_owned())));
            return;
        };
        let signature = sig_input.get_untracked().and_then(|input| input.files()).and_then(|files| files.get(0));
        busy.set(true);
        status.set(Some((true, tr("pl.uploading")().to_owned())));
        spawn_local(async move {
            let outcome = match api::call("getUploadParamsForPlugin", &[("name", file.name())]).await {
                Err(e) => Err(fail(session, e)),
                Ok(reply) => post_file(reply.get("getuploadparams").unwrap_or(&Value::Null), &file, signature).await,
            };
            status.set(Some(match outcome {
                Ok(p) => (
                    true,
                    fill(lang.get_untracked(), "pl.uploaded", &[&s(&p, "name"), &s(&p, "version"), &s(&p, "file")]),
                ),
                Err(e) => (false, e),
            }));
            busy.set(false);
            load();
        })
    };
    let change = move |plugin: String, cap: String, grant: bool| {
        busy.set(true);
        spawn_local(async move {
            let param = if grant { "grant" } else { "revoke" };
            let result = api::call("updatePlugin", &[("name", plugin.clone()), (param, cap.clone())]).await;
            status.set(Some(match result {
                Ok(_) => {
                    let key = if grant { "pl.granted_now" } else { "pl.revoked_now" };
                    (true, fill(lang.get_untracked(), key, &[&plugin, &cap]))
                }
                Err(e) => (false, fail(session, e)),
            }));
            busy.set(false);
            load();
        })
    };
    view! {
        <section class="plugins">
            <div class="toolbar">
                <h1>{tr("pl.title")}</h1>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
                <button id="plugins-reload" on:click=reload disabled=busy>
                    {tr("pl.reload")}
                </button>
            </div>
            <div class="card inline-form" id="plugin-upload">
                <h2>{tr("pl.upload")}</h2>
                <input type="file" accept=".wasm" id="plugin-file" node_ref=file_input />
                <label class="field">
                    <span>{tr("pl.signature")}</span>
                    <input type="file" accept=".sig" id="plugin-signature" node_ref=sig_input />
                </label>
                <button type="button" class="primary" id="plugin-upload-button" on:click=upload disabled=busy>
                    {tr("pl.upload_button")}
                </button>
            </div>
            {move || {
                status
                    .get()
                    .map(|(ok, text)| {
                        let class = if ok { "ok" } else { "error" };
                        view! {
                            <p id="plugins-status" class=class role="status">
                                {text}
                            </p>
                        }
                    })
            }}
            {move || match rows.get() {
                None => view! { <p class="muted">{tr("common.loading")}</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Some(Ok(items)) if items.is_empty() => view! { <p class="muted">{tr("pl.none")}</p> }.into_any(),
                Some(Ok(items)) => {
                    view! {
                        <table class="plugin-table">
                            <thead>
                                <tr>
                                    <th>{tr("pl.name")}</th>
                                    <th>{tr("pl.version")}</th>
                                    <th>{tr("pl.kind")}</th>
                                    <th>{tr("pl.state")}</th>
                                    <th>{tr("pl.asks")}</th>
                                    <th>{tr("pl.granted")}</th>
                                    <th>{tr("pl.missing")}</th>
                                    <th>{tr("pl.limits")}</th>
                                    <th>{tr("pl.errors")}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {items
                                    .iter()
                                    .map(|p| {
                                        let errors: Vec<String> = p
                                            .get("errors")
                                            .and_then(Value::as_array)
                                            .map(|a| {
                                                a.iter()
                                                    .map(|e| format!("{} {}: {}", s(e, "at"), s(e, "file"), s(e, "message")))
                                                    .collect()
                                            })
                                            .unwrap_or_default();
                                        let name = s(p, "name").to_owned();
                                        let limits = match (p.get("memorymib"), p.get("timeoutms")) {
                                            (Some(m), Some(t)) => format!("{m} MiB, {t} ms"),
                                            _ => String::new(),
                                        };
                                        view! {
                                            <tr data-name=s(p, "name").to_owned()>
                                                <td class="name" title=s(p, "description").to_owned()>
                                                    {s(p, "name").to_owned()}
                                                    <div class="muted">{s(p, "file").to_owned()}</div>
                                                </td>
                                                <td>{s(p, "version").to_owned()}</td>
                                                <td>{s(p, "kind").to_owned()}</td>
                                                <td>
                                                    <span class=format!(
                                                        "state state-{}",
                                                        s(p, "state").to_ascii_lowercase(),
                                                    )>{s(p, "state").to_owned()}</span>
                                                </td>
                                                <td>{caps(strings(p, "asks"), "asks")}</td>
                                                <td>
                                                    {cap_actions(name.clone(), strings(p, "granted"), "granted", false, change)}
                                                </td>
                                                <td class="error">
                                                    {cap_actions(name.clone(), strings(p, "missing"), "missing", true, change)}
                                                </td>
                                                <td>{limits}</td>
                                                <td class="error">{caps(errors, "errors")}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
        </section>
    }
}
