-- The adjudication desk: grey-zone captures as dedup published them (masked, never a template), the decision a
-- centre operator asked for here, and dedup's outcome.
CREATE TABLE cases (
    kabkota      text        NOT NULL,
    packet_id    text        NOT NULL,
    opened_at    timestamptz NOT NULL,
    detail       jsonb       NOT NULL,  -- the opened case: masked NIK, demographics, candidates and their scores
    requested    text,                  -- the decision asked for at the desk (duplicate/unique), by requested_by
    requested_by text,
    requested_at timestamptz,
    decision     text,                  -- dedup's outcome
    operator     text,
    reason       text,
    decided_at   timestamptz,
    PRIMARY KEY (kabkota, packet_id)
);
CREATE INDEX cases_open ON cases (opened_at) WHERE decision IS NULL;

-- Every opening of a case at the desk (who, when, which capture): a read of a person's data.
CREATE TABLE case_reads (
    id        bigserial   PRIMARY KEY,
    username  text        NOT NULL,
    kabkota   text        NOT NULL,
    packet_id text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION case_reads_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_reads is append-only';
END
$$;
CREATE TRIGGER case_reads_append_only BEFORE UPDATE OR DELETE ON case_reads
    FOR EACH ROW EXECUTE FUNCTION case_reads_are_append_only();
