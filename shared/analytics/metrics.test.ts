import { describe, expect, it } from 'vitest';
import { Decimal } from '../money/decimal.js';
import { alignOnDates, benchmarkMetrics, maxDrawdownOf, returnMetrics, returnsFrom, type Point } from './metrics.js';
import { periodWindow } from './periods.js';
import { tradeMetrics } from './trades.js';
import { xirr } from './xirr.js';

const pts = (values: number[], start = '2024-01-01'): Point[] =>
  values.map((v, i) => ({ date: new Date(Date.parse(`${start}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10), value: new Decimal(v) }));

describe('returns', () => {
  it('take out the day\'s external flows: flows are not performance', () => {
    const values = pts([100, 160, 176]);
    // A deposit of 50 on day 2: 160 − 50 = 110 on a base of 100 → +10 %, then +10 %.
    const r = returnsFrom(values, new Map([[values[1]!.date, new Decimal(50)]]));
    expect(r.map((x) => x.toFixed(10))).toEqual(['0.1000000000', '0.1000000000']);
  });
});

describe('return metrics on a hand-computed series (100, 110, 99, 108.9)', () => {
  // Returns +10 %, −10 %, +10 %. Expected values computed independently from the formulas of SPEC §7.2.
  const values = [100, 110, 99, 108.9];
  const m = returnMetrics(returnsFrom(pts(values)), values, 0.02);
  it('matches each formula', () => {
    expect(m.totalReturn).toBeCloseTo(0.089, 12);
    expect(m.cagr).toBeCloseTo(1288.2641288883815, 6);
    expect(m.annualVolatility).toBeCloseTo(1.8330302779823366, 12);
    expect(m.sharpe).toBeCloseTo(4.571772051601997, 10);
    expect(m.sortino).toBeCloseTo(9.136364296621991, 10);
    expect(m.maxDrawdown).toBeCloseTo(-0.1, 12);
    expect(m.calmar).toBeCloseTo(12882.641288883815, 4);
    expect(m.var95).toBeCloseTo(-0.08, 12); // linear interpolation at rank 0.1
    expect(m.cvar95).toBeCloseTo(-0.1, 12); // k = floor(2 · 0.05) = 0: the smallest return
    expect(m.winRate).toBeCloseTo(2 / 3, 12);
    expect(m.profitFactor).toBeCloseTo(2, 12);
    expect([m.avgWin, m.avgLoss].map((x) => x!.toFixed(12))).toEqual(['0.100000000000', '-0.100000000000']);
    expect(m.omega).toBeCloseTo(1.9968590706181488, 10);
    expect(m.tailRatio).toBeCloseTo(1.25, 12);
    expect(m.stability).toBeCloseTo(0.007468933659800318, 12);
  });
});

describe('undefined metrics are null, never invented', () => {
  it('a single point has no returns', () => {
    const m = returnMetrics([], [100]);
    expect(Object.values(m).every((x) => x === null)).toBe(true);
  });
  it('no drawdown: max drawdown 0, Calmar null', () => {
    const values = [100, 101, 102.01];
    const m = returnMetrics(returnsFrom(pts(values)), values);
    expect(m.maxDrawdown).toBe(0);
    expect(m.calmar).toBeNull();
  });
  it('no losses: profit factor, average loss and Sortino null', () => {
    const values = [100, 101, 103, 104];
    const m = returnMetrics(returnsFrom(pts(values)), values, 0);
    expect([m.profitFactor, m.avgLoss, m.sortino]).toEqual([null, null, null]);
    expect(m.winRate).toBe(1);
  });
  it('zero variance: Sharpe null, volatility 0, stability null', () => {
    const values = [100, 100, 100, 100];
    const m = returnMetrics(returnsFrom(pts(values)), values, 0);
    expect(m.sharpe).toBeNull();
    expect(m.annualVolatility).toBe(0);
    expect(m.stability).toBeNull();
    expect(m.winRate).toBeNull();
  });
});

describe('benchmark metrics', () => {
  it('match the formulas on a small series', () => {
    const b = benchmarkMetrics([0.1, -0.1, 0.1], [0.05, -0.02, 0.03], 0.02);
    expect(b.beta).toBeCloseTo(3.076923076923077, 12);
    expect(b.alpha).toBeCloseTo(-0.9992287779563552, 10);
    expect(b.trackingError).toBeCloseTo(1.2929037087115194, 12);
    expect(b.informationRatio).toBeCloseTo(2.5988014245457784, 10);
  });
  it('are null when the benchmark does not move', () => {
    expect(benchmarkMetrics([0.1, -0.1], [0.01, 0.01]).beta).toBeNull();
  });
  it('align the benchmark on the account\'s dates', () => {
    const account = pts([1, 2, 3, 4]);
    const bench = [account[0]!, account[2]!, account[3]!].map((p) => ({ ...p, value: p.value.times(10) }));
    const aligned = alignOnDates(account, bench);
    expect(aligned.account.map((p) => p.date)).toEqual([account[0]!.date, account[2]!.date, account[3]!.date]);
  });
});

describe('money-weighted return and trades', () => {
  it('solves XIRR for a year-long investment', () => {
    const x = xirr([
      { date: '2020-01-01', amount: new Decimal(-1000) },
      { date: '2021-01-01', amount: new Decimal(1100) },
    ]);
    expect(x).toBeCloseTo(0.09971358593414137, 9); // 1.1^(365/366) − 1
    expect(xirr([{ date: '2020-01-01', amount: new Decimal(-1) }, { date: '2020-02-01', amount: new Decimal(-1) }])).toBeNull();
  });
  it('summarises closed trades in exact money', () => {
    const t = tradeMetrics([
      { date: '2024-01-01', pnl: new Decimal('10.00') },
      { date: '2024-01-15', pnl: new Decimal('-4.00') },
      { date: '2024-03-01', pnl: new Decimal('5.01') },
    ]);
    // (10.00 + 5.01) / 2 = 7.505 rounds half-even to 7.50.
    expect(t).toMatchObject({ trades: 3, avgWin: '7.50', avgLoss: '-4.00', largestWin: '10.00', largestLoss: '-4.00' });
    expect(t.winRate).toBeCloseTo(2 / 3, 12);
    expect(t.profitFactor).toBeCloseTo(15.01 / 4, 12);
  });
});

describe('periods', () => {
  it('start from the last value on or before the period start', () => {
    const values = pts(Array.from({ length: 40 }, (_, i) => 100 + i), '2024-01-01');
    expect(periodWindow(values, 'day').map((p) => p.date)).toEqual(['2024-02-08', '2024-02-09']);
    expect(periodWindow(values, 'week')[0]!.date).toBe('2024-02-02');
    expect(periodWindow(values, 'month')[0]!.date).toBe('2024-01-09');
    expect(periodWindow(values, 'year')).toHaveLength(40);
  });
  it('drawdown on values', () => {
    expect(maxDrawdownOf([100, 120, 60, 130, 65])).toBe(-0.5);
  });
});
