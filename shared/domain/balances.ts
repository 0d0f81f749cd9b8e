import { Decimal } from '../money/decimal.js';
import type { AccountState } from './states.js';

export interface Position {
  symbol: string;
  /** Positive: long. Cash-settled shorts are not opened by trades (see docs/DECISIONS.md). */
  quantity: Decimal;
  /** Total cost of the quantity held, in cash (2 places). */
  costBasis: Decimal;
}

/** An account as the head of its journal: what every entry carries "after" it. */
export interface Balances {
  cash: Decimal;
  reserved: Decimal;
  state: AccountState;
  positions: Position[];
  /** The saga (fork or merge id) the account belongs to while FORKING or MERGING; null otherwise. */
  owner: string | null;
}

export const ZERO = new Decimal(0);

export function emptyBalances(state: AccountState, owner: string | null = null): Balances {
  return { cash: ZERO, reserved: ZERO, state, positions: [], owner };
}

/** Cash that can be spent: held amounts count against it from the moment they are held. */
export function available(b: Balances): Decimal {
  return b.cash.minus(b.reserved);
}

export function positionOf(b: Balances, symbol: string): Position | undefined {
  return b.positions.find((p) => p.symbol === symbol);
}

/** Positions kept sorted by symbol, so equal balances compare and hash equal. */
export function withPosition(b: Balances, symbol: string, next: Position | null): Position[] {
  const rest = b.positions.filter((p) => p.symbol !== symbol);
  if (next) rest.push(next);
  return rest.sort((a, c) => (a.symbol < c.symbol ? -1 : a.symbol > c.symbol ? 1 : 0));
}

export function balancesEqual(a: Balances, b: Balances): boolean {
  return (
    a.cash.equals(b.cash) &&
    a.reserved.equals(b.reserved) &&
    a.state === b.state &&
    a.owner === b.owner &&
    a.positions.length === b.positions.length &&
    a.positions.every((p, i) => {
      const q = b.positions[i]!;
      return p.symbol === q.symbol && p.quantity.equals(q.quantity) && p.costBasis.equals(q.costBasis);
    })
  );
}
