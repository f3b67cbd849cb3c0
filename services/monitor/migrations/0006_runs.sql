-- The centre's consolidation runs as their events told them, and each UPT's line of a finished run's report.
CREATE TABLE runs (
    run_id       text        PRIMARY KEY,
    day          date,
    state        text        NOT NULL,
    trigger      text        NOT NULL,
    requested_by text,
    step         text,
    steps_done   integer     NOT NULL,
    steps_total  integer     NOT NULL,
    code         text,
    reason       text,
    summary      jsonb,
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX runs_day ON runs (day, started_at);

CREATE TABLE run_lines (
    run_id    text    NOT NULL,
    upt_id    text    NOT NULL,
    sent      boolean NOT NULL,
    complete  boolean NOT NULL,
    lateness  text,
    snapshot  integer,
    applied   text    NOT NULL,
    figures   jsonb   NOT NULL,
    PRIMARY KEY (run_id, upt_id)
);

-- When the monitor last heard from each service (its status events), for the operations view.
CREATE TABLE services_seen (
    service         text        PRIMARY KEY,
    last_message_at timestamptz NOT NULL
);
