//! Volumes and their snapshots: a server-paged, searchable list; create a data volume;
//! attach, detach, resize and delete; per volume, take, list, revert and delete snapshots.
//! Async commands show their job's progress on the volume's row.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, fill, tr};
use crate::infra::{
    Col, Field, FormError, FormMessage, JobLine, JobMap, Listing, SearchBox, follow_job, gib, n, set_error, track_job,
};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.volumes", "Volumes", "卷"),
    ("vol.title", "Volumes", "卷"),
    ("vol.create", "Create a data volume", "创建数据卷"),
    ("vol.name", "Name", "名称"),
    ("vol.zone", "Zone", "区域"),
    ("vol.offering", "Disk offering", "磁盘方案"),
    ("vol.custom", "Custom size", "自定义大小"),
    ("vol.size", "Size (GB)", "大小 (GB)"),
    ("vol.type", "Type", "类型"),
    ("vol.state", "State", "状态"),
    ("vol.instance", "Instance", "实例"),
    ("vol.pool", "Storage pool", "存储池"),
    ("vol.submit", "Create volume", "创建卷"),
    ("vol.creating", "Creating… {0}s", "正在创建… {0}s"),
    ("vol.manage", "Manage", "管理"),
    ("vol.panel", "Volume {0}", "卷 {0}"),
    ("vol.close", "Close", "关闭"),
    ("vol.attached_to", "Attached to {0}", "已附加到 {0}"),
    ("vol.not_attached", "Not attached.", "未附加。"),
    ("vol.no_instances", "No instance in this zone to attach to.", "此区域没有可附加的实例。"),
    ("vol.attach", "Attach", "附加"),
    ("vol.detach", "Detach", "卸载"),
    ("vol.resize", "Resize", "调整大小"),
    ("vol.new_size", "New size (GB)", "新大小 (GB)"),
    ("vol.snapshots", "Snapshots", "快照"),
    ("vol.snapshot_name", "Snapshot name", "快照名称"),
    ("vol.take_snapshot", "Take snapshot", "创建快照"),
    ("vol.revert", "Revert", "还原"),
    ("vol.created", "Created", "创建时间"),
    ("vol.delete_snapshot", "Delete snapshot", "删除快照"),
];

const VOLUME_COLS: &[Col] = &[
    ("vol.name", |v, _| s(v, "name").to_owned()),
    ("vol.type", |v, _| s(v, "type").to_owned()),
    ("col.size", |v, _| gib(n(v, "size"))),
    ("vol.state", |v, _| s(v, "state").to_owned()),
    ("vol.instance", |v, _| instance_name(v).to_owned()),
    ("vol.pool", |v, _| s(v, "storage").to_owned()),
];

const SNAPSHOT_COLS: &[Col] = &[
    ("vol.name", |v, _| s(v, "name").to_owned()),
    ("vol.state", |v, _| s(v, "state").to_owned()),
    ("col.size", |v, _| gib(n(v, "virtualsize"))),
    ("vol.created", |v, _| s(v, "created").to_owned()),
];

const CREATE_FIELDS: &[&str] = &["name", "zoneid", "diskofferingid", "size"];

fn instance_name(v: &Value) -> &str {
    let display = s(v, "vmdisplayname");
    if display.is_empty() { s(v, "vmname") } else { display }
}

/// (id, name) pairs of a list, for a select.
fn named(items: &[Value]) -> Vec<(String, String)> {
    items.iter().map(|x| (s(x, "id").to_owned(), s(x, "name").to_owned())).collect()
}

fn options(list: RwSignal<Vec<(String, String)>>) -> impl IntoView {
    move || list.get().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()
}

#[component]
pub fn Volumes() -> impl IntoView {
    let keyword = RwSignal::new(String::new());
    let reload = RwSignal::new(0u32);
    let jobs: JobMap = RwSignal::new(Default::default());
    // The volume managed in the panel under the list.
    let selected = RwSignal::new(None::<Value>);
    let manage = Callback::new(move |v: Value| {
        let id = s(&v, "id").to_owned();
        view! {
            <button class="act act-manage" on:click=move |_| selected.set(Some(v.clone()))>
                {tr("vol.manage")}
            </button>
            <JobLine jobs=jobs id=id />
        }
        .into_any()
    });
    view! {
        <section class="volumes">
            <div class="toolbar">
                <h1>{tr("vol.title")}</h1>
                <SearchBox id="vol-search" keyword=keyword />
            </div>
            <CreateVolume reload=reload />
            <Listing
                id="volumes"
                command="listVolumes"
                object="volume"
                columns=VOLUME_COLS
                params=&[("listall", "true")]
                delete="deleteVolume"
                reload=reload
                keyword=keyword
                actions=manage
            />
            {move || {
                selected
                    .get()
                    .map(|v| {
                        view! { <VolumePanel volume=v selected=selected jobs=jobs reload=reload /> }
                    })
            }}
        </section>
    }
}

/// The create form: name, zone, and a disk offering or a size.
#[component]
fn CreateVolume(reload: RwSignal<u32>) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let name = RwSignal::new(String::new());
    let zone = RwSignal::new(String::new());
    let offering = RwSignal::new(String::new());
    let size = RwSignal::new(String::new());
    let error: FormError = RwSignal::new(None);
    let done = RwSignal::new(None::<String>);
    let progress = RwSignal::new(None::<u32>);
    let zones = RwSignal::new(Vec::new());
    let offerings = RwSignal::new(Vec::new());
    spawn_local(async move {
        if let Ok((list, _)) = api::list("listZones", "zone", &[]).await {
            let z = named(&list);
            zone.set(z.first().map(|x| x.0.clone()).unwrap_or_default());
            zones.set(z);
        }
        if let Ok((list, _)) = api::list("listDiskOfferings", "diskoffering", &[]).await {
            offerings.set(named(&list));
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        done.set(None);
        progress.set(Some(0));
        // The name is sent as typed, empty too: the API says what is wrong with it.
        let n = name.get_untracked().trim().to_owned();
        let mut p = vec![("name", n.clone()), ("zoneid", zone.get_untracked())];
        let o = offering.get_untracked();
        if !o.is_empty() {
            p.push(("diskofferingid", o));
        }
        let sz = size.get_untracked().trim().to_owned();
        if !sz.is_empty() {
            p.push(("size", sz));
        }
        spawn_local(async move {
            match api::run_job("createVolume", &p, move |secs| progress.set(Some(secs))).await {
                Ok(_) => {
                    done.set(Some(n));
                    name.set(String::new());
                    size.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(error, fail(session, e), CREATE_FIELDS),
            }
            progress.set(None);
        });
    };
    view! {
        <form class="card inline-form" id="create-volume" on:submit=submit>
            <h2>{tr("vol.create")}</h2>
            <Field form="vol" param="name" label="vol.name" value=name error=error />
            <label class="field">
                <span>{tr("vol.zone")}</span>
                <select id="vol-zoneid" prop:value=zone on:change=move |ev| zone.set(event_target_value(&ev))>
                    {options(zones)}
                </select>
            </label>
            <label class="field">
                <span>{tr("vol.offering")}</span>
                <select
                    id="vol-diskofferingid"
                    prop:value=offering
                    on:change=move |ev| offering.set(event_target_value(&ev))
                >
                    <option value="">{tr("vol.custom")}</option>
                    {options(offerings)}
                </select>
            </label>
            <Field form="vol" param="size" label="vol.size" value=size error=error kind="number" />
            <FormMessage error=error />
            <p class="ok" role="status">
                {move || {
                    let l = lang.get();
                    match (progress.get(), done.get()) {
                        (Some(secs), _) => Some(fill(l, "vol.creating", &[&secs])),
                        (None, Some(n)) => Some(fill(l, "form.created", &[&n])),
                        _ => None,
                    }
                }}
            </p>
            <button type="submit" class="primary" disabled=move || progress.get().is_some()>
                {tr("vol.submit")}
            </button>
        </form>
    }
}

/// One volume: attach or detach, resize, and its snapshots.
#[component]
fn VolumePanel(volume: Value, selected: RwSignal<Option<Value>>, jobs: JobMap, reload: RwSignal<u32>) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let id = s(&volume, "id").to_owned();
    let name = s(&volume, "name").to_owned();
    let zone_id = s(&volume, "zoneid").to_owned();
    let attached_to = instance_name(&volume).to_owned();
    let is_attached = !s(&volume, "virtualmachineid").is_empty();
    let is_data = s(&volume, "type") == "DATADISK";
    let vms = RwSignal::new(Vec::new());
    let pick_vm = RwSignal::new(String::new());
    let new_size = RwSignal::new(String::new());
    let resize_error: FormError = RwSignal::new(None);
    let snap_name = RwSignal::new(String::new());
    let snap_error: FormError = RwSignal::new(None);
    let snap_reload = RwSignal::new(0u32);
    if is_data && !is_attached {
        spawn_local(async move {
            let p = [("zoneid", zone_id), ("listall", "true".to_owned())];
            if let Ok((list, _)) = api::list("listVirtualMachines", "virtualmachine", &p).await {
                let usable: Vec<Value> =
                    list.into_iter().filter(|v| matches!(s(v, "state"), "Running" | "Stopped")).collect();
                let v = named(&usable);
                pick_vm.set(v.first().map(|x| x.0.clone()).unwrap_or_default());
                vms.set(v);
            }
        });
    }
    let id = StoredValue::new(id);
    // A finished job's volume replaces the one shown, and the list is read again.
    let refreshed = move |result: Value| {
        if let Some(v) = result.get("volume") {
            selected.set(Some(v.clone()));
        }
        reload.update(|r| *r += 1);
    };
    let run = move |label: &'static str, command: &'static str, params: Vec<(&'static str, String)>| {
        track_job(session, jobs, id.get_value(), label, command, params, refreshed);
    };
    let resize = move |_| {
        resize_error.set(None);
        let size = new_size.get_untracked().trim().to_owned();
        let (vol, jobs) = (id.get_value(), jobs);
        jobs.update(|j| {
            j.remove(&vol);
        });
        spawn_local(async move {
            // A bad size is refused before any job starts: show it beside the field.
            match api::call("resizeVolume", &[("id", vol.clone()), ("size", size)]).await {
                Ok(started) => follow_job(session, jobs, vol, "vol.resize", started, refreshed),
                Err(e) => set_error(resize_error, fail(session, e), &["size"]),
            }
        });
    };
    let snapshot = move |_| {
        snap_error.set(None);
        let snap = snap_name.get_untracked().trim().to_owned();
        let vol = id.get_value();
        spawn_local(async move {
            let mut p = vec![("volumeid", vol.clone())];
            if !snap.is_empty() {
                p.push(("name", snap));
            }
            match api::call("createSnapshot", &p).await {
                Ok(started) => {
                    snap_name.set(String::new());
                    let then = move |_| snap_reload.update(|r| *r += 1);
                    follow_job(session, jobs, vol, "vol.take_snapshot", started, then);
                }
                Err(e) => set_error(snap_error, fail(session, e), &["name"]),
            }
        });
    };
    let revert = Callback::new(move |snap: Value| {
        let snap_id = s(&snap, "id").to_owned();
        view! {
            <button
                class="act act-revert"
                on:click=move |_| run("vol.revert", "revertSnapshot", vec![("id", snap_id.clone())])
            >
                {tr("vol.revert")}
            </button>
        }
        .into_any()
    });
    let title = move || fill(lang.get(), "vol.panel", &[&name]);
    let attach_row = if is_attached {
        let who = attached_to.clone();
        view! {
            <div class="row">
                <span class="attached-to">{move || fill(lang.get(), "vol.attached_to", &[&who])}</span>
                <Show when=move || is_data>
                    <button id="vol-detach" on:click=move |_| run("vol.detach", "detachVolume", vec![("id", id.get_value())])>
                        {tr("vol.detach")}
                    </button>
                </Show>
            </div>
        }
        .into_any()
    } else if is_data {
        view! {
            <p class="muted">{tr("vol.not_attached")}</p>
            <Show when=move || !vms.with(Vec::is_empty) fallback=|| view! { <p class="muted">{tr("vol.no_instances")}</p> }>
                <div class="row">
                    <select id="vol-vm-pick" prop:value=pick_vm on:change=move |ev| pick_vm.set(event_target_value(&ev))>
                        {options(vms)}
                    </select>
                    <button
                        id="vol-attach"
                        on:click=move |_| {
                            let vm = pick_vm.get_untracked();
                            run("vol.attach", "attachVolume", vec![("id", id.get_value()), ("virtualmachineid", vm)])
                        }
                    >
                        {tr("vol.attach")}
                    </button>
                </div>
            </Show>
        }
        .into_any()
    } else {
        view! { <p class="muted">{tr("vol.not_attached")}</p> }.into_any()
    };
    view! {
        <div class="card volume-panel" id="volume-panel" data-id=id.get_value()>
            <div class="toolbar">
                <h2>{title}</h2>
                <JobLine jobs=jobs id=id.get_value() />
                <button on:click=move |_| selected.set(None)>{tr("vol.close")}</button>
            </div>
            {attach_row}
            <h3>{tr("vol.resize")}</h3>
            <div class="inline-form">
                <Field form="resize" param="size" label="vol.new_size" value=new_size error=resize_error kind="number" />
                <button id="vol-resize" on:click=resize>
                    {tr("vol.resize")}
                </button>
            </div>
            <FormMessage error=resize_error />
            <h3>{tr("vol.snapshots")}</h3>
            <div class="inline-form">
                <Field form="snap" param="name" label="vol.snapshot_name" value=snap_name error=snap_error />
                <button id="snap-take" on:click=snapshot>
                    {tr("vol.take_snapshot")}
                </button>
            </div>
            <FormMessage error=snap_error />
            <Listing
                id="snapshots"
                command="listSnapshots"
                object="snapshot"
                columns=SNAPSHOT_COLS
                params=&[("listall", "true")]
                delete="deleteSnapshot"
                reload=snap_reload
                actions=revert
                extra=("volumeid", id.get_value())
            />
        </div>
    }
}
