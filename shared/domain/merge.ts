import { LIMIT_RULES, actionStrength } from './loss-limits.js';
import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import type { AccountConfig } from '../contracts/account-config.js';
import { type Balances, type Position, ZERO, available, positionOf } from './balances.js';
import { type Refusal, refuse } from './refusal.js';
import type { TierRules } from './tiers.js';
import { type PriceMap, positionValue, valuate } from './valuation.js';

export const MERGE_STRATEGIES = ['parent', 'sibling', 'new', 'partial'] as const;
export type MergeStrategy = (typeof MERGE_STRATEGIES)[number];

/**
 * Nets a moved lot into the position held (SPEC §5.3). Quantities carry their sign (a short is
 * negative, its cost basis the negative of the proceeds). Same sign: quantities add and cost bases
 * combine. Opposite signs: the smaller side closes against the larger; each closed part takes its
 * basis pro rata (half-even to the cent, all of it when the side closes completely), and what the
 * closed bases do not cancel is realised profit or loss. The survivor keeps the rest of its basis.
 */
export function netLot(held: Position | undefined, moved: Position): { position: Position | null; realisedPnl: Decimal } {
  if (!held || held.quantity.isZero()) return { position: moved.quantity.isZero() ? null : moved, realisedPnl: ZERO };
  if (held.quantity.isNegative() === moved.quantity.isNegative()) {
    return { position: { symbol: held.symbol, quantity: held.quantity.plus(moved.quantity), costBasis: held.costBasis.plus(moved.costBasis) }, realisedPnl: ZERO };
  }
  const closed = Decimal.min(held.quantity.abs(), moved.quantity.abs());
  const basisOf = (p: Position) => (closed.equals(p.quantity.abs()) ? p.costBasis : roundTo('cash', p.costBasis.times(closed).dividedBy(p.quantity.abs())));
  const heldClosed = basisOf(held);
  const movedClosed = basisOf(moved);
  // Closing a long (basis +cost) against a short (basis −proceeds): P&L = proceeds − cost.
  const realisedPnl = heldClosed.plus(movedClosed).negated();
  const quantity = held.quantity.plus(moved.quantity);
  if (quantity.isZero()) return { position: null, realisedPnl };
  const survivor = held.quantity.abs().gt(moved.quantity.abs()) ? held : moved;
  const basis = survivor.costBasis.minus(survivor === held ? heldClosed : movedClosed);
  return { position: { symbol: held.symbol, quantity, costBasis: basis }, realisedPnl };
}

/** What a merge moves out of its source: cash and positions, each at its scale. */
export interface MergePlan {
  cash: Decimal;
  positions: Position[];
  /** True when the source gives everything and closes; false for a partial merge. */
  closesSource: boolean;
}

/**
 * The move of one source (SPEC §5.2/§5.3), planned on the source's head once it is MERGING.
 * A full merge moves all cash and every position. A partial one moves named positions whole, or an
 * amount of cash; the source keeps the rest and stays open.
 */
export function planMerge(source: Balances, partial: { amount?: Decimal | undefined; symbols?: string[] | undefined } | null): MergePlan | Refusal {
  if (!partial) return { cash: available(source), positions: source.positions, closesSource: true };
  if (partial.symbols?.length) {
    const positions: Position[] = [];
    for (const symbol of partial.symbols) {
      const p = positionOf(source, symbol);
      if (!p) return refuse('sell_exceeds_position', `the source holds no ${symbol} to move`);
      positions.push(p);
    }
    return { cash: ZERO, positions, closesSource: false };
  }
  const amount = partial.amount ?? ZERO;
  if (!amount.isPositive() || amount.isZero()) return refuse('insufficient_funds', 'a partial merge moves a positive amount or named positions');
  if (available(source).lt(amount)) return refuse('insufficient_funds', `the source has ${available(source).toFixed(2)} available, less than ${amount.toFixed(2)}`);
  return { cash: amount, positions: [], closesSource: false };
}

/** The target as it would be after the move: cash added, every lot netted in (netting moves no cash). */
export function mergedBalances(target: Balances, plan: Pick<MergePlan, 'cash' | 'positions'>): { after: Balances; realisedPnl: Decimal } {
  let positions = target.positions;
  let realisedPnl = ZERO;
  for (const lot of plan.positions) {
    const { position, realisedPnl: pnl } = netLot(positions.find((p) => p.symbol === lot.symbol), lot);
    realisedPnl = realisedPnl.plus(pnl);
    positions = positions.filter((p) => p.symbol !== lot.symbol);
    if (position) positions = [...positions, position].sort((a, c) => (a.symbol < c.symbol ? -1 : a.symbol > c.symbol ? 1 : 0));
  }
  return { after: { ...target, cash: target.cash.plus(plan.cash), positions }, realisedPnl };
}

/**
 * The target's tier limits after the move, checked before anything moves (SPEC §5.3): the count of
 * positions and each position's share of equity, valued at the last closes.
 */
export function targetLimitsProblem(target: Balances, plan: Pick<MergePlan, 'cash' | 'positions'>, rules: TierRules, prices: PriceMap): Refusal | null {
  const { after } = mergedBalances(target, plan);
  if (after.positions.length > rules.maxPositions) {
    return refuse('max_positions', `the target would hold ${after.positions.length} positions; its ${rules.tier} limit is ${rules.maxPositions}`);
  }
  const equity = valuate(after, prices).equity;
  for (const p of after.positions) {
    const value = positionValue(p, prices);
    if (value.abs().gt(equity.times(rules.maxCapitalPerPosition))) {
      return refuse('max_capital_per_position', `${p.symbol} would be ${value.toFixed(2)} of the target's ${equity.toFixed(2)}, above ${rules.maxCapitalPerPosition.times(100).toString()}%`);
    }
  }
  return null;
}

/**
 * Configuration reconciled by rule (SPEC §5.3): of a risk limit set on either side, the stricter wins
 * (fewer positions, a smaller share per position, a tighter drawdown limit, a larger cash buffer);
 * everything else is the target's.
 */
export function reconcileConfig(target: AccountConfig, source: AccountConfig): AccountConfig {
  const minOf = (a: string | undefined, b: string | undefined) => (a === undefined ? b : b === undefined ? a : new Decimal(a).lte(b) ? a : b);
  const maxOf = (a: string | undefined, b: string | undefined) => (a === undefined ? b : b === undefined ? a : new Decimal(a).gte(b) ? a : b);
  const out: AccountConfig = { ...target };
  const maxPositions = target.maxPositions === undefined ? source.maxPositions : source.maxPositions === undefined ? target.maxPositions : Math.min(target.maxPositions, source.maxPositions);
  if (maxPositions !== undefined) out.maxPositions = maxPositions;
  const cap = minOf(target.maxCapitalPerPosition, source.maxCapitalPerPosition);
  if (cap !== undefined) out.maxCapitalPerPosition = cap;
  const drawdown = minOf(target.drawdownLimit, source.drawdownLimit);
  if (drawdown !== undefined) out.drawdownLimit = drawdown;
  const buffer = maxOf(target.cashBuffer, source.cashBuffer);
  if (buffer !== undefined) out.cashBuffer = buffer;
  const limits = stricterLimits(target.limits, source.limits);
  if (limits) out.limits = limits;
  return out;
}

/** Per rule, the lower allowed loss and the stronger action of the two sides' loss limits. */
function stricterLimits(a: AccountConfig['limits'], b: AccountConfig['limits']): AccountConfig['limits'] {
  if (!a || !b) return a ?? b;
  const out: NonNullable<AccountConfig['limits']> = {};
  for (const rule of LIMIT_RULES) {
    const [x, y] = [a[rule], b[rule]];
    if (!x || !y) {
      if (x ?? y) out[rule] = (x ?? y)!;
      continue;
    }
    out[rule] = { max: new Decimal(x.max).lte(y.max) ? x.max : y.max, action: actionStrength(x.action) >= actionStrength(y.action) ? x.action : y.action };
  }
  return out;
}

/** Value moved by a plan at the given closes (flows of the day for the snapshotter, benefits for the engine). */
export const mergePlanValue = (plan: Pick<MergePlan, 'cash' | 'positions'>, prices: PriceMap): Decimal =>
  plan.positions.reduce((s, p) => s.plus(positionValue(p, prices)), plan.cash);
