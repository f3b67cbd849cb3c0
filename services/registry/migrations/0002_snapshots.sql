-- A UPT's daily snapshot and the parts that make it up: completeness, supersession and lateness.
CREATE TABLE snapshots (
    upt_id            text        NOT NULL,
    as_of             date        NOT NULL,
    snapshot          integer     NOT NULL,
    parts             integer     NOT NULL,
    first_received_at timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    completed_lateness text,
    superseded_at     timestamptz,
    PRIMARY KEY (upt_id, as_of, snapshot)
);

CREATE TABLE snapshot_parts (
    upt_id      text        NOT NULL,
    as_of       date        NOT NULL,
    snapshot    integer     NOT NULL,
    part        integer     NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL,
    lateness    text        NOT NULL,
    accepted    integer     NOT NULL,
    rejected    integer     NOT NULL,
    warnings    integer     NOT NULL,
    PRIMARY KEY (upt_id, as_of, snapshot, part)
);

-- Records belong to a snapshot; the one that completes later replaces those before it.
ALTER TABLE sdp_records DROP CONSTRAINT sdp_records_pkey;
ALTER TABLE sdp_records ADD PRIMARY KEY (upt_id, as_of, snapshot, inmate_id);
CREATE INDEX sdp_records_part ON sdp_records (upt_id, as_of, snapshot, part);
