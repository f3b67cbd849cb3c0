-- The centre's own record of the day: staged SDP snapshots, one record per person, runs and their reports.
-- The first central inmate table (one row per UPT record, rewritten by every part) is replaced by these.
DROP TABLE inmates;
DROP SEQUENCE announce_seq;

-- What the registry said of each part (status.registry.submission) and whether dedup's checked part arrived.
CREATE TABLE sdp_parts (
    upt_id         text        NOT NULL,
    as_of          date        NOT NULL,
    snapshot       integer     NOT NULL,
    part           integer     NOT NULL,
    parts          integer     NOT NULL,
    submission_id  text        NOT NULL,
    processed_at   timestamptz,          -- when the registry answered the part
    stored         boolean,              -- the registry kept the part (its snapshot counts it)
    received       integer     NOT NULL DEFAULT 0,
    accepted       integer     NOT NULL DEFAULT 0,
    refused        integer     NOT NULL DEFAULT 0,
    warnings       integer     NOT NULL DEFAULT 0,
    lateness       text,
    checked        boolean     NOT NULL DEFAULT false,  -- dedup's checked records of the part are staged
    PRIMARY KEY (upt_id, as_of, snapshot, part)
);

-- The accepted records of each snapshot, staged until a run applies the UPT's latest complete snapshot.
CREATE TABLE sdp_rows (
    upt_id            text    NOT NULL,
    as_of             date    NOT NULL,
    snapshot          integer NOT NULL,
    inmate_id         text    NOT NULL,
    part              integer NOT NULL,
    message_id        text    NOT NULL,  -- dedup's checked part: the provenance of what the row says
    nik               text,
    full_name         text    NOT NULL,
    sex               text    NOT NULL,
    birth_date        date    NOT NULL,
    birth_place       text,
    mother_name       text,
    register          text    NOT NULL,
    register_number   text    NOT NULL,
    entry_date        date    NOT NULL,
    detention_start   date,
    detention_expiry  date,
    extension_days    integer NOT NULL DEFAULT 0,
    extended_until    date,
    sentence_days     integer,
    expected_release  date,
    custody_status    text    NOT NULL,
    extensions        jsonb   NOT NULL DEFAULT '[]',
    population        jsonb,
    row_hash          text    NOT NULL,  -- of everything the record says: unchanged rows are skipped
    PRIMARY KEY (upt_id, as_of, snapshot, inmate_id)
);
CREATE INDEX sdp_rows_part ON sdp_rows (upt_id, as_of, snapshot, part);

-- One record per person. `nik` is set where a valid NIK is known; otherwise the central id is the key.
CREATE SEQUENCE person_seq;
CREATE TABLE persons (
    person_id    bigint      PRIMARY KEY DEFAULT nextval('person_seq'),
    nik          text        UNIQUE,
    full_name    text,
    sex          text,
    birth_date   date,
    birth_place  text,
    mother_name  text,
    provenance   jsonb       NOT NULL DEFAULT '{}',  -- field -> {source, message_id, as_of}
    merged_into  bigint      REFERENCES persons (person_id),
    version      integer     NOT NULL DEFAULT 1,
    fed_version  integer     NOT NULL DEFAULT 0,     -- the last version written to the central feed
    changed      text[]      NOT NULL DEFAULT '{}',  -- what the last change touched (for the feed)
    cause        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every source id a person is known by: ('sdp', '<upt>/<inmate>') and ('ektp', '<kabkota>/<packet>').
CREATE TABLE person_sources (
    source     text   NOT NULL,
    source_id  text   NOT NULL,
    person_id  bigint NOT NULL REFERENCES persons (person_id),
    PRIMARY KEY (source, source_id)
);
CREATE INDEX person_sources_person ON person_sources (person_id);

-- A person found to be another: the record merged away, where it went and why.
CREATE TABLE merges (
    merged     bigint      PRIMARY KEY REFERENCES persons (person_id),
    into_id    bigint      NOT NULL REFERENCES persons (person_id),
    reason     text        NOT NULL,
    cause      text        NOT NULL,
    merged_at  timestamptz NOT NULL DEFAULT now()
);

-- What an episode's state is while its record says this custody status.
CREATE FUNCTION custody_state(custody_status text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE custody_status WHEN 'released' THEN 'released' WHEN 'died' THEN 'died'
                WHEN 'escaped' THEN 'escaped' WHEN 'transferred_out' THEN 'departed' ELSE 'active' END
$$;

-- A stay in one UPT. state: active, departed (gone, in transit until seen elsewhere or the window ends),
-- transferred (seen in another UPT), released.
CREATE TABLE episodes (
    upt_id            text    NOT NULL,
    inmate_id         text    NOT NULL,
    person_id         bigint  NOT NULL REFERENCES persons (person_id),
    register          text    NOT NULL,
    register_number   text    NOT NULL,
    entry_date        date    NOT NULL,
    detention_start   date,
    detention_expiry  date,
    extension_days    integer NOT NULL DEFAULT 0,
    extended_until    date,
    extensions        jsonb   NOT NULL DEFAULT '[]',
    sentence_days     integer,
    expected_release  date,
    custody_status    text    NOT NULL,
    population        jsonb,
    row_hash          text,              -- the staged row's hash when last applied
    first_seen        date    NOT NULL,
    last_seen         date    NOT NULL,
    first_snapshot    text    NOT NULL,  -- as_of/snapshot
    last_snapshot     text    NOT NULL,
    state             text    NOT NULL DEFAULT 'active',
    ended_on          date,
    moved_to          text,
    PRIMARY KEY (upt_id, inmate_id)
);
CREATE INDEX episodes_person ON episodes (person_id);
CREATE INDEX persons_unfed ON persons (person_id) WHERE version > fed_version;
CREATE INDEX episodes_departed ON episodes (ended_on) WHERE state = 'departed';

-- What each run found happening on its day, one row per inmate and kind (admission, release, transfer_out,
-- transfer_in, in_transit); written by the run that applied it, read by every report of that day.
CREATE TABLE movements (
    day        date   NOT NULL,
    kind       text   NOT NULL,
    upt_id     text   NOT NULL,
    inmate_id  text   NOT NULL,
    person_id  bigint NOT NULL,
    other_upt  text,
    PRIMARY KEY (day, kind, upt_id, inmate_id)
);

-- The snapshot each UPT's central state was last applied from (a snapshot of an older day never overrides).
CREATE TABLE upt_applied (
    upt_id    text    PRIMARY KEY,
    as_of     date    NOT NULL,
    snapshot  integer NOT NULL
);

-- What a day's runs decided per UPT: the snapshot applied (or held), its size and the size before the day's
-- first apply. Later runs of the same day report from here, so they say the same.
CREATE TABLE upt_days (
    upt_id    text    NOT NULL,
    day       date    NOT NULL,
    snapshot  integer NOT NULL,
    decision  text    NOT NULL,  -- applied or held
    inmates   integer NOT NULL,
    previous  integer NOT NULL,
    run_id    text    NOT NULL,
    PRIMARY KEY (upt_id, day)
);

-- A complete snapshot that lost too many inmates since the UPT's applied one: kept aside until accepted.
CREATE TABLE held_snapshots (
    upt_id       text        NOT NULL,
    as_of        date        NOT NULL,
    snapshot     integer     NOT NULL,
    inmates      integer     NOT NULL,
    previous     integer     NOT NULL,
    held_by_run  text        NOT NULL,
    accepted_by  text,
    accepted_at  timestamptz,
    PRIMARY KEY (upt_id, as_of, snapshot)
);

-- Dedup flags keep living in inmate_flags (0001); the population check travels with the staged rows.

-- e-KTP captures as the registry's status events and dedup's verdicts tell them.
CREATE TABLE captures (
    kabkota     text        NOT NULL,
    packet_id   text        NOT NULL,
    person_id   bigint      REFERENCES persons (person_id),
    nik         text,
    status      text,
    status_at   timestamptz,
    finding     text,
    verdict     jsonb,       -- dedup's finding: candidates (masked nothing: centre only), thresholds
    anomalies   text[]      NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kabkota, packet_id)
);
CREATE INDEX captures_person ON captures (person_id);
CREATE INDEX captures_nik ON captures (nik);

CREATE TABLE capture_moves (
    kabkota      text        NOT NULL,
    packet_id    text        NOT NULL,
    message_id   text        NOT NULL,
    seq          integer     NOT NULL,  -- order within its message
    from_status  text        NOT NULL,
    to_status    text        NOT NULL,
    at           timestamptz NOT NULL,
    code         text,
    source       text        NOT NULL,  -- registry or dedup
    implied      boolean     NOT NULL DEFAULT false,
    out_of_order boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (kabkota, packet_id, message_id, seq)
);

-- Consolidation runs: one per day and trigger; `step` is the last step committed (resume after a crash).
CREATE TABLE runs (
    run_id        text        PRIMARY KEY,
    day           date        NOT NULL,
    trigger       text        NOT NULL,
    requested_by  text        NOT NULL,
    reason        text        NOT NULL,
    accept        text[]      NOT NULL DEFAULT '{}',
    state         text        NOT NULL DEFAULT 'running',
    step          integer     NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    summary       jsonb,
    error         text
);
CREATE INDEX runs_day ON runs (day, started_at);

-- Every run command, applied or refused, with who sent it.
CREATE TABLE run_requests (
    message_id   text        PRIMARY KEY,
    publisher    text        NOT NULL,
    day          date,
    requested_by text,
    reason       text,
    run_id       text,
    refused      text,       -- the problem code when refused
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- One line per UPT of a run's report.
CREATE TABLE run_upts (
    run_id         text    NOT NULL REFERENCES runs (run_id),
    upt_id         text    NOT NULL,
    sent           boolean NOT NULL,
    complete       boolean NOT NULL,
    lateness       text,
    snapshot       integer,
    applied        text    NOT NULL,  -- applied, held, unchanged (nothing new), not_sent
    received       integer NOT NULL DEFAULT 0,
    accepted       integer NOT NULL DEFAULT 0,
    refused        integer NOT NULL DEFAULT 0,
    warnings       integer NOT NULL DEFAULT 0,
    inmates        integer NOT NULL DEFAULT 0,
    previous       integer NOT NULL DEFAULT 0,
    admissions     integer NOT NULL DEFAULT 0,
    releases       integer NOT NULL DEFAULT 0,
    transfers_in   integer NOT NULL DEFAULT 0,
    transfers_out  integer NOT NULL DEFAULT 0,
    in_transit     integer NOT NULL DEFAULT 0,
    dual_custody   integer NOT NULL DEFAULT 0,
    overstaying    integer NOT NULL DEFAULT 0,
    notices        integer NOT NULL DEFAULT 0,
    without_ektp   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, upt_id)
);

-- The lists behind a run's figures: overstaying, notice_10, notice_3, dual_custody, without_ektp, held.
CREATE TABLE run_items (
    run_id     text   NOT NULL REFERENCES runs (run_id),
    kind       text   NOT NULL,
    upt_id     text   NOT NULL,
    inmate_id  text   NOT NULL,
    detail     jsonb  NOT NULL,
    PRIMARY KEY (run_id, kind, upt_id, inmate_id)
);

-- The UPTs the centre expects a day from (the units files, loaded at start): names and Kanwil for reports,
-- kab/kota for the without-e-KTP work list.
CREATE TABLE upts (
    upt_id       text PRIMARY KEY,
    name         text NOT NULL,
    kanwil_id    text NOT NULL,
    kanwil_name  text NOT NULL,
    kabkota      text NOT NULL
);

-- Detention limits per law and register, loaded at start from the versioned data file.
CREATE TABLE detention_rules (
    law             text    NOT NULL,
    version         text    NOT NULL,
    register        text    NOT NULL,
    valid_from      date    NOT NULL,
    valid_until     date,
    initial_days    integer NOT NULL,
    extension_days  integer NOT NULL,
    exceptional_days integer NOT NULL,
    citation        text    NOT NULL,
    PRIMARY KEY (law, register)
);

-- Every read of a person's record through the lookup API, allowed or refused. Append-only: the
-- consolidator's own database role may insert and select, never update or delete (see deploy/provision.py).
CREATE TABLE lookup_audit (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    who         text        NOT NULL,
    role        text        NOT NULL,
    purpose     text,
    query_kind  text        NOT NULL,  -- nik, central_id, report
    query       text        NOT NULL,
    person_id   bigint,
    outcome     text        NOT NULL,  -- found, not_found, refused, invalid
    status      integer     NOT NULL
);
CREATE FUNCTION lookup_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lookup_audit is append-only';
END $$;
CREATE TRIGGER lookup_audit_append_only BEFORE UPDATE OR DELETE ON lookup_audit
    FOR EACH STATEMENT EXECUTE FUNCTION lookup_audit_is_append_only();

-- Who may read the lookup API (centre) and who is refused (other roles); passwords as scrypt hashes.
CREATE TABLE api_users (
    username      text PRIMARY KEY,
    role          text NOT NULL,  -- pusat, kanwil, upt, dukcapil
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false
);
