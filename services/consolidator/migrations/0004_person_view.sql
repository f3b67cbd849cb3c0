-- A person's central record as one JSON document: what the feed publishes and the lookup API answers.
-- Each part has one definition; person_json assembles one person, store.FEED_ROWS many at once (set-based).

CREATE FUNCTION source_json(s person_sources) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('source', s.source, 'id', s.source_id)
$$;

CREATE FUNCTION merge_json(m merges) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('central_id', 'C' || m.merged, 'reason', m.reason, 'cause', m.cause, 'at', m.merged_at)
$$;

-- While in custody, an episode was last seen in its UPT's latest applied snapshot (unchanged episodes are not
-- rewritten every day).
CREATE FUNCTION episode_json(e episodes, a upt_applied, flags jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'upt_id', e.upt_id, 'inmate_id', e.inmate_id, 'register', e.register,
        'register_number', e.register_number, 'entry_date', e.entry_date,
        'detention_start', e.detention_start, 'detention_expiry', e.detention_expiry,
        'extension_days', e.extension_days, 'extended_until', e.extended_until,
        'extensions', e.extensions, 'sentence_days', e.sentence_days,
        'expected_release', e.expected_release, 'custody_status', e.custody_status,
        'state', e.state, 'ended_on', e.ended_on, 'moved_to', e.moved_to,
        'first_seen', e.first_seen, 'first_snapshot', e.first_snapshot,
        'last_seen', CASE WHEN e.state = 'active' THEN GREATEST(e.last_seen, a.as_of) ELSE e.last_seen END,
        'last_snapshot', CASE WHEN e.state = 'active' AND a.as_of >= e.last_seen
                              THEN a.as_of || '/' || a.snapshot ELSE e.last_snapshot END,
        'population', e.population, 'flags', COALESCE(flags, '[]'))
$$;

CREATE FUNCTION move_json(m capture_moves) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('from', m.from_status, 'to', m.to_status, 'at', m.at, 'code', m.code,
                              'source', m.source, 'implied', m.implied, 'out_of_order', m.out_of_order)
$$;

CREATE FUNCTION capture_json(c captures, history jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('kabkota', c.kabkota, 'packet_id', c.packet_id, 'status', c.status,
                              'status_at', c.status_at, 'finding', c.finding, 'anomalies', to_jsonb(c.anomalies),
                              'history', COALESCE(history, '[]'))
$$;

CREATE FUNCTION person_document(p persons, sources jsonb, merged jsonb, episodes jsonb, ektp jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'central_id', 'C' || p.person_id,
        'nik', p.nik,
        'version', p.version,
        'merged_into', CASE WHEN p.merged_into IS NULL THEN NULL ELSE 'C' || p.merged_into END,
        'identity', jsonb_build_object(
            'full_name', p.full_name, 'sex', p.sex, 'birth_date', p.birth_date,
            'birth_place', p.birth_place, 'mother_name', p.mother_name),
        'provenance', p.provenance,
        'sources', COALESCE(sources, '[]'),
        'merged', COALESCE(merged, '[]'),
        'episodes', COALESCE(episodes, '[]'),
        'ektp', COALESCE(ektp, '[]'))
$$;

CREATE FUNCTION person_json(pid bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
SELECT person_document(
    p,
    (SELECT jsonb_agg(source_json(s) ORDER BY s.source, s.source_id)
     FROM person_sources s WHERE s.person_id = p.person_id),
    (SELECT jsonb_agg(merge_json(m) ORDER BY m.merged) FROM merges m WHERE m.into_id = p.person_id),
    (SELECT jsonb_agg(episode_json(e, a, f.flags) ORDER BY e.first_seen, e.upt_id, e.inmate_id)
     FROM episodes e LEFT JOIN upt_applied a ON a.upt_id = e.upt_id
     LEFT JOIN inmate_flags f ON f.upt_id = e.upt_id AND f.inmate_id = e.inmate_id
     WHERE e.person_id = p.person_id),
    (SELECT jsonb_agg(capture_json(c, (SELECT jsonb_agg(move_json(m) ORDER BY m.at, m.message_id, m.seq)
                                        FROM capture_moves m
                                        WHERE m.kabkota = c.kabkota AND m.packet_id = c.packet_id))
                      ORDER BY c.status_at, c.kabkota, c.packet_id)
     FROM captures c WHERE c.person_id = p.person_id))
FROM persons p WHERE p.person_id = pid
$$;
