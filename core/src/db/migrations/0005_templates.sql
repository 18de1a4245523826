-- Templates and ISOs: one row per zone they are registered in (the id is shared across
-- zones, as CloudStack lists it), kept on an image store of that zone, and copied
-- once to each primary pool that needs them.

CREATE TABLE templates (
    id {{id}},
    uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    display_text TEXT NOT NULL,
    format TEXT NOT NULL,
    is_iso BIGINT NOT NULL,
    hypervisor TEXT NOT NULL,
    os_type_id BIGINT REFERENCES os_types(id),
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    is_public BIGINT NOT NULL,
    is_featured BIGINT NOT NULL,
    is_extractable BIGINT NOT NULL,
    password_enabled BIGINT NOT NULL,
    bootable BIGINT NOT NULL,
    url TEXT NOT NULL,
    checksum TEXT,
    template_type TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    store_id BIGINT NOT NULL REFERENCES image_stores(id),
    path TEXT,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    size BIGINT NOT NULL,
    physical_size BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX templates_zone ON templates(uuid, zone_id) WHERE removed IS NULL;

CREATE TABLE template_pools (
    id {{id}},
    template_id BIGINT NOT NULL REFERENCES templates(id),
    pool_id BIGINT NOT NULL REFERENCES storage_pools(id),
    path TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX template_pools_once ON template_pools(template_id, pool_id);
