-- Every confirmation of a person's NIK by the centre (command.person.link), applied or refused.
CREATE TABLE link_requests (
    message_id   text        PRIMARY KEY,
    publisher    text        NOT NULL,
    person_id    bigint,
    nik          text        NOT NULL,
    operator     text        NOT NULL,
    reason       text        NOT NULL,
    outcome      text        NOT NULL,  -- already, set_nik, merge, or the refusal's code
    received_at  timestamptz NOT NULL DEFAULT now()
);
-- Who confirmed a merge the centre asked for (runs merge on their own, with the run as the cause).
ALTER TABLE merges ADD COLUMN confirmed_by text;
CREATE OR REPLACE FUNCTION merge_json(m merges) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('central_id', 'C' || m.merged, 'reason', m.reason, 'cause', m.cause, 'at', m.merged_at,
                              'confirmed_by', m.confirmed_by)
$$;
