-- Domains, accounts, users, roles, sessions, async jobs and events.
-- {{id}} becomes the backend's auto-increment primary key. Booleans are 0/1 BIGINTs and
-- times are Unix milliseconds, so one file serves SQLite and PostgreSQL alike.

CREATE TABLE domains (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    parent_id BIGINT REFERENCES domains(id),
    path TEXT NOT NULL,
    level BIGINT NOT NULL,
    network_domain TEXT,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX domains_path ON domains(path) WHERE removed IS NULL;

CREATE TABLE roles (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    role_type TEXT NOT NULL,
    description TEXT NOT NULL,
    is_default BIGINT NOT NULL
);

CREATE TABLE accounts (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    domain_id BIGINT NOT NULL REFERENCES domains(id),
    account_type BIGINT NOT NULL,
    role_id BIGINT NOT NULL REFERENCES roles(id),
    state TEXT NOT NULL,
    network_domain TEXT,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE UNIQUE INDEX accounts_name ON accounts(domain_id, name) WHERE removed IS NULL;

CREATE TABLE users (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    firstname TEXT NOT NULL,
    lastname TEXT NOT NULL,
    email TEXT NOT NULL,
    timezone TEXT,
    state TEXT NOT NULL,
    api_key TEXT UNIQUE,
    secret_key TEXT,
    password_change_required BIGINT NOT NULL,
    is_default BIGINT NOT NULL,
    created BIGINT NOT NULL,
    removed BIGINT
);
CREATE INDEX users_account ON users(account_id);
CREATE INDEX users_api_key ON users(LOWER(api_key));

CREATE TABLE sessions (
    session_key TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

CREATE TABLE async_jobs (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    domain_id BIGINT NOT NULL,
    cmd TEXT NOT NULL,
    command TEXT NOT NULL,
    instance_type TEXT,
    instance_id TEXT,
    status BIGINT NOT NULL,
    result_code BIGINT NOT NULL,
    result TEXT,
    server TEXT NOT NULL,
    created BIGINT NOT NULL,
    completed BIGINT
);
CREATE INDEX async_jobs_account ON async_jobs(account_id, id);
CREATE INDEX async_jobs_status ON async_jobs(status);

CREATE TABLE events (
    id {{id}},
    uuid TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    level TEXT NOT NULL,
    state TEXT NOT NULL,
    description TEXT NOT NULL,
    user_id BIGINT,
    account_id BIGINT,
    domain_id BIGINT,
    resource_type TEXT,
    resource_id TEXT,
    resource_name TEXT,
    created BIGINT NOT NULL
);
CREATE INDEX events_account ON events(account_id, id);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
