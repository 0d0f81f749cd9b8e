import { Decimal } from '../../shared/money/decimal.js';
import { roundTo } from '../../shared/money/units.js';
import type { Rng } from './random.js';

/**
 * The simulated clients: a spread of starting capital, a simple seeded trading habit, monthly
 * contributions and quarterly dividends. Pure: the same seed and state give the same orders.
 */

/**
 * Starting capital of each Gen account: log-normal around 45,000 (15,000 to 95,000), and every fourth
 * account between 104,000 and 114,000, under the 115,000 fork line (threshold × 1.05 + minimum), so
 * they reach it one by one over a run (contributions and the market) and the fleet grows as it goes;
 * the first of them starts on the line (115,000 to 118,000), so even a short run forks.
 */
export function startingCapitals(rng: Rng, n: number): Decimal[] {
  return Array.from({ length: n }, (_, i) => {
    const x = i === 3 ? rng.between(115_000, 118_000) : i % 4 === 3 ? rng.between(104_000, 114_000) : Math.min(95_000, Math.max(15_000, 45_000 * Math.exp(0.6 * rng.normal())));
    return new Decimal(x.toFixed(0)).toDecimalPlaces(2);
  });
}

export interface Holding {
  accountId: string;
  available: Decimal;
  equity: Decimal;
  positions: Array<{ symbol: string; quantity: Decimal }>;
  maxPositions: number;
  maxShare: Decimal;
}

export type Order =
  | { kind: 'buy' | 'sell'; accountId: string; symbol: string; quantity: Decimal; price: Decimal }
  | { kind: 'deposit'; accountId: string; amount: Decimal }
  | { kind: 'dividend'; accountId: string; symbol: string; amount: Decimal };

/**
 * One account's trades for a session: on about a third of the days it acts. With cash to spare it buys
 * 5–12 % of equity of a random symbol (kept under its position limit); otherwise, or one time in
 * three, it sells half or all of a random holding.
 */
export function tradesFor(rng: Rng, h: Holding, closes: ReadonlyMap<string, Decimal>, symbols: readonly string[]): Order[] {
  if (rng.next() > 0.35 || !h.equity.isPositive()) return [];
  const wantsToSell = h.positions.length > 0 && (h.available.lt(h.equity.times(0.1)) || rng.next() < 0.33);
  if (wantsToSell) {
    const p = rng.pick(h.positions);
    const price = closes.get(p.symbol);
    if (!price) return [];
    const quantity = rng.next() < 0.5 ? p.quantity : p.quantity.dividedBy(2).toDecimalPlaces(8, Decimal.ROUND_DOWN);
    return quantity.isZero() ? [] : [{ kind: 'sell', accountId: h.accountId, symbol: p.symbol, quantity, price }];
  }
  const symbol = rng.pick(symbols);
  const price = closes.get(symbol);
  const held = h.positions.find((p) => p.symbol === symbol);
  if (!price || (!held && h.positions.length >= h.maxPositions)) return [];
  const heldValue = held ? held.quantity.times(price) : new Decimal(0);
  const room = h.equity.times(h.maxShare).times(0.9).minus(heldValue);
  const amount = Decimal.min(h.equity.times(rng.between(0.05, 0.12)), room, h.available.times(0.95));
  const quantity = amount.dividedBy(price).toDecimalPlaces(8, Decimal.ROUND_DOWN);
  return quantity.isPositive() && !quantity.isZero() ? [{ kind: 'buy', accountId: h.accountId, symbol, quantity, price }] : [];
}

/** First session of a month: each client adds 3 % of what it started with. */
export const contribution = (accountId: string, initial: Decimal): Order => ({ kind: 'deposit', accountId, amount: roundTo('cash', initial.times('0.03')) });

/** First session of a quarter's last month: a 0.4 % dividend on each holding's value. */
export function dividendsFor(h: Holding, closes: ReadonlyMap<string, Decimal>): Order[] {
  return h.positions.flatMap((p) => {
    const price = closes.get(p.symbol);
    const amount = price ? roundTo('cash', p.quantity.times(price).times('0.004')) : new Decimal(0);
    return amount.gte('0.01') ? [{ kind: 'dividend' as const, accountId: h.accountId, symbol: p.symbol, amount }] : [];
  });
}

export const isFirstSessionOfMonth = (sessions: readonly string[], i: number) => i > 0 && sessions[i]!.slice(0, 7) !== sessions[i - 1]!.slice(0, 7);
export const isDividendSession = (sessions: readonly string[], i: number) => isFirstSessionOfMonth(sessions, i) && ['03', '06', '09', '12'].includes(sessions[i]!.slice(5, 7));
