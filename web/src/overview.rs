//! The dashboard's lower half: capacity per zone, alerts, running jobs and recent events.
//! Capacity is the server's listCapacity: CPU and memory allocated to running instances
//! against what the hosts offer (overcommit included), storage used against its size.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::{self, ApiResult, s};
use crate::i18n::{I18n, Lang, fill, text, tr};

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("ov.capacity", "Capacity", "容量"),
    ("ov.zone", "Zone", "区域"),
    ("ov.cpu", "CPU allocated", "已分配 CPU"),
    ("ov.memory", "Memory allocated", "已分配内存"),
    ("ov.primary", "Primary storage", "主存储"),
    ("ov.secondary", "Secondary storage", "二级存储"),
    ("ov.alerts", "Alerts", "告警"),
    ("ov.no_alerts", "No alerts.", "没有告警。"),
    ("ov.host_down", "Host {0} is {1}", "主机 {0} 状态为 {1}"),
    ("ov.pool_full", "Storage pool {0} is {1}% full", "存储池 {0} 已使用 {1}%"),
    ("ov.jobs", "Running jobs", "运行中的任务"),
    ("ov.no_jobs", "No job is running.", "没有运行中的任务。"),
    ("ov.job_line", "{0} — {1}, started {2}", "{0} — {1}，开始于 {2}"),
    ("ov.events", "Recent events", "最近事件"),
    ("ov.no_events", "No events.", "没有事件。"),
    ("ov.all_events", "All events", "全部事件"),
];

/// Pools fuller than this are an alert.
const FULL: f64 = 0.85;

#[derive(Debug, Clone, Default, PartialEq)]
struct Capacity {
    /// (used, total) in MHz, bytes, bytes and bytes.
    cpu: (u64, u64),
    memory: (u64, u64),
    primary: (u64, u64),
    secondary: (u64, u64),
}

#[derive(Debug, Clone, PartialEq)]
enum Alert {
    HostDown(String, String),
    PoolFull(String, u64),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Overview {
    /// Zone name → capacity; `None` where the caller may not see the infrastructure.
    capacity: Option<BTreeMap<String, Capacity>>,
    alerts: Vec<Alert>,
    jobs: Vec<Value>,
    events: Vec<Value>,
}

fn n(v: &Value, field: &str) -> u64 {
    match v.get(field) {
        Some(Value::Number(x)) => x.as_u64().unwrap_or(0),
        Some(Value::String(x)) => x.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Up to 500 of a zone-wide list: infrastructure lists are short.
async fn all(command: &str, object: &str) -> ApiResult<Vec<Value>> {
    Ok(api::list(command, object, &[("page", "1".into()), ("pagesize", "500".into())]).await?.0)
}

async fn infrastructure() -> ApiResult<(BTreeMap<String, Capacity>, Vec<Alert>)> {
    let hosts = all("listHosts", "host").await?;
    let pools = all("listStoragePools", "storagepool").await?;
    let mut zones = BTreeMap::<String, Capacity>::new();
    // One row per zone and type: 0 memory, 1 CPU, 2 primary storage, 6 secondary storage.
    for row in &all("listCapacity", "capacity").await? {
        let c = zones.entry(s(row, "zonename").to_owned()).or_default();
        let pair = (n(row, "capacityused"), n(row, "capacitytotal"));
        match n(row, "type") {
            0 => c.memory = pair,
            1 => c.cpu = pair,
            2 => c.primary = pair,
            6 => c.secondary = pair,
            _ => {}
        }
    }
    let mut alerts = Vec::new();
    for h in &hosts {
        if s(h, "state") != "Up" {
            alerts.push(Alert::HostDown(s(h, "name").to_owned(), s(h, "state").to_owned()));
        }
    }
    for p in &pools {
        let (used, total) = (n(p, "disksizeused"), n(p, "disksizetotal"));
        if total > 0 && used as f64 > total as f64 * FULL {
            alerts.push(Alert::PoolFull(s(p, "name").to_owned(), used * 100 / total));
        }
    }
    Ok((zones, alerts))
}

async fn gather() -> ApiResult<Overview> {
    // Only admins may see the infrastructure; others get the jobs and events.
    let (capacity, alerts) = match infrastructure().await {
        Ok((c, a)) => (Some(c), a),
        Err(_) => (None, Vec::new()),
    };
    let jobs = api::list(
        "listAsyncJobs",
        "asyncjobs",
        &[("listall", "true".into()), ("page", "1".into()), ("pagesize", "200".into())],
    )
    .await?
    .0
    .into_iter()
    .filter(|j| j.get("jobstatus").and_then(Value::as_u64) == Some(0))
    .collect();
    let events = api::list(
        "listEvents",
        "event",
        &[("listall", "true".into()), ("page", "1".into()), ("pagesize", "10".into())],
    )
    .await?
    .0;
    Ok(Overview { capacity, alerts, jobs, events })
}

fn bytes(b: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

fn usage((used, total): (u64, u64)) -> String {
    share((used, total), bytes)
}

/// "used / total (n%)" in the unit `unit` prints.
fn share((used, total): (u64, u64), unit: fn(u64) -> String) -> String {
    if total == 0 {
        return "—".into();
    }
    format!("{} / {} ({}%)", unit(used), unit(total), used * 100 / total)
}

fn mhz(v: u64) -> String {
    format!("{v} MHz")
}

fn alert_text(l: Lang, a: &Alert) -> String {
    match a {
        Alert::HostDown(name, state) => fill(l, "ov.host_down", &[name, state]),
        Alert::PoolFull(name, pct) => fill(l, "ov.pool_full", &[name, pct]),
    }
}

#[component]
pub fn Overview() -> impl IntoView {
    let lang = expect_context::<I18n>().0;
    let data = RwSignal::new(None::<Result<Overview, String>>);
    let alive = StoredValue::new(true);
    on_cleanup(move || alive.set_value(false));
    spawn_local(async move {
        // Refreshed while shown: the running jobs move on their own.
        while alive.try_get_value().unwrap_or(false) {
            let r = gather().await.map_err(|e| e.text);
            if !alive.try_get_value().unwrap_or(false) {
                break;
            }
            data.set(Some(r));
            api::sleep(3000).await;
        }
    });
    view! {
        <div class="overview">
            {move || match data.get() {
                None => view! { <p class="muted">{tr("common.loading")}</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error">{e}</p> }.into_any(),
                Some(Ok(o)) => {
                    let capacity = o.capacity.map(|zones| {
                        view! {
                            <h2>{tr("ov.capacity")}</h2>
                            <table class="capacity">
                                <thead>
                                    <tr>
                                        <th>{tr("ov.zone")}</th>
                                        <th class="num">{tr("ov.cpu")}</th>
                                        <th class="num">{tr("ov.memory")}</th>
                                        <th>{tr("ov.primary")}</th>
                                        <th>{tr("ov.secondary")}</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {zones
                                        .into_iter()
                                        .map(|(zone, c)| {
                                            view! {
                                                <tr>
                                                    <td>{zone}</td>
                                                    <td class="num">{share(c.cpu, mhz)}</td>
                                                    <td class="num">{usage(c.memory)}</td>
                                                    <td>{usage(c.primary)}</td>
                                                    <td>{usage(c.secondary)}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                    });
                    let alerts = o.alerts;
                    let no_alerts = alerts.is_empty();
                    let jobs = o.jobs;
                    let no_jobs = jobs.is_empty();
                    let events = o.events;
                    let no_events = events.is_empty();
                    view! {
                        {capacity}
                        <div class="panels">
                            <div class="card" id="alerts">
                                <h2>{tr("ov.alerts")}</h2>
                                <Show when=move || no_alerts>
                                    <p class="muted">{tr("ov.no_alerts")}</p>
                                </Show>
                                <ul>
                                    {alerts
                                        .into_iter()
                                        .map(|a| view! { <li class="error">{move || alert_text(lang.get(), &a)}</li> })
                                        .collect_view()}
                                </ul>
                            </div>
                            <div class="card" id="running-jobs">
                                <h2>{tr("ov.jobs")}</h2>
                                <Show when=move || no_jobs>
                                    <p class="muted">{tr("ov.no_jobs")}</p>
                                </Show>
                                <ul>
                                    {jobs
                                        .into_iter()
                                        .map(|j| {
                                            let cmd = s(&j, "cmd").rsplit('.').next().unwrap_or("").to_owned();
                                            let step = s(&j, "jobprocstatus").to_owned();
                                            let created = s(&j, "created").to_owned();
                                            view! {
                                                <li>
                                                    {move || {
                                                        let l = lang.get();
                                                        let step = if step.is_empty() { text(l, "job.running").to_owned() } else { step.clone() };
                                                        fill(l, "ov.job_line", &[&cmd, &step, &created])
                                                    }}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            </div>
                            <div class="card" id="recent-events">
                                <h2>{tr("ov.events")}</h2>
                                <Show when=move || no_events>
                                    <p class="muted">{tr("ov.no_events")}</p>
                                </Show>
                                <ul>
                                    {events
                                        .iter()
                                        .map(|e| {
                                            view! {
                                                <li>
                                                    <span class="muted">{s(e, "created").to_owned()}</span>
                                                    " "
                                                    <span class=format!("level level-{}", s(e, "level").to_ascii_lowercase())>
                                                        {s(e, "type").to_owned()}
                                                    </span>
                                                    " "
                                                    {s(e, "description").to_owned()}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                                <a href="/client/events">{tr("ov.all_events")}</a>
                            </div>
                        </div>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}
