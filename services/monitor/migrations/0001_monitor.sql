-- The units a supervisor can watch (loaded from the installation's units files at start).
CREATE TABLE units (
    upt_id        text PRIMARY KEY,
    name          text NOT NULL,
    kind          text NOT NULL,
    kabkota_code  text NOT NULL,
    kabkota_name  text NOT NULL,
    province_code text NOT NULL,
    kanwil_id     text NOT NULL,
    kanwil_name   text NOT NULL
);
CREATE INDEX units_kanwil ON units (kanwil_id);

-- The registry's verdict on each part, latest per (unit, day, snapshot, part).
CREATE TABLE submission_parts (
    upt_id      text        NOT NULL,
    day         date        NOT NULL,
    snapshot    integer     NOT NULL,
    part        integer     NOT NULL,
    parts       integer     NOT NULL,
    status      text        NOT NULL,
    received    integer     NOT NULL,
    accepted    integer     NOT NULL,
    rejected    integer     NOT NULL,
    warnings    integer     NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (upt_id, day, snapshot, part)
);

-- Messages the registry could not read at all, per unit and WIB day.
CREATE TABLE refusals (
    upt_id text    NOT NULL,
    day    date    NOT NULL,
    count  integer NOT NULL,
    PRIMARY KEY (upt_id, day)
);

-- Central record totals per unit, as last announced by the consolidator.
CREATE TABLE central_totals (
    upt_id        text        PRIMARY KEY,
    central_total integer     NOT NULL,
    flagged_total integer     NOT NULL,
    as_of         date        NOT NULL,
    version       bigint      NOT NULL
);

-- Dead letters seen on the broker: metadata only, the body stays in the dead-letter queue.
CREATE TABLE dead_letters (
    message_id  text        PRIMARY KEY,
    reason      text        NOT NULL,
    detail      text,
    service     text,
    queue       text,
    routing_key text,
    sender      text,
    dead_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_at ON dead_letters (dead_at);

CREATE TABLE accounts (
    username      text        PRIMARY KEY,
    password_hash text        NOT NULL,
    unit_id       text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash text        PRIMARY KEY,
    username   text        NOT NULL REFERENCES accounts ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
