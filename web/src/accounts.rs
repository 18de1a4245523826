//! Accounts (one server-side page at a time) and the users of the chosen account: create,
//! disable, enable, delete, change a password, and generate API keys.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, Lang, fill, text, tr, tr_dyn};
use crate::infra::Pager;
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.accounts", "Accounts", "账户"),
    ("acct.title", "Accounts", "账户"),
    ("acct.add", "Add account", "添加账户"),
    ("acct.name", "Account", "账户"),
    ("acct.type", "Type", "类型"),
    ("acct.domain", "Domain", "域"),
    ("acct.state", "State", "状态"),
    ("acct.actions", "Actions", "操作"),
    ("acct.users", "Users", "用户"),
    ("acct.disable", "Disable", "禁用"),
    ("acct.enable", "Enable", "启用"),
    ("acct.delete", "Delete", "删除"),
    ("acct.confirm_delete", "Delete this account and all its users?", "确定删除此账户及其所有用户？"),
    ("acct.confirm_delete_user", "Delete this user?", "确定删除此用户？"),
    ("acct.count", "{0} accounts", "共 {0} 个账户"),
    ("acct.none", "No accounts.", "没有账户。"),
    ("acct.type_user", "User", "普通用户"),
    ("acct.type_admin", "Admin", "管理员"),
    ("acct.username", "Username", "用户名"),
    ("acct.password", "Password", "密码"),
    ("acct.email", "Email", "电子邮件"),
    ("acct.firstname", "First name", "名"),
    ("acct.lastname", "Last name", "姓"),
    ("acct.account_name", "Account name (default: the username)", "账户名（默认与用户名相同）"),
    ("acct.create", "Create", "创建"),
    ("acct.cancel", "Cancel", "取消"),
    ("acct.users_of", "Users of {0}", "{0} 的用户"),
    ("acct.add_user", "Add user", "添加用户"),
    ("acct.apikey", "API key", "API 密钥"),
    ("acct.secretkey", "Secret key", "私钥"),
    ("acct.gen_keys", "Generate keys", "生成密钥"),
    ("acct.change_pw", "Change password", "修改密码"),
    ("acct.new_pw", "New password for {0}", "{0} 的新密码"),
    ("acct.save", "Save", "保存"),
    ("acct.keys_of", "Keys of {0}", "{0} 的密钥"),
    ("acct.keys_note", "Keep the secret key safe: it signs API requests.", "请妥善保管私钥：它用于签名 API 请求。"),
    ("acct.no_users", "No users.", "没有用户。"),
    ("acct.done", "{0}: done", "{0}：完成"),
    ("acct.failed", "{0}: failed — {1}", "{0}：失败 — {1}"),
    ("acct.running", "{0}: running… {1}s", "{0}：执行中… {1} 秒"),
    ("acct.pw_changed", "Password changed", "密码已修改"),
    ("acct.created", "Created", "已创建"),
    ("acct.role", "Role", "角色"),
    ("acct.state.enabled", "Enabled", "已启用"),
    ("acct.state.disabled", "Disabled", "已禁用"),
    ("acct.state.locked", "Locked", "已锁定"),
];

const PAGE_SIZE: u64 = 20;

/// The outcome line of the last action on this page.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Idle,
    Running(&'static str, u32),
    Done(&'static str),
    Failed(&'static str, String),
}

fn status_text(l: Lang, st: &Status) -> String {
    match st {
        Status::Idle => String::new(),
        Status::Running(k, secs) => fill(l, "acct.running", &[&text(l, k), secs]),
        Status::Done(k) => fill(l, "acct.done", &[&text(l, k)]),
        Status::Failed(k, e) => fill(l, "acct.failed", &[&text(l, k), e]),
    }
}

/// Runs one command (polling its job when `is_async`) and reports through `status`.
async fn perform(
    session: SessionCtx,
    status: RwSignal<Status>,
    label: &'static str,
    command: &'static str,
    is_async: bool,
    params: Vec<(&'static str, String)>,
) -> Option<Value> {
    status.set(Status::Running(label, 0));
    let r = if is_async {
        api::run_job(command, &params, move |secs| status.set(Status::Running(label, secs))).await
    } else {
        api::call(command, &params).await
    };
    match r {
        Ok(v) => {
            status.set(Status::Done(label));
            Some(v)
        }
        Err(e) => {
            status.set(Status::Failed(label, fail(session, e)));
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Account {
    id: String,
    name: String,
    role: String,
    domain: String,
    domain_id: String,
    state: String,
}

#[derive(Debug, Clone, PartialEq)]
struct User {
    id: String,
    username: String,
    name: String,
    email: String,
    state: String,
    apikey: String,
}

fn field(label: &'static str, id: &'static str, kind: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label>
            {tr(label)}
            <input
                id=id
                type=kind
                prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </label>
    }
}

#[component]
pub fn Accounts() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let accounts = RwSignal::new(Vec::<Account>::new());
    let count = RwSignal::new(0u64);
    let page = RwSignal::new(1u64);
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(Status::Idle);
    let selected = RwSignal::new(None::<Account>);
    let generation = StoredValue::new(0u32);

    let load = move || {
        let params = vec![
            ("listall", "true".to_owned()),
            ("page", page.get_untracked().to_string()),
            ("pagesize", PAGE_SIZE.to_string()),
        ];
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        loading.set(true);
        spawn_local(async move {
            let r = api::list("listAccounts", "account", &params).await;
            if generation.get_value() != mine {
                return;
            }
            match r {
                Ok((items, n)) => {
                    let list: Vec<Account> = items
                        .iter()
                        .map(|a| Account {
                            id: s(a, "id").to_owned(),
                            name: s(a, "name").to_owned(),
                            role: s(a, "roletype").to_owned(),
                            domain: s(a, "domain").to_owned(),
                            domain_id: s(a, "domainid").to_owned(),
                            state: s(a, "state").to_owned(),
                        })
                        .collect();
                    // Keep the chosen account's row fresh (its state may have changed).
                    if let Some(cur) = selected.get_untracked()
                        && let Some(fresh) = list.iter().find(|a| a.id == cur.id)
                        && *fresh != cur
                    {
                        selected.set(Some(fresh.clone()));
                    }
                    accounts.set(list);
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
        load();
    });

    // The create-account form.
    let adding = RwSignal::new(false);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let first = RwSignal::new(String::new());
    let last = RwSignal::new(String::new());
    let account_name = RwSignal::new(String::new());
    let acct_type = RwSignal::new("0".to_owned());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut params = vec![
            ("username", username.get_untracked()),
            ("password", password.get_untracked()),
            ("email", email.get_untracked()),
            ("firstname", first.get_untracked()),
            ("lastname", last.get_untracked()),
            ("accounttype", acct_type.get_untracked()),
        ];
        let name = account_name.get_untracked();
        if !name.trim().is_empty() {
            params.push(("account", name.trim().to_owned()));
        }
        spawn_local(async move {
            if perform(session, status, "acct.add", "createAccount", false, params).await.is_some() {
                adding.set(false);
                for f in [username, password, email, first, last, account_name] {
                    f.set(String::new());
                }
                load();
            }
        });
    };

    let act = move |a: Account, label: &'static str, command: &'static str, is_async: bool| {
        if command == "deleteAccount"
            && !window().confirm_with_message(text(lang.get_untracked(), "acct.confirm_delete")).unwrap_or(false)
        {
            return;
        }
        let mut params = vec![("id", a.id.clone())];
        if command == "disableAccount" {
            params.push(("lock", "false".to_owned()));
        }
        spawn_local(async move {
            if perform(session, status, label, command, is_async, params).await.is_some() {
                if command == "deleteAccount" && selected.with_untracked(|s| s.as_ref().is_some_and(|s| s.id == a.id)) {
                    selected.set(None);
                }
                load();
            }
        });
    };

    let pages = move || count.get().div_ceil(PAGE_SIZE).max(1);
    view! {
        <section class="accounts">
            <div class="toolbar">
                <h1>{tr("acct.title")}</h1>
                <button id="add-account" on:click=move |_| adding.update(|a| *a = !*a)>
                    {tr("acct.add")}
                </button>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
                <span class="muted">{move || fill(lang.get(), "acct.count", &[&count.get()])}</span>
            </div>
            <p id="acct-status" class="job" class:error=move || matches!(status.get(), Status::Failed(..))>
                {move || status.with(|st| status_text(lang.get(), st))}
            </p>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <Show when=move || adding.get()>
                <form class="card form" id="account-form" on:submit=create>
                    {field("acct.username", "acct-username", "text", username)}
                    {field("acct.password", "acct-password", "password", password)}
                    {field("acct.email", "acct-email", "email", email)}
                    {field("acct.firstname", "acct-firstname", "text", first)}
                    {field("acct.lastname", "acct-lastname", "text", last)}
                    {field("acct.account_name", "acct-name", "text", account_name)}
                    <label>
                        {tr("acct.type")}
                        <select id="acct-type" prop:value=acct_type on:change=move |ev| acct_type.set(event_target_value(&ev))>
                            <option value="0">{tr("acct.type_user")}</option>
                            <option value="1">{tr("acct.type_admin")}</option>
                        </select>
                    </label>
                    <div class="buttons">
                        <button type="submit" class="primary">
                            {tr("acct.create")}
                        </button>
                        <button type="button" on:click=move |_| adding.set(false)>
                            {tr("acct.cancel")}
                        </button>
                    </div>
                </form>
            </Show>
            <table class="acct-table" class:loading=loading>
                <thead>
                    <tr>
                        <th>{tr("acct.name")}</th>
                        <th>{tr("acct.role")}</th>
                        <th>{tr("acct.domain")}</th>
                        <th>{tr("acct.state")}</th>
                        <th>{tr("acct.actions")}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        accounts
                            .get()
                            .into_iter()
                            .map(|a| {
                                let enabled = a.state == "enabled";
                                let st = a.state.clone();
                                let (a1, a2, a3) = (a.clone(), a.clone(), a.clone());
                                let toggle = if enabled {
                                    view! {
                                        <button class="act act-disable" on:click=move |_| act(a2.clone(), "acct.disable", "disableAccount", true)>
                                            {tr("acct.disable")}
                                        </button>
                                    }
                                        .into_any()
                                } else {
                                    view! {
                                        <button class="act act-enable" on:click=move |_| act(a2.clone(), "acct.enable", "enableAccount", false)>
                                            {tr("acct.enable")}
                                        </button>
                                    }
                                        .into_any()
                                };
                                view! {
                                    <tr data-id=a.id.clone()>
                                        <td class="name">{a.name.clone()}</td>
                                        <td>{a.role.clone()}</td>
                                        <td>{a.domain.clone()}</td>
                                        <td>
                                            <span class=format!("state state-{}", a.state)>
                                                {move || tr_dyn(lang.get(), "acct.state.", &st)}
                                            </span>
                                        </td>
                                        <td>
                                            <div class="actions">
                                                <button class="act act-users" on:click=move |_| selected.set(Some(a1.clone()))>
                                                    {tr("acct.users")}
                                                </button>
                                                {toggle}
                                                <button class="act act-delete" on:click=move |_| act(a3.clone(), "acct.delete", "deleteAccount", true)>
                                                    {tr("acct.delete")}
                                                </button>
                                            </div>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || !loading.get() && accounts.with(Vec::is_empty) && error.with(Option::is_none)>
                <p class="muted">{tr("acct.none")}</p>
            </Show>
            <Pager page=page pages=Signal::derive(pages) />
            {move || selected.get().map(|a| view! { <Users account=a status=status /> })}
        </section>
    }
}

#[component]
fn Users(account: Account, status: RwSignal<Status>) -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let users = RwSignal::new(Vec::<User>::new());
    let keys = RwSignal::new(None::<(String, String, String)>);
    let pw_for = RwSignal::new(None::<User>);
    let new_pw = RwSignal::new(String::new());
    let acct = StoredValue::new(account.clone());

    let load = move || {
        let a = acct.get_value();
        spawn_local(async move {
            let params = [("account", a.name.clone()), ("domainid", a.domain_id.clone()), ("listall", "true".into())];
            match api::list("listUsers", "user", &params).await {
                Ok((items, _)) => users.set(
                    items
                        .iter()
                        .map(|u| User {
                            id: s(u, "id").to_owned(),
                            username: s(u, "username").to_owned(),
                            name: format!("{} {}", s(u, "firstname"), s(u, "lastname")).trim().to_owned(),
                            email: s(u, "email").to_owned(),
                            state: s(u, "state").to_owned(),
                            apikey: s(u, "apikey").to_owned(),
                        })
                        .collect(),
                ),
                Err(e) => status.set(Status::Failed("acct.users", fail(session, e))),
            }
        });
    };
    load();

    let adding = RwSignal::new(false);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let first = RwSignal::new(String::new());
    let last = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let a = acct.get_value();
        let params = vec![
            ("account", a.name.clone()),
            ("domainid", a.domain_id.clone()),
            ("username", username.get_untracked()),
            ("password", password.get_untracked()),
            ("email", email.get_untracked()),
            ("firstname", first.get_untracked()),
            ("lastname", last.get_untracked()),
        ];
        spawn_local(async move {
            if perform(session, status, "acct.add_user", "createUser", false, params).await.is_some() {
                adding.set(false);
                for f in [username, password, email, first, last] {
                    f.set(String::new());
                }
                load();
            }
        });
    };

    let act = move |u: User, label: &'static str, command: &'static str, is_async: bool| {
        if command == "deleteUser"
            && !window().confirm_with_message(text(lang.get_untracked(), "acct.confirm_delete_user")).unwrap_or(false)
        {
            return;
        }
        spawn_local(async move {
            let r = perform(session, status, label, command, is_async, vec![("id", u.id.clone())]).await;
            if let Some(v) = r
                && command == "registerUserKeys"
            {
                let k = v.get("userkeys").unwrap_or(&v);
                keys.set(Some((u.username.clone(), s(k, "apikey").to_owned(), s(k, "secretkey").to_owned())));
            }
            load();
        });
    };

    let save_pw = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(u) = pw_for.get_untracked() else { return };
        let params = vec![("id", u.id.clone()), ("password", new_pw.get_untracked())];
        spawn_local(async move {
            if perform(session, status, "acct.change_pw", "updateUser", false, params).await.is_some() {
                pw_for.set(None);
                new_pw.set(String::new());
            }
        });
    };

    view! {
        <div class="card users" id="users-panel">
            <div class="toolbar">
                <h2>{move || fill(lang.get(), "acct.users_of", &[&account.name])}</h2>
                <button id="add-user" on:click=move |_| adding.update(|a| *a = !*a)>
                    {tr("acct.add_user")}
                </button>
            </div>
            <Show when=move || adding.get()>
                <form class="form" id="user-form" on:submit=create>
                    {field("acct.username", "user-username", "text", username)}
                    {field("acct.password", "user-password", "password", password)}
                    {field("acct.email", "user-email", "email", email)}
                    {field("acct.firstname", "user-firstname", "text", first)}
                    {field("acct.lastname", "user-lastname", "text", last)}
                    <div class="buttons">
                        <button type="submit" class="primary">
                            {tr("acct.create")}
                        </button>
                        <button type="button" on:click=move |_| adding.set(false)>
                            {tr("acct.cancel")}
                        </button>
                    </div>
                </form>
            </Show>
            {move || {
                keys.get()
                    .map(|(who, api_key, secret)| {
                        view! {
                            <div class="keys" id="user-keys">
                                <h3>{move || fill(lang.get(), "acct.keys_of", &[&who])}</h3>
                                <dl>
                                    <dt>{tr("acct.apikey")}</dt>
                                    <dd>
                                        <code id="apikey">{api_key}</code>
                                    </dd>
                                    <dt>{tr("acct.secretkey")}</dt>
                                    <dd>
                                        <code id="secretkey">{secret}</code>
                                    </dd>
                                </dl>
                                <p class="muted">{tr("acct.keys_note")}</p>
                            </div>
                        }
                    })
            }}
            {move || {
                pw_for
                    .get()
                    .map(|u| {
                        view! {
                            <form class="form" id="password-form" on:submit=save_pw>
                                <label>
                                    {move || fill(lang.get(), "acct.new_pw", &[&u.username])}
                                    <input
                                        id="user-new-password"
                                        type="password"
                                        autocomplete="new-password"
                                        required
                                        prop:value=new_pw
                                        on:input=move |ev| new_pw.set(event_target_value(&ev))
                                    />
                                </label>
                                <div class="buttons">
                                    <button type="submit" class="primary">
                                        {tr("acct.save")}
                                    </button>
                                    <button type="button" on:click=move |_| pw_for.set(None)>
                                        {tr("acct.cancel")}
                                    </button>
                                </div>
                            </form>
                        }
                    })
            }}
            <table class="user-table">
                <thead>
                    <tr>
                        <th>{tr("acct.username")}</th>
                        <th>{tr("acct.firstname")}</th>
                        <th>{tr("acct.email")}</th>
                        <th>{tr("acct.state")}</th>
                        <th>{tr("acct.apikey")}</th>
                        <th>{tr("acct.actions")}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        users
                            .get()
                            .into_iter()
                            .map(|u| {
                                let enabled = u.state == "enabled";
                                let st = u.state.clone();
                                let (u1, u2, u3, u4) = (u.clone(), u.clone(), u.clone(), u.clone());
                                let toggle = if enabled {
                                    view! {
                                        <button class="act act-disable" on:click=move |_| act(u1.clone(), "acct.disable", "disableUser", true)>
                                            {tr("acct.disable")}
                                        </button>
                                    }
                                        .into_any()
                                } else {
                                    view! {
                                        <button class="act act-enable" on:click=move |_| act(u1.clone(), "acct.enable", "enableUser", false)>
                                            {tr("acct.enable")}
                                        </button>
                                    }
                                        .into_any()
                                };
                                view! {
                                    <tr data-id=u.id.clone()>
                                        <td class="name">{u.username.clone()}</td>
                                        <td>{u.name.clone()}</td>
                                        <td>{u.email.clone()}</td>
                                        <td>
                                            <span class=format!("state state-{}", u.state)>
                                                {move || tr_dyn(lang.get(), "acct.state.", &st)}
                                            </span>
                                        </td>
                                        <td>
                                            <code class="apikey">{u.apikey.clone()}</code>
                                        </td>
                                        <td>
                                            <div class="actions">
                                                <button class="act act-keys" title=tr("acct.gen_keys") on:click=move |_| act(u2.clone(), "acct.gen_keys", "registerUserKeys", false)>
                                                    {tr("acct.gen_keys")}
                                                </button>
                                                <button class="act act-password" on:click=move |_| pw_for.set(Some(u3.clone()))>
                                                    {tr("acct.change_pw")}
                                                </button>
                                                {toggle}
                                                <button class="act act-delete" on:click=move |_| act(u4.clone(), "acct.delete", "deleteUser", false)>
                                                    {tr("acct.delete")}
                                                </button>
                                            </div>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || users.with(Vec::is_empty)>
                <p class="muted">{tr("acct.no_users")}</p>
            </Show>
        </div>
    }
}
