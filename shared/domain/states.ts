/** Account states. CLOSED is terminal; ERROR waits for an operator. */
export const ACCOUNT_STATES = ['SAFE', 'ACTIVE', 'FORKING', 'MERGING', 'SUSPENDED', 'CLOSED', 'ERROR'] as const;
export type AccountState = (typeof ACCOUNT_STATES)[number];

/**
 * States a saga holds an account in. The account then belongs to that saga (its `owner`): only entries
 * carrying the saga's id are accepted on it, so nobody can spend or move what the saga is moving.
 * Only the saga's own start entry (or a fork child's open entry) enters them, only its own entries leave.
 */
export const SAGA_STATES = ['FORKING', 'MERGING'] as const satisfies readonly AccountState[];
export const isSagaState = (s: AccountState): boolean => (SAGA_STATES as readonly AccountState[]).includes(s);

/** The one transition table: every pair not listed is refused. */
export const TRANSITIONS: Readonly<Record<AccountState, readonly AccountState[]>> = {
  SAFE: ['ACTIVE', 'SUSPENDED', 'CLOSED', 'ERROR'],
  ACTIVE: ['SAFE', 'FORKING', 'MERGING', 'SUSPENDED', 'CLOSED', 'ERROR'],
  // Left only by the owning saga: to ACTIVE when it completes, CLOSED for a merged source or a child
  // whose fork was rolled back before it was credited, ERROR never from outside (the saga owns it).
  FORKING: ['ACTIVE', 'CLOSED'],
  MERGING: ['ACTIVE', 'CLOSED'],
  SUSPENDED: ['ACTIVE', 'SAFE', 'CLOSED', 'ERROR'],
  ERROR: ['ACTIVE', 'SAFE', 'SUSPENDED', 'CLOSED'],
  CLOSED: [],
};

/** States a person may set through the API; FORKING and MERGING belong to the sagas. */
export const MANUAL_TARGET_STATES = ['SAFE', 'ACTIVE', 'SUSPENDED', 'CLOSED', 'ERROR'] as const satisfies readonly AccountState[];

export function canTransition(from: AccountState, to: AccountState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A change a person (or any job that is not the owning saga) may make: never into or out of a saga state. */
export function canTransitionManually(from: AccountState, to: AccountState): boolean {
  return !isSagaState(from) && !isSagaState(to) && canTransition(from, to);
}

/** What each state lets an account do with money (SAFE: no trading). Saga states accept only their saga. */
export const STATE_ALLOWS = {
  deposit: ['ACTIVE', 'SAFE'],
  withdraw: ['ACTIVE', 'SAFE'],
  transferOut: ['ACTIVE', 'SAFE'],
  transferIn: ['ACTIVE', 'SAFE'],
  trade: ['ACTIVE'],
  income: ['ACTIVE', 'SAFE', 'SUSPENDED', 'ERROR'],
  charge: ['ACTIVE', 'SAFE', 'SUSPENDED', 'ERROR'],
} as const satisfies Record<string, readonly AccountState[]>;
