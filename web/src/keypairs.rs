//! The caller's SSH key pairs: create one (its private key shown once, to download),
//! register a public key, delete by name.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, s};
use crate::i18n::{I18n, fill, text, tr};
use crate::infra::{Col, Field, FormError, FormFooter, FormMessage, Listing, set_error};
use crate::{SessionCtx, fail};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav.keypairs", "Key pairs", "SSH 密钥对"),
    ("kp.title", "SSH key pairs", "SSH 密钥对"),
    ("kp.name", "Name", "名称"),
    ("kp.fingerprint", "Fingerprint", "指纹"),
    ("kp.account", "Account", "账户"),
    ("kp.create", "Create a key pair", "创建密钥对"),
    ("kp.create_submit", "Create", "创建"),
    ("kp.register", "Register a public key", "注册公钥"),
    ("kp.register_submit", "Register", "注册"),
    ("kp.publickey", "Public key", "公钥"),
    ("kp.publickey_hint", "ssh-ed25519 AAAA… or ssh-rsa AAAA…", "ssh-ed25519 AAAA… 或 ssh-rsa AAAA…"),
    ("kp.private_of", "Private key of {0}", "{0} 的私钥"),
    (
        "kp.private_once",
        "This private key is shown only now and is not kept by the server. Download it or copy it before closing.",
        "此私钥仅显示这一次，服务器不会保存。请在关闭前下载或复制。",
    ),
    ("kp.download", "Download {0}.pem", "下载 {0}.pem"),
    ("kp.close", "I have saved it", "我已保存"),
    ("kp.delete", "Delete", "删除"),
    (
        "kp.confirm_delete",
        "Delete the key pair {0}? Instances that have it keep it.",
        "确定删除密钥对 {0}？已使用它的实例仍保留该公钥。",
    ),
    ("kp.deleted", "Deleted {0}.", "已删除 {0}。"),
];

const COLS: &[Col] = &[
    ("kp.name", |v, _| s(v, "name").to_owned()),
    ("kp.fingerprint", |v, _| s(v, "fingerprint").to_owned()),
    ("kp.account", |v, _| s(v, "account").to_owned()),
];

/// A key pair just created: its name and private key, until the user closes it.
#[derive(Clone, PartialEq)]
struct Created {
    name: String,
    fingerprint: String,
    private_key: String,
}

/// A `data:` address holding the PEM, for a download link that needs no object URL to free.
fn pem_href(pem: &str) -> String {
    format!("data:application/x-pem-file;charset=utf-8,{}", String::from(js_sys::encode_uri_component(pem)))
}

#[component]
pub fn KeyPairs() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let reload = RwSignal::new(0u32);

    let new_name = RwSignal::new(String::new());
    let create_error: FormError = RwSignal::new(None);
    let create_busy = RwSignal::new(false);
    let create_done = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<Created>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create_error.set(None);
        created.set(None);
        create_busy.set(true);
        let name = new_name.get_untracked().trim().to_owned();
        spawn_local(async move {
            match api::call("createSSHKeyPair", &[("name", name)]).await {
                Ok(reply) => {
                    let kp = reply.get("keypair").cloned().unwrap_or(reply);
                    let name_of = |v: &Value| s(v, "name").to_owned();
                    created.set(Some(Created {
                        name: s(&kp, "name").to_owned(),
                        fingerprint: s(&kp, "fingerprint").to_owned(),
                        private_key: s(&kp, "privatekey").to_owned(),
                    }));
                    create_done.set(Some(name_of(&kp)));
                    new_name.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(create_error, fail(session, e), &["name"]),
            }
            create_busy.set(false);
        });
    };

    let reg_name = RwSignal::new(String::new());
    let public_key = RwSignal::new(String::new());
    let reg_error: FormError = RwSignal::new(None);
    let reg_busy = RwSignal::new(false);
    let reg_done = RwSignal::new(None::<String>);
    let register = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        reg_error.set(None);
        reg_done.set(None);
        reg_busy.set(true);
        let name = reg_name.get_untracked().trim().to_owned();
        let key = public_key.get_untracked().trim().to_owned();
        spawn_local(async move {
            match api::call("registerSSHKeyPair", &[("name", name.clone()), ("publickey", key)]).await {
                Ok(_) => {
                    reg_done.set(Some(name));
                    reg_name.set(String::new());
                    public_key.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(reg_error, fail(session, e), &["name", "publickey"]),
            }
            reg_busy.set(false);
        });
    };
    let key_error =
        move || reg_error.with(|e| e.as_ref().filter(|(f, _)| *f == Some("publickey")).map(|(_, t)| t.clone()));

    let list_error: FormError = RwSignal::new(None);
    let deleted = RwSignal::new(None::<String>);
    let remove = move |name: String| {
        let question = fill(lang.get_untracked(), "kp.confirm_delete", &[&name]);
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        list_error.set(None);
        deleted.set(None);
        spawn_local(async move {
            match api::call("deleteSSHKeyPair", &[("name", name.clone())]).await {
                Ok(_) => {
                    deleted.set(Some(name));
                    reload.update(|r| *r += 1);
                }
                Err(e) => set_error(list_error, fail(session, e), &[]),
            }
        });
    };
    let actions = Callback::new(move |v: Value| {
        let name = s(&v, "name").to_owned();
        view! {
            <button class="act act-delete-keypair" on:click=move |_| remove(name.clone())>
                {tr("kp.delete")}
            </button>
        }
        .into_any()
    });

    let private_box = move || {
        created.get().map(|c| {
            let href = pem_href(&c.private_key);
            let file = format!("{}.pem", c.name);
            let (title_name, button_name) = (c.name.clone(), c.name.clone());
            view! {
                <div class="card private-key" id="kp-private" data-name=c.name.clone()>
                    <h2>{move || fill(lang.get(), "kp.private_of", &[&title_name])}</h2>
                    <p class="warning" role="alert">{tr("kp.private_once")}</p>
                    <p class="muted">
                        {tr("kp.fingerprint")} ": " <code id="kp-private-fingerprint">{c.fingerprint}</code>
                    </p>
                    <textarea id="kp-private-key" readonly rows="12" spellcheck="false" prop:value=c.private_key></textarea>
                    <div class="buttons">
                        <a id="kp-download" class="button primary" href=href download=file>
                            {move || fill(lang.get(), "kp.download", &[&button_name])}
                        </a>
                        <button id="kp-private-close" on:click=move |_| created.set(None)>
                            {tr("kp.close")}
                        </button>
                    </div>
                </div>
            }
        })
    };

    view! {
        <section class="keypairs">
            <h1>{tr("kp.title")}</h1>
            <form class="card inline-form" id="kp-create" on:submit=create>
                <h2>{tr("kp.create")}</h2>
                <Field form="kp-create" param="name" label="kp.name" value=new_name error=create_error />
                <FormFooter error=create_error done=create_done busy=create_busy submit="kp.create_submit" />
            </form>
            {private_box}
            <form class="card inline-form" id="kp-register" on:submit=register>
                <h2>{tr("kp.register")}</h2>
                <Field form="kp-register" param="name" label="kp.name" value=reg_name error=reg_error />
                <label class="field wide" class:invalid=move || key_error().is_some()>
                    <span>{tr("kp.publickey")}</span>
                    <textarea
                        id="kp-register-publickey"
                        name="publickey"
                        rows="3"
                        spellcheck="false"
                        placeholder=move || text(lang.get(), "kp.publickey_hint")
                        prop:value=public_key
                        on:input=move |ev| public_key.set(event_target_value(&ev))
                    ></textarea>
                    <span class="field-error" role="alert">
                        {key_error}
                    </span>
                </label>
                <FormFooter error=reg_error done=reg_done busy=reg_busy submit="kp.register_submit" />
            </form>
            <FormMessage error=list_error />
            <p class="ok" role="status" id="kp-deleted">
                {move || deleted.get().map(|n| fill(lang.get(), "kp.deleted", &[&n]))}
            </p>
            <Listing id="keypairs" command="listSSHKeyPairs" object="sshkeypair" columns=COLS reload=reload actions=actions />
        </section>
    }
}
