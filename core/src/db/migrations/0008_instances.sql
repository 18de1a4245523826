-- Virtual machine instances. An instance holds its share of its host's CPU and memory
-- while it is not Stopped, Destroyed or Expunged (the allocator counts them).

CREATE TABLE instances (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- The name on the host, i-<account>-<id>-VM as CloudStack names it.
    instance_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    host_id BIGINT REFERENCES hosts(id),
    service_offering_id BIGINT NOT NULL REFERENCES service_offerings(id),
    -- The template row of the instance's zone.
    template_id BIGINT NOT NULL REFERENCES templates(id),
    root_volume_id BIGINT REFERENCES volumes(id),
    hypervisor TEXT NOT NULL,
    state TEXT NOT NULL,
    cpus BIGINT NOT NULL,
    cpu_mhz BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    user_data TEXT,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX instances_host ON instances(host_id);
CREATE INDEX instances_account ON instances(account_id);
CREATE INDEX instances_zone ON instances(zone_id);

-- Bumped first thing by an allocation in the zone: on PostgreSQL it takes the row lock
-- that makes concurrent allocations in one zone run one after another.
ALTER TABLE zones ADD COLUMN alloc_seq BIGINT NOT NULL DEFAULT 0
