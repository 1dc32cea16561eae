-- Rollups, updated in the same transaction as the usage rows they count, so that summaries
-- over months of traffic read rollups instead of raw rows: hourly (any time zone's days are
-- made of whole hours) and daily (UTC days: long ranges of per-user reports read 24 times fewer
-- rows). src/store/summary.ts picks the smallest table that can answer a query.
-- Keys are never NULL (a missing user, project, feature or model is ''), so that the primary
-- key identifies a group and upserts can target it.
-- latency_hist and ttft_hist are log-bucket histograms (see src/store/histogram.ts).

-- Every report dimension: serves any group_by and filter.
CREATE TABLE usage_hourly (
  hour_ms INTEGER NOT NULL,
  model TEXT NOT NULL,
  provider TEXT NOT NULL,
  user TEXT NOT NULL,
  project TEXT NOT NULL,
  feature TEXT NOT NULL,
  operation TEXT NOT NULL,
  outcome TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  cached_input_tokens INTEGER NOT NULL,
  cache_write_input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_nanos INTEGER NOT NULL,
  unpriced_requests INTEGER NOT NULL,
  duration_ms_sum REAL NOT NULL,
  latency_hist BLOB NOT NULL,
  ttft_hist BLOB NOT NULL,
  PRIMARY KEY (hour_ms, model, provider, user, project, feature, operation, outcome)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_hourly_by_user ON usage_hourly (user, hour_ms);
CREATE INDEX usage_hourly_by_project ON usage_hourly (project, hour_ms);
CREATE INDEX usage_hourly_by_feature ON usage_hourly (feature, hour_ms);

-- Every report dimension, by UTC day.
CREATE TABLE usage_daily (
  day_ms INTEGER NOT NULL,
  model TEXT NOT NULL,
  provider TEXT NOT NULL,
  user TEXT NOT NULL,
  project TEXT NOT NULL,
  feature TEXT NOT NULL,
  operation TEXT NOT NULL,
  outcome TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  cached_input_tokens INTEGER NOT NULL,
  cache_write_input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_nanos INTEGER NOT NULL,
  unpriced_requests INTEGER NOT NULL,
  duration_ms_sum REAL NOT NULL,
  latency_hist BLOB NOT NULL,
  ttft_hist BLOB NOT NULL,
  PRIMARY KEY (day_ms, model, provider, user, project, feature, operation, outcome)
) STRICT, WITHOUT ROWID;

-- No secondary indexes: a year of it is a few hundred thousand rows at most, a filtered scan
-- of which costs less than keeping three more indexes in every commit.

-- Only the model dimensions: a few rows per hour, so the dashboard's
-- "spend by model / provider / outcome" stays fast however many users there are.
CREATE TABLE usage_model_hourly (
  hour_ms INTEGER NOT NULL,
  model TEXT NOT NULL,
  provider TEXT NOT NULL,
  operation TEXT NOT NULL,
  outcome TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  cached_input_tokens INTEGER NOT NULL,
  cache_write_input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_nanos INTEGER NOT NULL,
  unpriced_requests INTEGER NOT NULL,
  duration_ms_sum REAL NOT NULL,
  latency_hist BLOB NOT NULL,
  ttft_hist BLOB NOT NULL,
  PRIMARY KEY (hour_ms, model, provider, operation, outcome)
) STRICT, WITHOUT ROWID;
