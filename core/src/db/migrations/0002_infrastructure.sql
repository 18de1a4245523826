-- Zones, pods, clusters and hypervisor hosts, as CloudStack's zone wizard builds them.

CREATE TABLE zones (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    network_type TEXT NOT NULL,
    allocation_state TEXT NOT NULL,
    dns1 TEXT NOT NULL,
    dns2 TEXT,
    internal_dns1 TEXT NOT NULL,
    internal_dns2 TEXT,
    guest_cidr TEXT,
    domain_id BIGINT REFERENCES domains(id),
    local_storage_enabled BIGINT NOT NULL,
    security_groups_enabled BIGINT NOT NULL,
    is_edge BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX zones_name ON zones(name) WHERE removed IS NULL;

CREATE TABLE pods (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    gateway TEXT,
    netmask TEXT,
    start_ip TEXT,
    end_ip TEXT,
    allocation_state TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX pods_name ON pods(zone_id, name) WHERE removed IS NULL;

CREATE TABLE clusters (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    pod_id BIGINT NOT NULL REFERENCES pods(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    hypervisor TEXT NOT NULL,
    cluster_type TEXT NOT NULL,
    allocation_state TEXT NOT NULL,
    cpu_overcommit DOUBLE PRECISION NOT NULL,
    memory_overcommit DOUBLE PRECISION NOT NULL,
    accel TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX clusters_name ON clusters(pod_id, name) WHERE removed IS NULL;

CREATE TABLE hosts (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    pod_id BIGINT NOT NULL REFERENCES pods(id),
    cluster_id BIGINT NOT NULL REFERENCES clusters(id),
    hypervisor TEXT NOT NULL,
    driver TEXT NOT NULL,
    url TEXT NOT NULL,
    libvirt_uri TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    state TEXT NOT NULL,
    resource_state TEXT NOT NULL,
    cpus BIGINT NOT NULL,
    cpu_mhz BIGINT NOT NULL,
    cpu_model TEXT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    hypervisor_version TEXT NOT NULL,
    hardware_accel BIGINT NOT NULL,
    host_tags TEXT,
    last_pinged BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX hosts_uri ON hosts(libvirt_uri);
CREATE INDEX hosts_cluster ON hosts(cluster_id);
