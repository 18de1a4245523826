-- Primary storage pools and secondary (image) stores, each served by a storage driver.

CREATE TABLE storage_pools (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    pod_id BIGINT REFERENCES pods(id),
    cluster_id BIGINT REFERENCES clusters(id),
    host_id BIGINT REFERENCES hosts(id),
    scope TEXT NOT NULL,
    url TEXT NOT NULL,
    driver TEXT NOT NULL,
    pool_type TEXT NOT NULL,
    address TEXT NOT NULL,
    path TEXT NOT NULL,
    hypervisor TEXT,
    state TEXT NOT NULL,
    capacity_bytes BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL,
    allocated_bytes BIGINT NOT NULL,
    tags TEXT,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX storage_pools_zone ON storage_pools(zone_id);

CREATE TABLE image_stores (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    zone_id BIGINT REFERENCES zones(id),
    url TEXT NOT NULL,
    protocol TEXT NOT NULL,
    provider TEXT NOT NULL,
    driver TEXT NOT NULL,
    scope TEXT NOT NULL,
    read_only BIGINT NOT NULL,
    capacity_bytes BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
