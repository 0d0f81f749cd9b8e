import type { StoredAccount } from '../db/account-repository.js';
import type { ChainBreak } from '../db/audit-repository.js';
import { FORK_DONE, FORK_IN_FLIGHT } from '../db/fork-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { MERGE_DONE, MERGE_IN_FLIGHT } from '../db/merge-repository.js';
import { loadBalances, loadTotals } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { type Balances, balancesEqual, emptyBalances } from '../domain/balances.js';
import { applyEffects } from '../domain/ledger.js';
import { type Totals, addTotals, expectedHoldings, holdingsAtCost, nextTotals, totalsEqual, zeroTotals } from '../domain/totals.js';
import { atForkLine, tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import { defaults } from '../../config/defaults.js';
import type { Config } from '../../config/schema.js';
import { GENESIS_HASH, entryHash } from './entry.js';
import type { LedgerStores } from './stores.js';

/** Where a journal was verified up to: the next entry must link to this one and follow from it. */
export interface Checkpoint {
  seq: number;
  hash: string;
  after: Balances;
  totals: Totals;
}

export interface VerifyReport {
  ok: boolean;
  accounts: number;
  entries: number;
  /** Accounts whose projection differs from their journal head (repaired when asked): a cache behind, not a violation. */
  driftAccounts: number;
  drift: string[];
  /** Broken ledger invariants: gaps, broken links, entries that do not follow, conservation, hierarchy. */
  violations: number;
  openTransfers: number;
  /** Sagas with money moved in but not (or not equally) out: in flight, or, if they ended, a violation. */
  sagasUnbalanced: number;
  /** Sagas that ended (completed, rolled back, posted, voided) with moved-in ≠ moved-out: must stay 0. */
  sagaConservationViolations: number;
  audit: { records: number; chains: number; breaks: ChainBreak[] };
  problems: string[];
  totals: Record<keyof Totals | 'cash' | 'costBasis', string>;
}

const ENTRY_BATCH = 1000;
const ACCOUNT_PAGE = 500;
const PROBLEMS_KEPT_MAX = 50;
/** Entries one account may have out of order in the stream before its gap is reported. */
const PENDING_MAX = 10_000;
const HIERARCHY_DEPTH_MAX = 64;

/** What moved in and out under one saga id (cash plus lots at cost), across the accounts it touched. */
interface SagaFlow {
  in: Decimal;
  out: Decimal;
}

/**
 * Checks journals entry by entry, each against the one before it: consecutive seqs from an 'open'
 * entry, the hash link and the entry's own hash, balances and running totals that follow from the
 * predecessor's, and holdings at cost equal to what the totals say. Entries may arrive in any order
 * (a stream of the whole collection); an account's are held back until their predecessor arrives.
 */
export class JournalWalk {
  readonly checkpoints = new Map<string, Checkpoint>();
  private readonly pending = new Map<string, Map<number, StoredEntry>>();
  readonly sagas = new Map<string, SagaFlow>();
  entries = 0;
  orphans = 0;
  readonly problems: string[] = [];
  violations = 0;

  constructor(from?: Map<string, Checkpoint>) {
    if (from) for (const [k, v] of from) this.checkpoints.set(k, v);
  }

  problem(p: string): void {
    this.violations++;
    if (this.problems.length < PROBLEMS_KEPT_MAX) this.problems.push(p);
  }

  add(e: StoredEntry): void {
    if (e.accountId.startsWith('orphan:')) return this.addOrphan(e);
    const cp = this.checkpoints.get(e.accountId);
    if (cp && e.seq <= cp.seq) return; // verified before
    const expected = (cp?.seq ?? 0) + 1;
    if (e.seq !== expected) {
      const waiting = this.pending.get(e.accountId) ?? new Map<number, StoredEntry>();
      if (waiting.size < PENDING_MAX) waiting.set(e.seq, e);
      this.pending.set(e.accountId, waiting);
      return;
    }
    this.check(e, cp ?? null);
    const waiting = this.pending.get(e.accountId);
    for (let next = waiting?.get(e.seq + 1); next; next = waiting!.get(next.seq + 1)) {
      waiting!.delete(next.seq);
      this.check(next, this.checkpoints.get(e.accountId) ?? null);
    }
    if (waiting && waiting.size === 0) this.pending.delete(e.accountId);
  }

  /** After the stream: an account with entries still waiting has a gap before them. */
  finish(): void {
    for (const [accountId, waiting] of this.pending) {
      const first = Math.min(...waiting.keys());
      this.problem(`account ${accountId}: journal jumps from seq ${this.checkpoints.get(accountId)?.seq ?? 0} to ${first}`);
    }
    this.pending.clear();
  }

  private check(e: StoredEntry, cp: Checkpoint | null): void {
    this.entries++;
    const where = `account ${e.accountId}: entry ${e.seq} (${e.kind})`;
    if (e.seq === 1 && e.kind !== 'open') this.problem(`account ${e.accountId}: journal does not start with an open entry`);
    if (e.prevHash !== (cp?.hash ?? GENESIS_HASH)) this.problem(`${where} does not link to the entry before it`);
    const { hash, ...unsealed } = e;
    if (entryHash(unsealed) !== hash) this.problem(`${where}: its content does not match its hash (modified)`);
    const op = loadOperation(e.kind, e.op);
    const before = cp?.after ?? emptyBalances('SAFE');
    const stored = loadBalances(e.after);
    const storedTotals = loadTotals(e.totals);
    const realised = loadUnits('cash', e.realisedPnlCents);
    try {
      const effect = applyEffects(before, op);
      if (!balancesEqual(effect.after, stored) || !effect.realisedPnl.equals(realised)) this.problem(`${where} does not follow from entry ${e.seq - 1}`);
    } catch (err) {
      this.problem(`${where} breaks an invariant: ${(err as Error).message}`);
    }
    if (!totalsEqual(nextTotals(cp?.totals ?? zeroTotals(), op, realised), storedTotals)) this.problem(`${where}: its running totals do not follow from entry ${e.seq - 1}`);
    if (!holdingsAtCost(stored).equals(expectedHoldings(storedTotals))) {
      this.problem(`${where}: cash + positions at cost ${holdingsAtCost(stored).toFixed(2)} differ from its totals ${expectedHoldings(storedTotals).toFixed(2)}`);
    }
    this.addSagaFlow(e, op);
    this.checkpoints.set(e.accountId, { seq: e.seq, hash: e.hash, after: stored, totals: storedTotals });
  }

  private addSagaFlow(e: StoredEntry, op: ReturnType<typeof loadOperation>): void {
    if (!e.sagaId) return;
    let amount: Decimal | null = null;
    let direction: 'in' | 'out' = 'in';
    if (op.kind === 'fork-in' || op.kind === 'merge-in' || op.kind === 'fork-out' || op.kind === 'merge-out') {
      amount = op.positions.reduce((s, p) => s.plus(p.costBasis), op.cash);
      direction = op.kind.endsWith('-in') ? 'in' : 'out';
    } else if (op.kind === 'transfer-in' || op.kind === 'transfer-out') {
      amount = op.amount;
      direction = op.kind === 'transfer-in' ? 'in' : 'out';
    }
    if (!amount) return;
    const flow = this.sagas.get(e.sagaId) ?? { in: new Decimal(0), out: new Decimal(0) };
    flow[direction] = flow[direction].plus(amount);
    this.sagas.set(e.sagaId, flow);
  }

  private addOrphan(e: StoredEntry): void {
    this.orphans++;
    const { hash, ...unsealed } = e;
    if (e.kind !== 'refusal' || e.seq !== 1 || e.prevHash !== GENESIS_HASH || entryHash(unsealed) !== hash) this.problem(`orphan refusal ${e.idempotencyKey} is not a sealed refusal of its own`);
  }
}

export interface VerifyOptions {
  /** The fleet is idle: nothing may be held, in flight or unbalanced. */
  idle: boolean;
  /** Rewrite projections that differ from their journal heads (through the projector, under its locks). */
  repairProjections?: boolean;
  now?: Date;
  /** Journals already verified (the reconciler's previous run): only what follows them is checked. */
  from?: Map<string, Checkpoint>;
  /** Entries to check, instead of the whole journal (the reconciler: the days since its last run). */
  entries?: AsyncIterable<StoredEntry>;
  /** The fleet's tiers and business date, for the value of a repaired projection. */
  config?: Pick<Config, 'tiers'>;
  today?: string;
}

/**
 * Recomputes every balance from the journal and checks every invariant: each journal (JournalWalk);
 * per saga, moved-in = moved-out once it has ended; for the whole fleet, holdings at cost equal to the
 * flows; when idle, nothing held and nothing in flight; projections equal to their heads; the
 * hierarchy (parents resolve, no cycles, a merged account points to an open one and has no open
 * children); and every audit chain intact.
 */
export async function verifyLedger(stores: LedgerStores, opts: VerifyOptions): Promise<VerifyReport & { checkpoints: Map<string, Checkpoint> }> {
  const walk = new JournalWalk(opts.from);
  for await (const e of opts.entries ?? stores.journal.all(ENTRY_BATCH)) walk.add(e);
  walk.finish();

  const accounts = new Map<string, Pick<StoredAccount, '_id' | 'parentId' | 'mergedInto'>>();
  let driftAccounts = 0;
  const drift: string[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await stores.accounts.list({}, { afterId, limit: ACCOUNT_PAGE });
    if (page.length === 0) break;
    afterId = page[page.length - 1]!._id;
    for (const account of page) {
      accounts.set(account._id, { _id: account._id, parentId: account.parentId, mergedInto: account.mergedInto });
      const cp = walk.checkpoints.get(account._id);
      if (!cp) {
        if (opts.repairProjections && (await sweepUnopened(stores, account, opts.now ?? new Date()))) continue;
        if (opts.idle) walk.problem(`account ${account._id} has a document but no journal`);
        continue;
      }
      if (cp.seq === account.headSeq && balancesEqual(cp.after, loadBalances(account.head))) continue;
      driftAccounts++;
      if (drift.length < PROBLEMS_KEPT_MAX) drift.push(`account ${account._id}: projection at seq ${account.headSeq}, journal head at ${cp.seq}`);
      if (opts.repairProjections) await repairProjection(stores, account, cp, opts.config ?? defaults, opts.today ?? (opts.now ?? new Date()).toISOString().slice(0, 10));
    }
    if (page.length < ACCOUNT_PAGE) break;
  }
  if (opts.repairProjections) await stores.projector.flush();
  checkHierarchy(walk, accounts);

  let fleet = zeroTotals();
  let cash = new Decimal(0);
  let costBasis = new Decimal(0);
  for (const cp of walk.checkpoints.values()) {
    fleet = addTotals(fleet, cp.totals);
    cash = cash.plus(cp.after.cash);
    costBasis = costBasis.plus(cp.after.positions.reduce((s, p) => s.plus(p.costBasis), new Decimal(0)));
  }
  if (!cash.plus(costBasis).equals(expectedHoldings(fleet))) walk.problem(`fleet: cash + positions at cost ${cash.plus(costBasis).toFixed(2)} differ from flows ${expectedHoldings(fleet).toFixed(2)}`);

  const { unbalanced, conservation } = await checkSagas(stores, walk, opts.idle);
  await checkHolds(stores, walk, opts.idle);
  const openTransfers = await stores.transfers.countOpen();
  if (opts.idle && openTransfers > 0) walk.problem(`fleet: ${openTransfers} transfers not settled`);
  const sagasOpen = (await stores.forks.countIn(FORK_IN_FLIGHT)) + (await stores.merges.countIn(MERGE_IN_FLIGHT));
  if (opts.idle && sagasOpen > 0) walk.problem(`fleet: ${sagasOpen} forks or merges still in flight`);
  const audit = await stores.audit.verify();
  for (const b of audit.breaks.slice(0, 10)) walk.problems.push(`audit chain ${b.chain}: record ${b.seq} ${b.problem}`);

  const fmt = (d: Decimal) => d.toFixed(2);
  return {
    // A projection behind its head is a cache not yet written (or lost): repaired, reported, not a broken ledger.
    ok: walk.violations === 0 && audit.breaks.length === 0,
    accounts: accounts.size,
    entries: walk.entries,
    driftAccounts,
    violations: walk.violations,
    openTransfers,
    sagasUnbalanced: unbalanced,
    sagaConservationViolations: conservation,
    audit,
    problems: walk.problems,
    drift,
    totals: { ...(Object.fromEntries(Object.entries(fleet).map(([k, v]) => [k, fmt(v as Decimal)])) as Record<keyof Totals, string>), cash: fmt(cash), costBasis: fmt(costBasis) },
    checkpoints: walk.checkpoints,
  };
}

/** A document left by a saga that ended without opening it is this old before it is removed. */
const UNOPENED_GRACE_MS = 120_000;

/**
 * Removes an account document a saga created but never opened (a fork child or a merge's new target
 * whose opening was claimed by the rollback, its process having died after creating the document).
 * It holds nothing, has no journal, and its opening can never happen: nothing refers to it.
 */
async function sweepUnopened(stores: LedgerStores, account: StoredAccount, now: Date): Promise<boolean> {
  if (now.getTime() - new Date(account.createdAt).getTime() < UNOPENED_GRACE_MS) return false;
  const claimed = async (key: string) => (await stores.journal.byKey(key))?.kind === 'refusal';
  const fork = await stores.forks.ofChild(account._id);
  if (fork && FORK_DONE.includes(fork.phase) && (await claimed(`${fork._id}:child-open`))) {
    await stores.accounts.deleteUnopened(account._id);
    return true;
  }
  const merges = await stores.merges.ofTarget(account._id);
  const group = merges.find((m) => m.newTarget && m.groupId)?.groupId;
  if (group && merges.every((m) => MERGE_DONE.includes(m.phase)) && (await claimed(`${group}:open`))) {
    await stores.accounts.deleteUnopened(account._id);
    return true;
  }
  return false;
}

/** The projection of the verified head, valued now, written under the account's lock like any other. */
async function repairProjection(stores: LedgerStores, account: StoredAccount, cp: Checkpoint, config: Pick<Config, 'tiers'>, today: string): Promise<void> {
  const prices = await stores.prices.lastCloses(cp.after.positions.map((p) => p.symbol), today);
  const equity = valuate(cp.after, prices).equity;
  const rules = tierRules(config, account.tier, account.config);
  const head = await stores.journal.at(account._id, cp.seq);
  if (!head) return;
  await stores.projector.mark({ id: account._id, seq: cp.seq, head: head.after, totals: head.totals, equityCents: storeUnits('cash', equity), forkCandidate: atForkLine(rules, equity) });
}

/**
 * Per saga, what moved in and out. A saga that has ended must have moved in exactly what it moved out
 * (a rolled-back fork whose child kept a credit would show here); one that has not may be between the
 * two. Idle, nothing may be between them.
 */
async function checkSagas(stores: LedgerStores, walk: JournalWalk, idle: boolean): Promise<{ unbalanced: number; conservation: number }> {
  let unbalanced = 0;
  let conservation = 0;
  for (const [sagaId, flow] of walk.sagas) {
    if (flow.in.equals(flow.out)) continue;
    unbalanced++;
    const ended = await sagaEnded(stores, sagaId);
    if (!ended && !idle) continue;
    // The stream was read before the record: a saga that ended since wrote its last move after the
    // stream passed. Its record is written after that move, so the move can be read now by its key.
    const now = ended ? await movedByKeys(stores, sagaId) : flow;
    if (now.in.equals(now.out)) continue;
    conservation++;
    walk.problem(`saga ${sagaId}: moved in ${now.in.toFixed(2)} but out ${now.out.toFixed(2)}${ended ? ' after it ended' : ' while the fleet is idle'}`);
  }
  return { unbalanced, conservation };
}

/** What a saga moved, read from its in and out steps by their keys. */
async function movedByKeys(stores: LedgerStores, sagaId: string): Promise<SagaFlow> {
  const [inKey, outKey] = sagaId.startsWith('tr_') ? ['credit', 'post'] : ['in', 'out'];
  const moved = async (step: string) => {
    const e = await stores.journal.byKey(`${sagaId}:${step}`);
    if (!e || e.kind === 'refusal') return new Decimal(0);
    const op = loadOperation(e.kind, e.op);
    if (op.kind === 'transfer-in' || op.kind === 'transfer-out') return op.amount;
    return 'positions' in op && 'cash' in op ? op.positions.reduce((sum, p) => sum.plus(p.costBasis), op.cash) : new Decimal(0);
  };
  return { in: await moved(inKey), out: await moved(outKey) };
}

async function sagaEnded(stores: LedgerStores, sagaId: string): Promise<boolean> {
  if (sagaId.startsWith('fork_')) return FORK_DONE.includes((await stores.forks.get(sagaId))?.phase ?? 'REQUESTED');
  if (sagaId.startsWith('merge_')) return MERGE_DONE.includes((await stores.merges.get(sagaId))?.phase ?? 'REQUESTED');
  const t = await stores.transfers.get(sagaId);
  return t?.phase === 'POSTED' || t?.phase === 'VOIDED';
}

/**
 * Money held and accounts held: idle, no account has anything reserved or belongs to a saga; at any
 * time, an account belongs only to a saga that has not ended (one that did would hold it for ever).
 */
async function checkHolds(stores: LedgerStores, walk: JournalWalk, idle: boolean): Promise<void> {
  for (const [accountId, cp] of walk.checkpoints) {
    if (idle && !cp.after.reserved.isZero()) walk.problem(`account ${accountId}: ${cp.after.reserved.toFixed(2)} still reserved while the fleet is idle`);
    if (!cp.after.owner) continue;
    if (idle) walk.problem(`account ${accountId}: still held by ${cp.after.owner} while the fleet is idle`);
    // The record is read after the stream: a saga that ended since gave the account back in an entry
    // written before its record, so the head read now tells.
    else if ((await sagaEnded(stores, cp.after.owner)) && (await stores.journal.head(accountId))?.after.owner === cp.after.owner) {
      walk.problem(`account ${accountId}: held by ${cp.after.owner}, which has ended`);
    }
  }
}

/** Parents resolve, no cycles, a merged account points (through its chain of merges) to an open one and has no open children. */
function checkHierarchy(walk: JournalWalk, accounts: Map<string, Pick<StoredAccount, '_id' | 'parentId' | 'mergedInto'>>): void {
  const isOpen = (id: string) => {
    const state = walk.checkpoints.get(id)?.after.state;
    return state !== undefined && state !== 'CLOSED';
  };
  for (const a of accounts.values()) {
    if (a.parentId && !accounts.has(a.parentId)) walk.problem(`account ${a._id}: its parent ${a.parentId} does not exist`);
    let cursor = a.parentId;
    for (let depth = 0; cursor; depth++) {
      if (cursor === a._id || depth > HIERARCHY_DEPTH_MAX) {
        walk.problem(`account ${a._id}: its parents form a cycle`);
        break;
      }
      cursor = accounts.get(cursor)?.parentId ?? null;
    }
    if (a.mergedInto) {
      // The chain of merges ends at an account that exists: open, or closed by its owner (not merged on).
      let target: string | null = a.mergedInto;
      let depth = 0;
      for (; target && accounts.get(target)?.mergedInto && depth < HIERARCHY_DEPTH_MAX; depth++) target = accounts.get(target)!.mergedInto;
      if (!target || !accounts.has(target) || depth >= HIERARCHY_DEPTH_MAX) walk.problem(`account ${a._id}: merged into ${a.mergedInto}, which leads to no account`);
    }
    if (a.parentId && accounts.get(a.parentId)?.mergedInto && isOpen(a._id)) walk.problem(`account ${a._id}: open under ${a.parentId}, which was merged away (children move to the target)`);
  }
}
