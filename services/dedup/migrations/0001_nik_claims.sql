-- Which person each inmate record says a NIK belongs to (person = normalised name and birth date).
CREATE TABLE nik_claims (
    upt_id      text        NOT NULL,
    inmate_id   text        NOT NULL,
    nik         text        NOT NULL,
    person      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upt_id, inmate_id)
);
CREATE INDEX nik_claims_nik ON nik_claims (nik);

-- Orders flag sets: taken while the NIKs are locked, so a later verdict on a record has a higher number.
CREATE SEQUENCE flag_seq;
