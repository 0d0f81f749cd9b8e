import { randomBytes } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import type { StoredAccount } from '../db/account-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { storeUnits } from '../db/stored-units.js';
import { type Balances, ZERO, emptyBalances } from '../domain/balances.js';
import { decide, type Operation, refusalOperation } from '../domain/ledger.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { atForkLine, tierRules } from '../domain/tiers.js';
import { type PriceMap, valuate } from '../domain/valuation.js';
import { AssertionError } from '../runtime/assert.js';
import type { Clock } from '../runtime/clock.js';
import { nextEntry } from './entry.js';
import type { KnownAccount } from './head-cache.js';
import type { LedgerStores } from './stores.js';

/** Points between the writes of a step, for tests that interleave runs step by step. Never set in production. */
export interface WriteHooks {
  beforeWrite?: (label: string) => Promise<void>;
  /** After a journal write landed, before its writer heard: a throw here is a reply lost on the way back. */
  afterWrite?: (label: string) => Promise<void>;
}

export interface LedgerDeps {
  stores: LedgerStores;
  config: Pick<Config, 'tiers'>;
  clock: Clock;
  /**
   * Called after each entry appended (and again on a replay): account-ops enqueues follow-up work here.
   * `forkCandidate`: the account's equity is at or over its fork line after the entry.
   */
  afterPosting?: (entry: StoredEntry, account: StoredAccount, facts: { forkCandidate: boolean }) => Promise<void>;
  hooks?: WriteHooks;
}

export interface PostRequest {
  accountId: string;
  /** Unique key of this entry, already scoped: the one decision ever recorded under it. */
  entryKey: string;
  /** What a client asked (hash of its payload): a replay with another payload is refused. Null for saga steps. */
  payloadHash?: string | null;
  /** The saga this entry is a step of (fork, merge or transfer id): the only one an owned account accepts. */
  sagaId?: string | null;
  /** The operation's name, kept on a refusal's entry. */
  operation: string;
  actor: string;
  jobId: string | null;
  /** Builds the operation from the current head, or refuses before policy (e.g. no price known). */
  build: (head: Balances, account: StoredAccount) => Promise<Operation | Refusal> | Operation | Refusal;
  /**
   * A step that must apply (a saga's settlement after its point of no return): a refusal is answered
   * but not recorded, so the step can apply once whatever refused it is resolved.
   */
  mustApply?: boolean;
  /**
   * A platform event (a dividend, a fee, a reinvestment) on an account a saga holds waits for the saga
   * (its job retries) instead of being refused for good: the event must land once the saga is over.
   */
  waitWhileLocked?: boolean;
}

export type PostResult =
  | { status: 'applied'; entry: StoredEntry; replayed: boolean }
  /** Refused: recorded under its key (entry), or answered without a write (a reused key: entry null). */
  | { status: 'refused'; refusal: Refusal; entry: StoredEntry | null; replayed: boolean };

/** The account belongs to a saga and the posting is one that waits for it (its job retries). */
export class AccountLockedError extends Error {
  override readonly name = 'AccountLockedError';
}

/** The account has a document but not its 'open' entry yet: the posting waits (its job retries). */
export class AccountNotOpenError extends Error {
  override readonly name = 'AccountNotOpenError';
}

/** Bound on append races per posting: each lost race means another entry landed, so progress is made. */
const APPEND_RETRIES_MAX = 32;

const isRefusal = (x: Operation | Refusal): x is Refusal => 'code' in x && 'status' in x && !('kind' in x);

/** Where a refusal for an account that does not exist is kept: in the journal (so its key is taken), outside every account's. */
export const orphanAccountId = (entryKey: string) => `orphan:${entryKey}`;

/**
 * Appends the one entry of a posting: decided on the head this process knows, written at head.seq + 1
 * through the group commit, and that write is all (no idempotency record, no audit record, no read on
 * the common path: the entry carries its key, payload hash and chain link; the projection follows in
 * a batch). The unique indexes decide every race: a taken seq means the head was stale (reload, decide
 * again); a taken key means this posting was decided before (answer that decision). A refusal is
 * recorded the same way, so a retry can never flip an outcome.
 */
export function postEntry(deps: LedgerDeps, req: PostRequest): Promise<PostResult> {
  return deps.stores.accountLocks.run(req.accountId, async () => {
    const shared = deps.stores.sharedHeads;
    if (!shared) return appendWithRetry(deps, req);
    // Across processes too, one posting at a time per account: the lease's last holder published the head.
    const token = randomBytes(8).toString('hex');
    const lease = await shared.take(req.accountId, token);
    if (lease.head) deps.stores.heads.advance(req.accountId, lease.head);
    try {
      return await appendWithRetry(deps, req);
    } finally {
      await shared.give(req.accountId, token, deps.stores.heads.get(req.accountId)?.head ?? null);
    }
  });
}

async function appendWithRetry(deps: LedgerDeps, req: PostRequest): Promise<PostResult> {
  const { stores } = deps;
  let reloaded = false;
  // After a reload is asked for, the head comes from the journal: the published one may be the stale one.
  let fromJournal = false;
  for (let attempt = 0; attempt < APPEND_RETRIES_MAX; attempt++) {
    const known = await knownOf(deps, req.accountId, fromJournal);
    if (!known) return refuseOrphan(deps, req);
    let built: Awaited<ReturnType<typeof buildAndDecide>>;
    try {
      built = await buildAndDecide(deps, req, known);
    } catch (err) {
      // An entry that cannot follow this head at all (a step replayed after it applied): answer the decision made.
      const existing = err instanceof AssertionError ? await stores.journal.byKey(req.entryKey) : null;
      if (existing) return replayed(deps, req, existing);
      throw err;
    }
    if (!built) throw new AccountNotOpenError(`account ${req.accountId} has no 'open' entry yet; the posting waits for it`);
    const { entry, refusal, prices } = built;
    const waits = refusal?.code === 'account_locked' && req.waitWhileLocked;
    if (refusal && (req.mustApply || waits)) {
      // A refusal that is not recorded is not fenced by the seq: decided once more on the head as it is now, not as cached.
      const existing = await stores.journal.byKey(req.entryKey);
      if (existing) return replayed(deps, req, existing);
      if (!reloaded) {
        reloaded = true;
        fromJournal = true;
        stores.heads.forget(req.accountId);
        continue;
      }
      if (waits) throw new AccountLockedError(`${refusal.message}; the ${req.operation} waits for it`);
      return { status: 'refused', refusal, entry: null, replayed: false };
    }
    await deps.hooks?.beforeWrite?.(`append ${req.entryKey}`);
    const result = await stores.writer.append(entry);
    if (result === 'inserted') await deps.hooks?.afterWrite?.(`append ${req.entryKey}`);
    if (result === 'inserted') {
      const fresh: KnownAccount = { ...known, head: entry };
      stores.heads.set(req.accountId, fresh);
      const forkCandidate = await markProjection(deps, fresh, prices);
      await deps.afterPosting?.(entry, known.account, { forkCandidate });
      return refusal ? { status: 'refused', refusal, entry, replayed: false } : { status: 'applied', entry, replayed: false };
    }
    // A duplicate key: either the seq was taken (our head is stale) or this key was decided before.
    // The head another process published is the cheap answer to the first; the journal settles the rest.
    const published = await stores.sharedHeads?.get(req.accountId);
    if (published && published.seq > (known.head?.seq ?? 0)) {
      stores.heads.set(req.accountId, { ...known, head: published });
      if (published.idempotencyKey === req.entryKey) return replayed(deps, req, published);
      continue;
    }
    const newer = await stores.journal.newerThan(req.accountId, known.head?.seq ?? 0);
    if (newer.length > 0) {
      stores.heads.set(req.accountId, { ...known, head: newer[newer.length - 1]! });
      const mine = newer.find((e) => e.idempotencyKey === req.entryKey);
      if (mine) return replayed(deps, req, mine);
      continue;
    }
    const existing = await stores.journal.byKey(req.entryKey);
    if (existing) return replayed(deps, req, existing);
    stores.heads.forget(req.accountId); // neither visible yet: read everything again, from the journal
    fromJournal = true;
  }
  throw new Error(`account ${req.accountId}: lost ${APPEND_RETRIES_MAX} append races in a row; retrying the job`);
}

/**
 * What this process knows of an account: its head, and its document (refreshed alone, one read, when
 * older than `ledger.accountCacheMs`, so a configuration change reaches every process within it).
 */
async function knownOf(deps: LedgerDeps, accountId: string, fromJournal = false): Promise<KnownAccount | null> {
  const known = deps.stores.heads.get(accountId);
  if (!known) return load(deps, accountId, fromJournal);
  if (!deps.stores.heads.documentStale(known, Date.now())) return known;
  const account = await deps.stores.accounts.get(accountId);
  if (!account) return null;
  const fresh = { ...known, account, accountReadAt: Date.now() };
  deps.stores.heads.set(accountId, fresh);
  return fresh;
}

/**
 * Reads what this process does not know of an account: its document and its head, together. The head
 * is the one published by the lease's last holder unless `fromJournal` (a decision asked to be made
 * again on the head as it is now: a publish lost to a crash or a Redis error leaves the published
 * head behind, and only the journal says otherwise when nothing is appended).
 */
async function load(deps: LedgerDeps, accountId: string, fromJournal = false): Promise<KnownAccount | null> {
  const published = fromJournal ? null : await deps.stores.sharedHeads?.get(accountId);
  const [account, head] = await Promise.all([deps.stores.accounts.get(accountId), published ?? deps.stores.journal.head(accountId)]);
  if (!account) return null;
  const known = { account, head, accountReadAt: Date.now() };
  deps.stores.heads.set(accountId, known);
  return known;
}

const ZERO_PRICES: PriceMap = new Map();

/** The entry this posting makes on the known head: the operation if policy allows it, else its refusal. Null: not open yet. */
async function buildAndDecide(deps: LedgerDeps, req: PostRequest, known: KnownAccount): Promise<{ entry: StoredEntry; refusal: Refusal | null; prices: PriceMap } | null> {
  const before = known.head ? loadBalances(known.head.after) : emptyBalances('SAFE');
  const built = await req.build(before, known.account);
  if (!known.head && (isRefusal(built) || built.kind !== 'open')) return null;
  let after = before;
  let realisedPnl = ZERO;
  let refusal: Refusal | null = null;
  let prices = ZERO_PRICES;
  if (isRefusal(built)) refusal = built;
  else if (built.kind === 'open' && known.head) refusal = refuse('invalid_state', `account ${req.accountId} is open already`);
  else {
    const symbols = before.positions.map((p) => p.symbol).concat(built.kind === 'trade' ? [built.symbol] : []);
    prices = symbols.length > 0 ? await deps.stores.prices.lastCloses(symbols, deps.clock.today()) : ZERO_PRICES;
    const decision = decide(before, built, { rules: rulesOf(deps, known.account), prices, sagaId: req.sagaId ?? null });
    if (decision.ok) {
      after = decision.after;
      realisedPnl = decision.realisedPnl;
      if (built.kind === 'trade') prices = new Map(prices).set(built.symbol, built.price);
    } else refusal = decision.refusal;
  }
  const op: Operation = refusal ? refusalOperation(req.operation, refusal) : (built as Operation);
  const entry = nextEntry(known.head, fieldsOf(deps, req, req.accountId), op, after, realisedPnl);
  return { entry, refusal, prices };
}

const rulesOf = (deps: LedgerDeps, account: StoredAccount) => tierRules(deps.config, account.tier, account.config);

const fieldsOf = (deps: LedgerDeps, req: Omit<PostRequest, 'build'>, accountId: string) => ({
  accountId,
  idempotencyKey: req.entryKey,
  payloadHash: req.payloadHash ?? null,
  sagaId: req.sagaId ?? null,
  actor: req.actor,
  jobId: req.jobId,
  day: deps.clock.today(),
  at: deps.clock.now(),
});

/** The projection of a head this process now knows (written later, in a batch); answers whether it is a fork candidate. */
async function markProjection(deps: LedgerDeps, known: KnownAccount, prices: PriceMap): Promise<boolean> {
  const head = known.head!;
  const rules = rulesOf(deps, known.account);
  const equity = valuate(loadBalances(head.after), prices).equity;
  const forkCandidate = atForkLine(rules, equity);
  await deps.stores.projector.mark({ id: known.account._id, seq: head.seq, head: head.after, totals: head.totals, equityCents: storeUnits('cash', equity), forkCandidate });
  return forkCandidate;
}

/**
 * A replay answers the decision recorded under the key. The same key with another payload is refused
 * (and nothing is written). The projection is marked again: a crash between append and projection
 * would otherwise leave it behind until the reconciler.
 */
async function replayed(deps: LedgerDeps, req: Pick<PostRequest, 'payloadHash'>, entry: StoredEntry): Promise<PostResult> {
  if (req.payloadHash && entry.payloadHash !== req.payloadHash) {
    return { status: 'refused', refusal: refuse('idempotency_key_reused', 'this idempotency key was already used with a different payload'), entry: null, replayed: true };
  }
  const known = deps.stores.heads.get(entry.accountId);
  if (known?.head) {
    const prices = known.head.after.positions.length > 0 ? await deps.stores.prices.lastCloses(known.head.after.positions.map((p) => p.symbol), deps.clock.today()) : ZERO_PRICES;
    const forkCandidate = await markProjection(deps, known, prices);
    await deps.afterPosting?.(entry, known.account, { forkCandidate });
  }
  if (entry.kind !== 'refusal') return { status: 'applied', entry, replayed: true };
  const code = entry.op.code ?? 'invalid_state';
  return { status: 'refused', refusal: refuse(code, entry.op.reason ?? 'refused'), entry, replayed: true };
}

/** An account that does not exist: the refusal is recorded under the key all the same, outside every journal. */
const refuseOrphan = (deps: LedgerDeps, req: PostRequest) => recordRefusal(deps, req, refuse('account_not_found', `no account ${req.accountId}`));

/**
 * Records a refusal decided before any account journal exists (no account, or a parent that refuses
 * the opening): kept under its key in the journal collection, outside every account's journal, so a
 * replay answers it and the key can never apply later. Answers the decision that stands under the key.
 */
export async function recordRefusal(deps: LedgerDeps, req: Omit<PostRequest, 'build'>, refusal: Refusal): Promise<PostResult> {
  const accountId = orphanAccountId(req.entryKey);
  const entry = nextEntry(null, fieldsOf(deps, req, accountId), refusalOperation(req.operation, refusal), emptyBalances('CLOSED'), ZERO);
  await deps.hooks?.beforeWrite?.(`append ${req.entryKey}`);
  if ((await deps.stores.writer.append(entry)) === 'inserted') return { status: 'refused', refusal, entry, replayed: false };
  const existing = await deps.stores.journal.byKey(req.entryKey);
  if (!existing) throw new Error(`key ${req.entryKey}: neither recorded nor found; retrying`);
  return replayed(deps, req, existing);
}

/** The decision recorded under a key (a replay's answer), if any: a read, for paths that must not write before knowing. */
export async function recordedDecision(deps: LedgerDeps, req: Omit<PostRequest, 'build'>): Promise<PostResult | null> {
  const existing = await deps.stores.journal.byKey(req.entryKey);
  return existing ? replayed(deps, req, existing) : null;
}


/**
 * Another account's document and head as this process knows them (or as read now, without keeping
 * them): for checks a saga makes before it moves anything. The step that moves money decides again,
 * on its own account's head, under that account's append.
 */
export async function peekAccount(deps: LedgerDeps, accountId: string, opts: { fresh?: boolean } = {}): Promise<{ account: StoredAccount; head: Balances | null } | null> {
  const known = opts.fresh ? undefined : deps.stores.heads.get(accountId);
  if (known) return { account: known.account, head: known.head ? loadBalances(known.head.after) : null };
  const [account, head] = await Promise.all([deps.stores.accounts.get(accountId), deps.stores.journal.head(accountId)]);
  return account ? { account, head: head ? loadBalances(head.after) : null } : null;
}

/**
 * A check on another account that may end in a recorded refusal: made on what this process knows,
 * and, when that refuses (or cannot tell), made again on a fresh read, so no refusal is kept for good
 * on a cached state that has moved on.
 */
export async function confirmedProblem(check: (fresh: boolean) => Promise<Refusal | null>): Promise<Refusal | null> {
  try {
    if ((await check(false)) === null) return null;
  } catch {
    // The cached view could not say (e.g. not open yet): the fresh read decides.
  }
  return check(true);
}
