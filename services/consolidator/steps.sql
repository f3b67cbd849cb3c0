-- The consolidation run as set-based statements, one section per step (see domain/runs.py STEPS).
-- Parameters everywhere: $1 run id, $2 day, $3 largest share a snapshot may lose, $4 transfer window (days),
-- $5 UPTs whose shrunken snapshot the centre accepts. The rules mirror the pure functions of domain/runs.py
-- (decide_snapshot, classify_departure, decide_identity) and domain/detention.py, which the tests compare.

-- name: lines
-- Per UPT: did it send, is a snapshot complete (every part kept, its records checked), how late, and what
-- this run does with it: to_apply, applied (by an earlier run of the day), held, unchanged, incomplete, not_sent.
UPDATE held_snapshots SET accepted_by = (SELECT requested_by FROM runs WHERE run_id = $1), accepted_at = now()
WHERE as_of = $2 AND upt_id = ANY($5::text[]) AND accepted_by IS NULL;
WITH parts AS (
    SELECT upt_id, snapshot, max(parts) AS parts,
           count(DISTINCT part) FILTER (WHERE checked OR (stored AND accepted = 0)) AS known,
           max(CASE lateness WHEN 'after_14' THEN 2 WHEN 'after_10' THEN 1 ELSE 0 END) AS late,
           sum(received) AS received, sum(accepted) AS accepted, sum(refused) AS refused,
           sum(warnings) AS warnings
    FROM sdp_parts WHERE as_of = $2 GROUP BY upt_id, snapshot
), chosen AS (
    SELECT DISTINCT ON (upt_id) * FROM parts WHERE known >= parts ORDER BY upt_id, snapshot DESC
), first_complete AS (
    SELECT DISTINCT ON (upt_id) upt_id, late FROM parts WHERE known >= parts ORDER BY upt_id, snapshot
), latest AS (
    SELECT DISTINCT ON (upt_id) * FROM parts ORDER BY upt_id, snapshot DESC
), sizes AS (
    SELECT r.upt_id, count(*) AS n FROM sdp_rows r JOIN chosen c USING (upt_id, snapshot)
    WHERE r.as_of = $2 GROUP BY r.upt_id
), active AS (
    SELECT upt_id, count(*) AS n FROM episodes WHERE state = 'active' GROUP BY upt_id
), decided AS (
    SELECT u.upt_id, l.upt_id IS NOT NULL AS sent, c.upt_id IS NOT NULL AS complete,
           CASE f.late WHEN 2 THEN 'after_14' WHEN 1 THEN 'after_10' WHEN 0 THEN 'on_time' END AS lateness,
           COALESCE(c.snapshot, l.snapshot) AS snapshot,
           CASE
               WHEN c.upt_id IS NULL THEN CASE WHEN l.upt_id IS NULL THEN 'not_sent' ELSE 'incomplete' END
               WHEN a.as_of > $2 OR (a.as_of = $2 AND a.snapshot > c.snapshot) THEN 'unchanged'
               WHEN a.as_of = $2 AND a.snapshot = c.snapshot THEN 'applied'
               WHEN u.upt_id = ANY($5::text[]) OR h.accepted_by IS NOT NULL THEN 'to_apply'
               WHEN COALESCE(act.n, 0) > 0 AND COALESCE(s.n, 0) < act.n * (1 - $3::float8) THEN 'held'
               ELSE 'to_apply'
           END AS applied,
           COALESCE(c.received, l.received, 0) AS received, COALESCE(c.accepted, l.accepted, 0) AS accepted,
           COALESCE(c.refused, l.refused, 0) AS refused, COALESCE(c.warnings, l.warnings, 0) AS warnings,
           COALESCE(s.n, 0) AS inmates, d.previous AS day_previous, COALESCE(act.n, 0) AS active_now
    FROM upts u
    LEFT JOIN chosen c ON c.upt_id = u.upt_id
    LEFT JOIN latest l ON l.upt_id = u.upt_id
    LEFT JOIN first_complete f ON f.upt_id = u.upt_id
    LEFT JOIN sizes s ON s.upt_id = u.upt_id
    LEFT JOIN active act ON act.upt_id = u.upt_id
    LEFT JOIN upt_applied a ON a.upt_id = u.upt_id
    LEFT JOIN upt_days d ON d.upt_id = u.upt_id AND d.day = $2
    LEFT JOIN held_snapshots h ON h.upt_id = u.upt_id AND h.as_of = $2 AND h.snapshot = c.snapshot
)
INSERT INTO run_upts (run_id, upt_id, sent, complete, lateness, snapshot, applied, received, accepted,
                      refused, warnings, inmates, previous)
SELECT $1, upt_id, sent, complete, lateness, snapshot, applied, received, accepted, refused, warnings,
       CASE WHEN applied IN ('to_apply', 'applied', 'held') THEN inmates ELSE active_now END,
       COALESCE(day_previous, active_now)
FROM decided
ON CONFLICT (run_id, upt_id) DO NOTHING;
INSERT INTO held_snapshots (upt_id, as_of, snapshot, inmates, previous, held_by_run)
SELECT upt_id, $2, snapshot, inmates, previous, $1 FROM run_upts WHERE run_id = $1 AND applied = 'held'
ON CONFLICT DO NOTHING;

-- name: apply
-- Which central person each applied record belongs to (domain.runs.decide_identity, set-based), then its
-- episode. Only records that differ from what their episode was applied from are read: a record saying
-- exactly that, in the state it implies, changes nothing. A record's episode is its source (upt/inmate).
CREATE TEMP TABLE applying ON COMMIT DROP AS
SELECT ru.upt_id, ru.snapshot, a.upt_id IS NOT NULL AS registered
FROM run_upts ru LEFT JOIN upt_applied a USING (upt_id) WHERE ru.run_id = $1 AND ru.applied = 'to_apply';
ANALYZE applying;
-- Each applied snapshot beside its UPT's episodes, in one pass (whole-table hash joins: index lookups per
-- row, which statistics still counting yesterday's tables suggest, took twice as long): records that change
-- their episode (or have none), and episodes in custody the snapshot no longer holds (gone, below).
SET LOCAL enable_nestloop = off;
CREATE TEMP TABLE work ON COMMIT DROP AS
SELECT r.*, e.person_id AS linked, NULL::bigint AS pid, r.as_of || '/' || r.snapshot AS snap,
       custody_state(r.custody_status) AS new_state, e.upt_id IS NULL AS is_new, e.state AS old_state,
       jsonb_build_object('source', 'sdp', 'record', r.upt_id || '/' || r.inmate_id, 'message_id', r.message_id,
                          'as_of', r.as_of, 'snapshot', r.snapshot) AS provenance,
       -- A UPT's first applied snapshot registers who is there; only later arrivals (or entries dated on
       -- the day itself) are admissions.
       (r.registered OR r.entry_date >= $2) AS admits,
       e.upt_id AS held_upt, e.inmate_id AS held_inmate
FROM (SELECT r.*, ap.registered FROM sdp_rows r JOIN applying ap USING (upt_id, snapshot) WHERE r.as_of = $2) r
FULL JOIN (SELECT * FROM episodes WHERE upt_id IN (SELECT upt_id FROM applying)) e
       ON e.upt_id = r.upt_id AND e.inmate_id = r.inmate_id
WHERE CASE WHEN r.upt_id IS NULL THEN e.state = 'active'
           ELSE e.upt_id IS NULL OR e.row_hash IS DISTINCT FROM r.row_hash
                OR e.state <> settled_state(e.state, custody_state(r.custody_status)) END;
SET LOCAL enable_nestloop = on;
-- Gone: held before, not in the applied snapshot (their person as merged below, if it is).
CREATE TEMP TABLE gone ON COMMIT DROP AS
SELECT held_upt AS upt_id, held_inmate AS inmate_id, linked AS person_id FROM work WHERE upt_id IS NULL;
DELETE FROM work WHERE upt_id IS NULL;
ANALYZE gone;
-- Persons are created here and by e-KTP captures: those wait for this step (readers do not), so the NIKs
-- nobody holds stay nobody's until the inserts below (plain inserts: no speculative insertion per row).
LOCK TABLE persons IN SHARE ROW EXCLUSIVE MODE;
-- set_nik: a person known without a NIK learns one nobody holds.
UPDATE persons p SET nik = w.nik
FROM (SELECT DISTINCT ON (w.nik) w.linked, w.nik FROM work w JOIN persons l ON l.person_id = w.linked
      WHERE w.nik IS NOT NULL AND l.nik IS NULL AND NOT EXISTS (SELECT 1 FROM persons h WHERE h.nik = w.nik)
      ORDER BY w.nik, w.linked) w
WHERE p.person_id = w.linked;
-- new: a NIK nobody holds (a first record, or a record now claiming another NIK), with its identity.
INSERT INTO persons (nik, full_name, sex, birth_date, birth_place, mother_name, provenance, version, changed, cause)
SELECT DISTINCT ON (w.nik) w.nik, w.full_name, w.sex, w.birth_date, w.birth_place, w.mother_name, w.provenance,
       1, '{episodes,identity}'::text[], $1
FROM work w
WHERE w.nik IS NOT NULL AND NOT EXISTS (SELECT 1 FROM persons h WHERE h.nik = w.nik)
ORDER BY w.nik, w.upt_id, w.inmate_id;
-- merge: the person known by this record without a NIK is the person holding the record's NIK.
INSERT INTO merges (merged, into_id, reason, cause)
SELECT DISTINCT ON (w.linked) w.linked, h.person_id, 'nik_learned', $1
FROM work w JOIN persons l ON l.person_id = w.linked JOIN persons h ON h.nik = w.nik
WHERE l.nik IS NULL AND l.merged_into IS NULL AND h.person_id <> w.linked
ORDER BY w.linked, h.person_id
ON CONFLICT (merged) DO NOTHING;
UPDATE persons p SET merged_into = m.into_id, version = p.version + 1, changed = '{merged}', cause = $1
FROM merges m WHERE m.merged = p.person_id AND m.cause = $1 AND p.merged_into IS NULL;
UPDATE episodes e SET person_id = m.into_id FROM merges m WHERE m.merged = e.person_id AND m.cause = $1;
UPDATE captures c SET person_id = m.into_id FROM merges m WHERE m.merged = c.person_id AND m.cause = $1;
UPDATE gone g SET person_id = m.into_id FROM merges m WHERE m.merged = g.person_id AND m.cause = $1;
-- new without a NIK: keyed by the central id alone.
UPDATE work SET pid = nextval('person_seq') WHERE linked IS NULL AND nik IS NULL;
INSERT INTO persons (person_id, full_name, sex, birth_date, birth_place, mother_name, provenance, version,
                     changed, cause)
SELECT pid, full_name, sex, birth_date, birth_place, mother_name, provenance, 1, '{episodes,identity}'::text[], $1
FROM work WHERE pid IS NOT NULL;
-- Each record's person: the holder of its NIK, else where its person was merged, else its person, else new.
-- (known: the person existed before this run; persons this run made took their identity from a record;
-- with what the movements need, read from here alone)
CREATE TEMP TABLE placed ON COMMIT DROP AS
SELECT w.upt_id, w.inmate_id, COALESCE(h.person_id, m.into_id, w.linked, w.pid) AS person_id,
       COALESCE(h.cause IS DISTINCT FROM $1, w.pid IS NULL) AS known, w.is_new, w.admits, w.new_state,
       w.old_state, w.custody_status
FROM work w LEFT JOIN persons h ON h.nik = w.nik LEFT JOIN merges m ON m.merged = w.linked;
ANALYZE placed;
-- Identity from the record of each person known before this run (the first by UPT and inmate id when
-- several), each change with where it came from; unchanged persons are not rewritten.
UPDATE persons p SET
    full_name = w.full_name, sex = w.sex, birth_date = w.birth_date, birth_place = w.birth_place,
    mother_name = w.mother_name, provenance = w.provenance,
    version = CASE WHEN p.cause IS DISTINCT FROM $1 THEN p.version + 1 ELSE p.version END,
    changed = CASE WHEN p.cause IS DISTINCT FROM $1 THEN '{identity}'::text[]
                   ELSE ARRAY(SELECT DISTINCT x FROM unnest(p.changed || '{identity}'::text[]) x ORDER BY 1) END,
    cause = $1, updated_at = now()
FROM (SELECT DISTINCT ON (pl.person_id) pl.person_id AS pid, w.full_name, w.sex, w.birth_date, w.birth_place,
             w.mother_name, w.provenance
      FROM work w JOIN placed pl USING (upt_id, inmate_id) WHERE pl.known
      ORDER BY pl.person_id, w.upt_id, w.inmate_id) w
WHERE p.person_id = w.pid
  AND (p.full_name, p.sex, p.birth_date, p.birth_place, p.mother_name)
      IS DISTINCT FROM (w.full_name, w.sex, w.birth_date, w.birth_place, w.mother_name);
-- Each record updates its episode, or becomes a new one (in key order: the index grows at its end); inmates
-- a complete snapshot no longer holds have departed (in transit until seen elsewhere or the window ends).
UPDATE episodes e SET row_hash = w.row_hash, person_id = pl.person_id, register = w.register,
    register_number = w.register_number, entry_date = w.entry_date, detention_start = w.detention_start,
    detention_expiry = w.detention_expiry, extension_days = w.extension_days, extended_until = w.extended_until,
    extensions = w.extensions, sentence_days = w.sentence_days, expected_release = w.expected_release,
    custody_status = w.custody_status, population = w.population, last_seen = $2, last_snapshot = w.snap,
    state = settled_state(e.state, w.new_state),
    ended_on = CASE WHEN w.new_state = 'active' THEN NULL ELSE COALESCE(e.ended_on, $2::date) END,
    moved_to = CASE WHEN w.new_state = 'active' THEN NULL ELSE e.moved_to END
FROM work w JOIN placed pl USING (upt_id, inmate_id)
WHERE NOT w.is_new AND e.upt_id = w.upt_id AND e.inmate_id = w.inmate_id;
INSERT INTO episodes (upt_id, inmate_id, person_id, register, register_number, entry_date,
    detention_start, detention_expiry, extension_days, extended_until, extensions, sentence_days,
    expected_release, custody_status, population, row_hash, first_seen, last_seen, first_snapshot,
    last_snapshot, state, ended_on)
SELECT w.upt_id, w.inmate_id, pl.person_id, w.register, w.register_number, w.entry_date, w.detention_start,
       w.detention_expiry, w.extension_days, w.extended_until, w.extensions, w.sentence_days, w.expected_release,
       w.custody_status, w.population, w.row_hash, $2, $2, w.snap, w.snap, w.new_state,
       CASE WHEN w.new_state = 'active' THEN NULL ELSE $2::date END
FROM work w JOIN placed pl USING (upt_id, inmate_id) WHERE w.is_new ORDER BY w.upt_id, w.inmate_id;
INSERT INTO movements (day, kind, upt_id, inmate_id, person_id)
SELECT $2, 'admission', upt_id, inmate_id, person_id FROM placed
WHERE is_new AND admits AND new_state = 'active' AND custody_status <> 'transferred_in'
UNION ALL
SELECT $2, 'release', upt_id, inmate_id, person_id FROM placed
WHERE new_state = 'released' AND old_state IS DISTINCT FROM 'released'
ON CONFLICT DO NOTHING;
-- Last seen in the snapshot applied before this one (an unchanged episode is not rewritten every day: while
-- active, its last sighting is its UPT's applied snapshot).
UPDATE episodes e SET state = 'departed', ended_on = $2, last_seen = a.as_of,
                      last_snapshot = a.as_of || '/' || a.snapshot
FROM gone g JOIN upt_applied a ON a.upt_id = g.upt_id
WHERE e.upt_id = g.upt_id AND e.inmate_id = g.inmate_id;
UPDATE persons p SET
    version = CASE WHEN p.cause IS DISTINCT FROM $1 THEN p.version + 1 ELSE p.version END,
    changed = CASE WHEN p.cause IS DISTINCT FROM $1 THEN '{episodes}'::text[]
                   ELSE ARRAY(SELECT DISTINCT x FROM unnest(p.changed || '{episodes}'::text[]) x ORDER BY 1) END,
    cause = $1, updated_at = now()
-- (a person this run made is already marked: not written twice)
WHERE p.person_id IN (SELECT person_id FROM placed UNION SELECT person_id FROM gone)
  AND NOT (p.cause IS NOT DISTINCT FROM $1 AND 'episodes' = ANY(p.changed));
INSERT INTO upt_days AS d (upt_id, day, snapshot, decision, inmates, previous, run_id)
SELECT upt_id, $2, snapshot, applied, inmates, previous, $1 FROM run_upts
WHERE run_id = $1 AND applied IN ('to_apply', 'held')
ON CONFLICT (upt_id, day) DO UPDATE SET snapshot = EXCLUDED.snapshot, decision = EXCLUDED.decision,
    inmates = EXCLUDED.inmates, run_id = EXCLUDED.run_id;
INSERT INTO upt_applied AS a (upt_id, as_of, snapshot)
SELECT upt_id, $2, snapshot FROM run_upts WHERE run_id = $1 AND applied = 'to_apply'
ON CONFLICT (upt_id) DO UPDATE SET as_of = EXCLUDED.as_of, snapshot = EXCLUDED.snapshot;
UPDATE run_upts SET applied = 'applied' WHERE run_id = $1 AND applied = 'to_apply';

-- name: movements
-- Departures met by an arrival of the same person elsewhere within the window are transfers
-- (domain.runs.classify_departure); the others are in transit until the window ends, then releases.
CREATE TEMP TABLE moved ON COMMIT DROP AS
SELECT DISTINCT ON (d.upt_id, d.inmate_id) d.upt_id, d.inmate_id, d.person_id, a.upt_id AS to_upt,
       a.inmate_id AS to_inmate
FROM episodes d
JOIN episodes a ON a.person_id = d.person_id AND a.upt_id <> d.upt_id AND a.state = 'active'
WHERE d.state = 'departed' AND abs(a.first_seen - d.ended_on) <= $4
ORDER BY d.upt_id, d.inmate_id, a.first_seen, a.upt_id;
ANALYZE moved;
UPDATE episodes e SET state = 'transferred', moved_to = m.to_upt
FROM moved m WHERE e.upt_id = m.upt_id AND e.inmate_id = m.inmate_id;
INSERT INTO movements (day, kind, upt_id, inmate_id, person_id, other_upt)
SELECT $2, 'transfer_out', upt_id, inmate_id, person_id, to_upt FROM moved
UNION ALL
SELECT $2, 'transfer_in', to_upt, to_inmate, person_id, upt_id FROM moved
ON CONFLICT DO NOTHING;
DELETE FROM movements v USING moved m
WHERE v.day = $2 AND v.kind = 'admission' AND v.upt_id = m.to_upt AND v.inmate_id = m.to_inmate;
CREATE TEMP TABLE expired ON COMMIT DROP AS
SELECT upt_id, inmate_id, person_id FROM episodes WHERE state = 'departed' AND $2::date - ended_on > $4;
ANALYZE expired;
UPDATE episodes e SET state = 'released' FROM expired x WHERE e.upt_id = x.upt_id AND e.inmate_id = x.inmate_id;
INSERT INTO movements (day, kind, upt_id, inmate_id, person_id)
SELECT $2, 'release', upt_id, inmate_id, person_id FROM expired ON CONFLICT DO NOTHING;
UPDATE persons p SET
    version = CASE WHEN p.cause IS DISTINCT FROM $1 THEN p.version + 1 ELSE p.version END,
    changed = CASE WHEN p.cause IS DISTINCT FROM $1 THEN '{episodes}'::text[]
                   ELSE ARRAY(SELECT DISTINCT x FROM unnest(p.changed || '{episodes}'::text[]) x ORDER BY 1) END,
    cause = $1, updated_at = now()
WHERE p.person_id IN (SELECT person_id FROM moved UNION SELECT person_id FROM expired);

-- name: report
-- The lists behind the figures, from the state after the day was applied, then each UPT's counts. The three
-- lists read the central tables and write apart from each other: each is its own side group (its own
-- transaction, side by side on two cores), the counts follow in the step's transaction.
-- side: deadlines
DELETE FROM run_items WHERE run_id = $1 AND kind IN ('overstaying', 'notice_3', 'notice_10');
WITH detained AS (
    SELECT e.upt_id, e.inmate_id, e.person_id, e.register, e.detention_start, r.law, r.citation,
           e.detention_start + (r.initial_days + least(e.extension_days, r.extension_days + r.exceptional_days)) - 1
               AS authorised_until
    FROM episodes e
    JOIN detention_rules r ON r.register = e.register AND e.detention_start >= r.valid_from
                          AND (r.valid_until IS NULL OR e.detention_start < r.valid_until)
    WHERE e.state = 'active' AND e.detention_start IS NOT NULL
), judged AS (
    SELECT d.*, p.full_name, CASE WHEN $2::date > authorised_until THEN 'overstaying'
                                  WHEN authorised_until - $2::date <= 3 THEN 'notice_3'
                                  ELSE 'notice_10' END AS kind
    FROM detained d JOIN persons p ON p.person_id = d.person_id
    WHERE authorised_until - $2::date <= 10
)
INSERT INTO run_items (run_id, kind, upt_id, inmate_id, detail)
SELECT $1, kind, upt_id, inmate_id, jsonb_build_object(
    'register', register, 'detention_start', detention_start, 'authorised_until', authorised_until,
    'days_over', greatest($2::date - authorised_until, 0), 'days_left', greatest(authorised_until - $2::date, 0),
    'rule', law || ', ' || citation, 'full_name', full_name)
FROM judged;
-- side: movements
DELETE FROM run_items WHERE run_id = $1 AND kind NOT IN ('overstaying', 'notice_3', 'notice_10');
-- (persons held more than once, counted alone, then only their episodes read, by the person index)
WITH held AS (
    SELECT person_id FROM episodes WHERE state = 'active' AND custody_status <> 'transferred_out'
    GROUP BY person_id HAVING count(*) > 1
), twice AS (
    SELECT person_id FROM episodes
    WHERE person_id = ANY(ARRAY(SELECT person_id FROM held))
      AND state = 'active' AND custody_status <> 'transferred_out'
    GROUP BY person_id HAVING min(upt_id) <> max(upt_id)
)
INSERT INTO run_items (run_id, kind, upt_id, inmate_id, detail)
SELECT $1, 'dual_custody', e.upt_id, e.inmate_id, jsonb_build_object(
    'central_id', 'C' || e.person_id, 'other_upt', o.upt_id, 'other_inmate_id', o.inmate_id)
FROM episodes e
JOIN LATERAL (SELECT o.upt_id, o.inmate_id FROM episodes o
              WHERE o.person_id = e.person_id AND o.upt_id <> e.upt_id AND o.state = 'active'
                AND o.custody_status <> 'transferred_out'
              ORDER BY o.upt_id, o.inmate_id LIMIT 1) o ON true
WHERE e.person_id = ANY(ARRAY(SELECT person_id FROM twice))
  AND e.state = 'active' AND e.custody_status <> 'transferred_out';
INSERT INTO run_items (run_id, kind, upt_id, inmate_id, detail)
SELECT $1, 'transfer', upt_id, inmate_id,
       jsonb_build_object('central_id', 'C' || person_id, 'from_upt', upt_id, 'to_upt', other_upt)
FROM movements WHERE day = $2 AND kind = 'transfer_out'
UNION ALL
SELECT $1, 'release', m.upt_id, m.inmate_id, jsonb_build_object(
    'central_id', 'C' || m.person_id,
    'reason', CASE WHEN e.custody_status = 'released' THEN 'reported_released' ELSE 'not_seen_elsewhere' END)
FROM movements m JOIN episodes e USING (upt_id, inmate_id) WHERE m.day = $2 AND m.kind = 'release'
UNION ALL
SELECT $1, 'in_transit', upt_id, inmate_id,
       jsonb_build_object('central_id', 'C' || person_id, 'from_upt', upt_id, 'since', ended_on)
FROM episodes WHERE state = 'departed' AND ended_on <= $2
UNION ALL
SELECT $1, 'held', upt_id, '-', jsonb_build_object(
    'snapshot', snapshot, 'inmates', inmates, 'previous', previous,
    'share_lost', round(1 - inmates::numeric / greatest(previous, 1), 3))
FROM run_upts WHERE run_id = $1 AND applied = 'held';
-- side: worklist
-- Inmates without an e-KTP: no NIK; a NIK whose captures never reached PRINT_READY_RECORD; a NIK the
-- population record does not hold (and no capture of it reached PRINT_READY_RECORD). One row per UPT.
DELETE FROM run_worklists WHERE run_id = $1;
WITH captured AS (
    SELECT person_id, bool_or(status IN ('PRINT_READY_RECORD', 'SENT_FOR_CARD_PRINTING', 'CARD_PRINTED',
                                         'CARD_SHIPPED', 'CARD_ISSUED')) AS ready
    FROM captures WHERE person_id IS NOT NULL GROUP BY person_id
), active AS (
    -- (each with its person's NIK region, for the breakdown per kab/kota: one hash join of the persons)
    SELECT e.upt_id, e.inmate_id, e.person_id, e.population, p.nik IS NULL AS no_nik, left(p.nik, 4) AS region
    FROM episodes e JOIN persons p ON p.person_id = e.person_id WHERE e.state = 'active'
), listed AS (
    SELECT e.upt_id, e.inmate_id, e.person_id, e.region,
           CASE WHEN e.no_nik THEN 'no_nik'
                WHEN c.person_id IS NOT NULL THEN 'no_print_ready_capture'
                ELSE 'nik_not_in_population' END AS reason
    FROM active e LEFT JOIN captured c ON c.person_id = e.person_id
    WHERE NOT COALESCE(c.ready, false)
      AND (e.no_nik OR c.person_id IS NOT NULL
           OR COALESCE(e.population -> 'codes', '[]'::jsonb) ? 'NIK_NOT_IN_POPULATION')
    ORDER BY e.upt_id COLLATE "C", e.inmate_id COLLATE "C"
)
-- (aggregated in the order listed: one sort for the four arrays rather than four per UPT)
INSERT INTO run_worklists (run_id, upt_id, inmate_ids, person_ids, reasons, nik_regions)
SELECT $1, upt_id, array_agg(inmate_id), array_agg(person_id), array_agg(reason), array_agg(region)
FROM listed GROUP BY upt_id;
-- main
-- (each count once, materialised: the plan must not depend on statistics of rows this run just wrote)
WITH m AS MATERIALIZED (
    SELECT upt_id, count(*) FILTER (WHERE kind = 'admission') AS admissions,
           count(*) FILTER (WHERE kind = 'release') AS releases,
           count(*) FILTER (WHERE kind = 'transfer_in') AS transfers_in,
           count(*) FILTER (WHERE kind = 'transfer_out') AS transfers_out
    FROM movements WHERE day = $2 GROUP BY upt_id
), i AS MATERIALIZED (
    SELECT upt_id, count(*) FILTER (WHERE kind = 'in_transit') AS in_transit,
           count(*) FILTER (WHERE kind = 'dual_custody') AS dual_custody,
           count(*) FILTER (WHERE kind = 'overstaying') AS overstaying,
           count(*) FILTER (WHERE kind IN ('notice_3', 'notice_10')) AS notices
    FROM run_items WHERE run_id = $1 GROUP BY upt_id
), w AS MATERIALIZED (
    SELECT upt_id, cardinality(inmate_ids) AS without_ektp FROM run_worklists WHERE run_id = $1
), a AS MATERIALIZED (
    SELECT upt_id, count(*) AS n FROM episodes WHERE state = 'active' GROUP BY upt_id
), counts AS MATERIALIZED (
    SELECT u.upt_id, a.n AS active, m.admissions, m.releases, m.transfers_in, m.transfers_out, i.in_transit,
           i.dual_custody, i.overstaying, i.notices, w.without_ektp
    FROM upts u LEFT JOIN m USING (upt_id) LEFT JOIN i USING (upt_id) LEFT JOIN w USING (upt_id)
    LEFT JOIN a USING (upt_id)
)
UPDATE run_upts ru SET
    -- In custody centrally after the run; for a held snapshot, the records it holds.
    inmates = CASE WHEN ru.applied = 'held' THEN ru.inmates ELSE COALESCE(c.active, 0) END,
    admissions = COALESCE(c.admissions, 0), releases = COALESCE(c.releases, 0),
    transfers_in = COALESCE(c.transfers_in, 0), transfers_out = COALESCE(c.transfers_out, 0),
    in_transit = COALESCE(c.in_transit, 0), dual_custody = COALESCE(c.dual_custody, 0),
    overstaying = COALESCE(c.overstaying, 0), notices = COALESCE(c.notices, 0),
    without_ektp = COALESCE(c.without_ektp, 0)
FROM counts c
WHERE ru.run_id = $1 AND ru.upt_id = c.upt_id;
