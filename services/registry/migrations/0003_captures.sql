-- e-KTP captures as the centre knows them: status, demographics and a summary of the templates.
-- The templates themselves never rest here: they go on to dedup, the only place that keeps them.
CREATE TABLE captures (
    kabkota      text        NOT NULL,
    packet_id    text        NOT NULL,
    status       text        NOT NULL,
    nik          text,
    content_hash text,
    station_id   text,
    demographics jsonb,
    modalities   jsonb,
    captured_at  timestamptz,
    received_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kabkota, packet_id)
);
CREATE INDEX captures_nik ON captures (nik) WHERE nik IS NOT NULL;
CREATE INDEX captures_status ON captures (kabkota, status);

-- Every move of every capture, in order (the audit trail behind each status).
CREATE TABLE capture_moves (
    id          bigserial   PRIMARY KEY,
    kabkota     text        NOT NULL,
    packet_id   text        NOT NULL,
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    code        text,
    implied     boolean     NOT NULL DEFAULT false,
    at          timestamptz NOT NULL,
    message_id  text        NOT NULL
);
CREATE INDEX capture_moves_capture ON capture_moves (kabkota, packet_id, id);

-- Every e-KTP message consumed, with the receipt it got (a resend gets the same answer).
CREATE TABLE ektp_messages (
    message_id  text        PRIMARY KEY,
    kind        text        NOT NULL,
    kabkota     text        NOT NULL,
    packet_id   text,
    receipt     jsonb       NOT NULL,
    forwarded   boolean     NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now()
);
