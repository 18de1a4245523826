//! Stored userdata: register a script (typed as plain text, sent base64-encoded) with the
//! names of the variables it declares, list and delete it (the server refuses while a
//! template or an instance uses it), and link it to a template or unlink it.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, s};
use crate::deploy::encode_userdata;
use crate::i18n::{I18n, Lang, fill, tr};
use crate::infra::{Col, Field, FormError, FormFooter, FormMessage, Listing, set_error};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.userdata", "User data", "用户数据"),
    ("ud.title", "User data", "用户数据"),
    ("ud.name", "Name", "名称"),
    ("ud.id", "ID", "ID"),
    ("ud.params", "Parameters", "参数"),
    ("ud.account", "Account", "账户"),
    ("ud.register", "Register user data", "注册用户数据"),
    ("ud.register_submit", "Register", "注册"),
    ("ud.script", "Script", "脚本"),
    (
        "ud.script_hint",
        "Plain text such as a cloud-init script; it is sent base64-encoded.",
        "纯文本，例如 cloud-init 脚本；发送时以 base64 编码。",
    ),
    ("ud.params_hint", "Comma-separated variable names, optional", "以逗号分隔的变量名，可选"),
    ("ud.link", "Link to a template", "关联到模板"),
    ("ud.template", "Template", "模板"),
    ("ud.userdata", "User data", "用户数据"),
    ("ud.unlink_choice", "None (unlink)", "无（取消关联）"),
    ("ud.policy", "Override policy", "覆盖策略"),
    ("ud.policy.ALLOWOVERRIDE", "Allow override", "允许覆盖"),
    ("ud.policy.APPEND", "Append", "追加"),
    ("ud.policy.DENYOVERRIDE", "Deny override", "禁止覆盖"),
    ("ud.link_submit", "Apply", "应用"),
    ("ud.linked", "{0} is linked to {1} ({2}).", "{0} 已关联到 {1}（{2}）。"),
    ("ud.unlinked", "{0} has no user data now.", "{0} 现已不关联用户数据。"),
];

/// CloudStack's override policies of a template's linked userdata, the default first.
pub const POLICIES: [&str; 3] = ["ALLOWOVERRIDE", "APPEND", "DENYOVERRIDE"];

const COLS: &[Col] = &[
    ("ud.name", |v, _| s(v, "name").to_owned()),
    ("ud.id", |v, _| s(v, "id").to_owned()),
    ("ud.params", |v, _| s(v, "params").to_owned()),
    ("ud.account", |v, _| s(v, "account").to_owned()),
];

/// A policy's words in `l` ("Deny override"); an unknown one as the server gave it.
pub fn policy_text(l: Lang, policy: &str) -> String {
    crate::i18n::tr_dyn(l, "ud.policy.", policy)
}

#[component]
pub fn UserData() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let reload = RwSignal::new(0u32);

    let name = RwSignal::new(String::new());
    let script = RwSignal::new(String::new());
    let params = RwSignal::new(String::new());
    let reg_error: FormError = RwSignal::new(None);
    let reg_busy = RwSignal::new(false);
    let reg_done = RwSignal::new(None::<String>);
    let register = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        reg_error.set(None);
        reg_done.set(None);
        reg_busy.set(true);
        let n = name.get_untracked().trim().to_owned();
        let mut p = vec![("name", n.clone()), ("userdata", encode_userdata(&script.get_untracked()))];
        let declared = params.get_untracked().trim().to_owned();
        if !declared.is_empty() {
            p.push(("params", declared));
        }
        spawn_local(async move {
            match api::call("registerUserData", &p).await {
                Ok(_) => {
                    reg_done.set(Some(n));
                    name.set(String::new());
                    script.set(String::new());
                    params.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(reg_error, fail(session, e), &["name", "userdata", "params"]),
            }
            reg_busy.set(false);
        });
    };
    let script_error =
        move || reg_error.with(|e| e.as_ref().filter(|(f, _)| *f == Some("userdata")).map(|(_, t)| t.clone()));

    // What the link form offers: templates the caller may deploy (the server refuses one it
    // may not change), and its stored userdata
    // (both re-read when a userdata is registered or deleted).
    let templates = RwSignal::new(Vec::<(String, String)>::new());
    let stored = RwSignal::new(Vec::<(String, String)>::new());
    Effect::new(move |_| {
        reload.track();
        spawn_local(async move {
            let p = [("templatefilter", "executable".to_owned())];
            if let Ok((list, _)) = api::list("listTemplates", "template", &p).await {
                let mut seen = Vec::<(String, String)>::new();
                // A template has a row per zone; it is linked as one.
                for t in &list {
                    if !seen.iter().any(|(id, _)| id == s(t, "id")) {
                        seen.push((s(t, "id").to_owned(), s(t, "name").to_owned()));
                    }
                }
                templates.set(seen);
            }
            if let Ok((list, _)) = api::list("listUserData", "userdata", &[("listall", "true".to_owned())]).await {
                stored.set(list.iter().map(|u| (s(u, "id").to_owned(), s(u, "name").to_owned())).collect());
            }
        });
    });
    let template = RwSignal::new(String::new());
    let linked = RwSignal::new(String::new());
    let policy = RwSignal::new(POLICIES[0].to_owned());
    let link_error: FormError = RwSignal::new(None);
    let link_busy = RwSignal::new(false);
    let link_done = RwSignal::new(None::<String>);
    let link = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        link_error.set(None);
        link_done.set(None);
        let t = template.get_untracked();
        if t.is_empty() {
            return;
        }
        link_busy.set(true);
        let mut p = vec![("templateid", t)];
        let u = linked.get_untracked();
        if !u.is_empty() {
            p.push(("userdataid", u));
            p.push(("userdatapolicy", policy.get_untracked()));
        }
        spawn_local(async move {
            match api::call("linkUserDataToTemplate", &p).await {
                Ok(reply) => {
                    let t = reply.get("template").cloned().unwrap_or(reply);
                    let l = lang.get_untracked();
                    let said = if s(&t, "userdataid").is_empty() {
                        fill(l, "ud.unlinked", &[&s(&t, "name")])
                    } else {
                        let how = policy_text(l, s(&t, "userdatapolicy"));
                        fill(l, "ud.linked", &[&s(&t, "userdataname"), &s(&t, "name"), &how])
                    };
                    link_done.set(Some(said));
                }
                Err(e) => set_error(link_error, fail(session, e), &["templateid", "userdataid", "userdatapolicy"]),
            }
            link_busy.set(false);
        });
    };
    // The first template is chosen for the user once the list comes.
    Effect::new(move |_| {
        if template.with_untracked(String::is_empty)
            && let Some((id, _)) = templates.with(|t| t.first().cloned())
        {
            template.set(id);
        }
    });

    let options = |list: RwSignal<Vec<(String, String)>>| {
        move || list.get().into_iter().map(|(id, n)| view! { <option value=id>{n}</option> }).collect_view()
    };

    view! {
        <section class="userdata">
            <h1>{tr("ud.title")}</h1>
            <form class="card inline-form" id="ud-register" on:submit=register>
                <h2>{tr("ud.register")}</h2>
                <Field form="ud-register" param="name" label="ud.name" value=name error=reg_error />
                <label class="field wide" class:invalid=move || script_error().is_some()>
                    <span>{tr("ud.script")}</span>
                    <textarea
                        id="ud-register-userdata"
                        name="userdata"
                        rows="6"
                        spellcheck="false"
                        placeholder="#cloud-config"
                        prop:value=script
                        on:input=move |ev| script.set(event_target_value(&ev))
                    ></textarea>
                    <span class="muted">{tr("ud.script_hint")}</span>
                    <span class="field-error" role="alert">
                        {script_error}
                    </span>
                </label>
                <Field form="ud-register" param="params" label="ud.params" value=params error=reg_error />
                <span class="muted">{tr("ud.params_hint")}</span>
                <FormFooter error=reg_error done=reg_done busy=reg_busy submit="ud.register_submit" />
            </form>
            <form class="card inline-form" id="ud-link" on:submit=link>
                <h2>{tr("ud.link")}</h2>
                <label class="field">
                    <span>{tr("ud.template")}</span>
                    <select id="ud-link-template" prop:value=template on:change=move |ev| template.set(event_target_value(&ev))>
                        {options(templates)}
                    </select>
                </label>
                <label class="field">
                    <span>{tr("ud.userdata")}</span>
                    <select id="ud-link-userdata" prop:value=linked on:change=move |ev| linked.set(event_target_value(&ev))>
                        <option value="">{tr("ud.unlink_choice")}</option>
                        {options(stored)}
                    </select>
                </label>
                <label class="field">
                    <span>{tr("ud.policy")}</span>
                    <select
                        id="ud-link-policy"
                        prop:value=policy
                        disabled=move || linked.with(String::is_empty)
                        on:change=move |ev| policy.set(event_target_value(&ev))
                    >
                        {POLICIES
                            .iter()
                            .map(|p| view! { <option value=*p>{move || policy_text(lang.get(), p)}</option> })
                            .collect_view()}
                    </select>
                </label>
                <FormMessage error=link_error />
                <p class="ok" role="status" id="ud-link-done">
                    {move || link_done.get()}
                </p>
                <button type="submit" class="primary" disabled=link_busy>
                    {tr("ud.link_submit")}
                </button>
            </form>
            <Listing
                id="userdata"
                command="listUserData"
                object="userdata"
                columns=COLS
                params=&[("listall", "true")]
                delete="deleteUserData"
                reload=reload
            />
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_has_words() {
        for p in POLICIES {
            let key = format!("ud.policy.{p}");
            assert!(STRINGS.iter().any(|(k, _, _)| *k == key), "{key}");
        }
        assert_eq!(policy_text(Lang::Zh, "DENYOVERRIDE"), "禁止覆盖");
        assert_eq!(policy_text(Lang::En, "SOMETHING"), "SOMETHING");
    }
}
