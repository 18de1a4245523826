//! A network's public IPs, opened from the networks page: acquire and release addresses,
//! and per address its firewall rules, port forwarding, static NAT and load balancing;
//! and the network's egress rules. Each is added and deleted through the API (async jobs,
//! followed to their end).

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, Lang, fill, text, tr};
use crate::infra::{Col, Field, FormError, FormMessage, JobLine, JobMap, Listing, set_error, track_job};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("pip.open", "Public IPs", "公网 IP"),
    ("pip.title", "Public IPs of {0}", "{0} 的公网 IP"),
    ("pip.close", "Close", "关闭"),
    ("pip.acquire", "Acquire IP", "获取 IP"),
    ("pip.acquiring", "Acquiring…", "正在获取…"),
    ("pip.acquired", "Acquired {0}.", "已获取 {0}。"),
    ("pip.release", "Release", "释放"),
    ("pip.confirm_release", "Release {0}?", "确定释放 {0}？"),
    ("pip.rules", "Rules", "规则"),
    ("pip.address", "IP address", "IP 地址"),
    ("pip.source_nat", "Source NAT", "源 NAT"),
    ("pip.static_nat", "Static NAT", "静态 NAT"),
    ("pip.state", "State", "状态"),
    ("pip.yes", "Yes", "是"),
    ("pip.no", "No", "否"),
    ("pip.rules_of", "Rules of {0}", "{0} 的规则"),
    ("pip.firewall", "Firewall", "防火墙"),
    ("pip.forwarding", "Port forwarding", "端口转发"),
    ("pip.balancing", "Load balancing", "负载均衡"),
    ("pip.protocol", "Protocol", "协议"),
    ("pip.startport", "Start port", "起始端口"),
    ("pip.endport", "End port", "结束端口"),
    ("pip.ports", "Ports", "端口"),
    ("pip.cidrlist", "Source CIDR list", "源 CIDR 列表"),
    ("pip.destcidrlist", "Destination CIDR list", "目的 CIDR 列表"),
    ("pip.addresses", "Public IPs", "公网 IP"),
    ("pip.egress", "Egress rules", "出口规则"),
    ("pip.icmptype", "ICMP type", "ICMP 类型"),
    ("pip.icmpcode", "ICMP code", "ICMP 代码"),
    ("pip.add_rule", "Add rule", "添加规则"),
    ("pip.publicport", "Public port", "公用端口"),
    ("pip.publicendport", "Public end port", "公用结束端口"),
    ("pip.privateport", "Private port", "专用端口"),
    ("pip.privateendport", "Private end port", "专用结束端口"),
    ("pip.vm", "Instance", "实例"),
    ("pip.no_vms", "No instance in this network.", "此网络中没有实例。"),
    ("pip.name", "Name", "名称"),
    ("pip.algorithm", "Algorithm", "算法"),
    ("pip.members", "Instances", "实例"),
    ("pip.members_of", "Instances of {0}", "{0} 的实例"),
    ("pip.assign", "Assign", "分配"),
    ("pip.remove", "Remove", "移除"),
    ("pip.mapped_to", "Mapped to {0} ({1})", "已映射到 {0} ({1})"),
    ("pip.not_mapped", "Static NAT is off for this address.", "此地址未启用静态 NAT。"),
    ("pip.enable_nat", "Enable static NAT", "启用静态 NAT"),
    ("pip.disable_nat", "Disable static NAT", "禁用静态 NAT"),
];

fn flag(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_bool).unwrap_or(false)
}

fn yes_no(l: Lang, b: bool) -> String {
    text(l, if b { "pip.yes" } else { "pip.no" }).to_owned()
}

/// A field that may come as a number or a string ("80").
fn port(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(t)) => t.clone(),
        _ => String::new(),
    }
}

/// "80" or "80-90".
fn range(v: &Value, start: &str, end: &str) -> String {
    let (a, b) = (port(v, start), port(v, end));
    if b.is_empty() || a == b { a } else { format!("{a}-{b}") }
}

fn vm_name(v: &Value) -> String {
    let display = s(v, "virtualmachinedisplayname");
    if display.is_empty() { s(v, "virtualmachinename").to_owned() } else { display.to_owned() }
}

/// A firewall rule's ports, or its ICMP type and code.
fn ports_of(v: &Value) -> String {
    if s(v, "protocol").eq_ignore_ascii_case("icmp") {
        format!("{}/{}", port(v, "icmptype"), port(v, "icmpcode"))
    } else {
        range(v, "startport", "endport")
    }
}

const IP_COLS: &[Col] = &[
    ("pip.address", |v, _| s(v, "ipaddress").to_owned()),
    ("pip.source_nat", |v, l| yes_no(l, flag(v, "issourcenat"))),
    ("pip.static_nat", |v, l| {
        if flag(v, "isstaticnat") {
            format!("{} → {} ({})", yes_no(l, true), vm_name(v), s(v, "vmipaddress"))
        } else {
            yes_no(l, false)
        }
    }),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

const FIREWALL_COLS: &[Col] = &[
    ("pip.protocol", |v, _| s(v, "protocol").to_owned()),
    ("pip.ports", |v, _| ports_of(v)),
    ("pip.cidrlist", |v, _| s(v, "cidrlist").to_owned()),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

const EGRESS_COLS: &[Col] = &[
    ("pip.protocol", |v, _| s(v, "protocol").to_owned()),
    ("pip.ports", |v, _| ports_of(v)),
    ("pip.cidrlist", |v, _| s(v, "cidrlist").to_owned()),
    ("pip.destcidrlist", |v, _| s(v, "destcidrlist").to_owned()),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

const FORWARD_COLS: &[Col] = &[
    ("pip.protocol", |v, _| s(v, "protocol").to_owned()),
    ("pip.publicport", |v, _| range(v, "publicport", "publicendport")),
    ("pip.vm", |v, _| format!("{} ({})", vm_name(v), s(v, "vmguestip"))),
    ("pip.privateport", |v, _| range(v, "privateport", "privateendport")),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

const BALANCER_COLS: &[Col] = &[
    ("pip.name", |v, _| s(v, "name").to_owned()),
    ("pip.algorithm", |v, _| s(v, "algorithm").to_owned()),
    ("pip.publicport", |v, _| port(v, "publicport")),
    ("pip.privateport", |v, _| port(v, "privateport")),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

const MEMBER_COLS: &[Col] = &[
    ("pip.name", |v, _| {
        let display = s(v, "displayname");
        if display.is_empty() { s(v, "name").to_owned() } else { display.to_owned() }
    }),
    ("pip.state", |v, _| s(v, "state").to_owned()),
];

/// How a rule is named in the delete question.
fn describe_firewall(v: &Value) -> String {
    format!("{} {} {}", s(v, "protocol"), range(v, "startport", "endport"), s(v, "cidrlist"))
}

fn describe_forward(v: &Value) -> String {
    format!("{} {} → {}", s(v, "protocol"), range(v, "publicport", "publicendport"), vm_name(v))
}

type Options = RwSignal<Vec<(String, String)>>;

/// A select over fixed values, shown as they are (protocol and algorithm names).
fn fixed_select(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    choices: &'static [&'static str],
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{tr(label)}</span>
            <select id=id prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                {choices.iter().map(|c| view! { <option value=*c>{*c}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// A select of the network's instances.
fn vm_select(id: &'static str, value: RwSignal<String>, vms: Options) -> impl IntoView {
    view! {
        <label class="field">
            <span>{tr("pip.vm")}</span>
            <select id=id prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                {move || vms.get().into_iter().map(|(id, n)| view! { <option value=id>{n}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// The first instance is chosen until the user picks another.
fn pick_first(value: RwSignal<String>, vms: Options) {
    Effect::new(move |_| {
        if value.get().is_empty()
            && let Some((id, _)) = vms.get().first()
        {
            value.set(id.clone());
        }
    });
}

/// Adds `(key, value)` when the value, trimmed, is not empty.
fn push_some(p: &mut Vec<(&'static str, String)>, key: &'static str, value: RwSignal<String>) {
    let v = value.get_untracked().trim().to_owned();
    if !v.is_empty() {
        p.push((key, v));
    }
}

/// A rule form's state: the API's message, whether its command runs, and its list's reload.
#[derive(Clone, Copy)]
struct RuleForm {
    error: FormError,
    busy: RwSignal<bool>,
    reload: RwSignal<u32>,
    /// The API parameters its fields stand for, to show a message beside its field.
    fields: &'static [&'static str],
}

impl RuleForm {
    fn new(fields: &'static [&'static str]) -> Self {
        RuleForm { error: RwSignal::new(None), busy: RwSignal::new(false), reload: RwSignal::new(0), fields }
    }

    /// Starts `command` and waits for its job: on success the list reloads and the `clear`
    /// fields empty; otherwise the API's message goes beside its field.
    fn submit(
        self,
        session: SessionCtx,
        command: &'static str,
        params: Vec<(&'static str, String)>,
        clear: Vec<RwSignal<String>>,
    ) {
        self.error.set(None);
        self.busy.set(true);
        spawn_local(async move {
            match api::run_job(command, &params, |_| ()).await {
                Ok(_) => {
                    for field in clear {
                        field.set(String::new());
                    }
                    self.reload.update(|r| *r += 1);
                }
                Err(e) => set_error(self.error, fail(session, e), self.fields),
            }
            self.busy.set(false);
        });
    }
}

/// The panel under the networks list for one network.
#[component]
pub fn PublicIps(network: Value, selected: RwSignal<Option<Value>>) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let net_id = StoredValue::new(s(&network, "id").to_owned());
    let name = s(&network, "name").to_owned();
    let ip_reload = RwSignal::new(0u32);
    let jobs: JobMap = RwSignal::new(HashMap::new());
    let chosen = RwSignal::new(None::<String>);
    let vms: Options = RwSignal::new(Vec::new());
    let acquire_error: FormError = RwSignal::new(None);
    let acquired = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    spawn_local(async move {
        let p = [("networkid", net_id.get_value()), ("listall", "true".to_owned())];
        if let Ok((list, _)) = api::list("listVirtualMachines", "virtualmachine", &p).await {
            let usable = list.iter().filter(|v| matches!(s(v, "state"), "Running" | "Stopped"));
            vms.set(usable.map(|v| (s(v, "id").to_owned(), s(v, "name").to_owned())).collect());
        }
    });
    let acquire = move |_| {
        acquire_error.set(None);
        acquired.set(None);
        busy.set(true);
        spawn_local(async move {
            match api::run_job("associateIpAddress", &[("networkid", net_id.get_value())], |_| ()).await {
                Ok(r) => {
                    let ip = r.get("ipaddress").map(|ip| s(ip, "ipaddress").to_owned()).unwrap_or_default();
                    acquired.set(Some(ip));
                    ip_reload.update(|r| *r += 1);
                }
                Err(e) => set_error(acquire_error, fail(session, e), &[]),
            }
            busy.set(false);
        });
    };
    let release = move |id: String, address: String| {
        let question = fill(lang.get_untracked(), "pip.confirm_release", &[&address]);
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        let gone = id.clone();
        track_job(session, jobs, id.clone(), "pip.release", "disassociateIpAddress", vec![("id", id)], move |_| {
            if chosen.get_untracked().as_deref() == Some(gone.as_str()) {
                chosen.set(None);
            }
            ip_reload.update(|r| *r += 1);
        });
    };
    let ip_actions = Callback::new(move |v: Value| {
        let id = s(&v, "id").to_owned();
        let address = s(&v, "ipaddress").to_owned();
        let (pick, drop) = (id.clone(), id.clone());
        view! {
            <button class="act act-rules" on:click=move |_| chosen.set(Some(pick.clone()))>
                {tr("pip.rules")}
            </button>
            <button class="act act-release" on:click=move |_| release(drop.clone(), address.clone())>
                {tr("pip.release")}
            </button>
            <JobLine jobs=jobs id=id />
        }
        .into_any()
    });
    let title = move || fill(lang.get(), "pip.title", &[&name]);
    // The addresses and their rules, or the network's egress rules.
    let part = RwSignal::new("addresses");
    view! {
        <div class="card storage-panel public-ips" id="public-ips" data-id=net_id.get_value()>
            <div class="toolbar">
                <h2>{title}</h2>
                <button id="pip-acquire" class="primary" disabled=busy on:click=acquire>
                    {move || if busy.get() { tr("pip.acquiring")() } else { tr("pip.acquire")() }}
                </button>
                <button id="pip-close" on:click=move |_| selected.set(None)>
                    {tr("pip.close")}
                </button>
            </div>
            <FormMessage error=acquire_error />
            <p class="ok" role="status" id="pip-acquired">
                {move || acquired.get().map(|ip| fill(lang.get(), "pip.acquired", &[&ip]))}
            </p>
            <div class="tabs" role="tablist">
                {NETWORK_TABS
                    .iter()
                    .map(|(name, key)| {
                        view! {
                            <button
                                id=format!("tab-{name}")
                                role="tab"
                                class:selected=move || part.get() == *name
                                on:click=move |_| part.set(*name)
                            >
                                {tr(key)}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            {move || match part.get() {
                "egress" => view! { <Firewall kind=EGRESS owner=net_id.get_value() /> }.into_any(),
                _ => {
                    view! {
                        <Listing
                            id="public-ip-list"
                            command="listPublicIpAddresses"
                            object="publicipaddress"
                            columns=IP_COLS
                            params=&[("listall", "true")]
                            reload=ip_reload
                            actions=ip_actions
                            extra=("associatednetworkid", net_id.get_value())
                        />
                        {move || {
                            chosen
                                .get()
                                .map(|ip| {
                                    view! { <IpRules ip_id=ip vms=vms ip_reload=ip_reload jobs=jobs /> }
                                })
                        }}
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

const NETWORK_TABS: &[(&str, &str)] = &[("addresses", "pip.addresses"), ("egress", "pip.egress")];

const TABS: &[(&str, &str)] = &[
    ("firewall", "pip.firewall"),
    ("forwarding", "pip.forwarding"),
    ("balancing", "pip.balancing"),
    ("staticnat", "pip.static_nat"),
];

/// One address's rules, in tabs.
#[component]
fn IpRules(ip_id: String, vms: Options, ip_reload: RwSignal<u32>, jobs: JobMap) -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    let ip_id = StoredValue::new(ip_id);
    let ip = RwSignal::new(None::<Value>);
    let tab = RwSignal::new("firewall");
    // The address as it is now: static NAT changes it, and the list around is read again then.
    Effect::new(move |_| {
        ip_reload.track();
        spawn_local(async move {
            let p = [("id", ip_id.get_value()), ("listall", "true".to_owned())];
            if let Ok((list, _)) = api::list("listPublicIpAddresses", "publicipaddress", &p).await {
                ip.set(list.into_iter().next());
            }
        });
    });
    let address = move || ip.with(|v| v.as_ref().map(|v| s(v, "ipaddress").to_owned()).unwrap_or_default());
    view! {
        <div class="ip-rules" id="ip-rules" data-id=ip_id.get_value()>
            <h3>{move || fill(lang.get(), "pip.rules_of", &[&address()])}</h3>
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
                "forwarding" => view! { <Forwarding ip_id=ip_id.get_value() vms=vms /> }.into_any(),
                "balancing" => view! { <Balancing ip_id=ip_id.get_value() vms=vms /> }.into_any(),
                "staticnat" => view! { <StaticNat ip=ip vms=vms ip_reload=ip_reload jobs=jobs /> }.into_any(),
                _ => view! { <Firewall kind=INGRESS owner=ip_id.get_value() /> }.into_any(),
            }}
        </div>
    }
}

const FIREWALL_FIELDS: &[&str] =
    &["protocol", "startport", "endport", "cidrlist", "destcidrlist", "icmptype", "icmpcode"];

/// Where a firewall form's rules live: an address's ingress rules, or a network's egress ones.
#[derive(Clone, Copy)]
struct FirewallKind {
    /// The prefix of the form's field ids.
    form: &'static str,
    form_id: &'static str,
    protocol_id: &'static str,
    list_id: &'static str,
    /// The parameter that names the address or the network.
    owner: &'static str,
    create: &'static str,
    list: &'static str,
    delete: &'static str,
    protocols: &'static [&'static str],
    columns: &'static [Col],
    egress: bool,
}

const INGRESS: FirewallKind = FirewallKind {
    form: "fw",
    form_id: "firewall-form",
    protocol_id: "fw-protocol",
    list_id: "firewall-rules",
    owner: "ipaddressid",
    create: "createFirewallRule",
    list: "listFirewallRules",
    delete: "deleteFirewallRule",
    protocols: &["tcp", "udp", "icmp"],
    columns: FIREWALL_COLS,
    egress: false,
};

const EGRESS: FirewallKind = FirewallKind {
    form: "eg",
    form_id: "egress-form",
    protocol_id: "eg-protocol",
    list_id: "egress-rules",
    owner: "networkid",
    create: "createEgressFirewallRule",
    list: "listEgressFirewallRules",
    delete: "deleteEgressFirewallRule",
    protocols: &["tcp", "udp", "icmp", "all"],
    columns: EGRESS_COLS,
    egress: true,
};

/// A firewall rule form and its rules: `owner` is the address's id (ingress) or the network's (egress).
#[component]
fn Firewall(kind: FirewallKind, owner: String) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let protocol = RwSignal::new("tcp".to_owned());
    let vals: Vec<RwSignal<String>> = (0..6).map(|_| RwSignal::new(String::new())).collect();
    let [start, end, cidr, dest, icmptype, icmpcode] = [vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]];
    let form = RuleForm::new(FIREWALL_FIELDS);
    let RuleForm { error, busy, reload, .. } = form;
    let owner = StoredValue::new(owner);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let proto = protocol.get_untracked();
        let mut p = vec![(kind.owner, owner.get_value()), ("protocol", proto.clone())];
        match proto.as_str() {
            "icmp" => {
                push_some(&mut p, "icmptype", icmptype);
                push_some(&mut p, "icmpcode", icmpcode);
            }
            "all" => {}
            _ => {
                push_some(&mut p, "startport", start);
                push_some(&mut p, "endport", end);
            }
        }
        push_some(&mut p, "cidrlist", cidr);
        if kind.egress {
            push_some(&mut p, "destcidrlist", dest);
        }
        form.submit(session, kind.create, p, vals.clone());
    };
    let ports = move || matches!(protocol.get().as_str(), "tcp" | "udp");
    let icmp = move || protocol.get() == "icmp";
    let f = kind.form;
    view! {
        <form class="inline-form" id=kind.form_id on:submit=submit>
            {fixed_select(kind.protocol_id, "pip.protocol", protocol, kind.protocols)}
            <Show when=ports>
                <Field form=f param="startport" label="pip.startport" value=start error=error kind="number" />
                <Field form=f param="endport" label="pip.endport" value=end error=error kind="number" />
            </Show>
            <Show when=icmp>
                <Field form=f param="icmptype" label="pip.icmptype" value=icmptype error=error kind="number" />
                <Field form=f param="icmpcode" label="pip.icmpcode" value=icmpcode error=error kind="number" />
            </Show>
            <Field
                form=f
                param="cidrlist"
                label="pip.cidrlist"
                value=cidr
                error=error
                placeholder=if kind.egress { "" } else { "0.0.0.0/0" }
            />
            <Show when=move || kind.egress>
                <Field form=f param="destcidrlist" label="pip.destcidrlist" value=dest error=error />
            </Show>
            <FormMessage error=error />
            <button type="submit" class="primary" disabled=busy>
                {tr("pip.add_rule")}
            </button>
        </form>
        <Listing
            id=kind.list_id
            command=kind.list
            object="firewallrule"
            columns=kind.columns
            params=&[("listall", "true")]
            delete=kind.delete
            reload=reload
            extra=(kind.owner, owner.get_value())
            describe=describe_firewall
        />
    }
}

const FORWARD_FIELDS: &[&str] =
    &["protocol", "publicport", "publicendport", "privateport", "privateendport", "virtualmachineid"];

#[component]
fn Forwarding(ip_id: String, vms: Options) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let protocol = RwSignal::new("tcp".to_owned());
    let vm = RwSignal::new(String::new());
    pick_first(vm, vms);
    let vals: Vec<RwSignal<String>> = (0..4).map(|_| RwSignal::new(String::new())).collect();
    let [public, public_end, private, private_end] = [vals[0], vals[1], vals[2], vals[3]];
    let form = RuleForm::new(FORWARD_FIELDS);
    let RuleForm { error, busy, reload, .. } = form;
    let ip = StoredValue::new(ip_id);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut p = vec![
            ("ipaddressid", ip.get_value()),
            ("protocol", protocol.get_untracked()),
            ("virtualmachineid", vm.get_untracked()),
        ];
        // Empty ports are sent as they are: the API says which one is missing.
        p.push(("publicport", public.get_untracked().trim().to_owned()));
        push_some(&mut p, "publicendport", public_end);
        p.push(("privateport", private.get_untracked().trim().to_owned()));
        push_some(&mut p, "privateendport", private_end);
        form.submit(session, "createPortForwardingRule", p, vals.clone());
    };
    view! {
        <form class="inline-form" id="forwarding-form" on:submit=submit>
            {fixed_select("pf-protocol", "pip.protocol", protocol, &["tcp", "udp"])}
            <Field form="pf" param="publicport" label="pip.publicport" value=public error=error kind="number" />
            <Field form="pf" param="publicendport" label="pip.publicendport" value=public_end error=error kind="number" />
            {vm_select("pf-vm", vm, vms)}
            <Field form="pf" param="privateport" label="pip.privateport" value=private error=error kind="number" />
            <Field form="pf" param="privateendport" label="pip.privateendport" value=private_end error=error kind="number" />
            <FormMessage error=error />
            <button type="submit" class="primary" disabled=busy>
                {tr("pip.add_rule")}
            </button>
        </form>
        <Show when=move || vms.with(Vec::is_empty)>
            <p class="muted">{tr("pip.no_vms")}</p>
        </Show>
        <Listing
            id="forwarding-rules"
            command="listPortForwardingRules"
            object="portforwardingrule"
            columns=FORWARD_COLS
            params=&[("listall", "true")]
            delete="deletePortForwardingRule"
            reload=reload
            extra=("ipaddressid", ip.get_value())
            describe=describe_forward
        />
    }
}

const BALANCER_FIELDS: &[&str] = &["name", "algorithm", "publicport", "privateport"];

#[component]
fn Balancing(ip_id: String, vms: Options) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let algorithm = RwSignal::new("roundrobin".to_owned());
    let vals: Vec<RwSignal<String>> = (0..3).map(|_| RwSignal::new(String::new())).collect();
    let [name, public, private] = [vals[0], vals[1], vals[2]];
    let form = RuleForm::new(BALANCER_FIELDS);
    let RuleForm { error, busy, reload, .. } = form;
    let ip = StoredValue::new(ip_id);
    // The rule whose instances are shown under the list.
    let open = RwSignal::new(None::<Value>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let p = vec![
            ("publicipid", ip.get_value()),
            ("name", name.get_untracked().trim().to_owned()),
            ("algorithm", algorithm.get_untracked()),
            ("publicport", public.get_untracked().trim().to_owned()),
            ("privateport", private.get_untracked().trim().to_owned()),
        ];
        form.submit(session, "createLoadBalancerRule", p, vals.clone());
    };
    let members = Callback::new(move |v: Value| {
        view! {
            <button class="act act-members" on:click=move |_| open.set(Some(v.clone()))>
                {tr("pip.members")}
            </button>
        }
        .into_any()
    });
    view! {
        <form class="inline-form" id="balancing-form" on:submit=submit>
            <Field form="lb" param="name" label="pip.name" value=name error=error />
            {fixed_select("lb-algorithm", "pip.algorithm", algorithm, &["roundrobin", "leastconn", "source"])}
            <Field form="lb" param="publicport" label="pip.publicport" value=public error=error kind="number" />
            <Field form="lb" param="privateport" label="pip.privateport" value=private error=error kind="number" />
            <FormMessage error=error />
            <button type="submit" class="primary" disabled=busy>
                {tr("pip.add_rule")}
            </button>
        </form>
        <Listing
            id="balancing-rules"
            command="listLoadBalancerRules"
            object="loadbalancerrule"
            columns=BALANCER_COLS
            params=&[("listall", "true")]
            delete="deleteLoadBalancerRule"
            reload=reload
            actions=members
            extra=("publicipid", ip.get_value())
        />
        {move || {
            open.get()
                .map(|rule| {
                    let title = fill(lang.get(), "pip.members_of", &[&s(&rule, "name")]);
                    view! {
                        <h3>{title}</h3>
                        <Members rule_id=s(&rule, "id").to_owned() vms=vms />
                    }
                })
        }}
    }
}

/// The instances a load balancer rule spreads to: assign more, remove one.
#[component]
fn Members(rule_id: String, vms: Options) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let rule = StoredValue::new(rule_id);
    let vm = RwSignal::new(String::new());
    pick_first(vm, vms);
    let reload = RwSignal::new(0u32);
    let jobs: JobMap = RwSignal::new(HashMap::new());
    let change = move |label: &'static str, command: &'static str, vm_id: String| {
        let params = vec![("id", rule.get_value()), ("virtualmachineids", vm_id)];
        track_job(session, jobs, rule.get_value(), label, command, params, move |_| reload.update(|r| *r += 1));
    };
    let remove = Callback::new(move |v: Value| {
        let vm_id = s(&v, "id").to_owned();
        view! {
            <button class="act act-remove" on:click=move |_| change("pip.remove", "removeFromLoadBalancerRule", vm_id.clone())>
                {tr("pip.remove")}
            </button>
        }
        .into_any()
    });
    view! {
        <div class="row" id="lb-assign">
            {vm_select("lb-vm", vm, vms)}
            <button id="lb-assign-button" on:click=move |_| change("pip.assign", "assignToLoadBalancerRule", vm.get_untracked())>
                {tr("pip.assign")}
            </button>
            <JobLine jobs=jobs id=rule.get_value() />
        </div>
        <Listing
            id="balancing-members"
            command="listLoadBalancerRuleInstances"
            object="loadbalancerruleinstance"
            columns=MEMBER_COLS
            reload=reload
            actions=remove
            extra=("id", rule.get_value())
        />
    }
}

/// Static NAT of one address: on to an instance, or off.
#[component]
fn StaticNat(ip: RwSignal<Option<Value>>, vms: Options, ip_reload: RwSignal<u32>, jobs: JobMap) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let vm = RwSignal::new(String::new());
    pick_first(vm, vms);
    let run = move |label: &'static str, command: &'static str, params: Vec<(&'static str, String)>, id: String| {
        track_job(session, jobs, id, label, command, params, move |_| ip_reload.update(|r| *r += 1));
    };
    view! {
        <div class="static-nat" id="static-nat">
            {move || {
                ip.get()
                    .map(|v| {
                        let id = s(&v, "id").to_owned();
                        let line = id.clone();
                        let body = if flag(&v, "isstaticnat") {
                            let (who, at) = (vm_name(&v), s(&v, "vmipaddress").to_owned());
                            view! {
                                <div class="row">
                                    <span class="mapped-to">{move || fill(lang.get(), "pip.mapped_to", &[&who, &at])}</span>
                                    <button
                                        id="nat-disable"
                                        on:click=move |_| {
                                            run("pip.disable_nat", "disableStaticNat", vec![("ipaddressid", id.clone())], id.clone())
                                        }
                                    >
                                        {tr("pip.disable_nat")}
                                    </button>
                                </div>
                            }
                                .into_any()
                        } else {
                            view! {
                                <p class="muted">{tr("pip.not_mapped")}</p>
                                <div class="row">
                                    {vm_select("nat-vm", vm, vms)}
                                    <button
                                        id="nat-enable"
                                        on:click=move |_| {
                                            let params = vec![("ipaddressid", id.clone()), ("virtualmachineid", vm.get_untracked())];
                                            run("pip.enable_nat", "enableStaticNat", params, id.clone())
                                        }
                                    >
                                        {tr("pip.enable_nat")}
                                    </button>
                                </div>
                            }
                                .into_any()
                        };
                        view! {
                            {body}
                            <JobLine jobs=jobs id=line />
                        }
                    })
            }}
        </div>
    }
}
