//! The zone wizard, as CloudStack's basic installation does it: zone → pod → guest network →
//! cluster → host → primary storage → secondary storage → launch. Everything is asked first,
//! then the steps run in order with their progress; a failing step shows the API's message
//! beside its field and can be retried after a fix, keeping what the earlier steps made.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, ApiError, ApiResult, s};
use crate::driver_form::{
    self, DetailError, DriverSettings, StorageDriverSelect, defaults, detail_of, details_params, schema_of,
};
use crate::i18n::{I18n, text, tr};
use crate::infra::{Field, FormError, field_of};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.zone_wizard", "Add zone", "添加区域"),
    ("zw.title", "Add a zone", "添加区域"),
    (
        "zw.intro",
        "Fill in every step, then launch: the steps run in order.",
        "填写每一步，然后启动：各步骤将依次执行。",
    ),
    ("zw.step.zone", "Zone", "区域"),
    ("zw.step.pod", "Pod", "提供点"),
    ("zw.step.network", "Guest network", "来宾网络"),
    ("zw.step.cluster", "Cluster", "群集"),
    ("zw.step.host", "Host", "主机"),
    ("zw.step.primary", "Primary storage", "主存储"),
    ("zw.step.secondary", "Secondary storage", "二级存储"),
    ("zw.step.launch", "Launch", "启动"),
    ("zw.name", "Name", "名称"),
    ("zw.dns1", "Public DNS", "公用 DNS"),
    ("zw.internaldns1", "Internal DNS", "内部 DNS"),
    ("zw.guestcidr", "Guest CIDR", "来宾 CIDR"),
    ("zw.physical", "Physical network name", "物理网络名称"),
    ("zw.vlan", "VLAN range", "VLAN 范围"),
    ("zw.label", "Guest traffic label (bridge)", "来宾流量标签（网桥）"),
    ("zw.kind", "Network type", "网络类型"),
    ("zw.isolated", "Isolated", "隔离"),
    ("zw.shared", "Shared", "共享"),
    ("zw.network", "Guest network name", "来宾网络名称"),
    ("zw.gateway", "Gateway (Shared)", "网关（共享）"),
    ("zw.netmask", "Netmask (Shared)", "子网掩码（共享）"),
    ("zw.startip", "First IP (Shared)", "起始 IP（共享）"),
    ("zw.endip", "Last IP (Shared)", "结束 IP（共享）"),
    ("zw.netvlan", "VLAN (Shared)", "VLAN（共享）"),
    ("zw.hypervisor", "Hypervisor", "虚拟机管理程序"),
    ("zw.url", "URL", "URL"),
    ("zw.host_url", "Host URL", "主机 URL"),
    ("zw.username", "Username", "用户名"),
    ("zw.password", "Password", "密码"),
    ("zw.provider", "Provider", "提供程序"),
    ("zw.go", "Launch zone", "启动区域"),
    ("zw.retry", "Retry this step", "重试此步骤"),
    ("zw.waiting", "Waiting", "等待中"),
    ("zw.running", "Running…", "执行中…"),
    ("zw.done", "Done", "完成"),
    ("zw.failed", "Failed", "失败"),
    ("zw.ready", "The zone is enabled and ready.", "区域已启用，可以使用。"),
    ("zw.another", "Add another zone", "再添加一个区域"),
];

/// (id, label key, the API parameters its fields fill).
const STEPS: &[(&str, &str, &[&str])] = &[
    ("zone", "zw.step.zone", &["name", "dns1", "internaldns1", "guestcidraddress"]),
    ("pod", "zw.step.pod", &["podname"]),
    (
        "network",
        "zw.step.network",
        &["physname", "vlan", "label", "netname", "gateway", "netmask", "startip", "endip", "netvlan"],
    ),
    ("cluster", "zw.step.cluster", &["clustername", "hypervisor"]),
    ("host", "zw.step.host", &["url", "username", "password"]),
    ("primary", "zw.step.primary", &["poolname", "poolurl", "poolprovider"]),
    ("secondary", "zw.step.secondary", &["storename", "storeurl"]),
    ("launch", "zw.step.launch", &[]),
];

/// Which API parameter name each wizard field stands for, to read the API's messages.
fn api_name(field: &'static str) -> &'static str {
    match field {
        "podname" | "physname" | "netname" | "clustername" | "poolname" | "storename" => "name",
        "poolurl" | "storeurl" => "url",
        "poolprovider" => "provider",
        "netvlan" => "vlan",
        "label" => "kvmnetworklabel",
        other => other,
    }
}

/// The step's field the API's message is about; none when two of its fields share the
/// parameter named (the physical and the guest network's names): the step shows it then.
fn field_for(message: &str, fields: &[&'static str]) -> Option<&'static str> {
    let names: Vec<&'static str> = fields.iter().map(|f| api_name(f)).collect();
    let named = field_of(message, &names)?;
    let mut mine = fields.iter().filter(|f| api_name(f) == named);
    match (mine.next(), mine.next()) {
        (Some(f), None) => Some(*f),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Waiting,
    Running,
    Done(String),
    Failed(String),
}

/// The fields' values, by the names in STEPS.
type Values = HashMap<&'static str, RwSignal<String>>;

const DEFAULTS: &[(&str, &str)] = &[
    ("name", ""),
    ("dns1", "8.8.8.8"),
    ("internaldns1", "10.0.0.2"),
    ("guestcidraddress", "10.1.1.0/24"),
    ("podname", "pod-1"),
    ("physname", "physical-1"),
    ("vlan", "100-199"),
    ("label", "cloudbr0"),
    ("kind", "Isolated"),
    ("netname", "guest-1"),
    ("gateway", ""),
    ("netmask", ""),
    ("startip", ""),
    ("endip", ""),
    ("netvlan", ""),
    ("clustername", "cluster-1"),
    ("hypervisor", "Simulator"),
    ("url", "test:///default"),
    ("username", "root"),
    ("password", ""),
    ("poolname", "primary-1"),
    ("poolurl", ""),
    ("poolprovider", ""),
    ("provider", "Local"),
    ("storename", "images-1"),
    ("storeurl", ""),
];

fn values() -> Values {
    DEFAULTS.iter().map(|(k, v)| (*k, RwSignal::new((*v).to_owned()))).collect()
}

/// Ids of what the steps made so far: a retry goes on from them instead of making them again.
type Made = StoredValue<HashMap<&'static str, String>>;

fn id_of(reply: &Value, object: &str) -> String {
    let o = reply.get(object).map(|o| o.as_array().and_then(|a| a.first()).unwrap_or(o));
    o.map(|o| s(o, "id").to_owned()).unwrap_or_default()
}

/// The driver settings of the host and primary storage steps, as `details` parameters, by step.
type Details = HashMap<&'static str, Vec<(String, String)>>;

async fn run_step(step: &str, v: &HashMap<&'static str, String>, details: &Details, made: Made) -> ApiResult<String> {
    let get = |k: &str| made.with_value(|m| m.get(k).cloned().unwrap_or_default());
    let val = |k: &str| v.get(k).cloned().unwrap_or_default();
    let zone = get("zone");
    let detail_params = |step: &str| -> Vec<(&str, String)> {
        details.get(step).into_iter().flatten().map(|(k, v)| (k.as_str(), v.clone())).collect()
    };
    let put = |k: &'static str, id: String| {
        made.update_value(|m| {
            m.insert(k, id);
        })
    };
    match step {
        "zone" => {
            let mut p = vec![
                ("name", val("name")),
                ("networktype", "Advanced".to_owned()),
                ("dns1", val("dns1")),
                ("internaldns1", val("internaldns1")),
            ];
            if !val("guestcidraddress").is_empty() {
                p.push(("guestcidraddress", val("guestcidraddress")));
            }
            let r = api::call("createZone", &p).await?;
            put("zone", id_of(&r, "zone"));
            Ok(val("name"))
        }
        "pod" => {
            let r = api::call("createPod", &[("name", val("podname")), ("zoneid", zone)]).await?;
            put("pod", id_of(&r, "pod"));
            Ok(val("podname"))
        }
        "network" => {
            // Four calls; each one done is kept, so a retry starts at the one that failed.
            if get("physical").is_empty() {
                let p = [
                    ("name", val("physname")),
                    ("zoneid", zone.clone()),
                    ("vlan", val("vlan")),
                    ("isolationmethods", "VLAN".to_owned()),
                ];
                let r = api::call_settled("createPhysicalNetwork", &p).await?;
                put("physical", id_of(&r, "physicalnetwork"));
            }
            let physical = get("physical");
            if get("traffic").is_empty() {
                let p = [
                    ("physicalnetworkid", physical.clone()),
                    ("traffictype", "Guest".to_owned()),
                    ("kvmnetworklabel", val("label")),
                ];
                let r = api::call_settled("addTrafficType", &p).await?;
                put("traffic", id_of(&r, "traffictype"));
            }
            if get("enabled").is_empty() {
                let p = [("id", physical.clone()), ("state", "Enabled".to_owned())];
                api::call_settled("updatePhysicalNetwork", &p).await?;
                put("enabled", "yes".into());
            }
            let kind = val("kind");
            let offerings =
                api::list("listNetworkOfferings", "networkoffering", &[("guestiptype", kind.to_ascii_lowercase())])
                    .await?
                    .0;
            // The plain offering of the kind: source NAT for Isolated, no security groups for Shared.
            let offering = offerings
                .iter()
                .find(|o| {
                    let n = s(o, "name");
                    if kind == "Shared" { !n.contains("SG") } else { n.contains("SourceNat") }
                })
                .or(offerings.first())
                .map(|o| s(o, "id").to_owned())
                .ok_or_else(|| ApiError { code: 0, text: format!("no {kind} network offering") })?;
            let mut p = vec![
                ("name", val("netname")),
                ("displaytext", val("netname")),
                ("networkofferingid", offering),
                ("zoneid", zone),
                ("physicalnetworkid", physical),
            ];
            if kind == "Shared" {
                for (k, f) in [
                    ("gateway", "gateway"),
                    ("netmask", "netmask"),
                    ("startip", "startip"),
                    ("endip", "endip"),
                    ("vlan", "netvlan"),
                ] {
                    if !val(f).is_empty() {
                        p.push((k, val(f)));
                    }
                }
            }
            let r = api::call("createNetwork", &p).await?;
            put("network", id_of(&r, "network"));
            Ok(format!("{} ({kind})", val("netname")))
        }
        "cluster" => {
            let p = [
                ("clustername", val("clustername")),
                ("clustertype", "CloudManaged".to_owned()),
                ("hypervisor", val("hypervisor")),
                ("podid", get("pod")),
                ("zoneid", zone),
            ];
            let r = api::call("addCluster", &p).await?;
            put("cluster", id_of(&r, "cluster"));
            Ok(val("clustername"))
        }
        "host" => {
            let mut p = vec![
                ("hypervisor", val("hypervisor")),
                ("podid", get("pod")),
                ("zoneid", zone),
                ("clusterid", get("cluster")),
                ("url", val("url")),
                ("username", val("username")),
                ("password", val("password")),
            ];
            p.extend(detail_params("host"));
            let r = api::call("addHost", &p).await?;
            let host = r.get("host").and_then(Value::as_array).and_then(|a| a.first()).cloned().unwrap_or_default();
            put("host", s(&host, "id").to_owned());
            Ok(format!("{} · {}", s(&host, "name"), s(&host, "state")))
        }
        "primary" => {
            let mut p = vec![
                ("name", val("poolname")),
                ("url", val("poolurl")),
                ("zoneid", zone),
                ("podid", get("pod")),
                ("clusterid", get("cluster")),
                ("scope", "cluster".to_owned()),
            ];
            if !val("poolprovider").is_empty() {
                p.push(("provider", val("poolprovider")));
            }
            p.extend(detail_params("primary"));
            let r = api::call("createStoragePool", &p).await?;
            put("primary", id_of(&r, "storagepool"));
            Ok(val("poolname"))
        }
        "secondary" => {
            let p =
                [("provider", val("provider")), ("name", val("storename")), ("url", val("storeurl")), ("zoneid", zone)];
            let r = api::call("addImageStore", &p).await?;
            put("secondary", id_of(&r, "imagestore"));
            Ok(val("storename"))
        }
        _ => {
            api::call("updateZone", &[("id", zone), ("allocationstate", "Enabled".to_owned())]).await?;
            Ok(String::new())
        }
    }
}

#[component]
pub fn ZoneWizard() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let vals = StoredValue::new(values());
    let status = RwSignal::new(vec![Status::Waiting; STEPS.len()]);
    let made: Made = StoredValue::new(HashMap::new());
    let busy = RwSignal::new(false);
    // The failing step's message, beside the field it names (by the wizard's field name).
    let error: FormError = RwSignal::new(None);
    // The drivers' settings forms: the host's (the KVM driver) and the primary storage's.
    let plugins = driver_form::load_plugins();
    let host_schema = Signal::derive(move || plugins.with(|p| schema_of(p, "kvm")));
    let pool_provider = vals.with_value(|m| m["poolprovider"]);
    let pool_schema = Signal::derive(move || {
        let name = pool_provider.get();
        if name.is_empty() { None } else { plugins.with(|p| schema_of(p, &name)) }
    });
    let host_details = RwSignal::new(defaults(None));
    let pool_details = RwSignal::new(defaults(None));
    let host_error: DetailError = RwSignal::new(None);
    let pool_error: DetailError = RwSignal::new(None);
    // A newly chosen driver starts from its schema's defaults.
    Effect::new(move |_| host_details.set(defaults(host_schema.get().as_ref())));
    Effect::new(move |_| pool_details.set(defaults(pool_schema.get().as_ref())));

    let run = move || {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        host_error.set(None);
        pool_error.set(None);
        let v: HashMap<&'static str, String> =
            vals.with_value(|m| m.iter().map(|(k, s)| (*k, s.get_untracked().trim().to_owned())).collect());
        let details: Details = [
            ("host", host_details.with_untracked(details_params)),
            ("primary", pool_details.with_untracked(details_params)),
        ]
        .into();
        spawn_local(async move {
            for (i, (step, _, fields)) in STEPS.iter().enumerate() {
                if matches!(status.with_untracked(|s| s[i].clone()), Status::Done(_)) {
                    continue;
                }
                status.update(|s| s[i] = Status::Running);
                match run_step(step, &v, &details, made).await {
                    Ok(detail) => status.update(|s| s[i] = Status::Done(detail)),
                    Err(e) => {
                        let text = fail(session, e);
                        // A driver setting's message goes beside that setting.
                        let setting = detail_of(&text).map(|k| (k, text.clone()));
                        match *step {
                            "host" if setting.is_some() => host_error.set(setting),
                            "primary" if setting.is_some() => pool_error.set(setting),
                            _ => error.set(Some((field_for(&text, fields), text.clone()))),
                        }
                        status.update(|s| s[i] = Status::Failed(text));
                        break;
                    }
                }
            }
            busy.set(false);
        });
    };
    let reset = move |_| {
        vals.with_value(|m| {
            for (k, v) in DEFAULTS {
                m[k].set((*v).to_owned());
            }
        });
        made.set_value(HashMap::new());
        status.set(vec![Status::Waiting; STEPS.len()]);
        error.set(None);
        host_error.set(None);
        pool_error.set(None);
        host_details.set(defaults(host_schema.get_untracked().as_ref()));
    };
    let started = move || status.with(|s| s.iter().any(|x| *x != Status::Waiting));
    let finished = move || status.with(|s| s.iter().all(|x| matches!(x, Status::Done(_))));

    let field = move |param: &'static str, label: &'static str, placeholder: &'static str, kind: &'static str| {
        let value = vals.with_value(|m| m[param]);
        view! { <Field form="zw" param=param label=label value=value error=error placeholder=placeholder kind=kind /> }
    };
    let select = move |param: &'static str, label: &'static str, options: &'static [(&'static str, &'static str)]| {
        let value = vals.with_value(|m| m[param]);
        view! {
            <label class="field">
                <span>{tr(label)}</span>
                <select id=format!("zw-{param}") prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                    {options
                        .iter()
                        .map(|(v, key)| {
                            let key = *key;
                            view! { <option value=*v>{move || if key.contains('.') { text(lang.get(), key) } else { key }}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    // A step's fields are locked once it is done: what it made is kept as it is.
    let fieldset = move |i: usize, body: AnyView| {
        view! {
            <fieldset
                class="zw-step"
                id=format!("zw-fields-{}", STEPS[i].0)
                disabled=move || busy.get() || status.with(|s| matches!(s[i], Status::Done(_)))
            >
                <legend>{tr(STEPS[i].1)}</legend>
                {body}
            </fieldset>
        }
    };

    view! {
        <section class="zone-wizard">
            <h1>{tr("zw.title")}</h1>
            <p class="muted">{tr("zw.intro")}</p>
            <div class="zw-layout">
                <ol class="zw-progress">
                    {STEPS
                        .iter()
                        .enumerate()
                        .map(|(i, (id, key, _))| {
                            let st = move || status.with(|s| s[i].clone());
                            view! {
                                <li
                                    data-step=*id
                                    class=move || match st() {
                                        Status::Waiting => "waiting",
                                        Status::Running => "running",
                                        Status::Done(_) => "done",
                                        Status::Failed(_) => "failed",
                                    }
                                >
                                    <strong>{tr(key)}</strong>
                                    <span class="zw-status">
                                        {move || {
                                            let l = lang.get();
                                            match st() {
                                                Status::Waiting => text(l, "zw.waiting").to_owned(),
                                                Status::Running => text(l, "zw.running").to_owned(),
                                                Status::Done(d) if d.is_empty() => text(l, "zw.done").to_owned(),
                                                Status::Done(d) => format!("{} · {d}", text(l, "zw.done")),
                                                Status::Failed(_) => text(l, "zw.failed").to_owned(),
                                            }
                                        }}
                                    </span>
                                    {move || match st() {
                                        Status::Failed(e) => {
                                            Some(
                                                view! {
                                                    <p class="error zw-error" role="alert">{e}</p>
                                                    <button class="primary zw-retry" disabled=busy on:click=move |_| run()>
                                                        {tr("zw.retry")}
                                                    </button>
                                                },
                                            )
                                        }
                                        _ => None,
                                    }}
                                </li>
                            }
                        })
                        .collect_view()}
                </ol>
                <div class="card zw-form">
                    {fieldset(
                        0,
                        view! {
                            {field("name", "zw.name", "zone-1", "")}
                            {field("dns1", "zw.dns1", "8.8.8.8", "")}
                            {field("internaldns1", "zw.internaldns1", "10.0.0.2", "")}
                            {field("guestcidraddress", "zw.guestcidr", "10.1.1.0/24", "")}
                        }
                            .into_any(),
                    )}
                    {fieldset(1, field("podname", "zw.name", "", "").into_any())}
                    {fieldset(
                        2,
                        view! {
                            {field("physname", "zw.physical", "", "")}
                            {field("vlan", "zw.vlan", "100-199", "")}
                            {field("label", "zw.label", "cloudbr0", "")}
                            {select("kind", "zw.kind", &[("Isolated", "zw.isolated"), ("Shared", "zw.shared")])}
                            {field("netname", "zw.network", "", "")}
                            <Show when=move || vals.with_value(|m| m["kind"]).get() == "Shared">
                                {field("gateway", "zw.gateway", "10.2.0.1", "")}
                                {field("netmask", "zw.netmask", "255.255.255.0", "")}
                                {field("startip", "zw.startip", "10.2.0.10", "")}
                                {field("endip", "zw.endip", "10.2.0.200", "")}
                                {field("netvlan", "zw.netvlan", "150", "")}
                            </Show>
                        }
                            .into_any(),
                    )}
                    {fieldset(
                        3,
                        view! {
                            {field("clustername", "zw.name", "", "")}
                            {select("hypervisor", "zw.hypervisor", &[("Simulator", "Simulator"), ("KVM", "KVM")])}
                        }
                            .into_any(),
                    )}
                    {fieldset(
                        4,
                        view! {
                            {field("url", "zw.host_url", "test:///default", "")}
                            {field("username", "zw.username", "", "")}
                            {field("password", "zw.password", "", "password")}
                            <DriverSettings form="zw-host" schema=host_schema values=host_details error=host_error />
                        }
                            .into_any(),
                    )}
                    {fieldset(
                        5,
                        view! {
                            {field("poolname", "zw.name", "", "")}
                            {field("poolurl", "zw.url", "file:///var/lib/wasmstack/primary", "")}
                            <StorageDriverSelect id="zw-poolprovider" plugins=plugins value=pool_provider />
                            <Show when=move || !pool_provider.get().is_empty()>
                                <DriverSettings form="zw-pool" schema=pool_schema values=pool_details error=pool_error />
                            </Show>
                        }
                            .into_any(),
                    )}
                    {fieldset(
                        6,
                        view! {
                            {select("provider", "zw.provider", &[("Local", "Local"), ("NFS", "NFS")])}
                            {field("storename", "zw.name", "", "")}
                            {field("storeurl", "zw.url", "file:///var/lib/wasmstack/images", "")}
                        }
                            .into_any(),
                    )}
                    <div class="buttons">
                        <Show when=move || !started()>
                            <button id="zw-launch" class="primary" disabled=busy on:click=move |_| run()>
                                {tr("zw.go")}
                            </button>
                        </Show>
                        <Show when=finished>
                            <p id="zw-ready" class="ok" role="status">
                                {tr("zw.ready")}
                            </p>
                            <button on:click=reset>{tr("zw.another")}</button>
                        </Show>
                    </div>
                </div>
            </div>
        </section>
    }
}
