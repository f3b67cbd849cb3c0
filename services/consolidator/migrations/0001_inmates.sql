-- The central inmate record: one row per inmate per UPT, as last consolidated.
CREATE TABLE inmates (
    upt_id          text        NOT NULL,
    inmate_id       text        NOT NULL,
    nik             text,
    full_name       text        NOT NULL,
    sex             text        NOT NULL,
    birth_date      date        NOT NULL,
    register        text        NOT NULL,
    register_number text        NOT NULL,
    custody_status  text        NOT NULL,
    as_of           date        NOT NULL,
    snapshot        integer     NOT NULL,
    record          jsonb       NOT NULL,
    submission_id   text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upt_id, inmate_id)
);
CREATE INDEX inmates_nik ON inmates (nik) WHERE nik IS NOT NULL;

-- Dedup flags per inmate record, newest dedup sequence number wins; may precede the record itself.
CREATE TABLE inmate_flags (
    upt_id     text        NOT NULL,
    inmate_id  text        NOT NULL,
    flags      jsonb       NOT NULL,
    seq        bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upt_id, inmate_id)
);
CREATE INDEX inmate_flags_flagged ON inmate_flags (upt_id) WHERE flags <> '[]';

-- Versions the per-UPT totals it announces; taken under the UPT locks, so later means more up to date.
CREATE SEQUENCE announce_seq;
