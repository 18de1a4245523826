//! The wasmstack web console: a client-side rendered Leptos app, served by the server at
//! `/client/` and talking to `/client/api` with the session login.

mod accounts;
mod api;
mod branding;
mod dashboard;
mod deploy;
mod driver_form;
mod events;
mod i18n;
mod infra;
mod infra_forms;
mod instances;
mod keypairs;
mod networks;
mod offerings;
mod overview;
mod plugins;
mod public_ips;
mod templates;
mod userdata;
mod volumes;
mod zone_wizard;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use api::{ApiError, Session};
use branding::Branding;
use i18n::{I18n, Lang, tr};

/// Who is logged in; `None` shows the login page whatever the URL.
#[derive(Clone, Copy)]
pub struct SessionCtx {
    pub user: RwSignal<Option<Session>>,
    /// The server ended the session (timeout, logout elsewhere): the login page says so.
    pub expired: RwSignal<bool>,
    /// The password just logged in with, kept in memory only while it must be changed:
    /// updateUser asks for the current one, and the user has just typed it.
    pub typed_password: StoredValue<Option<String>>,
}

/// The text to show for a failed call; a call refused for want of a session logs out.
pub fn fail(session: SessionCtx, e: ApiError) -> String {
    if e.is_unauthorized() {
        api::drop_session();
        session.expired.set(true);
        session.user.set(None);
    }
    e.text
}

fn main() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let lang = RwSignal::new(i18n::saved_lang().unwrap_or(Lang::En));
    provide_context(I18n(lang));
    let session = SessionCtx {
        user: RwSignal::new(api::saved_session()),
        expired: RwSignal::new(false),
        typed_password: StoredValue::new(None),
    };
    provide_context(session);
    let brand = RwSignal::new(Branding::default());
    provide_context(brand);
    spawn_local(async move {
        let (b, raw) = branding::load().await;
        branding::apply(&b, &raw);
        if i18n::saved_lang().is_none() {
            lang.set(Lang::from_code(&b.default_language));
        }
        brand.set(b);
    });
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", if lang.get() == Lang::Zh { "zh-CN" } else { "en" });
        }
    });
    view! {
        <Router>
            <Show when=move || session.user.with(Option::is_some) fallback=|| view! { <Login /> }>
                <Shell />
            </Show>
        </Router>
    }
}

#[component]
fn LangSwitch() -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    view! {
        <label class="lang">
            <span class="sr">{tr("nav.language")}</span>
            <select
                prop:value=move || lang.get().code()
                on:change=move |ev| {
                    let l = Lang::from_code(&event_target_value(&ev));
                    i18n::save_lang(l);
                    lang.set(l);
                }
            >
                <option value="en">"English"</option>
                <option value="zh">"中文"</option>
            </select>
        </label>
    }
}

#[component]
fn Brand() -> impl IntoView {
    let brand = expect_context::<RwSignal<Branding>>();
    view! {
        <span class="brand">
            {move || {
                let url = brand.with(|b| b.logo_url.clone());
                (!url.is_empty()).then(|| view! { <img class="logo" src=url alt="" /> })
            }}
            <span class="product">{move || brand.with(|b| b.product_name.clone())}</span>
        </span>
    }
}

#[component]
fn Footer() -> impl IntoView {
    let brand = expect_context::<RwSignal<Branding>>();
    view! {
        <footer>
            <span>{move || brand.with(|b| b.footer.clone())}</span>
            {move || {
                brand
                    .with(|b| b.links.clone())
                    .into_iter()
                    .map(|l| view! { <a href=l.url>{l.label}</a> })
                    .collect_view()
            }}
        </footer>
    }
}

#[component]
fn Login() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let domain = RwSignal::new("/".to_owned());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let r = api::login(&username.get_untracked(), &password.get_untracked(), &domain.get_untracked()).await;
            busy.set(false);
            match r {
                Ok(s) => {
                    session.typed_password.set_value(s.must_change.then(|| password.get_untracked()));
                    session.expired.set(false);
                    session.user.set(Some(s));
                }
                Err(e) => error.set(Some(e.text)),
            }
        });
    };
    view! {
        <div class="login-page">
            <header class="nav">
                <Brand />
                <span class="spacer"></span>
                <LangSwitch />
            </header>
            <form class="card login" on:submit=submit>
                <h1>{tr("login.title")}</h1>
                <Show when=move || session.expired.get()>
                    <p class="muted">{tr("common.session_ended")}</p>
                </Show>
                <label>
                    {tr("login.username")}
                    <input
                        id="username"
                        autocomplete="username"
                        required
                        prop:value=username
                        on:input=move |ev| username.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    {tr("login.password")}
                    <input
                        id="password"
                        type="password"
                        autocomplete="current-password"
                        required
                        prop:value=password
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    {tr("login.domain")}
                    <input
                        id="domain"
                        prop:value=domain
                        placeholder=tr("login.domain_hint")
                        on:input=move |ev| domain.set(event_target_value(&ev))
                    />
                </label>
                <p class="error" role="alert">
                    {move || error.get()}
                </p>
                <button type="submit" class="primary" disabled=busy>
                    {move || if busy.get() { tr("login.busy")() } else { tr("login.submit")() }}
                </button>
            </form>
            <Footer />
        </div>
    }
}

#[component]
fn Shell() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let logout = move |_| {
        spawn_local(async move {
            api::logout().await;
            session.user.set(None);
        })
    };
    view! {
        <header class="nav">
            <Brand />
            <nav>
                <A href="/client/" exact=true>
                    {tr("nav.dashboard")}
                </A>
                <A href="/client/instances">{tr("nav.instances")}</A>
                <A href="/client/volumes">{tr("nav.volumes")}</A>
                <A href="/client/deploy">{tr("nav.deploy")}</A>
                <A href="/client/keypairs">{tr("nav.keypairs")}</A>
                <A href="/client/userdata">{tr("nav.userdata")}</A>
                <A href="/client/infra">{tr("nav.infra")}</A>
                <A href="/client/zone-wizard">{tr("nav.zone_wizard")}</A>
                <A href="/client/templates">{tr("nav.templates")}</A>
                <A href="/client/networks">{tr("nav.networks")}</A>
                <A href="/client/offerings">{tr("nav.offerings")}</A>
                <A href="/client/accounts">{tr("nav.accounts")}</A>
                <A href="/client/events">{tr("nav.events")}</A>
                <A href="/client/plugins">{tr("nav.plugins")}</A>
            </nav>
            <span class="spacer"></span>
            <LangSwitch />
            <span class="user">{move || session.user.with(|s| s.as_ref().map(|s| s.username.clone()))}</span>
            <button id="logout" class="link" on:click=logout>
                {tr("nav.logout")}
            </button>
        </header>
        <main>
            <Show
                when=move || session.user.with(|s| s.as_ref().is_some_and(|s| s.must_change))
                fallback=|| {
                    view! {
                        <Routes fallback=|| view! { <dashboard::Dashboard /> }>
                            <Route path=path!("/client") view=dashboard::Dashboard />
                            <Route path=path!("/client/instances") view=instances::Instances />
                            <Route path=path!("/client/volumes") view=volumes::Volumes />
                            <Route path=path!("/client/deploy") view=deploy::Deploy />
                            <Route path=path!("/client/keypairs") view=keypairs::KeyPairs />
                            <Route path=path!("/client/userdata") view=userdata::UserData />
                            <Route path=path!("/client/infra") view=infra::Infra />
                            <Route path=path!("/client/zone-wizard") view=zone_wizard::ZoneWizard />
                            <Route path=path!("/client/templates") view=templates::Templates />
                            <Route path=path!("/client/networks") view=networks::Networks />
                            <Route path=path!("/client/offerings") view=offerings::Offerings />
                            <Route path=path!("/client/accounts") view=accounts::Accounts />
                            <Route path=path!("/client/events") view=events::Events />
                            <Route path=path!("/client/plugins") view=plugins::Plugins />
                        </Routes>
                    }
                }
            >
                <ChangePassword />
            </Show>
        </main>
        <Footer />
    }
}

/// Shown instead of every page while the user still has a generated first password.
#[component]
fn ChangePassword() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let lang = expect_context::<I18n>().0;
    let current = RwSignal::new(session.typed_password.get_value().unwrap_or_default());
    let first = RwSignal::new(String::new());
    let second = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = first.get_untracked();
        if password != second.get_untracked() {
            error.set(Some(i18n::text(lang.get_untracked(), "pw.mismatch").to_owned()));
            return;
        }
        let Some(me) = session.user.get_untracked() else { return };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let params = [
                ("id", me.user_id.clone()),
                ("password", password.clone()),
                ("currentpassword", current.get_untracked()),
            ];
            // A new password ends the user's sessions, this one too: log in again with it.
            let r = match api::call("updateUser", &params).await {
                Ok(_) => api::login(&me.username, &password, &me.domain).await,
                Err(e) => Err(e),
            };
            busy.set(false);
            match r {
                Ok(fresh) => {
                    session.typed_password.set_value(None);
                    session.user.set(Some(fresh));
                }
                Err(e) => error.set(Some(fail(session, e))),
            }
        });
    };
    view! {
        <form class="card login" id="change-password" on:submit=submit>
            <h1>{tr("pw.title")}</h1>
            <p class="muted">{tr("pw.why")}</p>
            <label>
                {tr("pw.current")}
                <input
                    id="current-password"
                    type="password"
                    autocomplete="current-password"
                    required
                    prop:value=current
                    on:input=move |ev| current.set(event_target_value(&ev))
                />
            </label>
            <label>
                {tr("pw.new")}
                <input
                    id="new-password"
                    type="password"
                    autocomplete="new-password"
                    required
                    prop:value=first
                    on:input=move |ev| first.set(event_target_value(&ev))
                />
            </label>
            <label>
                {tr("pw.again")}
                <input
                    id="new-password-again"
                    type="password"
                    autocomplete="new-password"
                    required
                    prop:value=second
                    on:input=move |ev| second.set(event_target_value(&ev))
                />
            </label>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
            <button type="submit" class="primary" disabled=busy>
                {tr("pw.submit")}
            </button>
        </form>
    }
}
