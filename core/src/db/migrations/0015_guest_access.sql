-- What a guest is given to let its owner in: SSH key pairs, stored userdata and a one-time
-- password, served to the guest by the metadata and password services or a config drive.

-- An account's SSH public keys (CloudStack keeps only the public half: a generated private
-- key is shown once and never stored).
CREATE TABLE ssh_keypairs (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    name TEXT NOT NULL,
    -- MD5 of the key blob, colon-separated hex, as CloudStack shows it.
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX ssh_keypairs_name ON ssh_keypairs(account_id, name) WHERE removed IS NULL;

-- The keys an instance was given (at deploy or by a reset), copied so that deleting a key
-- pair later does not take the key away from the guest, as in CloudStack.
CREATE TABLE instance_ssh_keys (
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    PRIMARY KEY (instance_id, name)
);

-- Stored userdata (registerUserData): base64 text as given, and the names of the
-- parameters it expects (comma-separated), filled from userdatadetails on deploy.
CREATE TABLE user_data (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '',
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX user_data_name ON user_data(account_id, name) WHERE removed IS NULL;

-- instances.user_data (base64) is what the guest gets, and user_data_id says which stored
-- userdata it came from, if any.
ALTER TABLE instances ADD COLUMN user_data_id BIGINT REFERENCES user_data(id);
ALTER TABLE instances ADD COLUMN user_data_details TEXT;
-- A new password the password service hands to the guest once, then forgets.
ALTER TABLE instances ADD COLUMN password_pending TEXT;

-- A template's linked userdata and whether a deploy may override it (ALLOWOVERRIDE,
-- APPEND, DENYOVERRIDE).
ALTER TABLE templates ADD COLUMN user_data_id BIGINT REFERENCES user_data(id);
ALTER TABLE templates ADD COLUMN user_data_policy TEXT
