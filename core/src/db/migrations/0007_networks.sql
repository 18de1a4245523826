-- Guest networking: physical networks and their traffic types, network offerings,
-- guest networks, IP ranges, and the addresses and NICs handed out in them.

CREATE TABLE physical_networks (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    -- Guest VLAN ranges, "100-199,300-310", null when none.
    vlan TEXT,
    -- "VLAN" or empty (flat).
    isolation_method TEXT NOT NULL,
    broadcast_domain_range TEXT NOT NULL,
    tags TEXT,
    network_speed TEXT,
    state TEXT NOT NULL,
    domain_id BIGINT REFERENCES domains(id),
    -- Bumped at the start of every VLAN allocation: on PostgreSQL the row lock
    -- serializes allocations on one physical network.
    alloc_seq BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX physical_networks_name ON physical_networks(zone_id, name) WHERE removed IS NULL;

CREATE TABLE traffic_types (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    physical_network_id BIGINT NOT NULL REFERENCES physical_networks(id),
    traffic_type TEXT NOT NULL,
    -- The host's bridge (or uplink) for this traffic on KVM hosts.
    kvm_label TEXT,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX traffic_types_kind ON traffic_types(physical_network_id, traffic_type);

CREATE TABLE network_offerings (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    display_text TEXT NOT NULL,
    guest_ip_type TEXT NOT NULL,
    traffic_type TEXT NOT NULL,
    specify_vlan BIGINT NOT NULL,
    specify_ip_ranges BIGINT NOT NULL,
    -- Comma-separated service names, e.g. "Dhcp,Dns,UserData".
    services TEXT NOT NULL,
    availability TEXT NOT NULL,
    state TEXT NOT NULL,
    is_default BIGINT NOT NULL,
    conserve_mode BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);

INSERT INTO network_offerings (uuid, name, display_text, guest_ip_type, traffic_type, specify_vlan,
    specify_ip_ranges, services, availability, state, is_default, conserve_mode, created) VALUES
    ('7c1e4a52-3d6f-4b8e-9a10-000000000001', 'DefaultSharedNetworkOfferingWithSGService',
     'Offering for Shared Security group enabled networks', 'Shared', 'Guest', 1, 1,
     'Dhcp,Dns,UserData,SecurityGroup', 'Optional', 'Enabled', 1, 1, 0),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000002', 'DefaultSharedNetworkOffering',
     'Offering for Shared networks', 'Shared', 'Guest', 1, 1,
     'Dhcp,Dns,UserData', 'Optional', 'Enabled', 1, 1, 0),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000003', 'DefaultIsolatedNetworkOfferingWithSourceNatService',
     'Offering for Isolated networks with Source Nat service enabled', 'Isolated', 'Guest', 0, 0,
     'Dhcp,Dns,UserData,Gateway,SourceNat', 'Required', 'Enabled', 1, 1, 0),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000004', 'DefaultIsolatedNetworkOffering',
     'Offering for Isolated networks with no Source Nat service', 'Isolated', 'Guest', 0, 1,
     'Dhcp,Dns,UserData', 'Optional', 'Enabled', 1, 1, 0),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000005', 'DefaultL2NetworkOffering',
     'Offering for L2 networks', 'L2', 'Guest', 0, 0,
     '', 'Optional', 'Enabled', 1, 1, 0),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000006', 'DefaultL2NetworkOfferingVlan',
     'Offering for L2 networks VLAN', 'L2', 'Guest', 1, 0,
     '', 'Optional', 'Enabled', 1, 1, 0);

CREATE TABLE networks (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    display_text TEXT NOT NULL,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    physical_network_id BIGINT NOT NULL REFERENCES physical_networks(id),
    network_offering_id BIGINT NOT NULL REFERENCES network_offerings(id),
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    guest_type TEXT NOT NULL,
    -- "Account" (one account's) or "Domain" (shared with a domain or, for ROOT, everyone).
    acl_type TEXT NOT NULL,
    -- Network address and prefix as integers, null for L2 networks.
    cidr_address BIGINT,
    cidr_prefix BIGINT,
    gateway TEXT,
    vlan BIGINT,
    dns1 TEXT,
    dns2 TEXT,
    network_domain TEXT,
    -- Address of the DHCP service, reserved in guest_ips, null until needed.
    dhcp_server TEXT,
    state TEXT NOT NULL,
    alloc_seq BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    removed BIGINT
);
-- Two live networks never share a VLAN on one physical network.
CREATE UNIQUE INDEX networks_vlan ON networks(physical_network_id, vlan) WHERE removed IS NULL AND vlan IS NOT NULL;

CREATE TABLE ip_ranges (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    pod_id BIGINT REFERENCES pods(id),
    physical_network_id BIGINT NOT NULL REFERENCES physical_networks(id),
    network_id BIGINT NOT NULL REFERENCES networks(id),
    vlan BIGINT,
    gateway TEXT NOT NULL,
    netmask TEXT NOT NULL,
    start_ip BIGINT NOT NULL,
    end_ip BIGINT NOT NULL,
    for_virtual_network BIGINT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE nics (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    -- The instance the NIC belongs to, once instances exist.
    instance_uuid TEXT,
    mac TEXT NOT NULL,
    ip_address BIGINT,
    is_default BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX nics_mac ON nics(mac) WHERE removed IS NULL;
CREATE INDEX nics_instance ON nics(instance_uuid);

-- Addresses in use in a network: a NIC's, or the DHCP service's (nic_id null).
CREATE TABLE guest_ips (
    id {{id}},
    network_id BIGINT NOT NULL REFERENCES networks(id),
    address BIGINT NOT NULL,
    nic_id BIGINT REFERENCES nics(id),
    purpose TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX guest_ips_address ON guest_ips(network_id, address);
