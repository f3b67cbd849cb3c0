-- Every change a browser may be shown, in commit order (appends take a transaction-scoped lock, so ids are
-- committed in order). SSE event ids are these ids: a reconnecting page asks for what followed the last one it
-- saw, and every monitor instance follows this one log, so each shows every change.
CREATE TABLE live_events (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    unit_id     text,
    kanwil_id   text,
    centre_only boolean     NOT NULL DEFAULT false,
    payload     jsonb       NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_events_at ON live_events (at);
