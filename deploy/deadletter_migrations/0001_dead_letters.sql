-- The centre's dead-letter store (deploy/deadletters.py): every message taken off `dead.letters`, kept with
-- why it died and where it came from, until an operator replays or discards it; and every operator action.
CREATE TABLE letters (
    id                   bigserial   PRIMARY KEY,
    message_id           text        NOT NULL UNIQUE,  -- the dead copy's own id (one row per dead letter)
    original_message_id  text,
    original_exchange    text        NOT NULL,
    original_routing_key text        NOT NULL,
    original_user_id     text,
    content_type         text,
    reason               text        NOT NULL,
    detail               text,
    service              text,
    queue                text,
    dead_at              timestamptz,
    headers              jsonb       NOT NULL,
    body                 bytea,                        -- NULL once discarded: nothing personal is kept
    body_bytes           integer     NOT NULL,
    state                text        NOT NULL DEFAULT 'kept' CHECK (state IN ('kept', 'replayed', 'discarded')),
    replayed_as          text,
    collected_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX letters_reason ON letters (reason, dead_at);
CREATE INDEX letters_state ON letters (state, dead_at);

-- Append-only: who did what to which letters, and why.
CREATE TABLE actions (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    operator  text        NOT NULL,
    os_user   text        NOT NULL,
    action    text        NOT NULL CHECK (action IN ('collect', 'list', 'show', 'replay', 'discard')),
    letters   bigint[]    NOT NULL,
    filters   jsonb       NOT NULL,
    why       text
);
CREATE FUNCTION actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'deadletters.actions is append-only';
END $$;
CREATE TRIGGER actions_append_only BEFORE UPDATE OR DELETE ON actions
    FOR EACH ROW EXECUTE FUNCTION actions_append_only();
