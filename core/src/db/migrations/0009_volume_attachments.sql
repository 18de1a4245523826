-- Which VM a volume is attached to, and as which device (0 the root disk, 1 vdb, 2 vdc…).
ALTER TABLE volumes ADD COLUMN instance_id BIGINT REFERENCES instances(id);
ALTER TABLE volumes ADD COLUMN device_id BIGINT;
-- Two attaches racing for one device slot: the database lets only one win.
CREATE UNIQUE INDEX volumes_device ON volumes(instance_id, device_id) WHERE instance_id IS NOT NULL AND removed IS NULL;
-- Root disks recorded before attachments existed are device 0 of their VM.
UPDATE volumes SET instance_id = (SELECT i.id FROM instances i WHERE i.root_volume_id = volumes.id), device_id = 0
    WHERE volume_type = 'ROOT' AND removed IS NULL
    AND EXISTS (SELECT 1 FROM instances i WHERE i.root_volume_id = volumes.id AND i.removed IS NULL)
