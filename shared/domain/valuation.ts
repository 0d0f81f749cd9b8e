import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import type { Balances, Position } from './balances.js';

/** Last closes by symbol. A symbol without a close is valued at its average cost (never invented). */
export type PriceMap = ReadonlyMap<string, Decimal>;

export function positionValue(p: Position, prices: PriceMap): Decimal {
  const close = prices.get(p.symbol);
  return close ? roundTo('cash', p.quantity.times(close)) : p.costBasis;
}

/** SPEC §3.5: value = cash + Σ quantity × last close, each position rounded to the cent. */
export function valuate(b: Balances, prices: PriceMap): { positionsValue: Decimal; equity: Decimal } {
  const positionsValue = b.positions.reduce((sum, p) => sum.plus(positionValue(p, prices)), new Decimal(0));
  return { positionsValue, equity: b.cash.plus(positionsValue) };
}
