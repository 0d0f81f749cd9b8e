import { type Point, alignOnDates, benchmarkMetrics, constantBenchmarkReturns, returnMetrics, returnsFrom } from '../analytics/metrics.js';
import { type Period, periodWindow } from '../analytics/periods.js';
import { tradeMetrics } from '../analytics/trades.js';
import { trendOf } from '../analytics/trend.js';
import { xirr } from '../analytics/xirr.js';
import type { StoredEntry } from '../db/journal-repository.js';
import type { SnapshotRepository, StoredSnapshot } from '../db/snapshot-repository.js';
import { loadUnits } from '../db/stored-units.js';
import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';
import { PositionReplay, periodAttribution } from './attribution.js';
import type { LedgerStores } from './stores.js';

export interface ReportDeps {
  stores: LedgerStores;
  snapshots: SnapshotRepository;
  benchmarkSymbol: string;
}

const JOURNAL_PAGE = 1000;
const JOURNAL_PAGES_MAX = 50;

/** The account's points as a performance index 1 × ∏(1 + r): flows excluded, so drawdown and returns are performance only. */
export function indexOf(points: StoredSnapshot[]): Point[] {
  let index = new Decimal(1);
  return points.map((p, i) => {
    if (i > 0) index = index.times(1 + (p.dailyReturn ?? 0));
    return { date: p.date, value: index };
  });
}

/**
 * The money-weighted return (XIRR) of a run of points, from the investor's side: the opening value
 * and each inflow as money in, outflows and the closing value as money out. Null without flows (it
 * is then the time-weighted return) or with fewer than two points.
 */
export function moneyWeighted(points: StoredSnapshot[]): number | null {
  if (points.length < 2 || !points.slice(1).some((p) => BigInt(p.netFlowCents) !== 0n)) return null;
  return xirr([
    { date: points[0]!.date, amount: loadUnits('cash', points[0]!.equityCents).negated() },
    ...points.slice(1).map((p) => ({ date: p.date, amount: loadUnits('cash', p.netFlowCents).negated() })).filter((f) => !f.amount.isZero()),
    { date: points.at(-1)!.date, amount: loadUnits('cash', points.at(-1)!.equityCents) },
  ]);
}

/** The time-weighted return of a run of points: their flow-adjusted index, end over start (null under two points). */
export function timeWeighted(points: StoredSnapshot[]): number | null {
  const index = indexOf(points);
  return index.length >= 2 ? index.at(-1)!.value.div(index[0]!.value).minus(1).toNumber() : null;
}

/** Realised P&L of the sells in [from, to]: the closed trades the trade metrics read. Every entry read is also handed to `also` (one pass serves the attribution too). */
async function closedTrades(deps: ReportDeps, accountId: string, from: string, to: string, also: (e: StoredEntry) => void = () => undefined) {
  const trades: Array<{ date: string; pnl: Decimal }> = [];
  for (let page = 0, seq = 1; page < JOURNAL_PAGES_MAX; page++, seq += JOURNAL_PAGE) {
    const entries = await deps.stores.journal.pageAsc(accountId, seq, JOURNAL_PAGE);
    for (const e of entries) {
      also(e);
      const date = new Date(e.at).toISOString().slice(0, 10);
      if (e.kind === 'trade' && e.op.side === 'sell' && date >= from && date <= to) {
        trades.push({ date, pnl: loadUnits('cash', e.realisedPnlCents) });
      }
    }
    if (entries.length < JOURNAL_PAGE) break;
  }
  return trades;
}

/**
 * Every figure of SPEC §7.2 for one account and period, from its daily points: return metrics on the
 * flow-adjusted index, benchmark figures against the configured index (a constant 10 % a year when it
 * has no closes there), XIRR from the value and flows, and trade metrics from the period's sells.
 * Also the index's trend and the return's attribution by position (docs/risk.md).
 */
export async function performanceReport(deps: ReportDeps, accountId: string, period: Period, opts: { rfAnnual?: number; attribution?: boolean } = {}) {
  const rfAnnual = opts.rfAnnual ?? 0.02;
  const all = await deps.snapshots.series(accountId);
  const window = periodWindow(
    all.map((s) => ({ date: s.date, value: loadUnits('cash', s.equityCents) })),
    period,
  );
  const points = all.slice(all.length - window.length);
  const from = points[0]?.date ?? null;
  const to = points.at(-1)?.date ?? null;
  const index = indexOf(points);
  const r = returnsFrom(index);
  const metrics = returnMetrics(r, index.map((p) => p.value.toNumber()), rfAnnual);

  const closes = from && to ? await deps.stores.prices.model.find({ symbol: deps.benchmarkSymbol, date: { $gte: from, $lte: to } }, { _id: 0, date: 1, closeMicros: 1 }).lean<Array<{ date: string; closeMicros: bigint }>>() : [];
  const bench: Point[] = closes.map((c) => ({ date: c.date, value: loadUnits('price', c.closeMicros) })).sort((a, b) => (a.date < b.date ? -1 : 1));
  const aligned = alignOnDates(index, bench);
  const benchmark =
    aligned.account.length >= 3
      ? { source: deps.benchmarkSymbol, ...benchmarkMetrics(returnsFrom(aligned.account), returnsFrom(aligned.benchmark), rfAnnual) }
      : { source: 'constant-10%', ...benchmarkMetrics(r, constantBenchmarkReturns(r.length), rfAnnual) };


  // Inception to date survives retention: months rolled up and pruned are chained in before the days.
  let inceptionToDate = null;
  if (period === 'inception') {
    const months = (await deps.snapshots.monthly.model.find({ accountId }).lean<Array<{ month: string; firstDate: string; days: number; monthReturn: number }>>()).sort((a, b) => (a.month < b.month ? -1 : 1));
    // The first remaining day's return is measured from the last pruned day: it links the two parts.
    const link = months.length > 0 ? (points[0]?.dailyReturn ?? 0) : 0;
    const growth = months.reduce((g, m) => g * (1 + m.monthReturn), 1) * (1 + link) * (1 + (metrics.totalReturn ?? 0));
    const periods = months.reduce((n, m) => n + m.days, 0) + (months.length > 0 && points[0]?.dailyReturn != null ? 1 : 0) + r.length;
    inceptionToDate = {
      from: months[0]?.firstDate ?? from,
      monthsRolledUp: months.length,
      totalReturn: periods > 0 ? growth - 1 : null,
      cagr: periods > 0 ? growth ** (252 / periods) - 1 : null,
    };
  }

  // One journal pass for the trades and the positions the attribution replays.
  const replay = new PositionReplay(points);
  const closed = from && to ? await closedTrades(deps, accountId, from, to, (e) => replay.add(e)) : [];

  return {
    accountId,
    period,
    from,
    to,
    points: points.length,
    startEquity: points[0] ? formatUnits('cash', loadUnits('cash', points[0].equityCents)) : null,
    endEquity: points.at(-1) ? formatUnits('cash', loadUnits('cash', points.at(-1)!.equityCents)) : null,
    metrics,
    benchmark,
    moneyWeightedReturn: moneyWeighted(points),
    inceptionToDate,
    trades: tradeMetrics(closed),
    trend: trendOf(index.map((p) => p.value.toNumber())),
    // A price query per symbol held: asked for on one account's report, skipped where many are compared.
    attribution: opts.attribution === false ? null : await periodAttribution(deps.stores.prices, points, r, replay),
  };
}
