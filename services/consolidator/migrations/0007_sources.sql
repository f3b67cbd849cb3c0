-- A person's sources are its episodes ('sdp', '<upt>/<inmate>') and its captures ('ektp', '<kabkota>/<packet>'):
-- the table that repeated the episodes' keys (one more row and two more index entries per inmate a run
-- writes) goes, and the record lists its e-KTP captures among its sources too.
DROP FUNCTION person_json(bigint);
DROP FUNCTION source_json(person_sources);
DROP TABLE person_sources;

-- PL/pgSQL rather than SQL: a SQL function that cannot be inlined is planned again at every call, which cost
-- the lookup API most of its time per request; PL/pgSQL keeps the plans for the session.
CREATE FUNCTION person_json(pid bigint) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT person_document(
        p,
        (SELECT jsonb_agg(jsonb_build_object('source', source, 'id', id) ORDER BY source, id)
         FROM (SELECT 'sdp' AS source, upt_id || '/' || inmate_id AS id FROM episodes WHERE person_id = p.person_id
               UNION ALL
               SELECT 'ektp', kabkota || '/' || packet_id FROM captures WHERE person_id = p.person_id) s),
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
    FROM persons p WHERE p.person_id = pid);
END
$$;
