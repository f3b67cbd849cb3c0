-- Every e-KTP verdict, keyed by the registry message it answers (a redelivered message is decided once).
CREATE TABLE verdicts (
    message_id  text        PRIMARY KEY,
    kabkota     text        NOT NULL,
    packet_id   text        NOT NULL,
    status      text        NOT NULL,
    finding     text        NOT NULL,
    person_id   bigint,
    verdict     jsonb       NOT NULL,
    decided_at  timestamptz NOT NULL
);
CREATE INDEX verdicts_capture ON verdicts (kabkota, packet_id);

-- Grey-zone captures waiting for a central operator (command.adjudication.decide).
CREATE TABLE adjudications (
    kabkota            text        NOT NULL,
    packet_id          text        NOT NULL,
    verdict_message_id text        NOT NULL,
    opened_at          timestamptz NOT NULL DEFAULT now(),
    decision           text        CHECK (decision IN ('duplicate', 'unique')),
    decided_by         text,
    decided_at         timestamptz,
    PRIMARY KEY (kabkota, packet_id)
);
