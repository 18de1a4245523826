//! What a cloud has and what is taken of it, per zone, pod or cluster.

use super::*;

const CAPACITY_FIELDS: &[Field] = &[
    f(
        "type",
        "short",
        "the capacity type: 0 memory, 1 CPU, 2 primary storage used, 3 primary storage allocated, 6 secondary storage",
    ),
    f("name", "string", "the capacity name, e.g. MEMORY"),
    f("zoneid", "string", "the Zone ID"),
    f("zonename", "string", "the Zone name"),
    f("podid", "string", "the Pod ID (when listed per pod or cluster)"),
    f("podname", "string", "the Pod name"),
    f("clusterid", "string", "the Cluster ID (when listed per cluster)"),
    f("clustername", "string", "the Cluster name"),
    f("capacityused", "long", "the capacity currently in use (for CPU and memory: allocated to instances)"),
    f("capacityallocated", "long", "the capacity currently allocated"),
    f("capacitytotal", "long", "the total capacity available, overcommit included"),
    f("percentused", "string", "the percentage of capacity currently in use"),
];

pub(super) static CAPACITY_COMMANDS: &[Command] = &[Command {
    name: "listCapacity",
    description: "Lists all the system wide capacities.",
    is_async: false,
    roles: Roles::ADMIN,
    params: &[
        rel(p("zoneid", Uuid, "lists capacity by the Zone ID"), "listZones"),
        rel(p("podid", Uuid, "lists capacity by the Pod ID; the capacities are then per pod"), "listPods"),
        rel(
            p("clusterid", Uuid, "lists capacity by the Cluster ID; the capacities are then per cluster"),
            "listClusters",
        ),
        p(
            "type",
            Integer,
            "lists capacity by type: 0 memory, 1 CPU, 2 storage, 3 storage allocated, 6 secondary storage",
        ),
        p("fetchlatest", Boolean, "recalculate capacities and fetch the latest (they are always computed live)"),
        p("sortby", Str, "Sort the results. Available values: usage"),
        KEYWORD,
        PAGE,
        PAGESIZE,
    ],
    object: "capacity",
    shape: Shape::List,
    response: CAPACITY_FIELDS,
    since: "",
}];
