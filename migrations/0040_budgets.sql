-- Budgets: a limit on spend for a scope (any of user, project, feature, model, provider;
-- empty = global) over a period computed in `timezone` (day, week, month) or `total`.
-- Money is integer nano-dollars. `webhook_secret` is kept to sign deliveries (an HMAC
-- needs the secret itself); it is returned by the API only once, when generated.
CREATE TABLE budgets (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scope_user TEXT,
  scope_project TEXT,
  scope_feature TEXT,
  scope_model TEXT,
  scope_provider TEXT,
  period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'total')),
  timezone TEXT NOT NULL,
  limit_nanos INTEGER NOT NULL CHECK (limit_nanos > 0),
  thresholds TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('alert', 'block')),
  webhook_url TEXT,
  webhook_secret TEXT,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Spend per budget and period, updated in the same transaction that releases the call's
-- reservation, so a call is never counted twice nor missed between the two.
CREATE TABLE budget_spend (
  budget_id TEXT NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
  period_key TEXT NOT NULL,
  spent_nanos INTEGER NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  unpriced_requests INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (budget_id, period_key)
) STRICT, WITHOUT ROWID;

-- The projected maximum cost of calls in flight against blocking budgets.
CREATE TABLE budget_reservations (
  call_id TEXT NOT NULL,
  budget_id TEXT NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
  period_key TEXT NOT NULL,
  nanos INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (call_id, budget_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX budget_reservations_by_budget ON budget_reservations (budget_id, period_key);

-- Fired threshold alerts and their webhook outbox. The unique key makes each threshold fire
-- once per budget period, across every process sharing the file.
CREATE TABLE budget_alerts (
  id TEXT PRIMARY KEY,
  budget_id TEXT NOT NULL,
  period_key TEXT NOT NULL,
  threshold REAL NOT NULL,
  payload TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'no_webhook', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  delivered_ms INTEGER,
  UNIQUE (budget_id, period_key, threshold)
) STRICT, WITHOUT ROWID;
CREATE INDEX budget_alerts_by_due ON budget_alerts (state, next_attempt_ms);
CREATE INDEX budget_alerts_by_budget ON budget_alerts (budget_id, created_ms);
