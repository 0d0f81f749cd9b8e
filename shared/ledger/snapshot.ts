import { mergePlanValue } from '../domain/merge.js';
import type { StoredAccount } from '../db/account-repository.js';
import type { SnapshotRepository, StoredMonthly, StoredSnapshot } from '../db/snapshot-repository.js';
import { snapshotIdOf } from '../db/snapshot-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { valuate } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import type { Clock } from '../runtime/clock.js';
import type { LedgerStores } from './stores.js';

export interface SnapshotDeps {
  stores: LedgerStores;
  snapshots: SnapshotRepository;
  clock: Clock;
}

const ENTRY_PAGE = 1000;
/** Entries read one by one (indexed lookups) rather than as a page, which FerretDB filters after reading them all. */
const LOOKUPS_MAX = 24;

/** The entries after `afterSeq` up to `toSeq`, oldest first: a day's few by (account, seq), more by pages. */
async function* entriesBetween(deps: SnapshotDeps, accountId: string, afterSeq: number, toSeq: number) {
  if (toSeq - afterSeq <= LOOKUPS_MAX) {
    for (let seq = afterSeq + 1; seq <= toSeq; seq++) {
      const e = await deps.stores.journal.at(accountId, seq);
      if (e) yield e;
    }
    return;
  }
  for (let from = afterSeq + 1; from <= toSeq; from += ENTRY_PAGE) {
    const page = await deps.stores.journal.pageAsc(accountId, from, ENTRY_PAGE);
    for (const e of page) if (e.seq <= toSeq) yield e;
    if (page.length < ENTRY_PAGE) break;
  }
}

/**
 * External flows in the entries after `afterSeq` up to `toSeq`: money that came in or went out, not
 * performance (SPEC §7.1). Positions moved by a fork or merge are valued at the day's close, like the
 * account. Also the account fees among them (the fixed costs the consolidation engine weighs).
 */
async function flowsSince(deps: SnapshotDeps, accountId: string, afterSeq: number, toSeq: number, date: string): Promise<{ flow: Decimal; fees: Decimal }> {
  let flow = new Decimal(0);
  let fees = new Decimal(0);
  for await (const e of entriesBetween(deps, accountId, afterSeq, toSeq)) {
    const op = loadOperation(e.kind, e.op);
    if (op.kind === 'deposit' || op.kind === 'transfer-in') flow = flow.plus(op.amount);
    else if (op.kind === 'withdrawal' || op.kind === 'transfer-out') flow = flow.minus(op.amount);
    else if (op.kind === 'fee') fees = fees.plus(op.amount);
    else if (op.kind === 'fork-in' || op.kind === 'fork-out' || op.kind === 'merge-in' || op.kind === 'merge-out') {
      const prices = await deps.stores.prices.lastCloses(op.positions.map((p) => p.symbol), date);
      const moved = mergePlanValue(op, prices);
      flow = op.kind.endsWith('-in') ? flow.plus(moved) : flow.minus(moved);
    }
  }
  return { flow, fees };
}

/**
 * The account's point for `date`: equity valued at the closes on or before the date, the flows since
 * the previous point, and the flow-adjusted return r = (V − CF) / V_prev − 1. Stored once: a re-run
 * of the day finds it. Closed accounts have no points.
 */
export async function snapshotAccount(
  deps: SnapshotDeps,
  accountOrId: StoredAccount | string,
  date: string,
): Promise<{ snapshot: StoredSnapshot; created: boolean; history: StoredSnapshot[] | null } | null> {
  const accountId = typeof accountOrId === 'string' ? accountOrId : accountOrId._id;
  const account = typeof accountOrId === 'string' ? await deps.stores.accounts.get(accountId) : accountOrId;
  if (!account || account.state === 'CLOSED') return null;
  // The projection of the head (a valuation, never a debit): its seq is the one the next point's flows start after.
  const seq = account.headSeq;
  if (seq === 0) return null;
  const balances = loadBalances(account.head);
  const prices = await deps.stores.prices.lastCloses(balances.positions.map((p) => p.symbol), date);
  const { positionsValue, equity } = valuate(balances, prices);
  const points = await deps.snapshots.trailing(accountId, date);
  const existing = points.find((s) => s.date === date);
  if (existing) return { snapshot: existing, created: false, history: null };
  const history = points.filter((s) => s.date < date);
  const previous = history.at(-1);
  const { flow, fees } = await flowsSince(deps, accountId, previous?.seq ?? 0, seq, date);
  const prevEquity = previous ? loadUnits('cash', previous.equityCents) : null;
  const dailyReturn = prevEquity && !prevEquity.isZero() ? equity.minus(flow).dividedBy(prevEquity).minus(1).toNumber() : null;
  return deps.snapshots.record({
    _id: snapshotIdOf(accountId, date),
    accountId,
    date,
    seq,
    equityCents: storeUnits('cash', equity),
    cashCents: storeUnits('cash', balances.cash),
    positionsValueCents: storeUnits('cash', positionsValue),
    netFlowCents: storeUnits('cash', flow),
    feesCents: storeUnits('cash', fees),
    dailyReturn,
    createdAt: deps.clock.now(),
  }).then(({ stored, created }) => ({ snapshot: stored, created, history: created ? [...history, stored] : null }));
}

const PRUNE_POINTS_MAX = 50_000;

/**
 * Rolls the daily points of whole months before `cutoff`'s month into one summary per account and
 * month, then deletes them. Only whole months, so a month is summarised once with all its days; the
 * summary is written first and never rewritten, so a crash between the two steps loses nothing and a
 * re-run only finishes the deletion. Bounded per run; a month cut by the bound waits for the next run.
 */
export async function pruneSnapshots(deps: SnapshotDeps, cutoff: string): Promise<{ months: number; pruned: number }> {
  const monthStart = `${cutoff.slice(0, 7)}-01`;
  const old = await deps.snapshots.model.find({ date: { $lt: monthStart } }).sort({ accountId: 1, date: 1 }).limit(PRUNE_POINTS_MAX).lean<StoredSnapshot[]>();
  const groups = new Map<string, StoredSnapshot[]>();
  for (const s of old) {
    const key = `${s.accountId}_${s.date.slice(0, 7)}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  if (old.length === PRUNE_POINTS_MAX) groups.delete([...groups.keys()].at(-1)!);
  let pruned = 0;
  for (const [key, points] of groups) {
    points.sort((a, b) => (a.date < b.date ? -1 : 1));
    const last = points[points.length - 1]!;
    const summary: StoredMonthly = {
      _id: key,
      accountId: last.accountId,
      month: last.date.slice(0, 7),
      days: points.length,
      firstDate: points[0]!.date,
      lastDate: last.date,
      endEquityCents: BigInt(last.equityCents),
      netFlowCents: points.reduce((s, p) => s + BigInt(p.netFlowCents), 0n),
      monthReturn: points.reduce((acc, p) => acc * (1 + (p.dailyReturn ?? 0)), 1) - 1,
    };
    await deps.snapshots.monthly.recordOnce(summary);
    pruned += (await deps.snapshots.model.deleteMany({ _id: { $in: points.map((p) => p._id) } })).deletedCount;
  }
  return { months: groups.size, pruned };
}
