/**
 * The budgets' vocabulary: a budget's shape (src/common/budget-shape.ts) and the rows of the
 * ledger they are stored in (src/common/budget-ledger.ts), under the names the budgets use.
 */

export type {
  AlertInsert,
  AlertRow,
  Budget,
  BudgetLedger,
  DeliveryAttempt,
  Reservation,
  SpendDelta,
  SpendRow,
  ThresholdsCrossed,
} from '../common/budget-ledger.js';
export * from '../common/budget-shape.js';
