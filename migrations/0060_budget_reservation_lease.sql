-- A reservation counts until its lease expires (epoch ms). The process holding it renews the
-- lease while the call is alive and deletes it when the call ends, so a reservation whose
-- process crashed, or whose call never finished, stops counting within one lease instead of
-- an hour. 0 marks a row written before leases: it keeps counting for an hour from created_ms.
ALTER TABLE budget_reservations ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
