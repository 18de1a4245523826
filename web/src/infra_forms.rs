//! The infrastructure page's forms that add a host or a primary storage pool to a cluster,
//! each with its driver's settings rendered from the driver's schema (see `driver_form`).
//! The server checks the settings (the browser's own checks are off): its message, which
//! names the setting, is shown beside it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::driver_form::{
    self, DetailError, DriverSettings, StorageDriverSelect, defaults, detail_of, details_params, schema_of,
};
use crate::i18n::tr;
use crate::infra::{Field, FormError, FormFooter, set_error};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("if.add_host", "Add a host", "添加主机"),
    ("if.add_pool", "Add primary storage", "添加主存储"),
    ("if.cluster", "Cluster", "群集"),
    ("if.host_url", "Host URL", "主机 URL"),
    ("if.username", "Username", "用户名"),
    ("if.password", "Password", "密码"),
    ("if.name", "Name", "名称"),
    ("if.url", "URL", "URL"),
    ("if.add", "Add", "添加"),
];

const HOST_FIELDS: &[&str] = &["url", "username", "password"];
const POOL_FIELDS: &[&str] = &["name", "url", "provider"];

/// The clusters to add to, loaded once; the first is chosen until another is.
fn clusters(chosen: RwSignal<String>) -> RwSignal<Vec<Value>> {
    let list = RwSignal::new(Vec::new());
    spawn_local(async move {
        if let Ok((items, _)) = api::list("listClusters", "cluster", &[]).await {
            if chosen.get_untracked().is_empty()
                && let Some(first) = items.first()
            {
                chosen.set(s(first, "id").to_owned());
            }
            list.set(items);
        }
    });
    list
}

#[component]
fn ClusterSelect(id: &'static str, list: RwSignal<Vec<Value>>, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="field">
            <span>{tr("if.cluster")}</span>
            <select id=id prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                {move || {
                    list.get()
                        .into_iter()
                        .map(|c| {
                            let text = format!("{} · {} · {}", s(&c, "name"), s(&c, "zonename"), s(&c, "hypervisortype"));
                            view! { <option value=s(&c, "id").to_owned()>{text}</option> }
                        })
                        .collect_view()
                }}
            </select>
        </label>
    }
}

/// (zoneid, podid, clusterid, hypervisor) of the chosen cluster.
fn placement(list: RwSignal<Vec<Value>>, id: &str) -> Vec<(&'static str, String)> {
    list.with_untracked(|l| {
        l.iter()
            .find(|c| s(c, "id") == id)
            .map(|c| {
                vec![
                    ("zoneid", s(c, "zoneid").to_owned()),
                    ("podid", s(c, "podid").to_owned()),
                    ("clusterid", id.to_owned()),
                    ("hypervisor", s(c, "hypervisortype").to_owned()),
                ]
            })
            .unwrap_or_default()
    })
}

/// What a form shows of its call: busy, done, and the API's refusal beside the setting or
/// field it names.
#[derive(Clone, Copy)]
struct FormState {
    session: SessionCtx,
    error: FormError,
    detail_error: DetailError,
    done: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    reload: RwSignal<u32>,
}

impl FormState {
    fn new(reload: RwSignal<u32>) -> Self {
        FormState {
            session: expect_context::<SessionCtx>(),
            error: RwSignal::new(None),
            detail_error: RwSignal::new(None),
            done: RwSignal::new(None),
            busy: RwSignal::new(false),
            reload,
        }
    }

    /// Sends `command` with the settings as `details`; `name` is what the success says.
    fn submit(
        self,
        command: &'static str,
        p: Vec<(&'static str, String)>,
        details: Vec<(String, String)>,
        fields: &'static [&'static str],
        name: String,
    ) {
        self.busy.set(true);
        self.error.set(None);
        self.detail_error.set(None);
        self.done.set(None);
        spawn_local(async move {
            let mut all: Vec<(&str, String)> = p;
            all.extend(details.iter().map(|(k, v)| (k.as_str(), v.clone())));
            match api::call(command, &all).await {
                Ok(_) => {
                    self.done.set(Some(name));
                    self.reload.update(|r| *r += 1);
                }
                Err(e) => {
                    let text = fail(self.session, e);
                    match detail_of(&text) {
                        Some(key) => self.detail_error.set(Some((key, text))),
                        None => set_error(self.error, text, fields),
                    }
                }
            }
            self.busy.set(false);
        });
    }
}

/// addHost into a chosen cluster, with the KVM driver's settings.
#[component]
pub fn AddHost(reload: RwSignal<u32>) -> impl IntoView {
    let cluster = RwSignal::new(String::new());
    let list = clusters(cluster);
    let plugins = driver_form::load_plugins();
    let schema = Signal::derive(move || plugins.with(|p| schema_of(p, "kvm")));
    let values = RwSignal::new(defaults(None));
    Effect::new(move |_| values.set(defaults(schema.get().as_ref())));
    let [url, username, password] =
        [RwSignal::new(String::new()), RwSignal::new("root".to_owned()), RwSignal::new(String::new())];
    let f = FormState::new(reload);
    let FormState { error, detail_error, done, busy, .. } = f;
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut p = placement(list, &cluster.get_untracked());
        let u = url.get_untracked().trim().to_owned();
        p.extend([("url", u.clone()), ("username", username.get_untracked()), ("password", password.get_untracked())]);
        let details = values.with_untracked(details_params);
        f.submit("addHost", p, details, HOST_FIELDS, u);
    };
    view! {
        <form class="card inline-form" id="add-host" novalidate on:submit=on_submit>
            <h2>{tr("if.add_host")}</h2>
            <ClusterSelect id="host-clusterid" list=list value=cluster />
            <Field form="host" param="url" label="if.host_url" value=url error=error placeholder="qemu:///system" />
            <Field form="host" param="username" label="if.username" value=username error=error />
            <Field form="host" param="password" label="if.password" value=password error=error kind="password" />
            <div style="flex-basis: 100%">
                <DriverSettings form="host" schema=schema values=values error=detail_error />
            </div>
            <FormFooter error=error done=done busy=busy submit="if.add" />
        </form>
    }
}

/// createStoragePool for a chosen cluster, on the URL's driver or a chosen storage driver
/// with that driver's settings.
#[component]
pub fn AddPool(reload: RwSignal<u32>) -> impl IntoView {
    let cluster = RwSignal::new(String::new());
    let list = clusters(cluster);
    let plugins = driver_form::load_plugins();
    let provider = RwSignal::new(String::new());
    let schema = Signal::derive(move || {
        let name = provider.get();
        if name.is_empty() { None } else { plugins.with(|p| schema_of(p, &name)) }
    });
    let values = RwSignal::new(defaults(None));
    Effect::new(move |_| values.set(defaults(schema.get().as_ref())));
    let [name, url] = [RwSignal::new(String::new()), RwSignal::new(String::new())];
    let f = FormState::new(reload);
    let FormState { error, detail_error, done, busy, .. } = f;
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut p = placement(list, &cluster.get_untracked());
        let n = name.get_untracked().trim().to_owned();
        p.extend([("name", n.clone()), ("url", url.get_untracked().trim().to_owned()), ("scope", "cluster".into())]);
        if !provider.get_untracked().is_empty() {
            p.push(("provider", provider.get_untracked()));
        }
        let details = values.with_untracked(details_params);
        f.submit("createStoragePool", p, details, POOL_FIELDS, n);
    };
    view! {
        <form class="card inline-form" id="add-pool" novalidate on:submit=on_submit>
            <h2>{tr("if.add_pool")}</h2>
            <Field form="pool" param="name" label="if.name" value=name error=error />
            <ClusterSelect id="pool-clusterid" list=list value=cluster />
            <Field form="pool" param="url" label="if.url" value=url error=error placeholder="nfs://server/export" />
            <StorageDriverSelect id="pool-provider" plugins=plugins value=provider />
            <Show when=move || !provider.get().is_empty()>
                <div style="flex-basis: 100%">
                    <DriverSettings form="pool" schema=schema values=values error=detail_error />
                </div>
            </Show>
            <FormFooter error=error done=done busy=busy submit="if.add" />
        </form>
    }
}
