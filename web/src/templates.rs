//! Templates and ISOs: register from a URL, watch the download ("42% Downloaded") until the
//! image is ready, delete.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{Lang, text, tr};
use crate::infra::{Col, Field, FormError, FormFooter, Listing, set_error};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.templates", "Templates", "模板"),
    ("tpl.title", "Templates and ISOs", "模板和 ISO"),
    ("tpl.templates", "Templates", "模板"),
    ("tpl.isos", "ISOs", "ISO"),
    ("tpl.register", "Register from URL", "从 URL 注册"),
    ("tpl.name", "Name", "名称"),
    ("tpl.url", "URL", "URL"),
    ("tpl.zone", "Zone", "区域"),
    ("tpl.all_zones", "All zones", "所有区域"),
    ("tpl.format", "Format", "格式"),
    ("tpl.hypervisor", "Hypervisor", "虚拟机管理程序"),
    ("tpl.status", "Status", "状态"),
    ("tpl.ready", "Ready", "就绪"),
    ("tpl.submit", "Register", "注册"),
    ("tpl.userdata", "User data", "用户数据"),
];

fn ready(v: &Value) -> bool {
    v.get("isready") == Some(&Value::Bool(true))
}

/// "Ready", or the download's own words while it runs ("42% Downloaded").
fn status(v: &Value, l: Lang) -> String {
    if ready(v) { text(l, "tpl.ready").to_owned() } else { s(v, "status").to_owned() }
}

/// The userdata linked to a template and its override policy ("setup (Append)"), or nothing.
fn linked_userdata(v: &Value, l: Lang) -> String {
    match s(v, "userdataname") {
        "" => String::new(),
        name => format!("{name} ({})", crate::userdata::policy_text(l, s(v, "userdatapolicy"))),
    }
}

const TEMPLATE_COLS: &[Col] = &[
    ("tpl.name", |v, _| s(v, "name").to_owned()),
    ("tpl.status", status),
    ("tpl.zone", |v, _| s(v, "zonename").to_owned()),
    ("tpl.format", |v, _| s(v, "format").to_owned()),
    ("tpl.hypervisor", |v, _| s(v, "hypervisor").to_owned()),
    ("tpl.userdata", linked_userdata),
];
const ISO_COLS: &[Col] = &[
    ("tpl.name", |v, _| s(v, "name").to_owned()),
    ("tpl.status", status),
    ("tpl.zone", |v, _| s(v, "zonename").to_owned()),
];

const FIELDS: &[&str] = &["name", "url", "zoneid", "format", "hypervisor"];

#[component]
pub fn Templates() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let iso = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let zone = RwSignal::new("-1".to_owned());
    let format = RwSignal::new("QCOW2".to_owned());
    let hypervisor = RwSignal::new("Simulator".to_owned());
    let error: FormError = RwSignal::new(None);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let reload = RwSignal::new(0u32);
    let zones = RwSignal::new(Vec::<(String, String)>::new());
    spawn_local(async move {
        if let Ok((list, _)) = api::list("listZones", "zone", &[]).await {
            zones.set(list.iter().map(|z| (s(z, "id").to_owned(), s(z, "name").to_owned())).collect());
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        done.set(None);
        let is_iso = iso.get_untracked();
        let n = name.get_untracked().trim().to_owned();
        let mut p =
            vec![("name", n.clone()), ("displaytext", n.clone()), ("url", url.get_untracked().trim().to_owned())];
        p.push(("zoneid", zone.get_untracked()));
        if !is_iso {
            p.push(("format", format.get_untracked()));
            p.push(("hypervisor", hypervisor.get_untracked()));
        }
        spawn_local(async move {
            let command = if is_iso { "registerIso" } else { "registerTemplate" };
            match api::call(command, &p).await {
                Ok(_) => {
                    done.set(Some(n));
                    name.set(String::new());
                    url.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(error, fail(session, e), FIELDS),
            }
            busy.set(false);
        });
    };

    let tab = move |value: bool, id: &'static str, key: &'static str| {
        view! {
            <button id=id role="tab" class:selected=move || iso.get() == value on:click=move |_| iso.set(value)>
                {tr(key)}
            </button>
        }
    };
    view! {
        <section class="templates">
            <h1>{tr("tpl.title")}</h1>
            <div class="tabs" role="tablist">
                {tab(false, "tab-templates", "tpl.templates")}
                {tab(true, "tab-isos", "tpl.isos")}
            </div>
            <form class="card inline-form" id="register" on:submit=submit>
                <h2>{tr("tpl.register")}</h2>
                <Field form="tpl" param="name" label="tpl.name" value=name error=error />
                <Field form="tpl" param="url" label="tpl.url" value=url error=error placeholder="https://…/image.qcow2" />
                <label class="field">
                    <span>{tr("tpl.zone")}</span>
                    <select id="tpl-zoneid" prop:value=zone on:change=move |ev| zone.set(event_target_value(&ev))>
                        <option value="-1">{tr("tpl.all_zones")}</option>
                        {move || {
                            zones
                                .get()
                                .into_iter()
                                .map(|(id, n)| view! { <option value=id>{n}</option> })
                                .collect_view()
                        }}
                    </select>
                </label>
                <Show when=move || !iso.get()>
                    <label class="field">
                        <span>{tr("tpl.format")}</span>
                        <select id="tpl-format" prop:value=format on:change=move |ev| format.set(event_target_value(&ev))>
                            <option value="QCOW2">"QCOW2"</option>
                            <option value="RAW">"RAW"</option>
                        </select>
                    </label>
                    <label class="field">
                        <span>{tr("tpl.hypervisor")}</span>
                        <select
                            id="tpl-hypervisor"
                            prop:value=hypervisor
                            on:change=move |ev| hypervisor.set(event_target_value(&ev))
                        >
                            <option value="Simulator">"Simulator"</option>
                            <option value="KVM">"KVM"</option>
                        </select>
                    </label>
                </Show>
                <FormFooter error=error done=done busy=busy submit="tpl.submit" />
            </form>
            {move || {
                if iso.get() {
                    view! {
                        <Listing
                            id="isos"
                            command="listIsos"
                            object="iso"
                            columns=ISO_COLS
                            params=&[("isofilter", "all"), ("listall", "true")]
                            delete="deleteIso"
                            reload=reload
                            poll_while=|v| !ready(v)
                        />
                    }
                        .into_any()
                } else {
                    view! {
                        <Listing
                            id="templates"
                            command="listTemplates"
                            object="template"
                            columns=TEMPLATE_COLS
                            params=&[("templatefilter", "all"), ("listall", "true")]
                            delete="deleteTemplate"
                            reload=reload
                            poll_while=|v| !ready(v)
                        />
                    }
                        .into_any()
                }
            }}
        </section>
    }
}
