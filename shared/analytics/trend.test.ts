import { describe, expect, it } from 'vitest';
import { neweyWestLag, trendOf } from './trend.js';

/** A seeded generator (LCG + Box–Muller): the same walks on every run. */
function normals(seed: number) {
  let s = seed;
  const uniform = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s + 0.5) / 2147483648;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** A value index from daily log changes: exp of their running sum, starting at 1. */
const walk = (n: number, step: () => number) => {
  const v = [1];
  for (let i = 1; i < n; i++) v.push(v[i - 1]! * Math.exp(step()));
  return v;
};

describe('trend of a value index', () => {
  it('finds the exact slope of exp(a + b t), with a perfect fit', () => {
    const b = 0.0015;
    const t = trendOf(Array.from({ length: 40 }, (_, i) => Math.exp(0.3 + b * i)))!;
    expect(t.slopePerDay).toBeCloseTo(b, 14);
    expect(t.annualisedGrowth).toBeCloseTo(Math.exp(252 * b) - 1, 12);
    expect(t.rSquared).toBeCloseTo(1, 12);
    expect(t.pValue).toBeLessThan(1e-9);
    expect(t.direction).toBe('up');
    expect(t.points).toBe(40);
  });

  it('is down on a steady decline and flat on a constant series', () => {
    expect(trendOf(Array.from({ length: 10 }, (_, i) => 100 * 0.99 ** i))!.direction).toBe('down');
    const flat = trendOf([5, 5, 5, 5, 5])!;
    expect(flat).toMatchObject({ slopePerDay: 0, tStat: null, pValue: null, rSquared: null, direction: 'flat' });
  });

  it('has no trend under 3 points or with a non-positive value', () => {
    expect(trendOf([])).toBeNull();
    expect(trendOf([1, 1.1])).toBeNull();
    expect(trendOf([1, 0, 1.1])).toBeNull();
  });

  it('calls a driftless random walk flat about 95 % of the time, where the OLS slope error would not', () => {
    const z = normals(42);
    const runs = 400;
    let flat = 0;
    let olsFlat = 0;
    for (let k = 0; k < runs; k++) {
      const v = walk(126, () => 0.01 * z());
      if (trendOf(v)!.direction === 'flat') flat++;
      if (Math.abs(olsT(v.map(Math.log))) < 1.98) olsFlat++;
    }
    expect(flat / runs).toBeGreaterThan(0.9);
    // The plain OLS t-stat on the levels: a spurious regression, a "trend" in most of them.
    expect(olsFlat / runs).toBeLessThan(0.3);
  });

  it('sees a strong drift through the noise', () => {
    const z = normals(7);
    let up = 0;
    for (let k = 0; k < 100; k++) if (trendOf(walk(252, () => 0.003 + 0.01 * z()))!.direction === 'up') up++;
    expect(up).toBeGreaterThan(90);
  });

  it('uses the Newey–West rule-of-thumb lag', () => {
    expect([10, 63, 100, 252].map(neweyWestLag)).toEqual([2, 3, 4, 4]);
    expect(trendOf(walk(63, () => 0.001))!.lag).toBe(3);
  });
});

/** The textbook OLS t-stat of the slope (iid residuals), for comparison only. */
function olsT(y: number[]): number {
  const n = y.length;
  const tm = (n - 1) / 2;
  const ym = y.reduce((s, v) => s + v, 0) / n;
  const sxx = y.reduce((s, _, t) => s + (t - tm) ** 2, 0);
  const b = y.reduce((s, v, t) => s + (t - tm) * (v - ym), 0) / sxx;
  const a = ym - b * tm;
  const s2 = y.reduce((s, v, t) => s + (v - a - b * t) ** 2, 0) / (n - 2);
  return b / Math.sqrt(s2 / sxx);
}
