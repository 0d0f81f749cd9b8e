import { Decimal } from '../money/decimal.js';
import { covariance, finiteOrNull, mean, percentile, rSquared, std, sum } from './stats.js';

/**
 * Performance metrics of SPEC §7.2, following empyrical's conventions: P = 252 periods a year,
 * r the daily returns, b the benchmark's, rf_d = (1 + rf)^(1/P) − 1. Values and flows come in as
 * decimals; ratios are floats. Anything undefined (no drawdown, no losses, no variance, too few
 * points) is null, never a made-up number. Formulas: docs/metrics.md.
 */
export const PERIODS_PER_YEAR = 252;

export interface Point {
  date: string;
  value: Decimal;
}

/** r_i = (V_i − CF_i) / V_{i−1} − 1: external flows of a day are not performance (SPEC §7.1). */
export function returnsFrom(values: Point[], flows: ReadonlyMap<string, Decimal> = new Map()): number[] {
  const r: number[] = [];
  for (let i = 1; i < values.length; i++) {
    const prev = values[i - 1]!.value;
    const cf = flows.get(values[i]!.date) ?? new Decimal(0);
    r.push(prev.isZero() ? Number.NaN : values[i]!.value.minus(cf).dividedBy(prev).minus(1).toNumber());
  }
  return r;
}

export const dailyRiskFree = (rfAnnual: number) => (1 + rfAnnual) ** (1 / PERIODS_PER_YEAR) - 1;

export interface ReturnMetrics {
  totalReturn: number | null;
  cagr: number | null;
  annualVolatility: number | null;
  sharpe: number | null;
  sortino: number | null;
  maxDrawdown: number | null;
  calmar: number | null;
  var95: number | null;
  cvar95: number | null;
  winRate: number | null;
  profitFactor: number | null;
  avgWin: number | null;
  avgLoss: number | null;
  omega: number | null;
  tailRatio: number | null;
  stability: number | null;
}

/** max drawdown min(V / cummax(V) − 1) on the values; 0 when there is none, null with under two values. */
export function maxDrawdownOf(values: number[]): number | null {
  if (values.length < 2) return null;
  let peak = values[0]!;
  let worst = 0;
  for (const v of values) {
    peak = Math.max(peak, v);
    worst = Math.min(worst, v / peak - 1);
  }
  return worst;
}

/** Every return metric of a series. `values` are the account's values the returns came from (for drawdown). */
export function returnMetrics(r: number[], values: number[], rfAnnual = 0.02): ReturnMetrics {
  const n = r.length;
  const P = PERIODS_PER_YEAR;
  const rfd = dailyRiskFree(rfAnnual);
  const excess = r.map((x) => x - rfd);
  const total = n === 0 ? Number.NaN : r.reduce((acc, x) => acc * (1 + x), 1) - 1;
  const cagr = n === 0 ? Number.NaN : (1 + total) ** (P / n) - 1;
  const sdExcess = std(excess);
  const downside = Math.sqrt(mean(excess.map((x) => Math.min(x, 0) ** 2)));
  const maxDrawdown = maxDrawdownOf(values);
  const gains = r.filter((x) => x > 0);
  const losses = r.filter((x) => x < 0);
  const nonZero = r.filter((x) => x !== 0).length;
  const k = Math.floor((n - 1) * 0.05);
  const p5 = n > 0 ? percentile(r, 5) : Number.NaN;
  const p95 = n > 0 ? percentile(r, 95) : Number.NaN;
  const omegaDown = sum(excess.filter((x) => x < 0).map((x) => -x));
  const cumLog: number[] = [];
  r.reduce((acc, x) => {
    const next = acc + Math.log1p(x);
    cumLog.push(next);
    return next;
  }, 0);
  return {
    totalReturn: finiteOrNull(total),
    cagr: finiteOrNull(cagr),
    annualVolatility: finiteOrNull(std(r) * Math.sqrt(P)),
    sharpe: sdExcess > 0 ? finiteOrNull((mean(excess) / sdExcess) * Math.sqrt(P)) : null,
    sortino: downside > 0 ? finiteOrNull((mean(excess) * P) / (downside * Math.sqrt(P))) : null,
    maxDrawdown,
    calmar: maxDrawdown !== null && maxDrawdown < 0 ? finiteOrNull(cagr / Math.abs(maxDrawdown)) : null,
    var95: finiteOrNull(p5),
    cvar95: n > 0 ? finiteOrNull(mean([...r].sort((a, b) => a - b).slice(0, k + 1))) : null,
    winRate: nonZero > 0 ? gains.length / nonZero : null,
    profitFactor: losses.length > 0 ? finiteOrNull(sum(r.filter((x) => x >= 0)) / Math.abs(sum(losses))) : null,
    avgWin: gains.length > 0 ? mean(gains) : null,
    avgLoss: losses.length > 0 ? mean(losses) : null,
    omega: omegaDown > 0 ? finiteOrNull(sum(excess.filter((x) => x > 0)) / omegaDown) : null,
    tailRatio: p5 !== 0 && Number.isFinite(p5) ? finiteOrNull(Math.abs(p95) / Math.abs(p5)) : null,
    stability: n >= 2 ? finiteOrNull(rSquared(cumLog)) : null,
  };
}

export interface BenchmarkMetrics {
  beta: number | null;
  alpha: number | null;
  trackingError: number | null;
  informationRatio: number | null;
}

/** Against a benchmark's returns over the same dates: beta cov/var, alpha annualised, TE and IR. */
export function benchmarkMetrics(r: number[], b: number[], rfAnnual = 0.02): BenchmarkMetrics {
  const none = { beta: null, alpha: null, trackingError: null, informationRatio: null };
  if (r.length < 2 || r.length !== b.length) return none;
  const P = PERIODS_PER_YEAR;
  const rfd = dailyRiskFree(rfAnnual);
  const varB = covariance(b, b);
  const beta = varB > 0 ? covariance(r, b) / varB : Number.NaN;
  const active = r.map((x, i) => x - b[i]!);
  const te = std(active);
  return {
    beta: finiteOrNull(beta),
    alpha: Number.isFinite(beta) ? finiteOrNull((1 + mean(r.map((x, i) => x - rfd - beta * (b[i]! - rfd)))) ** P - 1) : null,
    trackingError: finiteOrNull(te * Math.sqrt(P)),
    informationRatio: te > 0 ? finiteOrNull((mean(active) / te) * Math.sqrt(P)) : null,
  };
}

/** The benchmark aligned to the account's dates (inner join on date), as two value series. */
export function alignOnDates(account: Point[], benchmark: Point[]): { account: Point[]; benchmark: Point[] } {
  const byDate = new Map(benchmark.map((p) => [p.date, p]));
  const kept = account.filter((p) => byDate.has(p.date));
  return { account: kept, benchmark: kept.map((p) => byDate.get(p.date)!) };
}

/** A constant 10 % a year benchmark (SPEC §7.2's default when no series exists), as daily returns. */
export const constantBenchmarkReturns = (n: number, annual = 0.1) => Array.from({ length: n }, () => (1 + annual) ** (1 / PERIODS_PER_YEAR) - 1);
