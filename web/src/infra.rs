//! Infrastructure views (zones, pods, clusters, hosts, primary storage, image stores) and
//! the pieces the other admin pages share: a server-paged table and a form field that
//! shows the API's message beside itself.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, Lang, fill, text, tr};
use crate::infra_forms::{AddHost, AddPool};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.infra", "Infrastructure", "基础架构"),
    ("infra.title", "Infrastructure", "基础架构"),
    ("infra.zones", "Zones", "区域"),
    ("infra.pods", "Pods", "提供点"),
    ("infra.clusters", "Clusters", "群集"),
    ("infra.hosts", "Hosts", "主机"),
    ("infra.pools", "Primary storage", "主存储"),
    ("infra.stores", "Image stores", "镜像存储"),
    ("col.name", "Name", "名称"),
    ("col.zone", "Zone", "区域"),
    ("col.pod", "Pod", "提供点"),
    ("col.cluster", "Cluster", "群集"),
    ("col.state", "State", "状态"),
    ("col.type", "Type", "类型"),
    ("col.network_type", "Network type", "网络类型"),
    ("col.allocation", "Allocation", "分配状态"),
    ("col.hypervisor", "Hypervisor", "虚拟机管理程序"),
    ("col.ip", "IP address", "IP 地址"),
    ("col.cpu", "CPU", "CPU"),
    ("col.memory", "Memory", "内存"),
    ("col.size", "Size", "大小"),
    ("col.url", "URL", "URL"),
    ("col.provider", "Provider", "提供程序"),
    ("col.scope", "Scope", "范围"),
    ("col.path", "Path", "路径"),
    ("col.actions", "Actions", "操作"),
    ("col.allocated", "{0} allocated", "已分配 {0}"),
    ("list.count", "{0} items", "共 {0} 项"),
    ("list.empty", "Nothing here yet.", "暂无内容。"),
    ("list.delete", "Delete", "删除"),
    ("list.confirm_delete", "Delete {0}?", "确定删除 {0}？"),
    ("list.deleting", "Deleting…", "正在删除…"),
    ("form.create", "Create", "创建"),
    ("form.creating", "Creating…", "正在创建…"),
    ("form.created", "Created {0}.", "已创建 {0}。"),
];

/// A column: its header's text key and how a row's cell reads from the API object.
pub type Col = (&'static str, fn(&Value, Lang) -> String);

const PAGE_SIZE: u64 = 20;

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

pub fn n(v: &Value, field: &str) -> u64 {
    // Some counters come as strings from older-style fields: accept both.
    v.get(field).and_then(|x| x.as_u64().or_else(|| x.as_str().and_then(|t| t.parse().ok()))).unwrap_or(0)
}

/// "used / total" for a capacity pair of byte counters.
pub fn usage(v: &Value, used: &str, total: &str) -> String {
    format!("{} / {}", gib(n(v, used)), gib(n(v, total)))
}

/// What a `Listing` reads and where the answer goes.
#[derive(Clone, Copy)]
struct Loader {
    command: &'static str,
    object: &'static str,
    params: &'static [(&'static str, &'static str)],
    keyword: Option<RwSignal<String>>,
    extra: StoredValue<Option<(&'static str, String)>>,
    poll_while: Option<fn(&Value) -> bool>,
    // Answers to older requests must not overwrite newer ones.
    generation: StoredValue<u32>,
    session: SessionCtx,
    rows: RwSignal<Vec<Value>>,
    count: RwSignal<u64>,
    loading: RwSignal<bool>,
    error: RwSignal<Option<String>>,
}

impl Loader {
    fn load(self, page: u64) {
        let mut p: Vec<(&str, String)> = self.params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        p.push(("page", page.to_string()));
        p.push(("pagesize", PAGE_SIZE.to_string()));
        if let Some(k) = self.keyword.map(|k| k.get_untracked()).filter(|k| !k.is_empty()) {
            p.push(("keyword", k));
        }
        if let Some(e) = self.extra.get_value() {
            p.push(e);
        }
        self.generation.update_value(|g| *g += 1);
        let mine = self.generation.get_value();
        self.loading.set(true);
        spawn_local(async move {
            let r = api::list(self.command, self.object, &p).await;
            if self.generation.try_get_value() != Some(mine) {
                return;
            }
            let again = match r {
                Ok((items, total)) => {
                    let again = self.poll_while.is_some_and(|f| items.iter().any(f));
                    self.rows.set(items);
                    self.count.set(total);
                    self.error.set(None);
                    again
                }
                Err(e) => {
                    self.error.set(Some(fail(self.session, e)));
                    false
                }
            };
            self.loading.set(false);
            if again {
                api::sleep(2000).await;
                // Superseded (another page, a new load, the view left): that one polls instead.
                if self.generation.try_get_value() == Some(mine) {
                    self.load(page);
                }
            }
        });
    }
}

/// One server-side page of a list command at a time, with a pager and an optional delete per
/// row. `reload` re-reads the page when bumped; while `poll_while` holds for a row (a template
/// still downloading) the page is re-read every 2 s. `keyword`, when set, is sent as the
/// list's keyword; `extra` is one more parameter such as `("volumeid", id)`; `actions` adds
/// a row's own buttons before its Delete; `describe` names a row in the delete question
/// when its objects have no name (rules).
#[component]
pub fn Listing(
    id: &'static str,
    command: &'static str,
    object: &'static str,
    columns: &'static [Col],
    #[prop(optional)] params: &'static [(&'static str, &'static str)],
    #[prop(optional)] delete: Option<&'static str>,
    #[prop(optional)] reload: Option<RwSignal<u32>>,
    #[prop(optional)] poll_while: Option<fn(&Value) -> bool>,
    #[prop(optional)] keyword: Option<RwSignal<String>>,
    #[prop(optional, into)] actions: Option<Callback<Value, AnyView>>,
    #[prop(optional)] extra: Option<(&'static str, String)>,
    #[prop(optional)] describe: Option<fn(&Value) -> String>,
) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let rows = RwSignal::new(Vec::<Value>::new());
    let count = RwSignal::new(0u64);
    let page = RwSignal::new(1u64);
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let row_error = RwSignal::new(None::<(String, String)>);
    let generation = StoredValue::new(0u32);

    let extra = StoredValue::new(extra);
    let loader = Loader {
        command,
        object,
        params,
        keyword,
        extra,
        poll_while,
        generation,
        session,
        rows,
        count,
        loading,
        error,
    };
    let reload_now = move || loader.load(page.get_untracked());
    let last_keyword = StoredValue::new(String::new());
    Effect::new(move |_| {
        page.track();
        if let Some(r) = reload {
            r.track();
        }
        // A new keyword starts again from the first page.
        if let Some(k) = keyword {
            let now = k.get();
            if now != last_keyword.get_value() {
                last_keyword.set_value(now);
                if page.get_untracked() != 1 {
                    page.set(1);
                    return;
                }
            }
        }
        reload_now();
    });

    let remove = move |item_id: String, name: String| {
        let Some(command) = delete else { return };
        let question = fill(lang.get_untracked(), "list.confirm_delete", &[&name]);
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        row_error.set(Some((item_id.clone(), text(lang.get_untracked(), "list.deleting").to_owned())));
        spawn_local(async move {
            match api::call_settled(command, &[("id", item_id.clone())]).await {
                Ok(_) => {
                    row_error.set(None);
                    reload_now();
                }
                Err(e) => row_error.set(Some((item_id, fail(session, e)))),
            }
        });
    };

    let pages = move || count.get().div_ceil(PAGE_SIZE).max(1);
    view! {
        <div class="listing" id=id>
            <div class="toolbar">
                <button class="refresh" on:click=move |_| reload_now()>
                    {tr("common.refresh")}
                </button>
                <span class="muted">{move || fill(lang.get(), "list.count", &[&count.get()])}</span>
            </div>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <table class="list-table" class:loading=loading>
                <thead>
                    <tr>
                        {columns.iter().map(|(key, _)| view! { <th>{tr(key)}</th> }).collect_view()}
                        {(delete.is_some() || actions.is_some()).then(|| view! { <th>{tr("col.actions")}</th> })}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let l = lang.get();
                        rows.get()
                            .into_iter()
                            .map(|v| {
                                let item_id = s(&v, "id").to_owned();
                                let name = s(&v, "name").to_owned();
                                let asked = describe.map_or_else(|| name.clone(), |d| d(&v));
                                let cells = columns
                                    .iter()
                                    .map(|(key, cell)| {
                                        view! { <td class=key.replace('.', "-")>{cell(&v, l)}</td> }
                                    })
                                    .collect_view();
                                let own = actions.map(|a| a.run(v.clone()));
                                let action_cell = (delete.is_some() || own.is_some())
                                    .then(|| {
                                        let (i, n) = (item_id.clone(), asked);
                                        let mine = item_id.clone();
                                        let remove_button = delete
                                            .map(|_| {
                                                view! {
                                                    <button class="act act-delete" on:click=move |_| remove(i.clone(), n.clone())>
                                                        {tr("list.delete")}
                                                    </button>
                                                }
                                            });
                                        view! {
                                            <td>
                                                {own}
                                                {remove_button}
                                                <span class="job">
                                                    {move || {
                                                        row_error
                                                            .with(|e| {
                                                                e.as_ref()
                                                                    .filter(|(id, _)| *id == mine)
                                                                    .map(|(_, t)| t.clone())
                                                            })
                                                    }}
                                                </span>
                                            </td>
                                        }
                                    });
                                view! {
                                    <tr data-id=item_id.clone() data-name=name.clone()>
                                        {cells}
                                        {action_cell}
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || !loading.get() && rows.with(Vec::is_empty) && error.with(Option::is_none)>
                <p class="muted empty">{tr("list.empty")}</p>
            </Show>
            <Pager page=page pages=Signal::derive(pages) />
        </div>
    }
}

/// Previous, "Page N of M" and Next under a list paged on the server; the list reloads
/// when `page` changes.
#[component]
pub fn Pager(page: RwSignal<u64>, #[prop(into)] pages: Signal<u64>) -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    view! {
        <div class="pager">
            <button class="prev" disabled=move || { page.get() <= 1 } on:click=move |_| page.update(|p| *p -= 1)>
                {tr("vm.prev")}
            </button>
            <span>{move || fill(lang.get(), "vm.page_of", &[&page.get(), &pages.get()])}</span>
            <button class="next" disabled=move || { page.get() >= pages.get() } on:click=move |_| page.update(|p| *p += 1)>
                {tr("vm.next")}
            </button>
        </div>
    }
}

/// The API's message for a form, and the field it is about when it names one.
pub type FormError = RwSignal<Option<(Option<&'static str>, String)>>;

/// Which of `fields` (API parameter names) the API's message is about: "Invalid value of
/// parameter url: …", "missing parameter name", "The template name cannot be empty".
pub fn field_of(message: &str, fields: &[&'static str]) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    fields
        .iter()
        .find(|f| lower.contains(&format!("parameter {f}")))
        .or_else(|| fields.iter().find(|f| words.contains(f)))
        .copied()
}

/// Sets a form's error from a failed call: beside its field when the message names one.
pub fn set_error(error: FormError, message: String, fields: &[&'static str]) {
    error.set(Some((field_of(&message, fields), message)));
}

/// A labelled input bound to `value`, with the API's message shown beside it when about it.
#[component]
pub fn Field(
    form: &'static str,
    param: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    error: FormError,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] kind: &'static str,
) -> impl IntoView {
    let mine = move || error.with(|e| e.as_ref().filter(|(f, _)| *f == Some(param)).map(|(_, t)| t.clone()));
    view! {
        <label class="field" class:invalid=move || mine().is_some()>
            <span>{tr(label)}</span>
            <input
                id=format!("{form}-{param}")
                name=param
                type=if kind.is_empty() { "text" } else { kind }
                placeholder=placeholder
                prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <span class="field-error" role="alert">
                {mine}
            </span>
        </label>
    }
}

/// The API's message when it names none of the form's fields.
#[component]
pub fn FormMessage(error: FormError) -> impl IntoView {
    view! {
        <p class="error form-error" role="alert">
            {move || error.with(|e| e.as_ref().filter(|(f, _)| f.is_none()).map(|(_, t)| t.clone()))}
        </p>
    }
}

/// The end of a create form: the API's message that names no field, what was created,
/// and the submit button (disabled while the request runs).
#[component]
pub fn FormFooter(
    error: FormError,
    done: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    submit: &'static str,
) -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    view! {
        <FormMessage error=error />
        <p class="ok" role="status">
            {move || done.get().map(|n| fill(lang.get(), "form.created", &[&n]))}
        </p>
        <button type="submit" class="primary" disabled=busy>
            {tr(submit)}
        </button>
    }
}

/// A search box that sets `keyword` (trimmed) when submitted, and sends a paged list back
/// to its first `page` if given.
#[component]
pub fn SearchBox(
    id: &'static str,
    keyword: RwSignal<String>,
    #[prop(optional)] page: Option<RwSignal<u64>>,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    view! {
        <form
            class="search"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                if let Some(p) = page {
                    p.set(1);
                }
                keyword.set(typed.get_untracked().trim().to_owned());
            }
        >
            <input
                id=id
                type="search"
                placeholder=tr("vm.search_placeholder")
                prop:value=typed
                on:input=move |ev| typed.set(event_target_value(&ev))
            />
            <button type="submit">{tr("vm.search")}</button>
        </form>
    }
}

/// What the last async action on a row is doing, keyed by the row's id in a `JobMap`.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Running { label: &'static str, secs: u32 },
    Done { label: &'static str },
    Failed { label: &'static str, error: String },
}

impl JobState {
    /// "Attach: Running… 3s", "Attach: Done", "Attach: Failed — why" (`label` is a text key).
    pub fn describe(&self, l: Lang) -> String {
        match self {
            JobState::Running { label, secs } => format!("{}: {} {secs}s", text(l, label), text(l, "job.running")),
            JobState::Done { label } => format!("{}: {}", text(l, label), text(l, "job.done")),
            JobState::Failed { label, error } => format!("{}: {} — {error}", text(l, label), text(l, "job.failed")),
        }
    }
}

pub type JobMap = RwSignal<std::collections::HashMap<String, JobState>>;

/// Runs a command for row `id`, sync or async: the row's entry in `jobs` follows the job's
/// seconds and its end; `done` hears the result when it succeeds.
pub fn track_job(
    session: SessionCtx,
    jobs: JobMap,
    id: String,
    label: &'static str,
    command: &'static str,
    params: Vec<(&'static str, String)>,
    done: impl FnOnce(Value) + 'static,
) {
    set_job(jobs, &id, JobState::Running { label, secs: 0 });
    spawn_local(async move {
        let started = api::call(command, &params).await;
        settle(session, jobs, id, label, started, done).await;
    });
}

/// As `track_job`, for a command already accepted (`started` is its reply): a page that
/// shows a refusal beside its field sends the command itself and then follows the job here.
pub fn follow_job(
    session: SessionCtx,
    jobs: JobMap,
    id: String,
    label: &'static str,
    started: Value,
    done: impl FnOnce(Value) + 'static,
) {
    set_job(jobs, &id, JobState::Running { label, secs: 0 });
    spawn_local(settle(session, jobs, id, label, Ok(started), done));
}

fn set_job(jobs: JobMap, id: &str, state: JobState) {
    jobs.update(|j| {
        j.insert(id.to_owned(), state);
    });
}

async fn settle(
    session: SessionCtx,
    jobs: JobMap,
    id: String,
    label: &'static str,
    started: api::ApiResult<Value>,
    done: impl FnOnce(Value) + 'static,
) {
    let tick = {
        let id = id.clone();
        move |secs| set_job(jobs, &id, JobState::Running { label, secs })
    };
    let reply = match started {
        Ok(r) => match r.get("jobid").and_then(Value::as_str) {
            Some(job) => api::wait_job(job.to_owned(), tick).await,
            None => Ok(r),
        },
        Err(e) => Err(e),
    };
    match reply {
        Ok(result) => {
            set_job(jobs, &id, JobState::Done { label });
            done(result);
        }
        Err(e) => set_job(jobs, &id, JobState::Failed { label, error: fail(session, e) }),
    }
}

/// The line that shows row `id`'s job in `jobs`.
#[component]
pub fn JobLine(jobs: JobMap, #[prop(into)] id: String) -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    view! { <span class="job job-line">{move || jobs.with(|j| j.get(&id).map(|s| s.describe(lang.get())))}</span> }
}

const ZONES: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.network_type", |v, _| s(v, "networktype").to_owned()),
    ("col.allocation", |v, _| s(v, "allocationstate").to_owned()),
];
const PODS: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.zone", |v, _| s(v, "zonename").to_owned()),
    ("col.allocation", |v, _| s(v, "allocationstate").to_owned()),
];
const CLUSTERS: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.zone", |v, _| s(v, "zonename").to_owned()),
    ("col.pod", |v, _| s(v, "podname").to_owned()),
    ("col.hypervisor", |v, _| s(v, "hypervisortype").to_owned()),
    ("col.allocation", |v, _| s(v, "allocationstate").to_owned()),
];
const HOSTS: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.state", |v, _| format!("{} · {}", s(v, "state"), s(v, "resourcestate"))),
    ("col.ip", |v, _| s(v, "ipaddress").to_owned()),
    ("col.hypervisor", |v, _| s(v, "hypervisor").to_owned()),
    ("col.cluster", |v, _| s(v, "clustername").to_owned()),
    ("col.cpu", |v, l| {
        let allocated = fill(l, "col.allocated", &[&s(v, "cpuallocated")]);
        format!("{} × {} MHz · {allocated}", n(v, "cpunumber"), n(v, "cpuspeed"))
    }),
    ("col.memory", |v, _| usage(v, "memoryused", "memorytotal")),
];
const POOLS: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.state", |v, _| s(v, "state").to_owned()),
    ("col.type", |v, _| s(v, "type").to_owned()),
    ("col.scope", |v, _| s(v, "scope").to_owned()),
    ("col.zone", |v, _| s(v, "zonename").to_owned()),
    ("col.path", |v, _| s(v, "path").to_owned()),
    ("col.size", |v, _| usage(v, "disksizeused", "disksizetotal")),
];
const STORES: &[Col] = &[
    ("col.name", |v, _| s(v, "name").to_owned()),
    ("col.provider", |v, _| s(v, "providername").to_owned()),
    ("col.zone", |v, _| s(v, "zonename").to_owned()),
    ("col.url", |v, _| s(v, "url").to_owned()),
    ("col.size", |v, _| usage(v, "disksizeused", "disksizetotal")),
];

const TABS: &[(&str, &str)] = &[
    ("zones", "infra.zones"),
    ("pods", "infra.pods"),
    ("clusters", "infra.clusters"),
    ("hosts", "infra.hosts"),
    ("pools", "infra.pools"),
    ("stores", "infra.stores"),
];

#[component]
pub fn Infra() -> impl IntoView {
    let tab = RwSignal::new("zones");
    view! {
        <section class="infra">
            <h1>{tr("infra.title")}</h1>
            <div class="tabs" role="tablist">
                {TABS
                    .iter()
                    .map(|(name, key)| {
                        view! {
                            <button
                                id=format!("tab-{name}")
                                role="tab"
                                class:selected=move || tab.get() == *name
                                on:click=move |_| tab.set(*name)
                            >
                                {tr(key)}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            {move || match tab.get() {
                "pods" => view! { <Listing id="pods" command="listPods" object="pod" columns=PODS /> }.into_any(),
                "clusters" => {
                    view! { <Listing id="clusters" command="listClusters" object="cluster" columns=CLUSTERS /> }
                        .into_any()
                }
                "hosts" => {
                    let reload = RwSignal::new(0u32);
                    view! {
                        <AddHost reload=reload />
                        <Listing id="hosts" command="listHosts" object="host" columns=HOSTS reload=reload />
                    }
                        .into_any()
                }
                "pools" => {
                    let reload = RwSignal::new(0u32);
                    view! {
                        <AddPool reload=reload />
                        <Listing id="pools" command="listStoragePools" object="storagepool" columns=POOLS reload=reload />
                    }
                        .into_any()
                }
                "stores" => {
                    view! { <Listing id="stores" command="listImageStores" object="imagestore" columns=STORES /> }
                        .into_any()
                }
                _ => view! { <Listing id="zones" command="listZones" object="zone" columns=ZONES /> }.into_any(),
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_find_their_field() {
        let f = &["name", "url", "guestcidraddress"];
        assert_eq!(field_of("Invalid value of parameter url: x; give an http:// URL", f), Some("url"));
        assert_eq!(field_of("The template name cannot be empty", f), Some("name"));
        assert_eq!(field_of("Invalid value of parameter guestcidraddress: 1/33", f), Some("guestcidraddress"));
        assert_eq!(field_of("the job failed", f), None);
    }
}
