/**
 * The fork decision engine (SPEC §4.2): four factors in [0, 1], each a documented, deterministic
 * function of measured inputs, combined 0.30·market + 0.40·performance + 0.20·system_load +
 * 0.10·timing. Ratios are floats (SPEC §7 allows it); no money passes through here.
 */

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
/** Linear from 1 at `good` to 0 at `bad` (either order), clamped. */
const ramp = (x: number, good: number, bad: number) => clamp01((x - bad) / (good - bad));
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

export function returnsOf(values: number[]): number[] {
  const r: number[] = [];
  for (let i = 1; i < values.length; i++) r.push(values[i]! / values[i - 1]! - 1);
  return r;
}

export function stdev(xs: number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1));
}

export interface Factor {
  score: number;
  detail: Record<string, number | boolean | string | null>;
}

export const VOL_WINDOW = 20;

/**
 * market: the benchmark's realised volatility over the last 20 sessions against its long-run level
 * (all closes given, up to a year). Ratio ≤ 0.75 scores 1, ≥ 2 scores 0, linear between; then scaled by
 * liquidity (the share of the last 20 sessions that have a close) as 0.5 + 0.5·liquidity.
 * Fewer than 21 closes: 0.5, neutral (nothing measured).
 */
export function marketFactor(closes: number[], liquidity: number): Factor {
  if (closes.length < VOL_WINDOW + 1) return { score: 0.5, detail: { closes: closes.length, reason: 'too little benchmark history' } };
  const r = returnsOf(closes);
  const vol20 = stdev(r.slice(-VOL_WINDOW));
  const volLong = stdev(r);
  const ratio = volLong === 0 ? 1 : vol20 / volLong;
  const score = ramp(ratio, 0.75, 2) * (0.5 + 0.5 * clamp01(liquidity));
  return { score: round4(score), detail: { vol20: round4(vol20), volLong: round4(volLong), ratio: round4(ratio), liquidity: round4(clamp01(liquidity)) } };
}

export const PERIODS_PER_YEAR = 252;
const MONTH_SESSIONS = 21;

/**
 * performance: from the account's daily values (oldest first). 0.4·return + 0.3·consistency + 0.3·risk:
 * return = annualised trailing return / 20 % (clamped); consistency = share of positive 21-session
 * months (of positive days when under a month); risk = 1 − ½·(max drawdown / 20 %) − ½·(annual
 * volatility / 40 %), each clamped. Fewer than 20 values: 0.5, neutral (no history to judge).
 */
export function performanceFactor(values: number[]): Factor {
  if (values.length < 20) return { score: 0.5, detail: { values: values.length, reason: 'too little history' } };
  const n = values.length - 1;
  const total = values[n]! / values[0]! - 1;
  const annual = (1 + total) ** (PERIODS_PER_YEAR / n) - 1;
  const months: number[] = [];
  for (let end = values.length - 1; end - MONTH_SESSIONS >= 0; end -= MONTH_SESSIONS) months.push(values[end]! / values[end - MONTH_SESSIONS]! - 1);
  const r = returnsOf(values);
  const consistency = months.length > 0 ? months.filter((m) => m > 0).length / months.length : r.filter((x) => x > 0).length / r.length;
  let peak = values[0]!;
  let maxDrawdown = 0;
  for (const v of values) {
    peak = Math.max(peak, v);
    maxDrawdown = Math.max(maxDrawdown, 1 - v / peak);
  }
  const volAnnual = stdev(r) * Math.sqrt(PERIODS_PER_YEAR);
  const risk = clamp01(1 - 0.5 * clamp01(maxDrawdown / 0.2) - 0.5 * clamp01(volAnnual / 0.4));
  const score = 0.4 * clamp01(annual / 0.2) + 0.3 * consistency + 0.3 * risk;
  return { score: round4(score), detail: { annualReturn: round4(annual), consistency: round4(consistency), maxDrawdown: round4(maxDrawdown), volAnnual: round4(volAnnual) } };
}

/**
 * system_load: 0.7·(1 − forks in flight / limit) + 0.3·(1 − fork queue backlog / backlogMax), each
 * clamped: a saturated executor or a long queue lowers confidence.
 */
export function systemLoadFactor(inFlight: number, limit: number, backlog: number, backlogMax: number): Factor {
  const score = 0.7 * (1 - clamp01(inFlight / limit)) + 0.3 * (1 - clamp01(backlog / backlogMax));
  return { score: round4(score), detail: { inFlight, limit, backlog, backlogMax } };
}

export const SESSION_MINUTES = 390; // 09:30–16:00

/**
 * timing: 0 on a non-business day. Otherwise by time in the session (minutes since the 09:30 open in
 * the market's time zone): 1 from 10:30 to 15:00, 0.6 in the first and last hour, 0.4 outside hours;
 * a date-only clock (simulation) has no time of day and scores 1. Halved after a volatility spike
 * (the benchmark's last daily move beyond 3 × its 20-session volatility).
 */
export function timingFactor(businessDay: boolean, minutesFromOpen: number | null, lastMove: number | null, vol20: number | null): Factor {
  const spike = lastMove !== null && vol20 !== null && vol20 > 0 && Math.abs(lastMove) > 3 * vol20;
  if (!businessDay) return { score: 0, detail: { businessDay, minutesFromOpen, spike } };
  const session =
    minutesFromOpen === null ? 1
    : minutesFromOpen < 0 || minutesFromOpen > SESSION_MINUTES ? 0.4
    : minutesFromOpen < 60 || minutesFromOpen > SESSION_MINUTES - 60 ? 0.6
    : 1;
  return { score: round4(session * (spike ? 0.5 : 1)), detail: { businessDay, minutesFromOpen, spike } };
}

export interface Weights {
  market: number;
  performance: number;
  systemLoad: number;
  timing: number;
}
export type DecisionOutcome = 'execute' | 'scheduled' | 'review';

export function combine(
  factors: { market: Factor; performance: Factor; systemLoad: Factor; timing: Factor },
  weights: Weights,
  thresholds: { executeNow: number; approve: number },
): { confidence: number; outcome: DecisionOutcome } {
  const confidence = round4(
    weights.market * factors.market.score + weights.performance * factors.performance.score + weights.systemLoad * factors.systemLoad.score + weights.timing * factors.timing.score,
  );
  const outcome = confidence >= thresholds.executeNow ? 'execute' : confidence >= thresholds.approve ? 'scheduled' : 'review';
  return { confidence, outcome };
}

/** Where the clock stands in the market's time zone: weekday and minutes since 09:30. */
export function marketTime(now: Date, timeZone: string): { businessDay: boolean; minutesFromOpen: number; date: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit' })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  const businessDay = !['Sat', 'Sun'].includes(parts['weekday']!);
  return { businessDay, minutesFromOpen: Number(parts['hour']) * 60 + Number(parts['minute']) - 570, date: `${parts['year']}-${parts['month']}-${parts['day']}` };
}

/** Delay until the next favourable window (10:30 on the next business day that still has one). */
export function delayToNextWindowMs(now: Date, timeZone: string): number {
  for (let minutes = 0; minutes <= 8 * 24 * 60; minutes += 15) {
    const at = new Date(now.getTime() + minutes * 60_000);
    const t = marketTime(at, timeZone);
    if (t.businessDay && t.minutesFromOpen >= 60 && t.minutesFromOpen <= SESSION_MINUTES - 60) return minutes * 60_000;
  }
  return 24 * 3600_000;
}
