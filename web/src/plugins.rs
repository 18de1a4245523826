//! The driver plugins the server has loaded (listPlugins, admins only): name, version, kind,
//! what each asks for and what is granted, and the latest refusals to load a file.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::tr;
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
];

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

#[component]
pub fn Plugins() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let rows = RwSignal::new(None::<Result<Vec<Value>, String>>);
    let load = move || {
        spawn_local(async move {
            let r = api::list("listPlugins", "plugin", &[]).await.map(|(items, _)| items).map_err(|e| fail(session, e));
            rows.set(Some(r));
        })
    };
    load();
    view! {
        <section class="plugins">
            <div class="toolbar">
                <h1>{tr("pl.title")}</h1>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
            </div>
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
                                                <td>{caps(strings(p, "granted"), "granted")}</td>
                                                <td class="error">{caps(strings(p, "missing"), "missing")}</td>
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
