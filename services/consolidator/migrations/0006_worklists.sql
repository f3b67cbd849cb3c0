-- A run's work list of inmates without an e-KTP, one row per run and UPT (the list is most of a UPT's inmates
-- where the population record is not linked yet: a row per inmate made it the run's largest write). The
-- parallel arrays are ordered by inmate id; the names, birth dates and NIKs are read from the persons.
CREATE TABLE run_worklists (
    run_id      text     NOT NULL REFERENCES runs (run_id),
    upt_id      text     NOT NULL,
    inmate_ids  text[]   NOT NULL,
    person_ids  bigint[] NOT NULL,
    reasons     text[]   NOT NULL,  -- no_nik, nik_not_in_population, no_print_ready_capture
    PRIMARY KEY (run_id, upt_id)
);
