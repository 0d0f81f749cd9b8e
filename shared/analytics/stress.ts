import type { Balances } from '../domain/balances.js';
import { type Breach, type LimitRule, type LossLimit, limitBreaches } from '../domain/loss-limits.js';
import type { TierRules } from '../domain/tiers.js';
import type { IndexState } from '../domain/value-index.js';
import { type PriceMap, positionValue } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';

/** Where a position's shock came from: given for its symbol, its beta times the market's, its own closes over a window, the benchmark's for want of its own, or none. */
export type ShockSource = 'given' | 'beta' | 'window' | 'benchmark' | 'none';
export interface Shock {
  shock: Decimal;
  source: ShockSource;
  beta?: number | null;
}

export interface StressedPosition {
  symbol: string;
  quantity: Decimal;
  value: Decimal;
  stressedValue: Decimal;
  pnl: Decimal;
  shock: Shock;
}

export interface Revalued {
  equity: Decimal;
  stressedEquity: Decimal;
  pnl: Decimal;
  positions: StressedPosition[];
}

const ONE = new Decimal(1);

/**
 * Every position revalued with its price moved by its shock, each rounded to the cent as the
 * fleet values it; cash does not move. A position without a close is valued at its cost, as the
 * fleet values it, and that value is shocked. Exact: 90 shares at 100.00 under −0.25 lose 2250.00.
 */
export function revalue(b: Balances, prices: PriceMap, shockOf: (symbol: string) => Shock): Revalued {
  const positions = b.positions.map((p) => {
    const value = positionValue(p, prices);
    const shock = shockOf(p.symbol);
    const close = prices.get(p.symbol);
    const stressedValue = roundTo('cash', close ? p.quantity.times(close.times(ONE.plus(shock.shock))) : p.costBasis.times(ONE.plus(shock.shock)));
    return { symbol: p.symbol, quantity: p.quantity, value, stressedValue, pnl: stressedValue.minus(value), shock };
  });
  const equity = positions.reduce((s, p) => s.plus(p.value), b.cash);
  const stressedEquity = positions.reduce((s, p) => s.plus(p.stressedValue), b.cash);
  return { equity, stressedEquity, pnl: stressedEquity.minus(equity), positions };
}

/** A symbol's move over a window: its last close on or before the end over its last close on or before the start, minus one. */
export function windowMove(start: Decimal | undefined, end: Decimal | undefined): Decimal | null {
  if (!start || !end || start.isZero()) return null;
  return end.dividedBy(start).minus(1);
}

/** A market shock reaching a symbol through its beta (never below −100 %): 1.2 × −0.30 = −0.36. */
export function betaShock(market: Decimal, beta: number): Decimal {
  return Decimal.max(-1, market.times(new Decimal(beta.toFixed(6))));
}

/** The flow-adjusted return of the stressed value over the current one (the day's move of the index). */
export const stressReturn = (equity: Decimal, stressedEquity: Decimal): number => (equity.isZero() ? 0 : stressedEquity.dividedBy(equity).minus(1).toNumber());

export interface StressConsequences {
  /** Loss limits the stressed value would breach that are not breached now, with what each would do. */
  limitsBreached: Array<{ rule: LimitRule; action: Breach['action']; severity: Breach['severity']; message: string }>;
  minCapital: Decimal;
  /** Above its tier's minimum now, below it under stress. */
  minCapitalBroken: boolean;
  forkLine: Decimal | null;
  /** At or over its fork line now, below it under stress. */
  forkEligibilityLost: boolean;
}

/**
 * What the fleet's own rules would draw from the stressed value, as if the move happened today:
 * the account's value index carried on by the stressed return (so the day's, week's and month's
 * losses and the drawdown from the high-water mark are the limits' own measures), its tier's floor
 * and fork line.
 */
export function stressConsequences(input: {
  now: IndexState & { dailyReturn: number | null };
  limits: Record<LimitRule, LossLimit>;
  rules: TierRules;
  equity: Decimal;
  stressedEquity: Decimal;
}): StressConsequences {
  const { now, rules, equity, stressedEquity } = input;
  const move = stressReturn(equity, stressedEquity);
  const index = now.index * (1 + move);
  const stressed = { ...now, index, peak: Math.max(now.peak, index), dailyReturn: (1 + (now.dailyReturn ?? 0)) * (1 + move) - 1 };
  const before = new Set(limitBreaches(now, input.limits).map((b) => b.rule));
  const limitsBreached = limitBreaches(stressed, input.limits)
    .filter((b) => !before.has(b.rule))
    .map((b) => ({ rule: b.rule, action: b.action, severity: b.severity, message: b.message }));
  const atLine = (e: Decimal) => rules.forkLine !== null && e.gte(rules.forkLine);
  return {
    limitsBreached,
    minCapital: rules.minCapital,
    minCapitalBroken: equity.gte(rules.minCapital) && stressedEquity.lt(rules.minCapital),
    forkLine: rules.forkLine,
    forkEligibilityLost: atLine(equity) && !atLine(stressedEquity),
  };
}
