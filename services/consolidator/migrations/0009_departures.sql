-- The state an episode keeps when its record is applied: a departure already found to be a transfer, or
-- ended as a release when the window passed, stays so when its UPT sends the record as transferred out again
-- (it would otherwise depart a second time, and count a second transfer or release on a later day).
CREATE FUNCTION settled_state(current_state text, implied text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN implied = 'departed' AND current_state IN ('transferred', 'released') THEN current_state
                ELSE implied END
$$;
