-- Alerts the monitor raised: open while their condition holds (closed_at NULL); a condition that returns reopens
-- its alert. Counts and unit ids only.
CREATE TABLE alerts (
    key         text        PRIMARY KEY,
    kind        text        NOT NULL,
    severity    text        NOT NULL,
    text_id     text        NOT NULL,
    text_en     text        NOT NULL,
    unit_id     text,
    kanwil_id   text,
    centre_only boolean     NOT NULL,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz
);
CREATE INDEX alerts_open ON alerts (opened_at) WHERE closed_at IS NULL;
