import type { StoredAccount } from '../db/account-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { loadBalances, storeBalances } from '../db/stored-balances.js';
import { storeOperation } from '../db/stored-operation.js';
import { storeUnits } from '../db/stored-units.js';
import { type Balances, emptyBalances } from '../domain/balances.js';
import { applyEffects, decide, type Operation } from '../domain/ledger.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../runtime/clock.js';
import { KeyedMutex } from '../runtime/keyed-mutex.js';
import type { LedgerStores } from './stores.js';

export interface LedgerDeps {
  stores: LedgerStores;
  config: Pick<Config, 'tiers'>;
  clock: Clock;
  /** Called after each new entry (not on a replay): account-ops enqueues a threshold check here. */
  afterPosting?: (entry: StoredEntry) => Promise<void>;
}

export interface PostRequest {
  accountId: string;
  /** Unique key of this entry, already scoped; the same key never makes a second entry. */
  entryKey: string;
  actor: string;
  jobId: string | null;
  /** Builds the operation from the current head, or refuses before policy (e.g. no price known). */
  build: (head: Balances, account: StoredAccount) => Promise<Operation | Refusal> | Operation | Refusal;
  /** Settlement steps of a saga (release, transfer-out) are asserted, never refused by policy. */
  skipPolicy?: boolean;
}

export type PostResult = { status: 'applied'; entry: StoredEntry; replayed: boolean } | { status: 'refused'; refusal: Refusal };

/** Bound on append races per posting: each lost race means another entry landed, so progress is made. */
const APPEND_RETRIES_MAX = 32;

const isRefusal = (x: Operation | Refusal): x is Refusal => 'code' in x && 'status' in x;

/**
 * Appends one entry to an account's journal, safely under concurrency and replays:
 * read the head → build and decide on it → insert at head.seq + 1. A lost race (seq taken) reads the
 * new head and decides again; a taken key means this entry exists already and is returned as is.
 */
export function postEntry(deps: LedgerDeps, req: PostRequest): Promise<PostResult> {
  return accountLocks.run(req.accountId, () => appendWithRetry(deps, req));
}

const accountLocks = new KeyedMutex();

async function appendWithRetry(deps: LedgerDeps, req: PostRequest): Promise<PostResult> {
  const { stores } = deps;
  for (let attempt = 0; attempt < APPEND_RETRIES_MAX; attempt++) {
    const existing = await stores.journal.byKey(req.entryKey);
    if (existing) return replayed(deps, existing);
    const account = await stores.accounts.get(req.accountId);
    if (!account) return { status: 'refused', refusal: refuse('account_not_found', `no account ${req.accountId}`) };
    // The projection's seq is a lower bound of the head (it only moves after an append): start there.
    const head = await stores.journal.head(req.accountId, account.headSeq);
    // Before its 'open' entry an account has nothing; the open entry sets its first state.
    const before = head ? loadBalances(head.after) : emptyBalances('SAFE');
    const op = await req.build(before, account);
    if (isRefusal(op)) return { status: 'refused', refusal: op };

    const symbols = before.positions.map((p) => p.symbol).concat(op.kind === 'trade' ? [op.symbol] : []);
    const prices = symbols.length > 0 ? await stores.prices.lastCloses(symbols, deps.clock.today()) : new Map();
    const rules = tierRules(deps.config, account.tier, account.config);
    const decision = req.skipPolicy ? { ok: true as const, ...applyEffects(before, op) } : decide(before, op, { rules, prices });
    if (!decision.ok) return { status: 'refused', refusal: decision.refusal };

    const now = deps.clock.now();
    const entry: StoredEntry = {
      accountId: req.accountId,
      seq: (head?.seq ?? 0) + 1,
      kind: op.kind,
      idempotencyKey: req.entryKey,
      op: storeOperation(op),
      realisedPnlCents: storeUnits('cash', decision.realisedPnl),
      after: storeBalances(decision.after),
      actor: req.actor,
      jobId: req.jobId,
      at: now,
    };
    const result = await stores.journal.append(entry);
    if (result.appended) {
      const equity = valuate(decision.after, op.kind === 'trade' ? new Map(prices).set(op.symbol, op.price) : prices).equity;
      const forkCandidate = rules.forkThreshold !== null && equity.gte(rules.forkThreshold.plus(rules.minCapital));
      await stores.accounts.project(req.accountId, entry.seq, entry.after, storeUnits('cash', equity), now, forkCandidate);
      await deps.afterPosting?.(entry);
      return { status: 'applied', entry, replayed: false };
    }
    if (result.reason === 'key-exists') return replayed(deps, result.existing);
    // seq taken: someone else appended first; decide again on the new head.
  }
  throw new Error(`account ${req.accountId}: lost ${APPEND_RETRIES_MAX} append races in a row; retrying the job`);
}

/**
 * A replay answers the entry that exists. It also moves the projection up to it if it lags: a crash
 * between append and projection, or two runs of one saga whose projection writes crossed (on FerretDB
 * an update is read-then-write), would otherwise leave it behind until the reconciler.
 */
async function replayed(deps: LedgerDeps, entry: StoredEntry): Promise<PostResult> {
  const account = await deps.stores.accounts.get(entry.accountId);
  if (account && account.headSeq < entry.seq) {
    const head = await deps.stores.journal.head(entry.accountId, account.headSeq);
    if (head) await deps.stores.accounts.project(entry.accountId, head.seq, head.after, account.equityCents, deps.clock.now());
  }
  return { status: 'applied', entry, replayed: true };
}

/**
 * The poster of one saga's steps: each entry keyed `<sagaId>:<step>`, so repeating a step after a
 * crash finds it done. Fork and merge steps skip policy by default (the saga checked first);
 * a transfer's steps are checked unless told otherwise.
 */
export const sagaPoster =
  (deps: LedgerDeps, sagaId: string, actor: string, jobId: string | null, skipPolicyByDefault = true) =>
  (accountId: string, step: string, build: PostRequest['build'], skipPolicy = skipPolicyByDefault): Promise<PostResult> =>
    postEntry(deps, { accountId, entryKey: `${sagaId}:${step}`, actor, jobId, build, skipPolicy });
