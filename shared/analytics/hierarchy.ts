import jstat from 'jstat';
import { covariance, mean, std } from './stats.js';

/** One account's daily points as analytics read them (value in currency units, flow-adjusted return). */
export interface MemberSeries {
  accountId: string;
  points: Array<{ date: string; value: number; dailyReturn: number | null }>;
}

/**
 * The subtree's value-weighted daily return (SPEC §7.3): each day, Σ V_{i,t−1}·r_{i,t} / Σ V_{i,t−1}
 * over the members with a return that day, weighted by what each held the day before.
 */
export function valueWeightedReturns(members: MemberSeries[]): Array<{ date: string; r: number; weights: Map<string, number> }> {
  const byDate = new Map<string, Array<{ accountId: string; prevValue: number; r: number }>>();
  for (const m of members) {
    for (let i = 1; i < m.points.length; i++) {
      const p = m.points[i]!;
      if (p.dailyReturn === null) continue;
      byDate.set(p.date, [...(byDate.get(p.date) ?? []), { accountId: m.accountId, prevValue: m.points[i - 1]!.value, r: p.dailyReturn }]);
    }
  }
  return [...byDate.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([date, xs]) => {
      const total = xs.reduce((s, x) => s + x.prevValue, 0);
      const weights = new Map(xs.map((x) => [x.accountId, total > 0 ? x.prevValue / total : 0]));
      return { date, r: xs.reduce((s, x) => s + (weights.get(x.accountId) ?? 0) * x.r, 0), weights };
    });
}

/** Pearson correlation of daily returns over the dates both accounts have; null with under 3 or no variance. */
export function correlation(a: MemberSeries, b: MemberSeries): number | null {
  const rb = new Map(b.points.filter((p) => p.dailyReturn !== null).map((p) => [p.date, p.dailyReturn!]));
  const pairs = a.points.filter((p) => p.dailyReturn !== null && rb.has(p.date)).map((p) => [p.dailyReturn!, rb.get(p.date)!] as const);
  if (pairs.length < 3) return null;
  const x = pairs.map((p) => p[0]);
  const y = pairs.map((p) => p[1]);
  const sx = std(x);
  const sy = std(y);
  return sx > 0 && sy > 0 ? covariance(x, y) / (sx * sy) : null;
}

export function correlationMatrix(members: MemberSeries[]): { accountIds: string[]; matrix: Array<Array<number | null>> } {
  return {
    accountIds: members.map((m) => m.accountId),
    matrix: members.map((a, i) => members.map((b, j) => (i === j ? 1 : correlation(a, b)))),
  };
}

/**
 * Each member's contribution to the subtree's return (Σ_t w_{i,t}·r_{i,t}, which adds up to Σ_t r_t)
 * and to its risk (the member's share of the subtree's variance, Σ_t-average w_i · cov(r_i, r)/var(r),
 * which adds up to 1 when every member has a return every day). Null where the subtree has no variance.
 */
export function contributions(members: MemberSeries[]): Array<{ accountId: string; toReturn: number; toRisk: number | null }> {
  const sub = valueWeightedReturns(members);
  const subR = sub.map((d) => d.r);
  const varSub = subR.length > 1 ? covariance(subR, subR) : 0;
  return members.map((m) => {
    const ret = new Map(m.points.filter((p) => p.dailyReturn !== null).map((p) => [p.date, p.dailyReturn!]));
    const toReturn = sub.reduce((s, d) => s + (d.weights.get(m.accountId) ?? 0) * (ret.get(d.date) ?? 0), 0);
    const w = mean(sub.map((d) => d.weights.get(m.accountId) ?? 0));
    const ri = sub.map((d) => ret.get(d.date) ?? 0);
    const toRisk = varSub > 0 ? (w * covariance(ri, subR)) / varSub : null;
    return { accountId: m.accountId, toReturn, toRisk };
  });
}

/**
 * Welch's t-test of the difference in mean daily return (unequal variances): t, the
 * Welch–Satterthwaite degrees of freedom and the two-sided p-value. Null with under two returns a side
 * or no variance at all.
 */
export function welchTest(a: number[], b: number[]): { t: number; df: number; pValue: number; meanDifference: number } | null {
  if (a.length < 2 || b.length < 2) return null;
  const va = std(a) ** 2 / a.length;
  const vb = std(b) ** 2 / b.length;
  if (va + vb === 0) return null;
  const t = (mean(a) - mean(b)) / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const pValue = 2 * (1 - jstat.jStat.studentt.cdf(Math.abs(t), df));
  return { t, df, pValue, meanDifference: mean(a) - mean(b) };
}
