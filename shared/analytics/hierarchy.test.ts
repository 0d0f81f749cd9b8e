import { describe, expect, it } from 'vitest';
import { contributions, correlation, correlationMatrix, valueWeightedReturns, welchTest, type MemberSeries } from './hierarchy.js';

const member = (accountId: string, values: number[]): MemberSeries => ({
  accountId,
  points: values.map((value, i) => ({ date: `2026-11-${String(i + 2).padStart(2, '0')}`, value, dailyReturn: i === 0 ? null : value / values[i - 1]! - 1 })),
});

describe('subtree returns', () => {
  it('weight each member by what it held the day before', () => {
    // Day 1: A 100 → 110 (+10 %), B 300 → 270 (−10 %): (100·0.1 + 300·(−0.1)) / 400 = −5 %.
    const sub = valueWeightedReturns([member('A', [100, 110]), member('B', [300, 270])]);
    expect(sub).toHaveLength(1);
    expect(sub[0]!.r).toBeCloseTo(-0.05, 12);
    expect(sub[0]!.weights.get('A')).toBeCloseTo(0.25, 12);
  });
});

describe('correlation', () => {
  it('is 1 for returns that move together and −1 for mirrored ones, null without enough points', () => {
    const a = member('A', [100, 110, 99, 108.9, 104]);
    const scaled = member('S', [200, 220, 198, 217.8, 208]);
    expect(correlation(a, scaled)).toBeCloseTo(1, 12);
    const mirror: MemberSeries = { accountId: 'M', points: a.points.map((p) => ({ ...p, dailyReturn: p.dailyReturn === null ? null : -p.dailyReturn })) };
    expect(correlation(a, mirror)).toBeCloseTo(-1, 12);
    expect(correlation(member('X', [1, 2, 3]), member('Y', [1, 2, 3]))).toBeNull();
    const m = correlationMatrix([a, scaled]);
    expect(m.matrix[0]![0]).toBe(1);
  });
});

describe('contributions', () => {
  it('add up to the subtree return and, for risk, to one', () => {
    const members = [member('A', [100, 110, 99, 108.9]), member('B', [300, 303, 297, 300])];
    const sub = valueWeightedReturns(members);
    const c = contributions(members);
    expect(c.reduce((s, x) => s + x.toReturn, 0)).toBeCloseTo(sub.reduce((s, d) => s + d.r, 0), 12);
    // Risk shares use each member's average weight, so they sum to one only approximately when weights drift.
    expect(c.reduce((s, x) => s + (x.toRisk ?? 0), 0)).toBeCloseTo(1, 1);
    expect(c.find((x) => x.accountId === 'A')!.toRisk!).toBeGreaterThan(c.find((x) => x.accountId === 'B')!.toRisk!);
  });
});

describe("Welch's t-test", () => {
  it('matches the hand-computed statistic, Welch–Satterthwaite df and two-sided p-value', () => {
    const w = welchTest([0.01, 0.02, -0.01, 0.03, 0.0], [0.0, -0.01, 0.01, -0.02, 0.005, 0.0])!;
    // Computed independently: t and df from the formulas; p by integrating the t density numerically.
    expect(w.t).toBeCloseTo(1.4985022462565505, 12);
    expect(w.df).toBeCloseTo(6.900143500420604, 10);
    expect(w.pValue).toBeCloseTo(0.17828671594723078, 8);
  });
  it('is null without enough returns or any variance', () => {
    expect(welchTest([0.01], [0.02, 0.03])).toBeNull();
    expect(welchTest([0.01, 0.01], [0.01, 0.01])).toBeNull();
  });
});
