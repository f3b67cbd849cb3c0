-- When each capture entered the statuses that bound the centre's critical times (I: sent by the region until
-- received at the centre; II: received until the centre's verdict), and why its last move happened.
ALTER TABLE ektp_captures ADD COLUMN sent_at timestamptz;
ALTER TABLE ektp_captures ADD COLUMN received_at timestamptz;
ALTER TABLE ektp_captures ADD COLUMN verdict_at timestamptz;
ALTER TABLE ektp_captures ADD COLUMN code text;
CREATE INDEX ektp_captures_changed ON ektp_captures (changed_at);
