import type { StoredAccount } from '../db/account-repository.js';
import type { SnapshotRepository, StoredMonthly, StoredSnapshot } from '../db/snapshot-repository.js';
import { snapshotIdOf } from '../db/snapshot-repository.js';
import { loadBalances, loadTotals } from '../db/stored-balances.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { type PriceMap, valuate } from '../domain/valuation.js';
import { nextIndex } from '../domain/value-index.js';
import type { Clock } from '../runtime/clock.js';
import type { LedgerStores } from './stores.js';

export interface SnapshotDeps {
  stores: LedgerStores;
  snapshots: SnapshotRepository;
  clock: Clock;
}

/** Accounts of a page without a point on the previous snapshot day whose own last point is looked up (bounded). */
const MISSING_LOOKUPS_MAX = 200;

/**
 * One page of the day's points: the page's projections (the journal heads, cached) read with one
 * query, the previous snapshot day's points of the same page with another, the closes once for every
 * symbol held, and the points written with one insert. A point values its projection and names the seq
 * it copies; its external flows are the difference of the running totals since the previous point,
 * so no entry is read. Closed and never-opened accounts have no point; a day re-run writes nothing.
 */
export async function snapshotPage(deps: SnapshotDeps, date: string, bucket: number | null): Promise<{ accounts: StoredAccount[]; written: StoredSnapshot[] }> {
  const accounts = (await deps.stores.accounts.ofBucket(bucket)).filter((a) => a.state !== 'CLOSED' && a.headSeq > 0);
  const prevDay = await deps.snapshots.dayBefore(date);
  const previous = new Map((prevDay ? await deps.snapshots.ofDay(prevDay, bucket) : []).map((p) => [p.accountId, p]));
  let lookups = 0;
  for (const a of accounts) {
    // An account older than the previous day but without its point then (a gap): its own latest point.
    if (previous.has(a._id) || !prevDay || new Date(a.createdAt).toISOString().slice(0, 10) >= prevDay || lookups++ >= MISSING_LOOKUPS_MAX) continue;
    const latest = await deps.snapshots.latestBefore(a._id, date);
    if (latest) previous.set(a._id, latest);
  }
  const symbols = [...new Set(accounts.flatMap((a) => a.head.positions.map((p) => p.symbol)))];
  const prices = symbols.length > 0 ? await deps.stores.prices.lastCloses(symbols, date) : new Map();
  const now = deps.clock.now();
  const points = accounts.map((a) => pointOf(a, previous.get(a._id) ?? null, prices, date, now));
  return { accounts, written: await deps.snapshots.recordPage(points) };
}

/** One account's point for the day, from its projection and the point before it. */
export function pointOf(a: StoredAccount, prev: StoredSnapshot | null, prices: PriceMap, date: string, now: Date): StoredSnapshot {
  const balances = loadBalances(a.head);
  const totals = loadTotals(a.totals);
  const { positionsValue, equity } = valuate(balances, prices);
  const sinceCents = (now: bigint, before: bigint | undefined) => (prev && before !== undefined ? now - BigInt(before) : 0n);
  const flowIn = storeUnits('cash', totals.flowIn);
  const flowOut = storeUnits('cash', totals.flowOut);
  const feesTotal = storeUnits('cash', totals.fees);
  const netFlowCents = sinceCents(flowIn, prev?.flowInCents) - sinceCents(flowOut, prev?.flowOutCents);
  const base = prev?.index !== undefined ? { date: prev.date, index: prev.index, peak: prev.indexPeak!, weekBase: prev.weekBase!, monthBase: prev.monthBase!, equity: loadUnits('cash', prev.equityCents) } : null;
  const idx = nextIndex(base, { date, equity, netFlow: loadUnits('cash', netFlowCents) });
  return {
    _id: snapshotIdOf(a._id, date),
    accountId: a._id,
    date,
    seq: a.headSeq,
    equityCents: storeUnits('cash', equity),
    cashCents: storeUnits('cash', balances.cash),
    positionsValueCents: storeUnits('cash', positionsValue),
    netFlowCents,
    feesCents: sinceCents(feesTotal, prev?.feesTotalCents),
    dailyReturn: idx.dailyReturn,
    bucket: a.bucket,
    flowInCents: flowIn,
    flowOutCents: flowOut,
    feesTotalCents: feesTotal,
    index: idx.index,
    indexPeak: idx.peak,
    weekBase: idx.weekBase,
    monthBase: idx.monthBase,
    createdAt: now,
  };
}

/** A stored point as the loss rules read it. */
export const indexStateOf = (p: StoredSnapshot) => ({ date: p.date, index: p.index ?? 1, peak: p.indexPeak ?? 1, weekBase: p.weekBase ?? 1, monthBase: p.monthBase ?? 1, dailyReturn: p.dailyReturn });

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
