//! Events, newest first, one server-side page at a time, filtered by level, type,
//! keyword and a date range (listEvents' startdate/enddate).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, s};
use crate::i18n::{I18n, fill, tr};
use crate::infra::Pager;
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.events", "Events", "事件"),
    ("ev.title", "Events", "事件"),
    ("ev.level", "Level", "级别"),
    ("ev.all_levels", "All levels", "全部级别"),
    ("ev.type", "Type", "类型"),
    ("ev.type_placeholder", "e.g. VM.CREATE", "例如 VM.CREATE"),
    ("ev.keyword", "Keyword", "关键字"),
    ("ev.from", "From", "开始日期"),
    ("ev.to", "To", "结束日期"),
    ("ev.filter", "Filter", "筛选"),
    ("ev.clear", "Clear", "清除"),
    ("ev.time", "Time", "时间"),
    ("ev.description", "Description", "描述"),
    ("ev.state", "State", "状态"),
    ("ev.user", "User", "用户"),
    ("ev.account", "Account", "账户"),
    ("ev.none", "No events.", "没有事件。"),
    ("ev.count", "{0} events", "共 {0} 个事件"),
];

const PAGE_SIZE: u64 = 50;
const LEVELS: &[&str] = &["INFO", "WARN", "ERROR"];

/// The filters as applied (the form's fields are copied here on submit).
#[derive(Debug, Clone, Default, PartialEq)]
struct Filter {
    level: String,
    kind: String,
    keyword: String,
    from: String,
    to: String,
}

#[component]
pub fn Events() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let rows = RwSignal::new(Vec::<serde_json::Value>::new());
    let count = RwSignal::new(0u64);
    let page = RwSignal::new(1u64);
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let applied = RwSignal::new(Filter::default());
    let form = RwSignal::new(Filter::default());
    let generation = StoredValue::new(0u32);

    let load = move || {
        let f = applied.get_untracked();
        let mut params = vec![
            ("listall", "true".to_owned()),
            ("page", page.get_untracked().to_string()),
            ("pagesize", PAGE_SIZE.to_string()),
        ];
        for (name, v) in [("level", f.level), ("type", f.kind), ("keyword", f.keyword)] {
            if !v.trim().is_empty() {
                params.push((name, v.trim().to_owned()));
            }
        }
        // Whole days: the end date takes in the whole of its day.
        if !f.from.is_empty() {
            params.push(("startdate", format!("{} 00:00:00", f.from)));
        }
        if !f.to.is_empty() {
            params.push(("enddate", format!("{} 23:59:59", f.to)));
        }
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        loading.set(true);
        spawn_local(async move {
            let r = api::list("listEvents", "event", &params).await;
            if generation.get_value() != mine {
                return;
            }
            match r {
                Ok((items, n)) => {
                    rows.set(items);
                    count.set(n);
                    error.set(None);
                }
                Err(e) => error.set(Some(fail(session, e))),
            }
            loading.set(false);
        });
    };
    Effect::new(move |_| {
        page.track();
        applied.track();
        load();
    });

    let input =
        move |id: &'static str, kind: &'static str, get: fn(&Filter) -> String, set: fn(&mut Filter, String)| {
            view! {
                <input
                    id=id
                    type=kind
                    prop:value=move || form.with(get)
                    on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))
                />
            }
        };
    let pages = move || count.get().div_ceil(PAGE_SIZE).max(1);
    view! {
        <section class="events">
            <div class="toolbar">
                <h1>{tr("ev.title")}</h1>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
                <span class="muted">{move || fill(lang.get(), "ev.count", &[&count.get()])}</span>
            </div>
            <form
                class="filters"
                id="event-filters"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    page.set(1);
                    applied.set(form.get_untracked());
                }
            >
                <label>
                    {tr("ev.level")}
                    <select
                        id="ev-level"
                        prop:value=move || form.with(|f| f.level.clone())
                        on:change=move |ev| form.update(|f| f.level = event_target_value(&ev))
                    >
                        <option value="">{tr("ev.all_levels")}</option>
                        {LEVELS.iter().map(|l| view! { <option value=*l>{*l}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    {tr("ev.type")}
                    {input("ev-type", "text", |f| f.kind.clone(), |f, v| f.kind = v)}
                </label>
                <label>
                    {tr("ev.keyword")}
                    {input("ev-keyword", "search", |f| f.keyword.clone(), |f, v| f.keyword = v)}
                </label>
                <label>
                    {tr("ev.from")}
                    {input("ev-from", "date", |f| f.from.clone(), |f, v| f.from = v)}
                </label>
                <label>
                    {tr("ev.to")}
                    {input("ev-to", "date", |f| f.to.clone(), |f, v| f.to = v)}
                </label>
                <button type="submit" class="primary">
                    {tr("ev.filter")}
                </button>
                <button
                    type="button"
                    on:click=move |_| {
                        form.set(Filter::default());
                        page.set(1);
                        applied.set(Filter::default());
                    }
                >
                    {tr("ev.clear")}
                </button>
            </form>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <table class="event-table" class:loading=loading>
                <thead>
                    <tr>
                        <th>{tr("ev.time")}</th>
                        <th>{tr("ev.level")}</th>
                        <th>{tr("ev.type")}</th>
                        <th>{tr("ev.state")}</th>
                        <th>{tr("ev.description")}</th>
                        <th>{tr("ev.user")}</th>
                        <th>{tr("ev.account")}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        rows.get()
                            .iter()
                            .map(|e| {
                                let level = s(e, "level").to_owned();
                                view! {
                                    <tr data-id=s(e, "id").to_owned()>
                                        <td class="time">{s(e, "created").to_owned()}</td>
                                        <td>
                                            <span class=format!("level level-{}", level.to_ascii_lowercase())>{level.clone()}</span>
                                        </td>
                                        <td class="type">{s(e, "type").to_owned()}</td>
                                        <td>{s(e, "state").to_owned()}</td>
                                        <td>{s(e, "description").to_owned()}</td>
                                        <td>{s(e, "username").to_owned()}</td>
                                        <td>{s(e, "account").to_owned()}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || !loading.get() && rows.with(Vec::is_empty) && error.with(Option::is_none)>
                <p class="muted">{tr("ev.none")}</p>
            </Show>
            <Pager page=page pages=Signal::derive(pages) />
        </section>
    }
}
