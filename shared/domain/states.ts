/** Account states (SPEC §3.3). CLOSED is terminal; ERROR waits for an operator. */
export const ACCOUNT_STATES = ['SAFE', 'ACTIVE', 'FORKING', 'MERGING', 'SUSPENDED', 'CLOSED', 'ERROR'] as const;
export type AccountState = (typeof ACCOUNT_STATES)[number];

/** The one transition table: every pair not listed is refused. */
export const TRANSITIONS: Readonly<Record<AccountState, readonly AccountState[]>> = {
  SAFE: ['ACTIVE', 'SUSPENDED', 'CLOSED', 'ERROR'],
  ACTIVE: ['SAFE', 'FORKING', 'MERGING', 'SUSPENDED', 'CLOSED', 'ERROR'],
  // A fork child is opened FORKING and closed if its fork rolls back before it ever activated.
  FORKING: ['ACTIVE', 'CLOSED', 'ERROR'],
  MERGING: ['ACTIVE', 'CLOSED', 'ERROR'],
  SUSPENDED: ['ACTIVE', 'SAFE', 'CLOSED', 'ERROR'],
  ERROR: ['ACTIVE', 'SAFE', 'SUSPENDED', 'CLOSED'],
  CLOSED: [],
};

/** States a person may set through the API; FORKING and MERGING belong to the sagas. */
export const MANUAL_TARGET_STATES = ['SAFE', 'ACTIVE', 'SUSPENDED', 'CLOSED', 'ERROR'] as const satisfies readonly AccountState[];

export function canTransition(from: AccountState, to: AccountState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** What each state lets an account do with money (SAFE: no trading; sagas own FORKING/MERGING accounts). */
export const STATE_ALLOWS = {
  deposit: ['ACTIVE', 'SAFE'],
  withdraw: ['ACTIVE', 'SAFE'],
  transferOut: ['ACTIVE', 'SAFE'],
  transferIn: ['ACTIVE', 'SAFE'],
  trade: ['ACTIVE'],
  // A MERGING source takes nothing in: its last entry moves everything out (see docs/DECISIONS.md).
  income: ['ACTIVE', 'SAFE', 'SUSPENDED', 'ERROR', 'FORKING'],
  charge: ['ACTIVE', 'SAFE', 'SUSPENDED', 'ERROR'],
} as const satisfies Record<string, readonly AccountState[]>;
