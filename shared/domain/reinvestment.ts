import { PERIODS_PER_YEAR } from '../analytics/metrics.js';
import { std } from '../analytics/stats.js';
import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import { type Balances, ZERO, available, positionOf } from './balances.js';
import type { ReinvestmentBuy } from './ledger.js';
import type { TierRules } from './tiers.js';
import { type PriceMap, positionValue, valuate } from './valuation.js';

export const REINVEST_TRIGGERS = ['profit-threshold', 'dividend', 'position-closed', 'schedule'] as const;
export type ReinvestTrigger = (typeof REINVEST_TRIGGERS)[number];
export type ReinvestStrategy = 'proportional' | 'strategic' | 'dynamic';

export interface ReinvestSettings {
  strategy: ReinvestStrategy;
  /** Share of equity kept in cash. */
  cashBuffer: Decimal;
  targetAllocation: Array<{ symbol: string; weight: Decimal }>;
  universe: string[];
}

/** Trailing measures of a symbol for the dynamic strategy. */
export interface Trend {
  momentum: number;
  volatility: number;
}

/**
 * Weights of the investable cash by symbol (they sum to 1, or the map is empty):
 * - proportional: the current positions' weights by value;
 * - strategic: the shortfall of each symbol against the account's target allocation of the equity;
 * - dynamic: momentum / volatility (positive momentum only) over held, allocated and universe symbols,
 *   a deterministic tilt toward steady risers; proportional when nothing rises.
 */
export function reinvestWeights(b: Balances, prices: PriceMap, s: ReinvestSettings, trends: ReadonlyMap<string, Trend>): Map<string, Decimal> {
  const normalise = (raw: Map<string, Decimal>) => {
    const total = [...raw.values()].reduce((t, x) => t.plus(x), ZERO);
    const out = new Map<string, Decimal>();
    if (total.isZero()) return out;
    for (const [k, v] of raw) if (v.isPositive() && !v.isZero()) out.set(k, v.dividedBy(total));
    return out;
  };
  const proportional = () => normalise(new Map(b.positions.filter((p) => prices.has(p.symbol)).map((p) => [p.symbol, positionValue(p, prices)])));
  if (s.strategy === 'proportional') return proportional();
  if (s.strategy === 'strategic') {
    const equity = valuate(b, prices).equity;
    const gaps = new Map<string, Decimal>();
    for (const t of s.targetAllocation) {
      if (!prices.has(t.symbol)) continue;
      const held = positionOf(b, t.symbol);
      const gap = equity.times(t.weight).minus(held ? positionValue(held, prices) : ZERO);
      if (gap.isPositive()) gaps.set(t.symbol, gap);
    }
    return normalise(gaps);
  }
  const candidates = new Set([...b.positions.map((p) => p.symbol), ...s.targetAllocation.map((t) => t.symbol), ...s.universe]);
  const scores = new Map<string, Decimal>();
  for (const symbol of [...candidates].sort()) {
    const t = trends.get(symbol);
    if (!t || !prices.has(symbol) || t.momentum <= 0) continue;
    scores.set(symbol, new Decimal(t.momentum / Math.max(t.volatility, 0.01)).toDecimalPlaces(8));
  }
  return scores.size > 0 ? normalise(scores) : proportional();
}

/**
 * Buys at the last close (SPEC §6): the investable cash (available − buffer × equity) split by the
 * strategy's weights, each buy capped so the position stays within max_capital_per_position of the
 * equity (a buy at the close leaves the equity unchanged), new symbols only while max_positions allows.
 * Quantities round down to 1e-8 and a cent is kept back per capped buy, so the trade's one rounding
 * (gross half-even to the cent) cannot lift it over a limit.
 */
export function planReinvestment(b: Balances, prices: PriceMap, rules: TierRules, s: ReinvestSettings, trends: ReadonlyMap<string, Trend>): ReinvestmentBuy[] {
  const equity = valuate(b, prices).equity;
  const investable = available(b).minus(roundTo('cash', equity.times(s.cashBuffer)));
  if (!investable.isPositive() || investable.isZero()) return [];
  const weights = reinvestWeights(b, prices, s, trends);
  const buys: ReinvestmentBuy[] = [];
  let positions = b.positions.length;
  let spent = ZERO;
  const cent = new Decimal('0.01');
  for (const [symbol, weight] of [...weights].sort((x, y) => y[1].comparedTo(x[1]) || (x[0] < y[0] ? -1 : 1))) {
    const price = prices.get(symbol)!;
    const held = positionOf(b, symbol);
    if (!held && positions >= rules.maxPositions) continue;
    const room = roundTo('cash', equity.times(rules.maxCapitalPerPosition)).minus(held ? positionValue(held, prices) : ZERO).minus(cent);
    const share = roundTo('cash', investable.times(weight));
    // Strategic buys stop at the target weight; the others at the position limit.
    const target = s.strategy === 'strategic' ? s.targetAllocation.find((t) => t.symbol === symbol) : undefined;
    const gap = target ? roundTo('cash', equity.times(target.weight)).minus(held ? positionValue(held, prices) : ZERO) : room;
    const amount = Decimal.min(share, room, gap, investable.minus(spent).minus(cent));
    if (!amount.isPositive() || amount.isZero()) continue;
    const quantity = amount.dividedBy(price).toDecimalPlaces(8, Decimal.ROUND_DOWN);
    if (quantity.isZero()) continue;
    buys.push({ symbol, quantity, price });
    spent = spent.plus(roundTo('cash', quantity.times(price)));
    if (!held) positions++;
  }
  return buys;
}

/** Trend of a symbol from its closes (oldest first): return over the window and annualised volatility. */
export function trendOf(closes: number[]): Trend | null {
  if (closes.length < 3) return null;
  const r = closes.slice(1).map((c, i) => c / closes[i]! - 1);
  return { momentum: closes[closes.length - 1]! / closes[0]! - 1, volatility: std(r) * Math.sqrt(PERIODS_PER_YEAR) };
}
