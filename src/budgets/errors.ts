import { hasKind, LlmMeterError, markKind } from '../errors/errors.js';

/** Invalid budget input: `field` names what to fix (the API answers 400 with it). */
export class BudgetInputError extends LlmMeterError {
  override name = 'BudgetInputError' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    markKind(this, 'BudgetInputError');
  }
}

/** Also true for a BudgetInputError from another copy of the library. */
export function isBudgetInputError(error: unknown): error is BudgetInputError {
  return error instanceof BudgetInputError || hasKind(error, 'BudgetInputError');
}

/** The first issue zod found, as the error that names its field. */
export function firstIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): BudgetInputError {
  const issue = error.issues[0];
  const field = issue?.path.map(String).join('.') || 'body';
  const message = issue?.message.startsWith('Expected')
    ? issue.message
    : `Invalid \`${field}\`: ${issue?.message}`;
  return new BudgetInputError(field, message);
}
