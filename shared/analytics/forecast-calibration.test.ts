import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { Decimal } from '../money/decimal.js';
import { FORECAST_LOOKBACK, forecast } from './forecast.js';

/**
 * Does the p05–p95 band hold the realised value about 90 % of the time? Out of sample on the repo's
 * market histories: fit on a trading year (252 days, as for an account), compare with the close 21
 * days later, then move on 21 days, so no two windows share an outcome. If the forecast is
 * calibrated, each window is inside with probability 0.9 and the count inside is binomial for the
 * number of windows; the test asserts the share lies in that binomial interval and prints it
 * (docs/risk.md quotes the figures). Misses cluster in volatility regimes (a fit on a calm year
 * before 2008), so the intervals, which assume independent windows, are if anything too narrow:
 * the test is stricter than its nominal level.
 */
const MARKET = join(import.meta.dirname, '..', '..', 'data', 'market');
const LOOKBACK = FORECAST_LOOKBACK;
const HORIZON = 21;
const PATHS = 1000;
const NOMINAL = 0.9;
/** The pooled share is held to the binomial 99 % interval; each of the five series to 99.9 %, so the five together still fail by chance under 0.5 % of the time. */
const POOLED_ALPHA = 0.01;
const PER_SERIES_ALPHA = 0.001;

type Series = { name: string; closes: Decimal[] };
const csv = (file: string) => parse(readFileSync(join(MARKET, file), 'utf8'), { columns: true, skip_empty_lines: true, bom: true }) as Array<Record<string, string>>;
const usDate = (d: string) => {
  const [m, day, y] = d.split('/');
  return `${y}-${m!.padStart(2, '0')}-${day!.padStart(2, '0')}`;
};
const byDate = (rows: Array<{ date: string; close: string }>) => [...rows].sort((a, b) => (a.date < b.date ? -1 : 1)).map((r) => new Decimal(r.close));

function series(): Series[] {
  const spy = csv('SPY_D.csv').map((r) => ({ date: r['date']!, close: r['close']! }));
  const gspc = csv('sp500.csv').map((r) => ({ date: r['Date']!, close: r['Close']! }));
  const multi = csv('test_data.csv');
  return [
    { name: 'SPY', closes: byDate(spy) },
    { name: '^GSPC', closes: byDate(gspc) },
    ...['AAPL', 'MSFT', 'C'].map((s) => ({ name: s, closes: byDate(multi.map((r) => ({ date: usDate(r['Date']!), close: r[s]! }))) })),
  ];
}

/** [lo, hi] as shares of n: a Binomial(n, p) count falls below lo, or above hi, with probability ≤ α/2 each. */
function binomialBand(n: number, p: number, alpha: number): [number, number] {
  // In logs: (1 − p)^n underflows for a few hundred windows.
  const log = [n * Math.log(1 - p)];
  for (let k = 1; k <= n; k++) log.push(log[k - 1]! + Math.log(((n - k + 1) * p) / (k * (1 - p))));
  const pmf = log.map(Math.exp);
  let lo = 0;
  for (let tail = 0; tail + pmf[lo]! <= alpha / 2; ) tail += pmf[lo++]!;
  let hi = n;
  for (let tail = 0; tail + pmf[hi]! <= alpha / 2; ) tail += pmf[hi--]!;
  return [lo / n, hi / n];
}

function coverage(s: Series): { windows: number; inside: number } {
  let windows = 0;
  let inside = 0;
  for (let start = 0; start + LOOKBACK + HORIZON < s.closes.length; start += HORIZON) {
    const fit = s.closes.slice(start, start + LOOKBACK + 1);
    const returns = fit.slice(1).map((v, i) => v.dividedBy(fit[i]!).minus(1).toNumber());
    const f = forecast({ returns, startValue: fit.at(-1)!, horizon: HORIZON, paths: PATHS, seed: start, startDate: '2000-01-03', forkLine: null, minCapital: null, drawdownLimit: null });
    const realised = s.closes[start + LOOKBACK + HORIZON]!;
    windows++;
    if (realised.gte(f.quantiles.p05) && realised.lte(f.quantiles.p95)) inside++;
  }
  return { windows, inside };
}

describe('forecast calibration on market histories', () => {
  it('holds the realised value 21 days later inside p05–p95 about 90 % of the time', () => {
    const t0 = performance.now();
    const results = series().map((s) => ({ name: s.name, ...coverage(s), alpha: PER_SERIES_ALPHA }));
    const pooled = { name: 'pooled', ...results.reduce((a, x) => ({ windows: a.windows + x.windows, inside: a.inside + x.inside }), { windows: 0, inside: 0 }), alpha: POOLED_ALPHA };
    const checks = [...results, pooled].map((x) => ({ ...x, share: x.inside / x.windows, band: binomialBand(x.windows, NOMINAL, x.alpha) }));
    for (const x of checks) {
      const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
      console.log(`forecast coverage ${x.name}: ${x.inside}/${x.windows} = ${pct(x.share)} inside p05–p95 (${(1 - x.alpha) * 100} % band ${pct(x.band[0])}–${pct(x.band[1])})`);
    }
    console.log(`forecast calibration: ${pooled.windows} windows × ${PATHS} paths in ${(performance.now() - t0).toFixed(0)} ms`);
    for (const x of checks) {
      expect(x.share, x.name).toBeGreaterThanOrEqual(x.band[0]);
      expect(x.share, x.name).toBeLessThanOrEqual(x.band[1]);
    }
  });
});
