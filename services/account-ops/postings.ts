import type { JobData } from '../../shared/contracts/jobs.js';
import { type StoredAccount, newAccount } from '../../shared/db/account-repository.js';
import type { Operation } from '../../shared/domain/ledger.js';
import { type Refusal, refuse } from '../../shared/domain/refusal.js';
import type { Balances } from '../../shared/domain/balances.js';
import { breachTarget } from '../../shared/domain/loss-limits.js';
import { isSagaState } from '../../shared/domain/states.js';
import { Decimal } from '../../shared/money/decimal.js';
import { outcomeOf, payloadHashOf, runSingleEntry, scopedKey } from '../../shared/ledger/operation.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import { type LedgerDeps, postEntry, recordRefusal, recordedDecision } from '../../shared/ledger/post.js';
import { transfer } from '../../shared/ledger/transfer.js';

type Posting = { accountId: string; idempotencyKey: string; actor: string };

/** The payload that defines an operation: everything but who sent it, so a retry from another client still matches. */
export function payloadOf<T extends Posting>(data: T): Omit<T, 'actor'> {
  const { actor: _actor, ...rest } = data;
  return rest;
}

/** One client operation that is one journal entry on one account. */
export function singleEntry<T extends Posting>(
  deps: LedgerDeps,
  operation: string,
  data: T,
  jobId: string | null,
  build: (head: Balances, account: StoredAccount) => Promise<Operation | Refusal> | Operation | Refusal,
  opts: { waitWhileLocked?: boolean; mustApply?: boolean } = {},
): Promise<Outcome> {
  return runSingleEntry(deps, { accountId: data.accountId, key: data.idempotencyKey, operation, payload: payloadOf(data), actor: data.actor, jobId }, build, opts);
}

/** Platform events wait for a saga that holds the account instead of being refused for good. */
const PLATFORM_EVENT = { waitWhileLocked: true };

export const deposit = (deps: LedgerDeps, d: JobData<'account-ops', 'deposit'>, jobId: string | null) =>
  singleEntry(deps, 'deposit', d, jobId, () => ({ kind: 'deposit', amount: new Decimal(d.amount) }));

export const withdrawal = (deps: LedgerDeps, d: JobData<'account-ops', 'withdrawal'>, jobId: string | null) =>
  singleEntry(deps, 'withdrawal', d, jobId, () => ({ kind: 'withdrawal', amount: new Decimal(d.amount), close: d.close }));

export const dividend = (deps: LedgerDeps, d: JobData<'account-ops', 'dividend'>, jobId: string | null) =>
  singleEntry(deps, 'dividend', d, jobId, () => ({ kind: 'dividend', symbol: d.symbol, amount: new Decimal(d.amount) }), PLATFORM_EVENT);

export const fee = (deps: LedgerDeps, d: JobData<'account-ops', 'fee'>, jobId: string | null) =>
  singleEntry(deps, 'fee', d, jobId, () => ({ kind: 'fee', amount: new Decimal(d.amount), reason: d.reason }), PLATFORM_EVENT);

export const stateChange = (deps: LedgerDeps, d: JobData<'account-ops', 'state-change'>, jobId: string | null) =>
  singleEntry(deps, 'state-change', d, jobId, () => ({ kind: 'state-change', to: d.to, reason: d.reason }));

/**
 * A loss limit's state change: like a platform event, it waits for a saga that holds the account, and
 * a breach with nothing to tighten (the account is already there, or an operator went further) is
 * answered without being recorded, so the same rule can still act later in its period.
 */
export const limitBreach = (deps: LedgerDeps, d: JobData<'account-ops', 'limit-breach'>, jobId: string | null) =>
  singleEntry(deps, 'state-change', d, jobId, (head) => {
    // Decided on the head, not on the state the check read: a breach only ever tightens (an account an
    // operator suspended, or closed, in the meantime stays as it is).
    // A saga's account: the entry goes to policy, which answers account_locked, and the job waits for the saga.
    const to = isSagaState(head.state) ? d.to : breachTarget(head.state, d.to === 'SUSPENDED' ? 'suspend' : 'safe');
    return to ? { kind: 'state-change', to, reason: d.reason } : refuse('invalid_state', `the account is ${head.state}; the ${d.rule} limit leaves it so`);
  }, { ...PLATFORM_EVENT, mustApply: true });

/**
 * Back to trading after a limit's review was approved, but only from the state the breach set: an
 * account an operator suspended (or that went to ERROR) since stays as it is.
 */
export const reactivate = (deps: LedgerDeps, d: JobData<'account-ops', 'reactivate'>, jobId: string | null) =>
  singleEntry(deps, 'state-change', d, jobId, (head) =>
    head.state === d.from ? { kind: 'state-change', to: 'ACTIVE', reason: d.reason } : refuse('invalid_state', `the account is ${head.state}, not ${d.from} as the limit left it; an operator decides`));

/** A trade at the given price, or at the last close on or before the fleet's business date. */
export const trade = (deps: LedgerDeps, d: JobData<'account-ops', 'trade'>, jobId: string | null) =>
  singleEntry(deps, 'trade', d, jobId, async () => {
    let price = d.price ? new Decimal(d.price) : undefined;
    if (!price) {
      const closes = await deps.stores.prices.lastCloses([d.symbol], deps.clock.today());
      price = closes.get(d.symbol);
      if (!price) return refuse('no_price', `no close for ${d.symbol} on or before ${deps.clock.today()}; give a price`);
    }
    return { kind: 'trade', side: d.side, symbol: d.symbol, quantity: new Decimal(d.quantity), price, fees: new Decimal(d.fees) };
  });

export const transferOp = (deps: LedgerDeps, d: JobData<'account-ops', 'transfer'>, jobId: string | null) =>
  transfer(deps, {
    fromId: d.accountId,
    toId: d.toAccountId,
    amount: new Decimal(d.amount),
    scopedKey: scopedKey(d.accountId, d.idempotencyKey),
    payloadHash: payloadHashOf('transfer', payloadOf(d)),
    actor: d.actor,
    jobId,
  });

/**
 * Opens an account: its document, then its 'open' entry, which carries the first deposit and is keyed
 * by the client's key with the payload's hash (one write: nothing can be half done). A parent that does
 * not exist, is closed or was merged away is refused, and the refusal kept under the key.
 */
export async function openAccount(deps: LedgerDeps, d: JobData<'account-ops', 'open-account'>, jobId: string | null): Promise<Outcome> {
  const key = scopedKey(d.accountId, d.idempotencyKey);
  const common = { accountId: d.accountId, entryKey: key, payloadHash: payloadHashOf('open-account', payloadOf(d)), operation: 'open-account', actor: d.actor, jobId };
  // A replay answers what was decided (and creates no document for an open that was refused).
  const decided = await recordedDecision(deps, common);
  if (decided) return outcomeOf('open-account', d.accountId, decided);
  if (d.parentId) {
    const parent = await deps.stores.accounts.get(d.parentId);
    const problem =
      !parent ? refuse('account_not_found', `no parent account ${d.parentId}`)
      : parent.mergedInto || parent.state === 'CLOSED' ? refuse('invalid_state', `the parent ${d.parentId} is closed${parent.mergedInto ? ` (merged into ${parent.mergedInto})` : ''}`)
      // A parent and its descendants share one owner (every owner-scoped view walks trees).
      : parent.ownerId !== d.ownerId ? refuse('owner_mismatch', `the parent ${d.parentId} belongs to another owner`)
      : null;
    if (problem) return outcomeOf('open-account', d.accountId, await recordRefusal(deps, common, problem));
  }
  await deps.hooks?.beforeWrite?.(`account-document ${d.accountId}`);
  await deps.stores.accounts.createIfAbsent(newAccount({ _id: d.accountId, tier: d.tier, name: d.name, ownerId: d.ownerId, parentId: d.parentId, config: d.config, state: 'ACTIVE' }, deps.clock.now()));
  const deposit = d.initialDeposit ? new Decimal(d.initialDeposit) : new Decimal(0);
  return outcomeOf('open-account', d.accountId, await postEntry(deps, { ...common, build: () => ({ kind: 'open', state: 'ACTIVE', owner: null, deposit }) }));
}
