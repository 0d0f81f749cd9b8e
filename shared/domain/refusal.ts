/**
 * An expected, permanent "no" from a ledger rule: recorded as the operation's outcome (so a retry
 * gets the same answer) rather than thrown as an error to retry. `status` is the HTTP status the API answers.
 */
export interface Refusal {
  code: RefusalCode;
  message: string;
  status: 404 | 409 | 422;
}

export type RefusalCode =
  | 'account_not_found'
  | 'invalid_state'
  | 'invalid_transition'
  | 'insufficient_funds'
  | 'min_capital'
  | 'close_requires_empty'
  | 'max_positions'
  | 'max_capital_per_position'
  | 'sell_exceeds_position'
  | 'no_price'
  | 'idempotency_key_reused'
  | 'same_account'
  | 'cooldown'
  | 'not_eligible'
  | 'owner_mismatch'
  /** The account belongs to a fork or merge in flight: only that saga's entries are accepted. */
  | 'account_locked'
  /** The account has no 'open' entry yet (or never will): nothing is posted before it. */
  | 'account_not_open'
  /** A saga step that will never run: its key was claimed by the saga's abort (or its rollback). */
  | 'aborted';

const STATUS: Record<RefusalCode, Refusal['status']> = {
  account_not_found: 404,
  invalid_state: 409,
  invalid_transition: 409,
  idempotency_key_reused: 409,
  insufficient_funds: 422,
  min_capital: 422,
  close_requires_empty: 422,
  max_positions: 422,
  max_capital_per_position: 422,
  sell_exceeds_position: 422,
  no_price: 422,
  same_account: 422,
  cooldown: 422,
  not_eligible: 422,
  owner_mismatch: 422,
  account_locked: 409,
  account_not_open: 409,
  aborted: 409,
};

export function refuse(code: RefusalCode, message: string): Refusal {
  return { code, message, status: STATUS[code] };
}
