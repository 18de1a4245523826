"""listCapacity through the `cs` client on the Simulator (libvirt's test driver): CPU and
memory are what running instances' offerings hold against the hosts' size times their
cluster's overcommit, and fall again when an instance stops, is destroyed or expunged;
primary and secondary storage come from the pools and stores. listHosts reports the same
allocation per host. Filters narrow and break the figures down; a user is refused."""

import sqlite3

from conftest import new_user_account, psql
from test_instances import client, deploy, error_of, sim_zone

MIB = 1 << 20
MISSING = "6d2b0fa4-0000-4000-8000-00000000000f"


def run_sql(srv, statement):
    if srv.backend == "sqlite":
        con = sqlite3.connect(str(srv.sqlite_path))
        try:
            assert con.execute(statement).rowcount == 1
            con.commit()
        finally:
            con.close()
    else:
        psql(srv.database_url, statement)


def set_cpu_overcommit(srv, cluster_uuid, ratio):
    # The API has no updateCluster yet; the allocator reads the ratio from the cluster row.
    run_sql(srv, "UPDATE clusters SET cpu_overcommit = {} WHERE uuid = '{}'".format(ratio, cluster_uuid))


def percent(used, total):
    return "{:.2f}".format(used * 100 / total).rstrip("0").rstrip(".") if total else "0"


def by_type(cs, **filters):
    """The capacity rows for `filters`, by type; each type appears once."""
    rows = cs.listCapacity(**filters).get("capacity", [])
    types = [r["type"] for r in rows]
    assert len(types) == len(set(types)), rows
    return {r["type"]: r for r in rows}


def assert_row(row, used, total):
    assert (row["capacityused"], row["capacitytotal"]) == (used, total), row
    assert row["percentused"] == percent(used, total), row


def test_cpu_and_memory_follow_instances(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    zone_id = z["zone"]["id"]
    set_cpu_overcommit(admin.server, z["cluster"]["id"], 2)
    host = cs.listHosts(id=z["host"]["id"])["host"][0]
    cpu_total = host["cpunumber"] * host["cpuspeed"] * 2
    mem_total = (host["memorytotal"] >> 20) * MIB
    assert (host["cpuallocated"], host["memoryallocated"]) == ("0%", 0), host

    caps = by_type(cs, zoneid=zone_id)
    assert set(caps) == {0, 1, 2, 3, 6}, caps
    for row in caps.values():
        assert row["zoneid"] == zone_id and row["zonename"] == z["zone"]["name"], row
        assert "podid" not in row and "clusterid" not in row, row
    assert (caps[0]["name"], caps[1]["name"]) == ("MEMORY", "CPU")
    assert_row(caps[0], 0, mem_total)
    assert_row(caps[1], 0, cpu_total)

    # Two instances of 1 CPU x 100 MHz and 64 MB each.
    first, second = deploy(cs, z), deploy(cs, z)
    caps = by_type(cs, zoneid=zone_id)
    assert_row(caps[0], 2 * 64 * MIB, mem_total)
    assert_row(caps[1], 200, cpu_total)
    host = cs.listHosts(id=z["host"]["id"])["host"][0]
    assert host["memoryallocated"] == 2 * 64 * MIB, host
    assert host["cpuallocated"] == percent(200, cpu_total) + "%", host

    # A stopped instance holds nothing; a destroyed or expunged one neither.
    cs.stopVirtualMachine(id=first["id"])
    caps = by_type(cs, zoneid=zone_id)
    assert_row(caps[0], 64 * MIB, mem_total)
    assert_row(caps[1], 100, cpu_total)
    cs.destroyVirtualMachine(id=second["id"])
    caps = by_type(cs, zoneid=zone_id)
    assert_row(caps[0], 0, mem_total)
    assert_row(caps[1], 0, cpu_total)
    # Started again it counts again; expunged it is gone for good.
    cs.startVirtualMachine(id=first["id"])
    assert_row(by_type(cs, zoneid=zone_id)[1], 100, cpu_total)
    cs.destroyVirtualMachine(id=first["id"], expunge=True)
    cs.expungeVirtualMachine(id=second["id"])
    caps = by_type(cs, zoneid=zone_id)
    assert_row(caps[0], 0, mem_total)
    assert_row(caps[1], 0, cpu_total)
    assert cs.listHosts(id=z["host"]["id"])["host"][0]["memoryallocated"] == 0


def test_storage_rows_and_filters(admin, web):
    cs = client(admin)
    z = sim_zone(cs, web)
    other = sim_zone(cs, web, pool=False)
    zone_id, cluster, pod_id = z["zone"]["id"], z["cluster"], z["cluster"]["podid"]
    [pool] = cs.listStoragePools(zoneid=zone_id)["storagepool"]
    [store] = cs.listImageStores(zoneid=zone_id)["imagestore"]
    vm = deploy(cs, z)

    caps = by_type(cs, zoneid=zone_id)
    assert_row(caps[2], pool["disksizeused"], pool["disksizetotal"])
    [root] = cs.listVolumes(virtualmachineid=vm["id"])["volume"]
    assert caps[3]["capacityused"] >= root["size"] > 0, caps[3]
    assert caps[3]["capacitytotal"] == pool["disksizetotal"] * 2, caps[3]
    assert_row(caps[6], store["disksizeused"], store["disksizetotal"])

    # Per pod and per cluster: that place's own rows, named; stores belong to zones only.
    for filters, expect in [({"podid": pod_id}, {"podid": pod_id}), ({"clusterid": cluster["id"]}, {"clusterid": cluster["id"], "podid": pod_id})]:
        rows = by_type(cs, **filters)
        assert set(rows) == {0, 1, 2, 3}, rows
        for row in rows.values():
            assert row["zoneid"] == zone_id and all(row[k] == v for k, v in expect.items()), row
        assert rows[1]["capacityused"] == 100 and rows[0]["capacityused"] == 64 * MIB

    # One type; a zone without a pool has no storage rows; all zones list each one.
    only_cpu = cs.listCapacity(type=1)["capacity"]
    assert {r["type"] for r in only_cpu} == {1} and {zone_id, other["zone"]["id"]} <= {r["zoneid"] for r in only_cpu}
    assert set(by_type(cs, zoneid=other["zone"]["id"])) == {0, 1, 6}
    assert cs.listCapacity(zoneid=zone_id, type=9) == {}
    # Sorted by usage, fullest first; paged.
    ranked = cs.listCapacity(zoneid=zone_id, sortby="usage")["capacity"]
    shares = [r["capacityused"] / r["capacitytotal"] if r["capacitytotal"] else 0 for r in ranked]
    assert shares == sorted(shares, reverse=True), ranked
    page = cs.listCapacity(zoneid=zone_id, page=2, pagesize=2)
    assert page["count"] == 5 and len(page["capacity"]) == 2, page

    # Bad filters are refused with CloudStack's error.
    for call, text in [
        (lambda: cs.listCapacity(zoneid=MISSING), "zone"),
        (lambda: cs.listCapacity(podid=MISSING), "pod"),
        (lambda: cs.listCapacity(type="cpu"), "type"),
        (lambda: cs.listCapacity(sortby="name"), "sortby"),
    ]:
        err = error_of(call)
        assert err["errorcode"] == 431 and text in err["errortext"], err
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_only_root_admins_list_capacity(admin):
    for account_type in (0, 2):  # a user, a domain admin
        caller = client(new_user_account(admin, prefix="cap", account_type=account_type))
        err = error_of(lambda: caller.listCapacity())
        assert err["errorcode"] == 401, err
        # Nor see what a host has allocated.
        assert error_of(lambda: caller.listHosts())["errorcode"] == 401
