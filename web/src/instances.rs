//! The instance list: one server-side page of 50 at a time, keyword search, a state
//! filter, and start/stop/reboot/destroy/recover, volume and ISO attach/detach, password and
//! SSH key resets run as async jobs with their progress; Console opens the VM's display in a
//! new tab. A new password from a job is shown once.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, fill, text, tr, tr_dyn};
use crate::infra::{JobLine, JobMap, JobState, Pager, SearchBox, track_job};
use crate::{SessionCtx, fail};

/// The strings of the recover, volume, ISO and console actions.
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("vm.recover", "Recover", "恢复"),
    ("vm.console", "Console", "控制台"),
    ("vm.storage", "Volumes & ISO", "卷和 ISO"),
    ("vm.attach_volume", "Attach volume", "附加卷"),
    ("vm.detach_volume", "Detach volume", "卸载卷"),
    ("vm.attach_iso", "Attach ISO", "附加 ISO"),
    ("vm.detach_iso", "Detach ISO", "卸载 ISO"),
    ("vm.storage_of", "Volumes and ISO of {0}", "{0} 的卷和 ISO"),
    ("vm.attached_volumes", "Attached volumes", "已附加的卷"),
    ("vm.free_volumes", "Volumes to attach", "可附加的卷"),
    ("vm.no_free_volumes", "No free data volume in this zone.", "此区域没有可附加的数据卷。"),
    ("vm.iso", "ISO", "ISO"),
    ("vm.no_iso", "No ISO attached.", "未附加 ISO。"),
    ("vm.no_isos", "No ISO in this zone.", "此区域没有 ISO。"),
    ("vm.close", "Close", "关闭"),
    ("vm.reset_password", "Reset password", "重置密码"),
    ("vm.reset_key", "Reset SSH key", "重置 SSH 密钥"),
    ("vm.reset_key_of", "Reset the SSH key of {0}", "重置 {0} 的 SSH 密钥"),
    ("vm.keypairs_now", "Key pairs now: {0}", "当前密钥对：{0}"),
    ("vm.new_keypair", "New key pair", "新密钥对"),
    (
        "vm.no_keypairs",
        "You have no key pair yet; create one on the Key pairs page.",
        "您还没有密钥对，请先在“SSH 密钥对”页面创建。",
    ),
    ("vm.new_password_of", "New password of {0}", "{0} 的新密码"),
    (
        "vm.password_once",
        "It is shown only this once; the instance takes it when it starts.",
        "密码仅显示这一次；实例启动时获取该密码。",
    ),
];

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
    zone_id: String,
    iso_id: String,
    iso: String,
    /// The names of its key pairs, comma-separated.
    keypairs: String,
    password_enabled: bool,
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
            zone_id: s(v, "zoneid").to_owned(),
            iso_id: s(v, "isoid").to_owned(),
            iso: s(v, "isoname").to_owned(),
            keypairs: s(v, "keypairs").to_owned(),
            password_enabled: v.get("passwordenabled").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn action_key(action: &str) -> &'static str {
    match action {
        "start" => "vm.start",
        "stop" => "vm.stop",
        "reboot" => "vm.reboot",
        "recover" => "vm.recover",
        "console" => "vm.console",
        "attach_volume" => "vm.attach_volume",
        "detach_volume" => "vm.detach_volume",
        "attach_iso" => "vm.attach_iso",
        "detach_iso" => "vm.detach_iso",
        "reset_password" => "vm.reset_password",
        "reset_key" => "vm.reset_key",
        _ => "vm.destroy",
    }
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
    let keyword = RwSignal::new(String::new());
    let state = RwSignal::new(String::new());
    let jobs: JobMap = RwSignal::new(HashMap::new());
    // The VM whose volumes and ISO are shown below the list; bumped after each job to re-read them.
    let panel = RwSignal::new(None::<Vm>);
    let panel_version = RwSignal::new(0u32);
    // The VM whose SSH key is being reset, in a panel below the list.
    let key_panel = RwSignal::new(None::<Vm>);
    // A new password (VM name, password), from the job that made it, until closed.
    let new_password = RwSignal::new(None::<(String, String)>);
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

    // Runs one job on a VM (its row shows the progress); `params` name the VM themselves.
    let run = move |id: String, command: &'static str, action: &'static str, params: Vec<(&'static str, String)>| {
        track_job(session, jobs, id, action_key(action), command, params, move |result| {
            // The job's result is the VM as it is now: update its row in place.
            if let Some(v) = result.get("virtualmachine") {
                let fresh = Vm::from(v);
                let pw = s(v, "password");
                if !pw.is_empty() {
                    new_password.set(Some((fresh.name.clone(), pw.to_owned())));
                }
                vms.update(|list| {
                    if let Some(row) = list.iter_mut().find(|r| r.id == fresh.id) {
                        *row = fresh;
                    }
                });
            }
            panel_version.update(|v| *v += 1);
        });
    };

    let act = move |id: String, command: &'static str, action: &'static str| {
        if command == "destroyVirtualMachine" {
            let ok = window().confirm_with_message(text(lang.get_untracked(), "vm.confirm_destroy")).unwrap_or(false);
            if !ok {
                return;
            }
        }
        run(id.clone(), command, action, vec![("id", id)]);
    };
    let open_console = move |id: String| {
        // Opened before the call, while the click still counts as the user's: popup blockers
        // refuse a window opened later from the reply.
        let tab = window().open_with_url_and_target("about:blank", "_blank").ok().flatten();
        spawn_local(async move {
            match api::call("createConsoleEndpoint", &[("virtualmachineid", id.clone())]).await {
                Ok(v) => {
                    let url = s(&v, "url").to_owned();
                    match &tab {
                        Some(tab) => {
                            let _ = tab.location().set_href(&url);
                        }
                        None => {
                            let _ = window().open_with_url_and_target(&url, "_blank");
                        }
                    }
                }
                Err(e) => {
                    if let Some(tab) = tab {
                        let _ = tab.close();
                    }
                    let error = fail(session, e);
                    jobs.update(|j| {
                        j.insert(id, JobState::Failed { label: "vm.console", error });
                    });
                }
            }
        });
    };

    let pages = move || count.get().div_ceil(PAGE_SIZE).max(1);
    view! {
        <section class="instances">
            <div class="toolbar">
                <h1>{tr("vm.title")}</h1>
                <SearchBox id="vm-search" keyword=keyword page=page />
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
                                    move || jobs.with(|j| matches!(j.get(&id), Some(JobState::Running { .. })))
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
                                let recover = (st == "Destroyed").then(|| button("recoverVirtualMachine", "recover"));
                                let console = (st == "Running").then(|| {
                                    let id = id.clone();
                                    view! {
                                        <button class="act act-console" on:click=move |_| open_console(id.clone())>
                                            {tr("vm.console")}
                                        </button>
                                    }
                                });
                                let storage = (!matches!(st, "Destroyed" | "Expunging")).then(|| {
                                    let vm = vm.clone();
                                    view! {
                                        <button class="act act-storage" on:click=move |_| panel.set(Some(vm.clone()))>
                                            {tr("vm.storage")}
                                        </button>
                                    }
                                });
                                let reset_password = (st == "Stopped" && vm.password_enabled)
                                    .then(|| button("resetPasswordForVirtualMachine", "reset_password"));
                                let reset_key = (st == "Stopped").then(|| {
                                    let vm = vm.clone();
                                    view! {
                                        <button class="act act-reset_key" on:click=move |_| key_panel.set(Some(vm.clone()))>
                                            {tr("vm.reset_key")}
                                        </button>
                                    }
                                });
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
                                                {start} {stop} {reboot} {destroy} {recover} {console} {storage} {reset_password} {reset_key}
                                                <JobLine jobs=jobs id=id.clone() />
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
            {move || {
                new_password
                    .get()
                    .map(|(vm, pw)| {
                        view! {
                            <div class="card secret" id="vm-password">
                                <div class="toolbar">
                                    <h2>{move || fill(lang.get(), "vm.new_password_of", &[&vm])}</h2>
                                    <button id="vm-password-close" on:click=move |_| new_password.set(None)>
                                        {tr("vm.close")}
                                    </button>
                                </div>
                                <code class="password">{pw}</code>
                                <p class="warning">{tr("vm.password_once")}</p>
                            </div>
                        }
                    })
            }}
            {move || {
                key_panel
                    .get()
                    .map(|vm| {
                        let fresh = vms.with(|l| l.iter().find(|r| r.id == vm.id).cloned()).unwrap_or(vm);
                        view! { <KeyPanel vm=fresh jobs=jobs run=run close=move || key_panel.set(None) /> }
                    })
            }}
            {move || {
                panel
                    .get()
                    .map(|vm| {
                        let fresh = vms.with(|l| l.iter().find(|r| r.id == vm.id).cloned()).unwrap_or(vm);
                        view! { <StoragePanel vm=fresh version=panel_version run=run close=move || panel.set(None) /> }
                    })
            }}
            <Pager page=page pages=Signal::derive(pages) />
        </section>
    }
}

/// The data volumes attached to a VM and those of its zone still free, and its ISO.
#[component]
fn StoragePanel<R, C>(vm: Vm, version: RwSignal<u32>, run: R, close: C) -> impl IntoView
where
    R: Fn(String, &'static str, &'static str, Vec<(&'static str, String)>) + Copy + Send + Sync + 'static,
    C: Fn() + Copy + Send + Sync + 'static,
{
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let attached = RwSignal::new(Vec::<(String, String)>::new());
    let free = RwSignal::new(Vec::<(String, String)>::new());
    let isos = RwSignal::new(Vec::<(String, String)>::new());
    let error = RwSignal::new(None::<String>);
    let pick_volume = RwSignal::new(String::new());
    let pick_iso = RwSignal::new(String::new());
    let vm = StoredValue::new(vm);
    Effect::new(move |_| {
        version.track();
        let v = vm.get_value();
        spawn_local(async move {
            let zone = [("zoneid", v.zone_id.clone()), ("listall", "true".to_owned())];
            let volumes = api::list("listVolumes", "volume", &zone).await;
            let images = api::list("listIsos", "iso", &[("zoneid", v.zone_id.clone())]).await;
            match (volumes, images) {
                (Ok((vols, _)), Ok((iso_list, _))) => {
                    let named = |x: &Value| (s(x, "id").to_owned(), s(x, "name").to_owned());
                    let data: Vec<&Value> = vols.iter().filter(|x| s(x, "type") == "DATADISK").collect();
                    attached.set(data.iter().filter(|x| s(x, "virtualmachineid") == v.id).map(|x| named(x)).collect());
                    let f: Vec<_> =
                        data.iter().filter(|x| s(x, "virtualmachineid").is_empty()).map(|x| named(x)).collect();
                    pick_volume.set(f.first().map(|x| x.0.clone()).unwrap_or_default());
                    free.set(f);
                    let i: Vec<_> = iso_list.iter().map(named).collect();
                    pick_iso.set(i.first().map(|x| x.0.clone()).unwrap_or_default());
                    isos.set(i);
                }
                (Err(e), _) | (_, Err(e)) => error.set(Some(fail(session, e))),
            }
        });
    });
    let id = move || vm.with_value(|v| v.id.clone());
    let options = |list: RwSignal<Vec<(String, String)>>| {
        move || list.get().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()
    };
    view! {
        <div class="card storage-panel" id="storage-panel">
            <div class="toolbar">
                <h2>{move || vm.with_value(|v| fill(lang.get(), "vm.storage_of", &[&v.name]))}</h2>
                <button on:click=move |_| close()>{tr("vm.close")}</button>
            </div>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <h3>{tr("vm.attached_volumes")}</h3>
            <ul class="attached">
                {move || {
                    attached
                        .get()
                        .into_iter()
                        .map(|(vol, name)| {
                            view! {
                                <li>
                                    {name} " "
                                    <button
                                        class="act act-detach-volume"
                                        on:click=move |_| run(id(), "detachVolume", "detach_volume", vec![("id", vol.clone())])
                                    >
                                        {tr("vm.detach_volume")}
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <h3>{tr("vm.free_volumes")}</h3>
            <Show when=move || !free.with(Vec::is_empty) fallback=|| view! { <p class="muted">{tr("vm.no_free_volumes")}</p> }>
                <div class="row">
                    <select id="volume-pick" prop:value=pick_volume on:change=move |ev| pick_volume.set(event_target_value(&ev))>
                        {options(free)}
                    </select>
                    <button
                        id="attach-volume"
                        on:click=move |_| {
                            run(
                                id(),
                                "attachVolume",
                                "attach_volume",
                                vec![("id", pick_volume.get_untracked()), ("virtualmachineid", id())],
                            )
                        }
                    >
                        {tr("vm.attach_volume")}
                    </button>
                </div>
            </Show>
            <h3>{tr("vm.iso")}</h3>
            {move || {
                let (iso_id, iso) = vm.with_value(|v| (v.iso_id.clone(), v.iso.clone()));
                if iso_id.is_empty() {
                    view! {
                        <Show when=move || !isos.with(Vec::is_empty) fallback=|| view! { <p class="muted">{tr("vm.no_isos")}</p> }>
                            <p class="muted">{tr("vm.no_iso")}</p>
                            <div class="row">
                                <select id="iso-pick" prop:value=pick_iso on:change=move |ev| pick_iso.set(event_target_value(&ev))>
                                    {options(isos)}
                                </select>
                                <button
                                    id="attach-iso"
                                    on:click=move |_| {
                                        run(
                                            id(),
                                            "attachIso",
                                            "attach_iso",
                                            vec![("id", pick_iso.get_untracked()), ("virtualmachineid", id())],
                                        )
                                    }
                                >
                                    {tr("vm.attach_iso")}
                                </button>
                            </div>
                        </Show>
                    }
                        .into_any()
                } else {
                    let name = if iso.is_empty() { iso_id } else { iso };
                    view! {
                        <div class="row">
                            <span class="iso-name">{name}</span>
                            <button
                                id="detach-iso"
                                on:click=move |_| run(id(), "detachIso", "detach_iso", vec![("virtualmachineid", id())])
                            >
                                {tr("vm.detach_iso")}
                            </button>
                        </div>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// Resetting a stopped VM's SSH key to one of the caller's key pairs.
#[component]
fn KeyPanel<R, C>(vm: Vm, jobs: JobMap, run: R, close: C) -> impl IntoView
where
    R: Fn(String, &'static str, &'static str, Vec<(&'static str, String)>) + Copy + Send + Sync + 'static,
    C: Fn() + Copy + Send + Sync + 'static,
{
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let names = RwSignal::new(None::<Vec<String>>);
    let error = RwSignal::new(None::<String>);
    let pick = RwSignal::new(String::new());
    let has: Vec<String> = vm.keypairs.split(',').map(|k| k.trim().to_owned()).collect();
    spawn_local(async move {
        match api::list("listSSHKeyPairs", "sshkeypair", &[]).await {
            Ok((list, _)) => {
                let n: Vec<String> = list.iter().map(|k| s(k, "name").to_owned()).collect();
                // A key pair the VM does not have yet is the likely choice.
                let first = n.iter().find(|k| !has.contains(k)).or(n.first());
                pick.set(first.cloned().unwrap_or_default());
                names.set(Some(n));
            }
            Err(e) => error.set(Some(fail(session, e))),
        }
    });
    let (id, name, now) = (vm.id.clone(), vm.name.clone(), vm.keypairs.clone());
    let line_id = id.clone();
    let submit = move |_| {
        let k = pick.get_untracked();
        if !k.is_empty() {
            run(id.clone(), "resetSSHKeyForVirtualMachine", "reset_key", vec![("id", id.clone()), ("keypairs", k)]);
        }
    };
    view! {
        <div class="card storage-panel" id="reset-key-panel" data-id=vm.id.clone()>
            <div class="toolbar">
                <h2>{move || fill(lang.get(), "vm.reset_key_of", &[&name])}</h2>
                <button on:click=move |_| close()>{tr("vm.close")}</button>
            </div>
            <p class="muted" id="reset-key-now">
                {move || {
                    let shown = if now.is_empty() { text(lang.get(), "common.none").to_owned() } else { now.clone() };
                    fill(lang.get(), "vm.keypairs_now", &[&shown])
                }}
            </p>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            {move || match names.get() {
                None => None,
                Some(list) if list.is_empty() => Some(view! { <p class="muted">{tr("vm.no_keypairs")}</p> }.into_any()),
                Some(list) => {
                    Some(
                        view! {
                            <div class="row">
                                <label class="field">
                                    <span>{tr("vm.new_keypair")}</span>
                                    <select id="reset-key-pick" prop:value=pick on:change=move |ev| pick.set(event_target_value(&ev))>
                                        {list.into_iter().map(|k| {
                                                let v = k.clone();
                                                view! { <option value=v>{k}</option> }
                                            }).collect_view()}
                                    </select>
                                </label>
                                <button id="reset-key-submit" class="primary" on:click=submit.clone()>
                                    {tr("vm.reset_key")}
                                </button>
                            </div>
                        }
                            .into_any(),
                    )
                }
            }}
            <JobLine jobs=jobs id=line_id />
        </div>
    }
}
