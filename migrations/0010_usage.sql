-- One row per LLM API call (a CallRecord, flattened).
-- Times are integer epoch milliseconds, durations are (fractional) milliseconds,
-- money is integer nano-dollars (1e-9 USD) and NULL when the model has no known price.
-- `seq` is the stable tiebreaker for cursor pagination (an alias of the rowid, so every
-- secondary index ends with it and "ORDER BY time_ms DESC, seq DESC" needs no sort);
-- `id` is the CallRecord id, unique, so writing the same record twice is a no-op.
CREATE TABLE usage (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  trace_id TEXT,
  span_id TEXT,
  provider TEXT NOT NULL,
  operation TEXT NOT NULL,
  -- The reporting model: the request model, else the response model, else ''.
  model TEXT NOT NULL,
  request_model TEXT,
  response_model TEXT,
  response_id TEXT,
  server_address TEXT,
  server_port INTEGER,
  user TEXT,
  project TEXT,
  feature TEXT,
  tags TEXT NOT NULL,
  api_key_hash TEXT,
  stream INTEGER NOT NULL,
  max_tokens INTEGER,
  temperature REAL,
  tool_count INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error_type TEXT,
  error_code TEXT,
  http_status INTEGER,
  retryable INTEGER,
  retry_after_ms INTEGER,
  finish_reasons TEXT NOT NULL,
  input_tokens INTEGER,
  cached_input_tokens INTEGER,
  cache_write_input_tokens INTEGER,
  output_tokens INTEGER,
  reasoning_tokens INTEGER,
  tokens_estimated INTEGER,
  tool_calls INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  cost_nanos INTEGER,
  input_cost_nanos INTEGER,
  cache_read_cost_nanos INTEGER,
  cache_write_cost_nanos INTEGER,
  output_cost_nanos INTEGER,
  cost_source TEXT,
  priced_as TEXT,
  input_tokens_estimate INTEGER,
  projected_max_cost_nanos INTEGER,
  context_window INTEGER,
  context_exceeded INTEGER,
  duration_ms REAL NOT NULL,
  headers_ms REAL,
  ttft_ms REAL,
  queue_ms REAL,
  queue_source TEXT,
  prefill_ms REAL,
  prefill_source TEXT,
  generation_ms REAL,
  generation_source TEXT,
  output_tokens_per_second REAL,
  server_processing_ms REAL,
  rate_limit TEXT,
  content TEXT
) STRICT;

CREATE UNIQUE INDEX usage_by_id ON usage (id);
CREATE INDEX usage_by_time ON usage (time_ms);
CREATE INDEX usage_by_model ON usage (model, time_ms);
CREATE INDEX usage_by_provider ON usage (provider, time_ms);
CREATE INDEX usage_by_user ON usage (user, time_ms);
CREATE INDEX usage_by_project ON usage (project, time_ms);
CREATE INDEX usage_by_feature ON usage (feature, time_ms);
CREATE INDEX usage_by_operation ON usage (operation, time_ms);
CREATE INDEX usage_by_outcome ON usage (outcome, time_ms);
