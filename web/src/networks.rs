//! Guest networks: create (an Isolated network needs only a name; a Shared one its
//! gateway, netmask and range), list, delete; a network's public IPs and their rules
//! open in a panel under the list (see `public_ips`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::tr;
use crate::infra::{Col, Field, FormError, FormFooter, Listing, set_error};
use crate::public_ips::PublicIps;
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.networks", "Networks", "网络"),
    ("net.title", "Networks", "网络"),
    ("net.create", "Create a network", "创建网络"),
    ("net.name", "Name", "名称"),
    ("net.zone", "Zone", "区域"),
    ("net.offering", "Network offering", "网络方案"),
    ("net.gateway", "Gateway", "网关"),
    ("net.netmask", "Netmask", "子网掩码"),
    ("net.startip", "First IP", "起始 IP"),
    ("net.endip", "Last IP", "结束 IP"),
    ("net.vlan", "VLAN", "VLAN"),
    ("net.type", "Type", "类型"),
    ("net.state", "State", "状态"),
    ("net.cidr", "CIDR", "CIDR"),
];

const COLS: &[Col] = &[
    ("net.name", |v, _| s(v, "name").to_owned()),
    ("net.type", |v, _| s(v, "type").to_owned()),
    ("net.state", |v, _| s(v, "state").to_owned()),
    ("net.zone", |v, _| s(v, "zonename").to_owned()),
    ("net.cidr", |v, _| s(v, "cidr").to_owned()),
    ("net.vlan", |v, _| s(v, "vlan").to_owned()),
];

const FIELDS: &[&str] = &["name", "zoneid", "networkofferingid", "gateway", "netmask", "startip", "endip", "vlan"];

/// (id, name) pairs of a list command's objects, for a select.
pub fn options(
    command: &'static str,
    object: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> RwSignal<Vec<(String, String)>> {
    let out = RwSignal::new(Vec::new());
    spawn_local(async move {
        let p: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Ok((list, _)) = api::list(command, object, &p).await {
            out.set(list.iter().map(|z| (s(z, "id").to_owned(), s(z, "name").to_owned())).collect());
        }
    });
    out
}

#[component]
pub fn Networks() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let zones = options("listZones", "zone", &[]);
    let offerings = options("listNetworkOfferings", "networkoffering", &[("state", "Enabled")]);
    let zone = RwSignal::new(String::new());
    let offering = RwSignal::new(String::new());
    let vals: Vec<RwSignal<String>> = (0..6).map(|_| RwSignal::new(String::new())).collect();
    let [name, gateway, netmask, startip, endip, vlan] = [vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]];
    let error: FormError = RwSignal::new(None);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let reload = RwSignal::new(0u32);
    // The network whose public IPs are shown under the list.
    let selected = RwSignal::new(None::<Value>);
    let public_ips = Callback::new(move |v: Value| {
        view! {
            <button class="act act-ips" on:click=move |_| selected.set(Some(v.clone()))>
                {tr("pip.open")}
            </button>
        }
        .into_any()
    });
    // The first of each list is picked until the user picks another.
    Effect::new(move |_| {
        if zone.get().is_empty()
            && let Some((id, _)) = zones.get().first()
        {
            zone.set(id.clone());
        }
        if offering.get().is_empty()
            && let Some((id, _)) = offerings.get().first()
        {
            offering.set(id.clone());
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        done.set(None);
        let n = name.get_untracked().trim().to_owned();
        let mut p = vec![
            ("name", n.clone()),
            ("displaytext", n.clone()),
            ("zoneid", zone.get_untracked()),
            ("networkofferingid", offering.get_untracked()),
        ];
        for (k, v) in
            [("gateway", gateway), ("netmask", netmask), ("startip", startip), ("endip", endip), ("vlan", vlan)]
        {
            let v = v.get_untracked().trim().to_owned();
            if !v.is_empty() {
                p.push((k, v));
            }
        }
        spawn_local(async move {
            match api::call("createNetwork", &p).await {
                Ok(_) => {
                    done.set(Some(n));
                    name.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(error, fail(session, e), FIELDS),
            }
            busy.set(false);
        });
    };
    let select = move |id: &'static str,
                       label: &'static str,
                       value: RwSignal<String>,
                       list: RwSignal<Vec<(String, String)>>| {
        view! {
            <label class="field">
                <span>{tr(label)}</span>
                <select id=id prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                    {move || list.get().into_iter().map(|(id, n)| view! { <option value=id>{n}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <section class="networks">
            <h1>{tr("net.title")}</h1>
            <form class="card inline-form" id="create-network" on:submit=submit>
                <h2>{tr("net.create")}</h2>
                <Field form="net" param="name" label="net.name" value=name error=error />
                {select("net-zoneid", "net.zone", zone, zones)}
                {select("net-networkofferingid", "net.offering", offering, offerings)}
                <Field form="net" param="gateway" label="net.gateway" value=gateway error=error placeholder="10.2.0.1" />
                <Field form="net" param="netmask" label="net.netmask" value=netmask error=error placeholder="255.255.255.0" />
                <Field form="net" param="startip" label="net.startip" value=startip error=error />
                <Field form="net" param="endip" label="net.endip" value=endip error=error />
                <Field form="net" param="vlan" label="net.vlan" value=vlan error=error />
                <FormFooter error=error done=done busy=busy submit="form.create" />
            </form>
            <Listing
                id="networks"
                command="listNetworks"
                object="network"
                columns=COLS
                params=&[("listall", "true")]
                delete="deleteNetwork"
                reload=reload
                actions=public_ips
            />
            {move || selected.get().map(|v| view! { <PublicIps network=v selected=selected /> })}
        </section>
    }
}
