-- Every submission part consumed, with what was decided about it.
CREATE TABLE submissions (
    message_id   text        PRIMARY KEY,
    sender       text        NOT NULL,
    upt_id       text,
    as_of        date,
    snapshot     integer,
    part         integer,
    parts        integer,
    status       text        NOT NULL,
    received     integer     NOT NULL,
    accepted     integer     NOT NULL,
    rejected     integer     NOT NULL,
    warnings     integer     NOT NULL,
    receipt      jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX submissions_unit_day ON submissions (upt_id, as_of);

-- Accepted inmate records as the UPT last sent them for a snapshot date.
CREATE TABLE sdp_records (
    upt_id        text        NOT NULL,
    as_of         date        NOT NULL,
    inmate_id     text        NOT NULL,
    snapshot      integer     NOT NULL,
    part          integer     NOT NULL,
    nik           text,
    record        jsonb       NOT NULL,
    submission_id text        NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upt_id, as_of, inmate_id)
);
CREATE INDEX sdp_records_nik ON sdp_records (nik) WHERE nik IS NOT NULL;
