-- The provider of each service of a network offering where it is not the virtual router,
-- as "Service:Provider" pairs separated by commas. "UserData:ConfigDrive" hands guests
-- their userdata, SSH keys and password on a config drive (an ISO labelled config-2)
-- rather than from a metadata service on the network.
ALTER TABLE network_offerings ADD COLUMN service_providers TEXT NOT NULL DEFAULT '';

-- CloudStack's default L2 offerings with a config drive.
INSERT INTO network_offerings (uuid, name, display_text, guest_ip_type, traffic_type, specify_vlan,
    specify_ip_ranges, services, availability, state, is_default, conserve_mode, created,
    service_providers) VALUES
    ('7c1e4a52-3d6f-4b8e-9a10-000000000007', 'DefaultL2NetworkOfferingConfigDrive',
     'Offering for L2 networks with config drive user data', 'L2', 'Guest', 0, 0,
     'UserData', 'Optional', 'Enabled', 1, 1, 0, 'UserData:ConfigDrive'),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000008', 'DefaultL2NetworkOfferingConfigDriveVlan',
     'Offering for L2 networks with config drive user data VLAN', 'L2', 'Guest', 1, 0,
     'UserData', 'Optional', 'Enabled', 1, 1, 0, 'UserData:ConfigDrive'),
    ('7c1e4a52-3d6f-4b8e-9a10-000000000009', 'DefaultSharedNetworkOfferingWithConfigDrive',
     'Offering for Shared networks with config drive user data', 'Shared', 'Guest', 1, 1,
     'Dhcp,Dns,UserData', 'Optional', 'Enabled', 1, 1, 0, 'UserData:ConfigDrive');
