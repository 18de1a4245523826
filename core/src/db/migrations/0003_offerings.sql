-- Service and disk offerings, and the guest OS types templates are tagged with.

CREATE TABLE service_offerings (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    display_text TEXT NOT NULL,
    cpu_number BIGINT,
    cpu_speed BIGINT,
    memory_mb BIGINT,
    storage_type TEXT NOT NULL,
    offer_ha BIGINT NOT NULL,
    limit_cpu_use BIGINT NOT NULL,
    host_tags TEXT,
    storage_tags TEXT,
    root_disk_gb BIGINT,
    is_system BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);

CREATE TABLE disk_offerings (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    display_text TEXT NOT NULL,
    disk_size_gb BIGINT NOT NULL,
    customized BIGINT NOT NULL,
    storage_type TEXT NOT NULL,
    tags TEXT,
    provisioning_type TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);

CREATE TABLE os_categories (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE
);

INSERT INTO os_categories (uuid, name) VALUES
    ('0c7a1b52-55d3-4f0e-9d1e-000000000001', 'Debian'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000002', 'Ubuntu'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000003', 'CentOS'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000004', 'Fedora'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000005', 'SUSE'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000006', 'FreeBSD'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000007', 'Windows'),
    ('0c7a1b52-55d3-4f0e-9d1e-000000000008', 'Other');

CREATE TABLE os_types (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES os_categories(name)
);

INSERT INTO os_types (uuid, description, category) VALUES
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000001', 'Other Linux (64-bit)', 'Other'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000002', 'Debian GNU/Linux 12 (64-bit)', 'Debian'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000003', 'Debian GNU/Linux 11 (64-bit)', 'Debian'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000004', 'Ubuntu 24.04 LTS', 'Ubuntu'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000005', 'Ubuntu 22.04 LTS', 'Ubuntu'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000006', 'Rocky Linux 9', 'CentOS'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000007', 'AlmaLinux 9', 'CentOS'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000008', 'CentOS 7 (64-bit)', 'CentOS'),
    ('4b2ed2d6-9f3a-4e7c-8a51-000000000009', 'Fedora Linux (64 bit)', 'Fedora'),
    ('4b2ed2d6-9f3a-4e7c-8a51-00000000000a', 'openSUSE Leap 15', 'SUSE'),
    ('4b2ed2d6-9f3a-4e7c-8a51-00000000000b', 'FreeBSD 14 (64-bit)', 'FreeBSD'),
    ('4b2ed2d6-9f3a-4e7c-8a51-00000000000c', 'Windows Server 2022 (64-bit)', 'Windows'),
    ('4b2ed2d6-9f3a-4e7c-8a51-00000000000d', 'Windows 11 (64-bit)', 'Windows'),
    ('4b2ed2d6-9f3a-4e7c-8a51-00000000000e', 'Other (64-bit)', 'Other');
