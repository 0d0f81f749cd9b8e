import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { describe, expect, it } from 'vitest';
import { Decimal } from '../money/decimal.js';
import { type ForecastInput, ForecastInputError, MIN_RETURNS, addBusinessDays, forecast, meanBlockLength, seededRng } from './forecast.js';

/** Normal returns from a seeded stream (Box–Muller), for tests that need a realistic history. */
function normalReturns(n: number, mean: number, sd: number, seed: number): number[] {
  const rng = seededRng(seed);
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(1 - uniformFloat64(rng))) * Math.cos(2 * Math.PI * uniformFloat64(rng)));
}

const base = (over: Partial<ForecastInput> = {}): ForecastInput => ({
  returns: normalReturns(250, 0.0004, 0.01, 7),
  startValue: new Decimal('100000.00'),
  horizon: 21,
  paths: 2000,
  seed: 1,
  startDate: '2026-11-13',
  forkLine: null,
  minCapital: null,
  drawdownLimit: null,
  ...over,
});
const constant = (r: number, n = 30) => Array.from({ length: n }, () => r);

describe('forecast', () => {
  it('draws a fan whose last day is the horizon\'s quantiles, without changing them', () => {
    const plain = forecast(base());
    const withFan = forecast(base({ fan: true }));
    const { fan, ...rest } = withFan;
    expect(rest).toEqual(plain);
    expect(fan!.map((d) => d.day)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(fan!.at(-1)).toMatchObject({ ...plain.quantiles, date: addBusinessDays('2026-11-13', 21) });
    // The band widens with the days ahead.
    const width = (d: NonNullable<typeof fan>[number]) => new Decimal(d.p95).minus(d.p05);
    expect(width(fan![20]!).gt(width(fan![0]!))).toBe(true);
  });

  it('answers the same forecast for the same seed, and another for another seed', () => {
    const a = forecast(base({ forkLine: new Decimal('105000'), minCapital: new Decimal('95000'), drawdownLimit: 0.05 }));
    expect(forecast(base({ forkLine: new Decimal('105000'), minCapital: new Decimal('95000'), drawdownLimit: 0.05 }))).toEqual(a);
    expect(forecast(base({ seed: 2, forkLine: new Decimal('105000') })).quantiles).not.toEqual(a.quantiles);
  });

  it('gives ordered quantiles to the cent, and method metadata', () => {
    const f = forecast(base());
    const q = [f.quantiles.p05, f.quantiles.p25, f.quantiles.p50, f.quantiles.p75, f.quantiles.p95];
    for (const x of q) expect(x).toMatch(/^\d+\.\d{2}$/);
    for (let i = 1; i < q.length; i++) expect(new Decimal(q[i]!).gte(q[i - 1]!)).toBe(true);
    expect(f.method).toEqual({ method: 'stationary-bootstrap', blockLength: 6.3, paths: 2000, horizon: 21, seed: 1, sampleSize: 250 });
    expect(f.probabilities).toEqual({ reachForkLine: null, breachMinCapital: null, breachDrawdown: null });
    expect(f.expectedForkDate).toBeNull();
  });

  it('matches the spread of the returns it resamples', () => {
    // Nearly independent returns of 1 % a day: 21 days spread the log value by about 1 % × √21.
    const f = forecast(base({ returns: normalReturns(1000, 0, 0.01, 3), paths: 20000 }));
    const logQ = (s: string) => Math.log(Number(s) / 100000);
    const sigma = (logQ(f.quantiles.p95) - logQ(f.quantiles.p05)) / (2 * 1.6449);
    expect(sigma).toBeGreaterThan(0.01 * Math.sqrt(21) * 0.9);
    expect(sigma).toBeLessThan(0.01 * Math.sqrt(21) * 1.1);
    expect(Math.abs(logQ(f.quantiles.p50))).toBeLessThan(0.01);
  });

  it('compounds a constant return exactly, and dates the fork line in business days', () => {
    // 1 % a day from 100 000: 105 000 is crossed on day 5 (1.01^5 = 1.0510); the start is a Friday.
    const f = forecast(base({ returns: constant(0.01), forkLine: new Decimal('105000'), minCapital: new Decimal('90000'), drawdownLimit: 0.1 }));
    const end = new Decimal('100000').times(new Decimal('1.01').pow(21)).toFixed(2);
    expect(f.quantiles).toEqual({ p05: end, p25: end, p50: end, p75: end, p95: end });
    expect(f.probabilities).toEqual({ reachForkLine: 1, breachMinCapital: 0, breachDrawdown: 0 });
    expect(f.expectedForkDate).toBe('2026-11-20');
  });

  it('counts a line touched on any day, even if the path leaves it again', () => {
    // Up 2 % and down 2 % in turn: most paths touch 101 500 on an up day, and most end below it.
    const f = forecast(base({ returns: Array.from({ length: 40 }, (_, i) => (i % 2 ? -0.02 : 0.02)), forkLine: new Decimal('101500') }));
    expect(f.probabilities.reachForkLine).toBeGreaterThan(0.6);
    expect(new Decimal(f.quantiles.p50).lt('101500')).toBe(true);
  });

  it('measures the drawdown from the high-water mark, including one already under way', () => {
    // −1 % a day: 21 days take the index 19 % below where it started.
    const falling = base({ returns: constant(-0.01), drawdownLimit: 0.2 });
    expect(forecast(falling).probabilities.breachDrawdown).toBe(0);
    expect(forecast({ ...falling, drawdownLimit: 0.15 }).probabilities.breachDrawdown).toBe(1);
    // Already 10 % below the peak: the same fall breaches 20 %.
    expect(forecast({ ...falling, index: { current: 0.9, peak: 1 } }).probabilities.breachDrawdown).toBe(1);
    // Beyond the limit today: breached on day 0, whatever the returns.
    expect(forecast(base({ returns: constant(0.01), drawdownLimit: 0.2, index: { current: 0.75, peak: 1 } })).probabilities.breachDrawdown).toBe(1);
  });

  it('counts the current value as day 0', () => {
    const f = forecast(base({ returns: constant(0), forkLine: new Decimal('100000'), minCapital: new Decimal('100000.00') }));
    expect(f.probabilities).toMatchObject({ reachForkLine: 1, breachMinCapital: 1 });
    expect(f.expectedForkDate).toBe('2026-11-13');
  });

  it('names no date when fewer than half of the paths reach the fork line', () => {
    const f = forecast(base({ forkLine: new Decimal('110000') }));
    expect(f.probabilities.reachForkLine).toBeGreaterThan(0);
    expect(f.probabilities.reachForkLine).toBeLessThan(0.5);
    expect(f.expectedForkDate).toBeNull();
    // The day by which half of all paths have forked, so it moves later as the line moves up.
    const near = forecast(base({ forkLine: new Decimal('100500') }));
    const far = forecast(base({ forkLine: new Decimal('102000') }));
    expect(near.expectedForkDate! < far.expectedForkDate!).toBe(true);
  });

  it('refuses too short a history and a value that cannot grow', () => {
    expect(() => forecast(base({ returns: constant(0.01, MIN_RETURNS - 1) }))).toThrow(ForecastInputError);
    try {
      forecast(base({ returns: [] }));
    } catch (err) {
      expect(err).toMatchObject({ code: 'insufficient_history' });
    }
    expect(() => forecast(base({ startValue: new Decimal(0) }))).toThrow(expect.objectContaining({ code: 'no_value' }));
    expect(() => forecast(base({ returns: [...constant(0.01), Number.NaN] }))).toThrow(RangeError);
    expect(() => forecast(base({ horizon: 0 }))).toThrow(RangeError);
  });

  it('runs 2000 paths of 21 days in well under 100 ms', () => {
    const input = base({ forkLine: new Decimal('105000'), minCapital: new Decimal('95000'), drawdownLimit: 0.05 });
    forecast(input);
    const t0 = performance.now();
    forecast({ ...input, seed: 9 });
    expect(performance.now() - t0).toBeLessThan(50);
  });
});

describe('forecast helpers', () => {
  it('steps business days Monday to Friday', () => {
    expect(addBusinessDays('2026-11-13', 0)).toBe('2026-11-13');
    expect(addBusinessDays('2026-11-13', 1)).toBe('2026-11-16');
    expect(addBusinessDays('2026-11-14', 1)).toBe('2026-11-16');
    expect(addBusinessDays('2026-11-13', 21)).toBe('2026-12-14');
  });

  it('uses a mean block length of n^(1/3)', () => {
    expect(meanBlockLength(250)).toBeCloseTo(6.3, 1);
    expect(meanBlockLength(8)).toBe(2);
  });

  it('starts neighbouring seeds far apart', () => {
    const first = (seed: number) => uniformFloat64(seededRng(seed));
    expect(new Set([0, 1, 2, 3].map(first)).size).toBe(4);
    expect(Math.abs(first(1) - first(2))).toBeGreaterThan(1e-6);
  });
});
