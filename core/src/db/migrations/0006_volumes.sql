-- Volumes on primary storage pools, and their snapshots (kept on the pool, inside the
-- volume's own qcow2 file, so they live and die with it).

CREATE TABLE volumes (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    pool_id BIGINT NOT NULL REFERENCES storage_pools(id),
    disk_offering_id BIGINT REFERENCES disk_offerings(id),
    -- The template a root volume was made from (no reference yet: templates come later).
    template_id BIGINT,
    volume_type TEXT NOT NULL,
    state TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    physical_bytes BIGINT NOT NULL,
    -- Where the driver put it, relative to the pool URL.
    path TEXT NOT NULL,
    provisioning_type TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX volumes_account ON volumes(account_id);
CREATE INDEX volumes_pool ON volumes(pool_id);

CREATE TABLE snapshots (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    volume_id BIGINT NOT NULL REFERENCES volumes(id),
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    state TEXT NOT NULL,
    virtual_bytes BIGINT NOT NULL,
    physical_bytes BIGINT NOT NULL,
    location_type TEXT NOT NULL DEFAULT 'PRIMARY',
    store_id BIGINT REFERENCES image_stores(id),
    store_path TEXT,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX snapshots_volume ON snapshots(volume_id);
