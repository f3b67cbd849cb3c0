-- What dedup found when it checked the record against the population record (contracts.PopulationCheck):
-- the claimed NIK's discrepancies, or the scored candidates of an inmate without a NIK.
ALTER TABLE inmates ADD COLUMN population jsonb;
