-- Which driver (name and version) serves each host, pool and network, recorded when it
-- was added: the core chooses drivers by what they declare they serve, and shows which
-- one it chose. Rows from before keep an empty version (and networks an empty driver,
-- which means: the driver serving the physical network's isolation method).
ALTER TABLE hosts ADD COLUMN driver_version TEXT NOT NULL DEFAULT '';
ALTER TABLE storage_pools ADD COLUMN driver_version TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN driver TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN driver_version TEXT NOT NULL DEFAULT ''
