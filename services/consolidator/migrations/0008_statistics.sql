-- The planner's statistics of the tables a run rewrites, refreshed after each run by the service itself
-- (ANALYZE needs the tables' owner, which the service's own database role is not): a day's load is then
-- planned from what the tables hold rather than from before it, whenever autovacuum would get to them.
CREATE FUNCTION refresh_statistics() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    ANALYZE persons, episodes, movements;
END
$$;
REVOKE ALL ON FUNCTION refresh_statistics() FROM PUBLIC;
