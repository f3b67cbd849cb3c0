-- The capture's NIK as the registry's status events carry it, masked (3201********0001): enough for a
-- supervisor to tell stuck captures apart and for an office to find them; never the NIK in full.
ALTER TABLE ektp_captures ADD COLUMN nik_masked text;
