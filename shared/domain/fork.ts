import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import { type Balances, type Position, ZERO, available, positionOf } from './balances.js';
import { type Refusal, refuse } from './refusal.js';
import type { TierName, TierRules } from './tiers.js';
import { type PriceMap, positionValue, valuate } from './valuation.js';

export const FORK_MODES = ['full', 'partial', 'config-only'] as const;
export type ForkMode = (typeof FORK_MODES)[number];

export type Eligibility =
  | { eligible: true; equity: Decimal; forkAmount: Decimal; childTier: TierName }
  | { eligible: false; equity: Decimal; reason: string };

/**
 * Eligible when equity E reaches the fork line T × (1 + margin) + min_capital; the fork moves
 * F = E − min_capital, so the parent keeps its floor and the child starts at ≥ T × (1 + margin), a
 * margin above the next tier's minimum (a child born at its floor would trip "below minimum" on the
 * first dip and be merged back). Com never forks.
 */
export function forkEligibility(rules: TierRules, equity: Decimal): Eligibility {
  if (rules.forkLine === null || rules.nextTier === null) return { eligible: false, equity, reason: `${rules.tier} accounts do not fork` };
  const needed = rules.forkLine;
  if (equity.lt(needed)) return { eligible: false, equity, reason: `equity ${equity.toFixed(2)} is below ${needed.toFixed(2)} (threshold with its margin + minimum)` };
  return { eligible: true, equity, forkAmount: equity.minus(rules.minCapital), childTier: rules.nextTier };
}

/** What moves to the child: cash and whole or partial positions, each at its scale. */
export interface ForkPlan {
  cash: Decimal;
  positions: Position[];
}

/**
 * The split of SPEC §4.4's three modes, computed on the parent's head at the start of the saga.
 * Amounts moved are rounded half-even; the parent keeps each remainder, so parent after + child
 * equals the parent before, to the cent and to the 1e-8 unit.
 */
export function planFork(b: Balances, prices: PriceMap, forkAmount: Decimal, mode: ForkMode, symbols: string[] = []): ForkPlan | Refusal {
  const cash = available(b);
  if (mode === 'config-only') {
    if (cash.lt(forkAmount)) return refuse('insufficient_funds', `config-only forks move cash only; ${cash.toFixed(2)} available, ${forkAmount.toFixed(2)} needed`);
    return { cash: forkAmount, positions: [] };
  }
  if (mode === 'partial') {
    const moved: Position[] = [];
    let value = ZERO;
    for (const symbol of symbols) {
      const p = positionOf(b, symbol);
      if (!p) return refuse('sell_exceeds_position', `the parent holds no ${symbol} to move`);
      moved.push(p);
      value = value.plus(positionValue(p, prices));
    }
    const rest = forkAmount.minus(value);
    if (rest.isNegative()) return refuse('insufficient_funds', `the named positions are worth ${value.toFixed(2)}, more than the fork amount ${forkAmount.toFixed(2)}`);
    if (cash.lt(rest)) return refuse('insufficient_funds', `the rest of the fork in cash (${rest.toFixed(2)}) exceeds available cash ${cash.toFixed(2)}`);
    return { cash: rest, positions: moved };
  }
  // full: the fraction F/E of cash and of every position.
  const equity = valuate(b, prices).equity;
  if (!equity.isPositive() || equity.isZero()) return refuse('insufficient_funds', 'the parent has no equity to fork');
  const fraction = forkAmount.dividedBy(equity);
  const positions: Position[] = [];
  for (const p of b.positions) {
    const quantity = roundTo('quantity', p.quantity.times(fraction));
    if (quantity.isZero()) continue;
    const costBasis = quantity.equals(p.quantity) ? p.costBasis : roundTo('cash', p.costBasis.times(quantity).dividedBy(p.quantity));
    positions.push({ symbol: p.symbol, quantity, costBasis });
  }
  return { cash: roundTo('cash', cash.times(fraction)), positions };
}

/** The child's tier limits, checked before anything moves (SPEC §4.3). */
export function childLimitsProblem(plan: ForkPlan, childRules: TierRules, prices: PriceMap): Refusal | null {
  if (plan.positions.length > childRules.maxPositions) {
    return refuse('max_positions', `the child would hold ${plan.positions.length} positions; ${childRules.tier} allows ${childRules.maxPositions}`);
  }
  const childEquity = valuate({ cash: plan.cash, reserved: ZERO, state: 'ACTIVE', positions: plan.positions, owner: null }, prices).equity;
  for (const p of plan.positions) {
    const value = positionValue(p, prices);
    if (value.gt(childEquity.times(childRules.maxCapitalPerPosition))) {
      return refuse('max_capital_per_position', `${p.symbol} would be ${value.toFixed(2)} of the child's ${childEquity.toFixed(2)}, above ${childRules.maxCapitalPerPosition.times(100).toString()}%`);
    }
  }
  return null;
}

export const planValue = (plan: ForkPlan, prices: PriceMap): Decimal =>
  valuate({ cash: plan.cash, reserved: ZERO, state: 'ACTIVE', positions: plan.positions, owner: null }, prices).equity;


/** What the after-merge cooldown reads of a merge into the parent. */
export interface MergeIntoParent {
  strategy: string;
  phase: string;
  requestedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

/**
 * A `parent` merge (one of the parent's own children taken back) completed, or still under way,
 * within the last `days` days, timed by its completion (else its start, else its request): the parent
 * would otherwise fork the same money out again the next day. Rolled back or rejected merges moved nothing.
 */
export function absorbingMerge<M extends MergeIntoParent>(merges: M[], now: Date, days: number): M | null {
  const since = now.getTime() - days * 86_400_000;
  const at = (m: M) => new Date(m.completedAt ?? m.startedAt ?? m.requestedAt).getTime();
  return merges.find((m) => m.strategy === 'parent' && m.phase !== 'ROLLED_BACK' && m.phase !== 'REJECTED' && at(m) > since) ?? null;
}
