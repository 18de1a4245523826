-- listVirtualMachines with 100,000 instances: the page's ids and the total come from
-- this index alone (every filter column is in it), never from the wide table rows.
CREATE INDEX instances_listing ON instances(removed, account_id, domain_id, zone_id, host_id, state, display_name, name)
