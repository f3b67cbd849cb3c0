-- Whether each part met the SDP deadlines of its snapshot date.
ALTER TABLE submission_parts ADD COLUMN lateness text;

-- The Dukcapil offices whose e-KTP pipelines can be watched.
CREATE TABLE offices (
    unit_id       text PRIMARY KEY,
    kabkota_code  text NOT NULL UNIQUE,
    name          text NOT NULL,
    province_code text NOT NULL
);

-- The last known status of every capture (by packet id only: the monitor keeps no personal data).
CREATE TABLE ektp_captures (
    kabkota    text        NOT NULL,
    packet_id  text        NOT NULL,
    status     text        NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (kabkota, packet_id)
);
CREATE INDEX ektp_captures_status ON ektp_captures (kabkota, status);

-- e-KTP messages the registry refused, per kab/kota and WIB day.
CREATE TABLE ektp_refusals (
    kabkota text    NOT NULL,
    day     date    NOT NULL,
    count   integer NOT NULL,
    PRIMARY KEY (kabkota, day)
);
