import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';

/**
 * An account's value H trading days ahead, by a seeded stationary bootstrap (Politis & Romano 1994)
 * of its flow-adjusted daily returns: each simulated day continues the block of history it is in
 * (the next day, circularly) or, with probability 1/L, jumps to a uniform random day. Blocks keep
 * the few days of volatility clustering a shuffle of single days would break; random block lengths
 * keep the resampled series stationary, and wrapping gives every day of history the same weight.
 * L = n^(1/3) is the rate-optimal order of the mean block length for distribution estimates
 * (≈ 6 days on a year of history, 2.7 on 20 days), with no tuning per account. docs/risk.md.
 */
export const FORECAST_METHOD = 'stationary-bootstrap';
/** Fewer returns than this say too little about an account's risk to resample them. */
export const MIN_RETURNS = 20;
/**
 * The returns a forecast of an account fits on: its last trading year, the window the calibration
 * test checks. Older days describe a market the account may no longer be in.
 */
export const FORECAST_LOOKBACK = 252;

/** A forecast refused: too little history, or nothing to grow from. The API answers it 422. */
export class ForecastInputError extends Error {
  override readonly name = 'ForecastInputError';
  constructor(
    readonly code: 'insufficient_history' | 'no_value',
    message: string,
  ) {
    super(message);
  }
}

export interface ForecastInput {
  /** Flow-adjusted daily returns, oldest first (a snapshot's `dailyReturn`). */
  returns: readonly number[];
  startValue: Decimal;
  /** Trading days ahead. */
  horizon: number;
  paths: number;
  seed: number;
  /** The day of the start value: the expected fork date counts business days from it. */
  startDate: string;
  forkLine: Decimal | null;
  minCapital: Decimal | null;
  /** The drawdown allowed, as a fraction of the high-water mark (0.2 is 20 %). */
  drawdownLimit: number | null;
  /** The value index now and its high-water mark, so a drawdown already under way counts (default: at its peak). */
  index?: { current: number; peak: number };
  /** Also the quantiles of every day up to the horizon (a fan chart), at the cost of keeping every path's days. */
  fan?: boolean;
}

export interface Forecast {
  /** The value at the horizon, to the cent. */
  quantiles: { p05: string; p25: string; p50: string; p75: string; p95: string };
  /** Shares of paths that touch each line on some day up to the horizon (today included); null without the line. */
  probabilities: { reachForkLine: number | null; breachMinCapital: number | null; breachDrawdown: number | null };
  /** The business day by which half of all paths have reached the fork line; null if fewer than half do. */
  expectedForkDate: string | null;
  method: { method: typeof FORECAST_METHOD; blockLength: number; paths: number; horizon: number; seed: number; sampleSize: number };
  /** With `fan`: each day's quantiles, day 1 to the horizon, on its business date. */
  fan?: Array<{ day: number; date: string } & Forecast['quantiles']>;
}

/** The mean block length for n returns (see the file's comment). */
export const meanBlockLength = (n: number) => Math.cbrt(n);

/**
 * A xoroshiro128+ generator from any safe integer: the seed goes through splitmix32 first, since the
 * generator's own seeding puts neighbouring seeds in neighbouring states.
 */
export function seededRng(seed: number) {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  let a = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) | 0, 0x9e3779b1);
  const next = () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return t ^ (t >>> 15);
  };
  return xoroshiro128plusFromState([next(), next(), next(), next()]);
}

/** The date `days` business days (Mon–Fri) after `date`; 0 is the date itself. Holidays are not known here. */
export function addBusinessDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  for (let left = days; left > 0; ) {
    d.setUTCDate(d.getUTCDate() + 1);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) left--;
  }
  return d.toISOString().slice(0, 10);
}

/** Linear interpolation between order statistics (as stats.percentile), on values sorted once. */
function quantileOfSorted(s: Float64Array, q: number): number {
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function forecast(input: ForecastInput): Forecast {
  const { horizon, paths, seed } = input;
  const n = input.returns.length;
  if (n < MIN_RETURNS) throw new ForecastInputError('insufficient_history', `a forecast needs at least ${MIN_RETURNS} daily returns, the history has ${n}`);
  if (!input.startValue.isFinite() || input.startValue.lte(0)) throw new ForecastInputError('no_value', `a forecast needs a positive start value, got ${input.startValue.toString()}`);
  if (!Number.isInteger(horizon) || horizon < 1) throw new RangeError(`horizon must be a positive integer, got ${horizon}`);
  if (!Number.isInteger(paths) || paths < 1) throw new RangeError(`paths must be a positive integer, got ${paths}`);
  const r = Float64Array.from(input.returns);
  for (const x of r) if (!Number.isFinite(x) || x < -1) throw new RangeError(`not a daily return: ${x}`);

  // Paths run on growth factors (value / start value) and the lines become ratios to the start:
  // money stays Decimal, and only the returns, which are floats anyway, are multiplied as numbers.
  const ratio = (line: Decimal | null) => (line === null ? null : line.dividedBy(input.startValue).toNumber());
  const forkRatio = ratio(input.forkLine);
  const minRatio = ratio(input.minCapital);
  const limit = input.drawdownLimit;
  const index0 = input.index?.current ?? 1;
  const peak0 = Math.max(input.index?.peak ?? index0, index0);

  const blockLength = meanBlockLength(n);
  const restart = 1 / blockLength;
  const rng = seededRng(seed);
  const finals = new Float64Array(paths);
  const days = input.fan ? Array.from({ length: horizon }, () => new Float64Array(paths)) : null;
  // Paths first reaching the fork line on day d (0 = already there today).
  const forkHitsOn = new Int32Array(horizon + 1);
  let forkHits = 0;
  let minBreaches = 0;
  let drawdownBreaches = 0;

  for (let k = 0; k < paths; k++) {
    let g = 1;
    let peak = peak0;
    let forked = forkRatio !== null && g >= forkRatio;
    let belowMin = minRatio !== null && g <= minRatio;
    let pastLimit = limit !== null && index0 <= peak * (1 - limit);
    if (forked) forkHitsOn[0]!++;
    let pos = uniformInt(rng, 0, n - 1);
    for (let t = 1; t <= horizon; t++) {
      if (t > 1) pos = uniformFloat64(rng) < restart ? uniformInt(rng, 0, n - 1) : pos + 1 === n ? 0 : pos + 1;
      g *= 1 + r[pos]!;
      if (days) days[t - 1]![k] = g;
      if (!forked && forkRatio !== null && g >= forkRatio) {
        forked = true;
        forkHitsOn[t]!++;
      }
      if (!belowMin && minRatio !== null && g <= minRatio) belowMin = true;
      if (limit !== null) {
        const idx = index0 * g;
        if (idx > peak) peak = idx;
        else if (!pastLimit && idx <= peak * (1 - limit)) pastLimit = true;
      }
    }
    finals[k] = g;
    if (forked) forkHits++;
    if (belowMin) minBreaches++;
    if (pastLimit) drawdownBreaches++;
  }

  const quantilesOf = (sorted: Float64Array): Forecast['quantiles'] => {
    const value = (q: number) => formatUnits('cash', input.startValue.times(new Decimal(quantileOfSorted(sorted, q))));
    return { p05: value(0.05), p25: value(0.25), p50: value(0.5), p75: value(0.75), p95: value(0.95) };
  };
  // The unconditional median of the first-hit day (paths that never reach it count as later than
  // any day): the first day by which half of all paths have forked. It exists exactly when at least
  // half reach the line; the median over the hitting paths only would name an early date for a
  // line that most paths miss.
  let expectedForkDate: string | null = null;
  for (let d = 0, hits = 0; d <= horizon && expectedForkDate === null; d++) {
    hits += forkHitsOn[d]!;
    if (2 * hits >= paths) expectedForkDate = addBusinessDays(input.startDate, d);
  }
  return {
    quantiles: quantilesOf(finals.sort()),
    probabilities: {
      reachForkLine: forkRatio === null ? null : forkHits / paths,
      breachMinCapital: minRatio === null ? null : minBreaches / paths,
      breachDrawdown: limit === null ? null : drawdownBreaches / paths,
    },
    expectedForkDate,
    method: { method: FORECAST_METHOD, blockLength: Math.round(blockLength * 100) / 100, paths, horizon, seed, sampleSize: n },
    ...(days ? { fan: days.map((a, i) => ({ day: i + 1, date: addBusinessDays(input.startDate, i + 1), ...quantilesOf(a.sort()) })) } : {}),
  };
}
