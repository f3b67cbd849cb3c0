-- A run line's lists counted (overstayers and notices by register, the work list by reason and by the NIK's
-- kab/kota), as the consolidator's consolidation.run.line_reported carries them.
ALTER TABLE run_lines ADD COLUMN breakdowns jsonb NOT NULL DEFAULT '{}';
