//! listCapacity, and what listHosts says is allocated: CPU and memory as the allocator
//! counts them (instances holding a host, against the host's size times its cluster's
//! overcommit), primary storage from the pools, secondary storage from the image stores.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::InfraQuery;
use crate::cloud::infra::{self, HostRow, InfraFilter};
use crate::cloud::instances::{self as vms, Candidate};
use crate::cloud::storage::{self, StorageFilter};

use super::{Orchestrator, list, views};

/// CloudStack's capacity types that this server has numbers for.
const MEMORY: i32 = 0;
const CPU: i32 = 1;
const STORAGE: i32 = 2;
const STORAGE_ALLOCATED: i32 = 3;
const SECONDARY_STORAGE: i32 = 6;

fn type_name(kind: i32) -> &'static str {
    match kind {
        MEMORY => "MEMORY",
        CPU => "CPU",
        STORAGE => "STORAGE",
        STORAGE_ALLOCATED => "STORAGE_ALLOCATED",
        _ => "SECONDARY_STORAGE",
    }
}

/// Where a capacity is counted: a zone, a pod or a cluster, with names for the reply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    zone: (i64, String, String),
    pod: Option<(i64, String, String)>,
    cluster: Option<(i64, String, String)>,
}

/// How finely the reply is broken down: CloudStack gives a pod's or a cluster's own rows
/// when asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Zone,
    Pod,
    Cluster,
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    used: i64,
    allocated: i64,
    total: i64,
}

impl Tally {
    fn add(&mut self, used: i64, allocated: i64, total: i64) {
        self.used = self.used.saturating_add(used);
        self.allocated = self.allocated.saturating_add(allocated);
        self.total = self.total.saturating_add(total);
    }
}

/// A share as CloudStack prints it (`##.##`): "12.5", "0", "100".
fn percent(used: i64, total: i64) -> String {
    if total <= 0 {
        return "0".into();
    }
    let p = format!("{:.2}", used as f64 * 100.0 / total as f64);
    p.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn place(level: Level, zone: (i64, &str, &str), pod: (i64, &str, &str), cluster: (i64, &str, &str)) -> Place {
    let own = |(id, uuid, name): (i64, &str, &str)| (id, uuid.to_owned(), name.to_owned());
    Place {
        zone: own(zone),
        pod: (level != Level::Zone).then(|| own(pod)),
        cluster: (level == Level::Cluster).then(|| own(cluster)),
    }
}

fn host_place(level: Level, h: &HostRow) -> Place {
    place(
        level,
        (h.zone_id, &h.zone_uuid, &h.zone_name),
        (h.pod_id, &h.pod_uuid, &h.pod_name),
        (h.cluster_id, &h.cluster_uuid, &h.cluster_name),
    )
}

/// A host's load with `cpuallocated` and `memoryallocated` as listHosts shows them.
pub(super) fn with_load(mut view: Map<String, Value>, load: Option<&Candidate>) -> Map<String, Value> {
    if let Some(l) = load {
        view.insert("cpuallocated".into(), format!("{}%", percent(l.used_mhz, l.total_mhz())).into());
        view.insert("memoryallocated".into(), (l.used_mb << 20).into());
    }
    view
}

impl Orchestrator {
    /// The load of each of `hosts`, by host id.
    pub(super) async fn host_loads(&self, hosts: &[HostRow]) -> Result<HashMap<i64, Candidate>, ApiError> {
        let ids: Vec<i64> = hosts.iter().map(|h| h.id).collect();
        Ok(vms::host_loads(&self.db, &ids).await?.into_iter().map(|c| (c.id, c)).collect())
    }

    pub(super) async fn list_capacity(
        &self,
        q: InfraQuery,
        kind: Option<i32>,
        sort_by: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let by_usage = match sort_by {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("usage") => true,
            Some(s) => {
                return Err(ApiError::invalid_param(format!("Invalid value of parameter sortby: {s}; use usage")));
            }
        };
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let pod_id = self.pod_id(q.pod_id.as_deref()).await?;
        let cluster_id = self.cluster_id(q.cluster_id.as_deref()).await?;
        let level = match (pod_id, cluster_id) {
            (_, Some(_)) => Level::Cluster,
            (Some(_), None) => Level::Pod,
            (None, None) => Level::Zone,
        };
        let wanted = |k: i32| kind.is_none_or(|t| t == k);
        let mut tallies: BTreeMap<(Place, i32), Tally> = BTreeMap::new();

        if wanted(MEMORY) || wanted(CPU) {
            let f = InfraFilter { zone_id, pod_id, cluster_id, ..Default::default() };
            let (hosts, _) = infra::list_hosts(&self.db, &f, None, None).await?;
            let loads = self.host_loads(&hosts).await?;
            for h in &hosts {
                let Some(l) = loads.get(&h.id) else { continue };
                let at = host_place(level, h);
                if wanted(MEMORY) {
                    let (used, total) = (l.used_mb << 20, l.total_mb() << 20);
                    tallies.entry((at.clone(), MEMORY)).or_default().add(used, used, total);
                }
                if wanted(CPU) {
                    tallies.entry((at, CPU)).or_default().add(l.used_mhz, l.used_mhz, l.total_mhz());
                }
            }
        }

        if wanted(STORAGE) || wanted(STORAGE_ALLOCATED) {
            let f = StorageFilter { zone_id, pod_id, cluster_id, ..Default::default() };
            let (pools, _) = storage::list_pools(&self.db, &f, None).await?;
            for p in &pools {
                // A zone-wide pool belongs to no pod or cluster of its own.
                let pod = p.pod_id.zip(p.pod_uuid.as_deref()).zip(p.pod_name.as_deref());
                let cluster = p.cluster_id.zip(p.cluster_uuid.as_deref()).zip(p.cluster_name.as_deref());
                let at = match (level, pod, cluster) {
                    (Level::Zone, _, _) => {
                        place(level, (p.zone_id, &p.zone_uuid, &p.zone_name), (0, "", ""), (0, "", ""))
                    }
                    (Level::Pod, Some(((pid, pu), pn)), _) => {
                        place(level, (p.zone_id, &p.zone_uuid, &p.zone_name), (pid, pu, pn), (0, "", ""))
                    }
                    (Level::Cluster, Some(((pid, pu), pn)), Some(((cid, cu), cn))) => {
                        place(level, (p.zone_id, &p.zone_uuid, &p.zone_name), (pid, pu, pn), (cid, cu, cn))
                    }
                    _ => continue,
                };
                if wanted(STORAGE) {
                    tallies.entry((at.clone(), STORAGE)).or_default().add(
                        p.used_bytes,
                        p.allocated_bytes,
                        p.capacity_bytes,
                    );
                }
                if wanted(STORAGE_ALLOCATED) {
                    let total = p.capacity_bytes.saturating_mul(super::volumes::OVERPROVISION);
                    tallies.entry((at, STORAGE_ALLOCATED)).or_default().add(
                        p.allocated_bytes,
                        p.allocated_bytes,
                        total,
                    );
                }
            }
        }

        // Image stores serve a zone (or, with no zone, every zone); pods and clusters have none.
        if wanted(SECONDARY_STORAGE) && level == Level::Zone {
            let (zones, _) = infra::list_zones(&self.db, &InfraFilter::default(), None).await?;
            let (stores, _) = storage::list_stores(&self.db, &StorageFilter::default(), None).await?;
            for z in zones.iter().filter(|z| zone_id.is_none_or(|id| id == z.id)) {
                let mut t = Tally::default();
                let mut any = false;
                for s in stores.iter().filter(|s| s.zone_id.is_none_or(|id| id == z.id)) {
                    t.add(s.used_bytes, s.used_bytes, s.capacity_bytes);
                    any = true;
                }
                if any {
                    let at = place(level, (z.id, &z.uuid, &z.name), (0, "", ""), (0, "", ""));
                    tallies.insert((at, SECONDARY_STORAGE), t);
                }
            }
        }

        let mut rows: Vec<((Place, i32), Tally)> = tallies.into_iter().collect();
        if by_usage {
            let share = |t: &Tally| if t.total > 0 { t.used as f64 / t.total as f64 } else { 0.0 };
            rows.sort_by(|a, b| share(&b.1).total_cmp(&share(&a.1)));
        }
        let total = rows.len() as i64;
        let shown = match q.page {
            Some((page, size)) => {
                let start = ((page.max(1) - 1) as usize).saturating_mul(size as usize);
                rows.into_iter().skip(start).take(size as usize).collect()
            }
            None => rows,
        };
        Ok(list("capacity", total, shown.iter().map(|((at, kind), t)| capacity_view(at, *kind, t)).collect()))
    }
}

fn capacity_view(at: &Place, kind: i32, t: &Tally) -> Map<String, Value> {
    views::object(json!({
        "type": kind,
        "name": type_name(kind),
        "zoneid": at.zone.1,
        "zonename": at.zone.2,
        "podid": at.pod.as_ref().map(|p| &p.1),
        "podname": at.pod.as_ref().map(|p| &p.2),
        "clusterid": at.cluster.as_ref().map(|c| &c.1),
        "clustername": at.cluster.as_ref().map(|c| &c.2),
        "capacityused": t.used,
        "capacityallocated": t.allocated,
        "capacitytotal": t.total,
        "percentused": percent(t.used, t.total),
    }))
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percent_is_printed_as_cloudstack_does() {
        assert_eq!(percent(1, 8), "12.5");
        assert_eq!(percent(0, 8), "0");
        assert_eq!(percent(8, 8), "100");
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(percent(5, 0), "0");
    }
}
