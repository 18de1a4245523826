//! The deploy wizard: zone → template → offering → network → name, key pair and userdata →
//! launch, then the new instance watched until it runs (and its password shown once, when
//! its template makes one).

use base64::Engine as _;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, ApiResult, s};
use crate::i18n::{I18n, fill, text, tr, tr_dyn};
use crate::{SessionCtx, fail};

const ZONE: usize = 0;
const TEMPLATE: usize = 1;
const OFFERING: usize = 2;
const NETWORK: usize = 3;
const NAME: usize = 4;
const REVIEW: usize = 5;
const STEPS: [&str; 6] =
    ["deploy.zone", "deploy.template", "deploy.offering", "deploy.network", "deploy.details", "deploy.review"];

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("deploy.details", "Name & access", "名称和访问"),
    ("deploy.keypair", "SSH key pair", "SSH 密钥对"),
    ("deploy.no_keypair", "No key pair", "不使用密钥对"),
    ("deploy.userdata", "Userdata", "用户数据"),
    (
        "deploy.userdata_hint",
        "Plain text such as a cloud-init script; it is sent base64-encoded.",
        "纯文本，例如 cloud-init 脚本；发送时以 base64 编码。",
    ),
    ("deploy.userdata_size", "{0} bytes", "{0} 字节"),
    ("deploy.stored_userdata", "Stored user data", "已存储的用户数据"),
    ("deploy.no_stored", "None (type it below)", "不使用（在下方输入）"),
    ("deploy.stored_named", "Stored: {0}", "已存储：{0}"),
    ("deploy.password", "Password of the new instance", "新实例的密码"),
    ("deploy.password_once", "It is shown only this once; note it now.", "密码仅显示这一次，请立即记下。"),
];

/// Userdata as the API takes it: the text's UTF-8 bytes in standard base64.
pub fn encode_userdata(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// The parameter pairs of `userdatadetails`, as many as the console sends (the API takes
/// `&'static str` names, so they are spelled out).
const DETAIL_KEYS: [(&str, &str); 8] = [
    ("userdatadetails[0].key", "userdatadetails[0].value"),
    ("userdatadetails[1].key", "userdatadetails[1].value"),
    ("userdatadetails[2].key", "userdatadetails[2].value"),
    ("userdatadetails[3].key", "userdatadetails[3].value"),
    ("userdatadetails[4].key", "userdatadetails[4].value"),
    ("userdatadetails[5].key", "userdatadetails[5].value"),
    ("userdatadetails[6].key", "userdatadetails[6].value"),
    ("userdatadetails[7].key", "userdatadetails[7].value"),
];

/// Stored userdata the wizard offers: its id, name and declared variables.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    id: String,
    name: String,
    params: Vec<String>,
}

/// The names in registerUserData's comma-separated `params`.
fn param_names(params: &str) -> Vec<String> {
    params.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// `userdatadetails` as the API takes it, for the values given (at most `DETAIL_KEYS.len()`).
fn detail_params(values: &[(String, String)]) -> Vec<(&'static str, String)> {
    values
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .zip(DETAIL_KEYS)
        .flat_map(|((k, v), (key, value))| [(key, k.clone()), (value, v.clone())])
        .collect()
}

/// One thing to pick in a step.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    id: String,
    label: String,
    detail: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Launch {
    Idle,
    Deploying(u32),
    Watching(String),
    Running(String),
    Failed(String),
}

async fn choices(step: usize, zone: String) -> ApiResult<Vec<Choice>> {
    let z = || ("zoneid", zone.clone());
    let (items, label, detail): (Vec<Value>, &str, fn(&Value) -> String) = match step {
        ZONE => (api::list("listZones", "zone", &[("available", "true".into())]).await?.0, "name", |v| {
            s(v, "networktype").to_owned()
        }),
        TEMPLATE => {
            let params = [("templatefilter", "executable".to_owned()), z()];
            let all = api::list("listTemplates", "template", &params).await?.0;
            // Only templates ready in this zone can be deployed.
            let ready = all.into_iter().filter(|t| t.get("isready") == Some(&Value::Bool(true))).collect();
            (ready, "name", |v| format!("{} · {}", s(v, "ostypename"), s(v, "hypervisor")))
        }
        OFFERING => (api::list("listServiceOfferings", "serviceoffering", &[]).await?.0, "name", |v| {
            let n = |k| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            format!("{} vCPU × {} MHz · {} MiB", n("cpunumber"), n("cpuspeed"), n("memory"))
        }),
        NETWORK => (api::list("listNetworks", "network", &[z()]).await?.0, "name", |v| {
            format!("{} · {}", s(v, "type"), s(v, "cidr"))
        }),
        _ => (Vec::new(), "name", |_| String::new()),
    };
    Ok(items
        .iter()
        .map(|v| Choice { id: s(v, "id").to_owned(), label: s(v, label).to_owned(), detail: detail(v) })
        .collect())
}

#[component]
pub fn Deploy() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let step = RwSignal::new(ZONE);
    let picked = RwSignal::new([None::<Choice>, None, None, None]);
    let options = RwSignal::new(None::<Result<Vec<Choice>, String>>);
    let name = RwSignal::new(String::new());
    let keypair = RwSignal::new(String::new());
    let userdata = RwSignal::new(String::new());
    let keypairs = RwSignal::new(Vec::<String>::new());
    let stored = RwSignal::new(Vec::<Stored>::new());
    // The stored userdata chosen ("" for none) and the values of its variables.
    let userdata_id = RwSignal::new(String::new());
    let details = RwSignal::new(Vec::<(String, String)>::new());
    // The variables' names apart from their values, so typing a value re-renders nothing.
    let detail_names = RwSignal::new(Vec::<String>::new());
    let chosen_stored = move || userdata_id.with(|id| stored.with(|all| all.iter().find(|u| &u.id == id).cloned()));
    let launch = RwSignal::new(Launch::Idle);
    // A password-enabled template's password comes once, in the deploy job's result.
    let password = RwSignal::new(None::<String>);

    // The caller's key pairs: the VM will be the caller's, and may only have its key pairs.
    spawn_local(async move {
        if let Ok((list, _)) = api::list("listSSHKeyPairs", "sshkeypair", &[]).await {
            keypairs.set(list.iter().map(|k| s(k, "name").to_owned()).collect());
        }
        if let Ok((list, _)) = api::list("listUserData", "userdata", &[]).await {
            stored.set(
                list.iter()
                    .map(|u| Stored {
                        id: s(u, "id").to_owned(),
                        name: s(u, "name").to_owned(),
                        params: param_names(s(u, "params")),
                    })
                    .collect(),
            );
        }
    });

    // Each step with choices loads them when it is shown (templates and networks depend on the zone).
    Effect::new(move |_| {
        let at = step.get();
        options.set(None);
        if at > NETWORK {
            return;
        }
        let zone = picked.with_untracked(|p| p[ZONE].as_ref().map(|c| c.id.clone()).unwrap_or_default());
        spawn_local(async move {
            let r = choices(at, zone).await.map_err(|e| fail(session, e));
            if step.get_untracked() != at {
                return;
            }
            // A single choice is picked for the user; the network step may stay empty.
            if let Ok(list) = &r
                && list.len() == 1
                && at != NETWORK
                && picked.with_untracked(|p| p[at].is_none())
            {
                picked.update(|p| p[at] = Some(list[0].clone()));
            }
            options.set(Some(r));
        });
    });

    let can_next = move || match step.get() {
        NETWORK => true,
        NAME => !name.with(|n| n.trim().is_empty()),
        at if at < NETWORK => picked.with(|p| p[at].is_some()),
        _ => false,
    };
    let pick = move |at: usize, c: Option<Choice>| {
        picked.update(|p| {
            // A new zone invalidates what was picked in it.
            if at == ZONE && p[ZONE] != c {
                p[TEMPLATE] = None;
                p[NETWORK] = None;
            }
            p[at] = c;
        })
    };

    let start = move |_| {
        let p = picked.get_untracked();
        let (Some(zone), Some(template), Some(offering)) = (&p[ZONE], &p[TEMPLATE], &p[OFFERING]) else { return };
        let n = name.get_untracked().trim().to_owned();
        let mut params = vec![
            ("zoneid", zone.id.clone()),
            ("templateid", template.id.clone()),
            ("serviceofferingid", offering.id.clone()),
            ("name", n.clone()),
            ("displayname", n),
        ];
        if let Some(net) = &p[NETWORK] {
            params.push(("networkids", net.id.clone()));
        }
        let kp = keypair.get_untracked();
        if !kp.is_empty() {
            params.push(("keypairs", kp));
        }
        let ud = userdata.get_untracked();
        let ud_id = userdata_id.get_untracked();
        if !ud_id.is_empty() {
            params.push(("userdataid", ud_id));
            params.extend(detail_params(&details.get_untracked()));
        } else if !ud.is_empty() {
            params.push(("userdata", encode_userdata(&ud)));
        }
        password.set(None);
        launch.set(Launch::Deploying(0));
        spawn_local(async move {
            let r =
                api::run_job("deployVirtualMachine", &params, move |secs| launch.set(Launch::Deploying(secs))).await;
            let vm = match r {
                Ok(result) => result.get("virtualmachine").cloned().unwrap_or(Value::Null),
                Err(e) => return launch.set(Launch::Failed(fail(session, e))),
            };
            let pw = s(&vm, "password");
            if !pw.is_empty() {
                password.set(Some(pw.to_owned()));
            }
            let id = s(&vm, "id").to_owned();
            let mut state = s(&vm, "state").to_owned();
            // The deploy job may end before the VM runs: watch its state, for up to 10 minutes.
            for _ in 0..600 {
                if state == "Running" {
                    return launch.set(Launch::Running(s(&vm, "name").to_owned()));
                }
                if matches!(state.as_str(), "Error" | "Destroyed" | "Expunging") {
                    return launch.set(Launch::Failed(state));
                }
                launch.set(Launch::Watching(state.clone()));
                api::sleep(1000).await;
                match api::list("listVirtualMachines", "virtualmachine", &[("id", id.clone())]).await {
                    Ok((list, _)) => state = list.first().map(|v| s(v, "state").to_owned()).unwrap_or_default(),
                    Err(e) => return launch.set(Launch::Failed(fail(session, e))),
                }
            }
            launch.set(Launch::Failed(state));
        });
    };

    let reset = move |_| {
        picked.set([None, None, None, None]);
        name.set(String::new());
        keypair.set(String::new());
        userdata.set(String::new());
        userdata_id.set(String::new());
        details.set(Vec::new());
        detail_names.set(Vec::new());
        password.set(None);
        launch.set(Launch::Idle);
        step.set(ZONE);
    };

    let choice_list = move || {
        let at = step.get();
        match options.get() {
            None => view! { <p class="muted">{tr("common.loading")}</p> }.into_any(),
            Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            Some(Ok(list)) => {
                let none = (at == NETWORK).then(|| {
                    view! {
                        <button
                            class="choice"
                            class:selected=move || picked.with(|p| p[NETWORK].is_none())
                            on:click=move |_| pick(NETWORK, None)
                        >
                            <strong>{tr("deploy.no_network")}</strong>
                        </button>
                    }
                });
                let empty =
                    (list.is_empty() && at != NETWORK).then(|| view! { <p class="muted">{tr("deploy.empty")}</p> });
                let items = list
                    .into_iter()
                    .map(|c| {
                        let id = c.id.clone();
                        let chosen = c.clone();
                        view! {
                            <button
                                class="choice"
                                class:selected=move || {
                                    picked.with(|p| p[at].as_ref().is_some_and(|x| x.id == id))
                                }
                                on:click=move |_| pick(at, Some(chosen.clone()))
                            >
                                <strong>{c.label}</strong>
                                <span class="muted">{c.detail}</span>
                            </button>
                        }
                    })
                    .collect_view();
                view! { <div class="choices">{none} {items} {empty}</div> }.into_any()
            }
        }
    };

    let review = move || {
        let p = picked.get();
        let row = |key: &'static str, v: Option<&Choice>| {
            let v = v.map(|c| c.label.clone());
            view! {
                <tr>
                    <th>{tr(key)}</th>
                    <td>{move || v.clone().unwrap_or_else(|| text(lang.get(), "common.none").to_owned())}</td>
                </tr>
            }
        };
        view! {
            <table class="review">
                {row("deploy.zone", p[ZONE].as_ref())}
                {row("deploy.template", p[TEMPLATE].as_ref())}
                {row("deploy.offering", p[OFFERING].as_ref())}
                {row("deploy.network", p[NETWORK].as_ref())}
                <tr>
                    <th>{tr("deploy.name")}</th>
                    <td>{name.get()}</td>
                </tr>
                <tr>
                    <th>{tr("deploy.keypair")}</th>
                    <td id="review-keypair">
                        {move || {
                            let k = keypair.get();
                            if k.is_empty() { text(lang.get(), "common.none").to_owned() } else { k }
                        }}
                    </td>
                </tr>
                <tr>
                    <th>{tr("deploy.userdata")}</th>
                    <td id="review-userdata">
                        {move || {
                            let n = userdata.with(String::len);
                            if let Some(u) = chosen_stored() {
                                fill(lang.get(), "deploy.stored_named", &[&u.name])
                            } else if n == 0 {
                                text(lang.get(), "common.none").to_owned()
                            } else {
                                fill(lang.get(), "deploy.userdata_size", &[&n])
                            }
                        }}
                    </td>
                </tr>
            </table>
        }
    };

    let status = move || {
        let l = lang.get();
        match launch.get() {
            Launch::Idle => None,
            Launch::Deploying(secs) => Some(("busy", format!("{} {secs}s", text(l, "deploy.launching")))),
            Launch::Watching(st) => {
                Some(("busy", format!("{} ({})", text(l, "deploy.watching"), tr_dyn(l, "state.", &st))))
            }
            Launch::Running(n) => Some(("ok", format!("{} {n}", text(l, "deploy.running")))),
            Launch::Failed(e) => Some(("error", format!("{}: {e}", text(l, "job.failed")))),
        }
        .map(|(class, msg)| view! { <p id="deploy-status" class=class role="status">{msg}</p> })
    };
    let launched = move || !matches!(launch.get(), Launch::Idle | Launch::Failed(_));

    view! {
        <section class="deploy">
            <h1>{tr("deploy.title")}</h1>
            <ol class="steps">
                {STEPS
                    .iter()
                    .enumerate()
                    .map(|(i, key)| {
                        view! {
                            <li class:current=move || step.get() == i class:done=move || { step.get() > i }>
                                {tr(key)}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            <div class="card step">
                <h2>{move || text(lang.get(), STEPS[step.get()])}</h2>
                {move || match step.get() {
                    NAME => {
                        view! {
                            <label class="field">
                                <span>{tr("deploy.name")}</span>
                                <input
                                    id="vm-name"
                                    placeholder=tr("deploy.name_hint")
                                    prop:value=name
                                    on:input=move |ev| name.set(event_target_value(&ev))
                                />
                            </label>
                            <label class="field">
                                <span>{tr("deploy.keypair")}</span>
                                <select id="vm-keypair" prop:value=keypair on:change=move |ev| keypair.set(event_target_value(&ev))>
                                    <option value="">{tr("deploy.no_keypair")}</option>
                                    {move || {
                                        keypairs
                                            .get()
                                            .into_iter()
                                            .map(|k| {
                                                let v = k.clone();
                                                view! { <option value=v>{k}</option> }
                                            })
                                            .collect_view()
                                    }}
                                </select>
                            </label>
                            <label class="field">
                                <span>{tr("deploy.stored_userdata")}</span>
                                <select
                                    id="vm-userdataid"
                                    prop:value=userdata_id
                                    on:change=move |ev| {
                                        userdata_id.set(event_target_value(&ev));
                                        let names = chosen_stored().map(|u| u.params).unwrap_or_default();
                                        let names: Vec<String> = names.into_iter().take(DETAIL_KEYS.len()).collect();
                                        details.set(names.iter().map(|n| (n.clone(), String::new())).collect());
                                        detail_names.set(names);
                                    }
                                >
                                    <option value="">{tr("deploy.no_stored")}</option>
                                    {move || {
                                        stored
                                            .get()
                                            .into_iter()
                                            .map(|u| view! { <option value=u.id>{u.name}</option> })
                                            .collect_view()
                                    }}
                                </select>
                            </label>
                            {move || {
                                detail_names
                                    .get()
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, param)| {
                                        let value = details.with_untracked(|d| d.get(i).map(|(_, v)| v.clone()).unwrap_or_default());
                                        view! {
                                            <label class="field">
                                                <span>{param.clone()}</span>
                                                <input
                                                    id=format!("vm-ud-param-{param}")
                                                    prop:value=value
                                                    on:input=move |ev| {
                                                        let typed = event_target_value(&ev);
                                                        details.update(|d| {
                                                            if let Some(slot) = d.get_mut(i) {
                                                                slot.1 = typed;
                                                            }
                                                        });
                                                    }
                                                />
                                            </label>
                                        }
                                    })
                                    .collect_view()
                            }}
                            <label class="field wide">
                                <span>{tr("deploy.userdata")}</span>
                                <textarea
                                    id="vm-userdata"
                                    rows="6"
                                    spellcheck="false"
                                    placeholder="#cloud-config"
                                    disabled=move || !userdata_id.with(String::is_empty)
                                    prop:value=userdata
                                    on:input=move |ev| userdata.set(event_target_value(&ev))
                                ></textarea>
                                <span class="muted">{tr("deploy.userdata_hint")}</span>
                            </label>
                        }
                            .into_any()
                    }
                    REVIEW => review().into_any(),
                    _ => choice_list().into_any(),
                }}
                {status}
                {move || {
                    password
                        .get()
                        .map(|pw| {
                            view! {
                                <div class="secret" id="deploy-password">
                                    <strong>{tr("deploy.password")}</strong>
                                    <code class="password">{pw}</code>
                                    <p class="warning">{tr("deploy.password_once")}</p>
                                </div>
                            }
                        })
                }}
                <div class="buttons">
                    <Show when=move || { step.get() > ZONE && !launched() }>
                        <button id="back" on:click=move |_| step.update(|s| *s -= 1)>
                            {tr("common.back")}
                        </button>
                    </Show>
                    <Show when=move || { step.get() < REVIEW }>
                        <button id="next" class="primary" disabled=move || !can_next() on:click=move |_| step.update(|s| *s += 1)>
                            {tr("common.next")}
                        </button>
                    </Show>
                    <Show when=move || { step.get() == REVIEW && !launched() }>
                        <button id="launch" class="primary" on:click=start>
                            {tr("deploy.launch")}
                        </button>
                    </Show>
                    <Show when=move || matches!(launch.get(), Launch::Running(_))>
                        <button on:click=reset>{tr("deploy.another")}</button>
                        <a href="/client/instances">{tr("deploy.to_list")}</a>
                    </Show>
                </div>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::{DETAIL_KEYS, detail_params, encode_userdata, param_names};

    #[test]
    fn stored_userdata_variables_become_userdatadetails() {
        assert_eq!(param_names(" role, ,site,"), ["role", "site"]);
        assert!(param_names("").is_empty());
        let values = [("role".to_owned(), "web".to_owned()), ("site".to_owned(), String::new())];
        assert_eq!(
            detail_params(&values),
            [("userdatadetails[0].key", "role".to_owned()), ("userdatadetails[0].value", "web".to_owned())]
        );
        for (i, (k, v)) in DETAIL_KEYS.iter().enumerate() {
            assert_eq!(
                (*k, *v),
                (format!("userdatadetails[{i}].key").as_str(), format!("userdatadetails[{i}].value").as_str())
            );
        }
    }

    #[test]
    fn userdata_is_utf8_base64() {
        assert_eq!(encode_userdata("#!/bin/sh\n"), "IyEvYmluL3NoCg==");
        // Not Latin-1: each character's UTF-8 bytes.
        assert_eq!(encode_userdata("é中"), "w6nkuK0=");
    }
}
