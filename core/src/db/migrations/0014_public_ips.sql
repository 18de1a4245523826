-- Public traffic: public IP ranges of a zone, the addresses in them, the router that
-- holds a network's public side, and the rules applied on it (firewall, egress, port
-- forwarding, load balancing). Static NAT is a property of an address.

-- A public range is the zone's, not a network's (guest ranges live in ip_ranges).
CREATE TABLE public_ranges (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    physical_network_id BIGINT NOT NULL REFERENCES physical_networks(id),
    -- VLAN tag of the public segment, null when untagged.
    vlan BIGINT,
    gateway TEXT NOT NULL,
    netmask TEXT NOT NULL,
    start_ip BIGINT NOT NULL,
    end_ip BIGINT NOT NULL,
    -- Dedicated to one account (null: the zone's, for anyone).
    account_id BIGINT REFERENCES accounts(id),
    domain_id BIGINT REFERENCES domains(id),
    created BIGINT NOT NULL,
    removed BIGINT
);

-- One row per address of a live range, created with the range: allocation takes a free
-- row, so exhaustion and double allocation are decided by the database.
CREATE TABLE public_ips (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    range_id BIGINT NOT NULL REFERENCES public_ranges(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    address BIGINT NOT NULL,
    -- "Free", "Allocating", "Allocated", "Releasing".
    state TEXT NOT NULL,
    account_id BIGINT REFERENCES accounts(id),
    domain_id BIGINT REFERENCES domains(id),
    network_id BIGINT REFERENCES networks(id),
    is_source_nat BIGINT NOT NULL DEFAULT 0,
    -- Static NAT target: the instance's NIC (and its guest address) both ways.
    static_nat_nic_id BIGINT REFERENCES nics(id),
    static_nat_vm_ip BIGINT,
    for_display BIGINT NOT NULL DEFAULT 1,
    allocated BIGINT
);
CREATE UNIQUE INDEX public_ips_address ON public_ips(zone_id, address);
CREATE INDEX public_ips_network ON public_ips(network_id);

-- The router of a network with services, built by the network's driver on one host.
CREATE TABLE routers (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    -- Host it runs on, null while stopped.
    host_id BIGINT REFERENCES hosts(id),
    -- "Starting", "Running", "Stopping", "Stopped", "Alert".
    state TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    -- Bumped on every rule change: the router applies whole generations.
    generation BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX routers_network ON routers(network_id) WHERE removed IS NULL;

-- Ingress rules on a public IP ("Firewall"), and the network's egress rules ("Egress",
-- ip_id null). protocol: "tcp", "udp", "icmp" or "all".
CREATE TABLE firewall_rules (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    ip_id BIGINT REFERENCES public_ips(id),
    protocol TEXT NOT NULL,
    start_port BIGINT,
    end_port BIGINT,
    icmp_type BIGINT,
    icmp_code BIGINT,
    -- Comma-separated source CIDRs (ingress) or destination CIDRs (egress).
    cidr_list TEXT NOT NULL,
    dest_cidr_list TEXT NOT NULL DEFAULT '',
    -- "Add", "Active", "Revoke".
    state TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    for_display BIGINT NOT NULL DEFAULT 1,
    created BIGINT NOT NULL
);
CREATE INDEX firewall_rules_ip ON firewall_rules(ip_id);
CREATE INDEX firewall_rules_network ON firewall_rules(network_id);

-- Public port range on an IP to a VM NIC's private port range.
CREATE TABLE port_forwarding_rules (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    ip_id BIGINT NOT NULL REFERENCES public_ips(id),
    protocol TEXT NOT NULL,
    public_start_port BIGINT NOT NULL,
    public_end_port BIGINT NOT NULL,
    private_start_port BIGINT NOT NULL,
    private_end_port BIGINT NOT NULL,
    nic_id BIGINT NOT NULL REFERENCES nics(id),
    vm_ip BIGINT NOT NULL,
    state TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    for_display BIGINT NOT NULL DEFAULT 1,
    -- The ingress rule openfirewall made for it, removed with it.
    firewall_rule_id BIGINT REFERENCES firewall_rules(id),
    created BIGINT NOT NULL
);
CREATE INDEX port_forwarding_rules_ip ON port_forwarding_rules(ip_id);

CREATE TABLE load_balancer_rules (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    ip_id BIGINT NOT NULL REFERENCES public_ips(id),
    -- "tcp" or "udp".
    protocol TEXT NOT NULL,
    public_port BIGINT NOT NULL,
    private_port BIGINT NOT NULL,
    -- "roundrobin", "leastconn", "source".
    algorithm TEXT NOT NULL,
    cidr_list TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    for_display BIGINT NOT NULL DEFAULT 1,
    -- The ingress rule openfirewall made for it, removed with it.
    firewall_rule_id BIGINT REFERENCES firewall_rules(id),
    created BIGINT NOT NULL
);
CREATE INDEX load_balancer_rules_ip ON load_balancer_rules(ip_id);

CREATE TABLE load_balancer_members (
    id {{id}},
    rule_id BIGINT NOT NULL REFERENCES load_balancer_rules(id),
    nic_id BIGINT NOT NULL REFERENCES nics(id),
    vm_ip BIGINT NOT NULL,
    -- "Add", "Active", "Revoke".
    state TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX load_balancer_members_nic ON load_balancer_members(rule_id, nic_id, vm_ip);

-- 1: guests of the offering's networks may go out unless an egress rule denies it,
-- 0: only where an egress rule allows it.
ALTER TABLE network_offerings ADD COLUMN egress_default_policy BIGINT NOT NULL DEFAULT 1;
-- The default Isolated offering with source NAT offers what CloudStack's does on its
-- router: static NAT, port forwarding, firewall and load balancing besides source NAT.
UPDATE network_offerings SET services = 'Dhcp,Dns,UserData,Firewall,Gateway,Lb,PortForwarding,SourceNat,StaticNat'
    WHERE name = 'DefaultIsolatedNetworkOfferingWithSourceNatService';
