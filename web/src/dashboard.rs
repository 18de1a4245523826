//! Counts per zone: hosts, instances, running instances. Each count is one call with
//! `pagesize=1`, read from the list's total, so the page costs the same at any scale.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiResult, s};
use crate::i18n::tr;
use crate::{SessionCtx, fail};

#[derive(Debug, Clone, PartialEq)]
struct ZoneRow {
    name: String,
    network_type: String,
    allocation: String,
    /// `None` where the caller may not see hosts (not an admin).
    hosts: Option<u64>,
    vms: u64,
    running: u64,
}

async fn count(command: &str, object: &str, mut params: Vec<(&str, String)>) -> ApiResult<u64> {
    params.push(("page", "1".into()));
    params.push(("pagesize", "1".into()));
    Ok(api::list(command, object, &params).await?.1)
}

async fn gather() -> ApiResult<Vec<ZoneRow>> {
    let (zones, _) = api::list("listZones", "zone", &[]).await?;
    let mut rows = Vec::with_capacity(zones.len());
    for z in &zones {
        let id = s(z, "id").to_owned();
        let vm = |state: Option<&str>| {
            let mut p = vec![("zoneid", id.clone()), ("listall", "true".to_owned())];
            if let Some(st) = state {
                p.push(("state", st.to_owned()));
            }
            p
        };
        // Only admins may list hosts; the refusal comes as a 401 like an ended session,
        // so it is not passed on (an ended session fails the next call anyway).
        let hosts = count("listHosts", "host", vec![("zoneid", id.clone())]).await.ok();
        rows.push(ZoneRow {
            name: s(z, "name").to_owned(),
            network_type: s(z, "networktype").to_owned(),
            allocation: s(z, "allocationstate").to_owned(),
            hosts,
            vms: count("listVirtualMachines", "virtualmachine", vm(None)).await?,
            running: count("listVirtualMachines", "virtualmachine", vm(Some("Running"))).await?,
        });
    }
    Ok(rows)
}

fn opt(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "—".into())
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let session = expect_context::<SessionCtx>();
    let rows = RwSignal::new(None::<Result<Vec<ZoneRow>, String>>);
    let load = move || {
        spawn_local(async move {
            let r = gather().await.map_err(|e| fail(session, e));
            rows.set(Some(r));
        })
    };
    load();
    view! {
        <section class="dashboard">
            <div class="toolbar">
                <h1>{tr("dash.title")}</h1>
                <button on:click=move |_| load()>{tr("common.refresh")}</button>
            </div>
            {move || match rows.get() {
                None => view! { <p class="muted">{tr("common.loading")}</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Some(Ok(rows)) if rows.is_empty() => {
                    view! { <p class="muted">{tr("dash.no_zones")}</p> }.into_any()
                }
                Some(Ok(rows)) => {
                    let hosts: Option<u64> = rows.iter().map(|r| r.hosts).sum();
                    let vms: u64 = rows.iter().map(|r| r.vms).sum();
                    let running: u64 = rows.iter().map(|r| r.running).sum();
                    view! {
                        <div class="cards">
                            <div class="stat">
                                <span class="n">{rows.len()}</span>
                                <span>{tr("dash.zones")}</span>
                            </div>
                            <div class="stat">
                                <span class="n">{opt(hosts)}</span>
                                <span>{tr("dash.hosts")}</span>
                            </div>
                            <div class="stat">
                                <span class="n">{vms}</span>
                                <span>{tr("dash.instances")}</span>
                            </div>
                            <div class="stat">
                                <span class="n">{running}</span>
                                <span>{tr("dash.running")}</span>
                            </div>
                        </div>
                        <table class="zones">
                            <thead>
                                <tr>
                                    <th>{tr("dash.zone")}</th>
                                    <th>{tr("dash.network_type")}</th>
                                    <th>{tr("dash.allocation")}</th>
                                    <th class="num">{tr("dash.hosts")}</th>
                                    <th class="num">{tr("dash.instances")}</th>
                                    <th class="num">{tr("dash.running")}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {rows
                                    .into_iter()
                                    .map(|r| {
                                        view! {
                                            <tr>
                                                <td>{r.name}</td>
                                                <td>{r.network_type}</td>
                                                <td>{r.allocation}</td>
                                                <td class="num">{opt(r.hosts)}</td>
                                                <td class="num">{r.vms}</td>
                                                <td class="num">{r.running}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
            <crate::overview::Overview />
        </section>
    }
}
