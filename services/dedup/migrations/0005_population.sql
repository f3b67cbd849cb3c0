-- The population record dedup checks inmates against: one row per NIK of a capture found unique
-- (PRINT_READY_RECORD), with the demographics the capture declared. `blocks` holds the linkage blocking keys
-- (services/dedup/domain/linkage.py): an inmate without a NIK is compared only with rows sharing a key.
CREATE TABLE population (
    nik         text        PRIMARY KEY,
    full_name   text        NOT NULL,
    sex         text        NOT NULL CHECK (sex IN ('L', 'P')),
    birth_date  date        NOT NULL,
    birth_place text,
    mother_name text,
    blocks      text[]      NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX population_blocks ON population USING gin (blocks);
