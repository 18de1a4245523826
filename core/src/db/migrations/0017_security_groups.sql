-- Security groups: named sets of ingress and egress rules an account attaches to its
-- instances on networks whose offering has the SecurityGroup service. The network driver
-- enforces them per NIC, and the database holds what each group allows.
--
-- Each account's `default` group is made when it is first needed (listed, named, or
-- deployed into), not here: accounts made after this migration would need it too, and
-- one lazy path serves both.

CREATE TABLE security_groups (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    name TEXT NOT NULL,
    description TEXT,
    created BIGINT NOT NULL
);
-- A name is unique within its account.
CREATE UNIQUE INDEX security_groups_name ON security_groups(account_id, name);

-- One rule: a direction, a protocol (tcp, udp, icmp, all, or an IP protocol number as
-- text), a port range (tcp/udp) or an ICMP type and code (null = any), and one source (for
-- ingress) or destination (for egress): a CIDR, or the members of another group.
CREATE TABLE security_group_rules (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    group_id BIGINT NOT NULL REFERENCES security_groups(id),
    direction TEXT NOT NULL,
    protocol TEXT NOT NULL,
    start_port BIGINT,
    end_port BIGINT,
    icmp_type BIGINT,
    icmp_code BIGINT,
    cidr TEXT,
    ref_group_id BIGINT REFERENCES security_groups(id),
    created BIGINT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules(group_id);
CREATE INDEX security_group_rules_ref ON security_group_rules(ref_group_id);

-- Which groups an instance is in (set on deploy, changed by updateVirtualMachine while
-- it is stopped).
CREATE TABLE instance_security_groups (
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    group_id BIGINT NOT NULL REFERENCES security_groups(id),
    PRIMARY KEY (instance_id, group_id)
);
CREATE INDEX instance_security_groups_group ON instance_security_groups(group_id)
