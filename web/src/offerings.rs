//! Service (compute) and disk offerings: list and create.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api;
use crate::api::s;
use crate::i18n::tr;
use crate::infra::{Col, Field, FormError, FormFooter, Listing, set_error};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.offerings", "Offerings", "方案"),
    ("off.title", "Offerings", "方案"),
    ("off.service", "Compute offerings", "计算方案"),
    ("off.disk", "Disk offerings", "磁盘方案"),
    ("off.new_service", "New compute offering", "新建计算方案"),
    ("off.new_disk", "New disk offering", "新建磁盘方案"),
    ("off.name", "Name", "名称"),
    ("off.cpunumber", "vCPUs", "vCPU 数"),
    ("off.cpuspeed", "CPU speed (MHz)", "CPU 速度（MHz）"),
    ("off.memory", "Memory (MiB)", "内存（MiB）"),
    ("off.disksize", "Size (GiB)", "大小（GiB）"),
    ("off.cpu", "CPU", "CPU"),
    ("off.size", "Size", "大小"),
];

fn num(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

const SERVICE_COLS: &[Col] = &[
    ("off.name", |v, _| s(v, "name").to_owned()),
    ("off.cpu", |v, _| format!("{} × {} MHz", num(v, "cpunumber"), num(v, "cpuspeed"))),
    ("off.memory", |v, _| num(v, "memory").to_string()),
];
const DISK_COLS: &[Col] =
    &[("off.name", |v, _| s(v, "name").to_owned()), ("off.size", |v, _| format!("{} GiB", num(v, "disksize")))];

/// One create form: its id prefix, command, fields (param, label key, placeholder), and the
/// list it adds to.
#[component]
fn CreateForm(
    form: &'static str,
    title: &'static str,
    command: &'static str,
    fields: &'static [(&'static str, &'static str, &'static str)],
    reload: RwSignal<u32>,
) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let values: Vec<RwSignal<String>> = fields.iter().map(|(_, _, d)| RwSignal::new((*d).to_owned())).collect();
    let params: Vec<&'static str> = fields.iter().map(|(p, _, _)| *p).collect();
    let error: FormError = RwSignal::new(None);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let vs = values.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        done.set(None);
        let mut p: Vec<(&str, String)> = Vec::new();
        for ((param, _, _), v) in fields.iter().zip(&vs) {
            let v = v.get_untracked().trim().to_owned();
            if !v.is_empty() || *param == "name" {
                p.push((param, v));
            }
        }
        let n = p.first().map(|(_, v)| v.clone()).unwrap_or_default();
        p.push(("displaytext", n.clone()));
        let params = params.clone();
        spawn_local(async move {
            match api::call(command, &p).await {
                Ok(_) => {
                    done.set(Some(n));
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(error, fail(session, e), &params),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card inline-form" id=form on:submit=submit>
            <h2>{tr(title)}</h2>
            {fields
                .iter()
                .zip(values)
                .map(|((param, label, _), value)| {
                    view! { <Field form=form param=param label=label value=value error=error /> }
                })
                .collect_view()}
            <FormFooter error=error done=done busy=busy submit="form.create" />
        </form>
    }
}

#[component]
pub fn Offerings() -> impl IntoView {
    let services = RwSignal::new(0u32);
    let disks = RwSignal::new(0u32);
    view! {
        <section class="offerings">
            <h1>{tr("off.title")}</h1>
            <h2>{tr("off.service")}</h2>
            <CreateForm
                form="so"
                title="off.new_service"
                command="createServiceOffering"
                fields=&[
                    ("name", "off.name", ""),
                    ("cpunumber", "off.cpunumber", "1"),
                    ("cpuspeed", "off.cpuspeed", "1000"),
                    ("memory", "off.memory", "512"),
                ]
                reload=services
            />
            <Listing id="service-offerings" command="listServiceOfferings" object="serviceoffering" columns=SERVICE_COLS reload=services />
            <h2>{tr("off.disk")}</h2>
            <CreateForm
                form="do"
                title="off.new_disk"
                command="createDiskOffering"
                fields=&[("name", "off.name", ""), ("disksize", "off.disksize", "10")]
                reload=disks
            />
            <Listing id="disk-offerings" command="listDiskOfferings" object="diskoffering" columns=DISK_COLS reload=disks />
        </section>
    }
}
