//! The instance list: one server-side page of 50 at a time, keyword search, a state
//! filter, and start/stop/reboot/destroy run as async jobs with their progress.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, fill, text, tr, tr_dyn};
use crate::{SessionCtx, fail};

const PAGE_SIZE: u64 = 50;
const STATES: &[&str] = &["Running", "Stopped", "Starting", "Stopping", "Destroyed", "Error"];

#[derive(Debug, Clone, PartialEq)]
struct Vm {
    id: String,
    name: String,
    state: String,
    zone: String,
    template: String,
    offering: String,
    ip: String,
    host: String,
}

impl Vm {
    fn from(v: &Value) -> Vm {
        let ip = v
            .get("nic")
            .and_then(Value::as_array)
            .and_then(|n| n.iter().find(|n| n.get("isdefault") == Some(&Value::Bool(true))).or(n.first()))
            .map(|n| s(n, "ipaddress").to_owned())
            .unwrap_or_default();
        let name = if s(v, "displayname").is_empty() { s(v, "name") } else { s(v, "displayname") };
        Vm {
            id: s(v, "id").to_owned(),
            name: name.to_owned(),
            state: s(v, "state").to_owned(),
            zone: s(v, "zonename").to_owned(),
            template: s(v, "templatename").to_owned(),
            offering: s(v, "serviceofferingname").to_owned(),
            ip,
            host: s(v, "hostname").to_owned(),
        }
    }
}

fn action_key(action: &str) -> &'static str {
    match action {
        "start" => "vm.start",
        "stop" => "vm.stop",
        "reboot" => "vm.reboot",
        _ => "vm.destroy",
    }
}

/// What the last action on a VM is doing.
#[derive(Debug, Clone, PartialEq)]
enum Job {
    Running { action: &'static str, secs: u32 },
    Done { action: &'static str },
    Failed { action: &'static str, error: String },
}

#[component]
pub fn Instances() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let vms = RwSignal::new(Vec::<Vm>::new());
    let count = RwSignal::new(0u64);
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let page = RwSignal::new(1u64);
    let search = RwSignal::new(String::new());
    let keyword = RwSignal::new(String::new());
    let state = RwSignal::new(String::new());
    let jobs = RwSignal::new(HashMap::<String, Job>::new());
    // Answers to older requests (a slow page, then a new search) must not overwrite newer ones.
    let generation = StoredValue::new(0u32);

    let load = move || {
        let mut params = vec![
            ("listall", "true".to_owned()),
            ("page", page.get_untracked().to_string()),
            ("pagesize", PAGE_SIZE.to_string()),
        ];
        let k = keyword.get_untracked();
        if !k.is_empty() {
            params.push(("keyword", k));
        }
        let st = state.get_untracked();
        if !st.is_empty() {
            params.push(("state", st));
        }
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        loading.set(true);
        spawn_local(async move {
            let r = api::list("listVirtualMachines", "virtualmachine", &params).await;
            if generation.get_value() != mine {
                return;
            }
            match r {
                Ok((items, n)) => {
                    vms.set(items.iter().map(Vm::from).collect());
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
        keyword.track();
        state.track();
        load();
    });

    let act = move |id: String, command: &'static str, action: &'static str| {
        if command == "destroyVirtualMachine" {
            let ok = window().confirm_with_message(text(lang.get_untracked(), "vm.confirm_destroy")).unwrap_or(false);
            if !ok {
                return;
            }
        }
        jobs.update(|j| {
            j.insert(id.clone(), Job::Running { action, secs: 0 });
        });
        spawn_local(async move {
            let progress_id = id.clone();
            let tick = move |secs| {
                jobs.update(|j| {
                    j.insert(progress_id.clone(), Job::Running { action, secs });
                })
            };
            let outcome = match api::run_job(command, &[("id", id.clone())], tick).await {
                Ok(result) => {
                    // The job's result is the VM as it is now: update its row in place.
                    if let Some(v) = result.get("virtualmachine") {
                        let fresh = Vm::from(v);
                        vms.update(|list| {
                            if let Some(row) = list.iter_mut().find(|r| r.id == fresh.id) {
                                *row = fresh;
                            }
                        });
                    }
                    Job::Done { action }
                }
                Err(e) => Job::Failed { action, error: fail(session, e) },
            };
            jobs.update(|j| {
                j.insert(id, outcome);
            });
        });
    };

    let pages = move || count.get().div_ceil(PAGE_SIZE).max(1);
    view! {
        <section class="instances">
            <div class="toolbar">
                <h1>{tr("vm.title")}</h1>
                <form
                    class="search"
                    on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        page.set(1);
                        keyword.set(search.get_untracked().trim().to_owned());
                    }
                >
                    <input
                        id="vm-search"
                        type="search"
                        placeholder=tr("vm.search_placeholder")
                        prop:value=search
                        on:input=move |ev| search.set(event_target_value(&ev))
                    />
                    <button type="submit">{tr("vm.search")}</button>
                </form>
                <select
                    id="vm-state"
                    prop:value=state
                    on:change=move |ev| {
                        page.set(1);
                        state.set(event_target_value(&ev));
                    }
                >
                    <option value="">{tr("vm.all_states")}</option>
                    {STATES
                        .iter()
                        .map(|st| {
                            view! { <option value=*st>{move || tr_dyn(lang.get(), "state.", st)}</option> }
                        })
                        .collect_view()}
                </select>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
                <span class="muted">{move || fill(lang.get(), "vm.count", &[&count.get()])}</span>
            </div>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <table class="vm-table" class:loading=loading>
                <thead>
                    <tr>
                        <th>{tr("vm.name")}</th>
                        <th>{tr("vm.state")}</th>
                        <th>{tr("vm.ip")}</th>
                        <th>{tr("vm.zone")}</th>
                        <th>{tr("vm.template")}</th>
                        <th>{tr("vm.offering")}</th>
                        <th>{tr("vm.host")}</th>
                        <th>{tr("vm.actions")}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        vms.get()
                            .into_iter()
                            .map(|vm| {
                                let id = vm.id.clone();
                                let busy = {
                                    let id = id.clone();
                                    move || jobs.with(|j| matches!(j.get(&id), Some(Job::Running { .. })))
                                };
                                let button = |command: &'static str, action: &'static str| {
                                    let id = id.clone();
                                    let busy = busy.clone();
                                    view! {
                                        <button
                                            class=format!("act act-{action}")
                                            disabled=busy
                                            on:click=move |_| act(id.clone(), command, action)
                                        >
                                            {tr(action_key(action))}
                                        </button>
                                    }
                                };
                                let st = vm.state.as_str();
                                let start = (st == "Stopped").then(|| button("startVirtualMachine", "start"));
                                let stop = (st == "Running").then(|| button("stopVirtualMachine", "stop"));
                                let reboot = (st == "Running").then(|| button("rebootVirtualMachine", "reboot"));
                                let destroy = (!matches!(st, "Destroyed" | "Expunging"))
                                    .then(|| button("destroyVirtualMachine", "destroy"));
                                let job_id = id.clone();
                                let job = move || {
                                    let l = lang.get();
                                    jobs.with(|j| match j.get(&job_id) {
                                        None => String::new(),
                                        Some(Job::Running { action, secs }) => {
                                            format!("{}: {} {secs}s", text(l, action_key(action)), text(l, "job.running"))
                                        }
                                        Some(Job::Done { action }) => {
                                            format!("{}: {}", text(l, action_key(action)), text(l, "job.done"))
                                        }
                                        Some(Job::Failed { action, error }) => {
                                            format!("{}: {} — {error}", text(l, action_key(action)), text(l, "job.failed"))
                                        }
                                    })
                                };
                                let state_name = vm.state.clone();
                                view! {
                                    <tr data-id=id.clone()>
                                        <td class="name">{vm.name}</td>
                                        <td>
                                            <span class=format!(
                                                "state state-{}",
                                                vm.state.to_ascii_lowercase(),
                                            )>{move || tr_dyn(lang.get(), "state.", &state_name)}</span>
                                        </td>
                                        <td>{vm.ip}</td>
                                        <td>{vm.zone}</td>
                                        <td>{vm.template}</td>
                                        <td>{vm.offering}</td>
                                        <td>{vm.host}</td>
                                        <td>
                                            <div class="actions">
                                                {start} {stop} {reboot} {destroy} <span class="job">{job}</span>
                                            </div>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || !loading.get() && vms.with(Vec::is_empty) && error.with(Option::is_none)>
                <p class="muted">{tr("vm.none")}</p>
            </Show>
            <div class="pager">
                <button id="prev" disabled=move || { page.get() <= 1 } on:click=move |_| page.update(|p| *p -= 1)>
                    {tr("vm.prev")}
                </button>
                <span>{move || fill(lang.get(), "vm.page_of", &[&page.get(), &pages()])}</span>
                <button id="next" disabled=move || { page.get() >= pages() } on:click=move |_| page.update(|p| *p += 1)>
                    {tr("vm.next")}
                </button>
            </div>
        </section>
    }
}
