-- Small integer facts about the store. `pruned_before_ms`: raw usage rows before this
-- hour-aligned instant were deleted by prune (their rollups remain), so summaries must not
-- read raw rows for hours before it.
CREATE TABLE store_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
