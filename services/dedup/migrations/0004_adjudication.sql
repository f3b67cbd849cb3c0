-- What an operator needs to decide a grey-zone capture, and what deciding it "unique" adds to the gallery.
ALTER TABLE adjudications
    ADD COLUMN nik        text,
    ADD COLUMN templates  bytea,   -- sealed like the gallery's; removed once decided
    ADD COLUMN reason     text,
    ADD COLUMN operator   text;

-- Every adjudication command, applied or refused: who (broker user and named operator), when, what, why.
CREATE TABLE adjudication_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    message_id  text        NOT NULL,
    user_id     text        NOT NULL,
    operator    text        NOT NULL,
    kabkota     text        NOT NULL,
    packet_id   text        NOT NULL,
    decision    text        NOT NULL,
    reason      text        NOT NULL,
    outcome     text        NOT NULL   -- applied | unknown_capture | already_decided
);
REVOKE UPDATE, DELETE ON adjudication_audit FROM PUBLIC;
