-- Wrong passwords in a row, and the lock they lead to (see orchestrate::logins).
ALTER TABLE users ADD COLUMN login_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN lock_count BIGINT NOT NULL DEFAULT 0
