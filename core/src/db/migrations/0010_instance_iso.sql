-- The ISO in a VM's CD-ROM drive: the ISO's template row of the VM's zone.
ALTER TABLE instances ADD COLUMN iso_id BIGINT REFERENCES templates(id)
