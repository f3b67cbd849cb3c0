-- A login can be disabled (its sessions end; it cannot log in) without losing who it was.
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;

-- Failed logins, per username and per client address, for the back-off (domain/access.py).
CREATE TABLE login_failures (
    key text        NOT NULL,  -- 'user:<username>' or 'addr:<client address>'
    at  timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
