import type { Balances, Position } from '../domain/balances.js';
import type { AccountState } from '../domain/states.js';
import { TOTAL_NAMES, type Totals } from '../domain/totals.js';
import { loadUnits, storeUnits } from './stored-units.js';

/** Balances as MongoDB holds them: int64 units (SPEC §3.1), positions as a flat array of subdocuments. */
export interface StoredPosition {
  symbol: string;
  quantityUnits: bigint;
  costBasisCents: bigint;
}
export interface StoredBalances {
  cashCents: bigint;
  reservedCents: bigint;
  state: AccountState;
  positions: StoredPosition[];
  /** The saga holding the account (FORKING, MERGING); absent or null otherwise. */
  owner?: string | null;
}

export function storeBalances(b: Balances): StoredBalances {
  return {
    cashCents: storeUnits('cash', b.cash),
    reservedCents: storeUnits('cash', b.reserved),
    state: b.state,
    owner: b.owner,
    positions: b.positions.map((p) => ({
      symbol: p.symbol,
      quantityUnits: storeUnits('quantity', p.quantity),
      costBasisCents: storeUnits('cash', p.costBasis),
    })),
  };
}

export function loadBalances(s: StoredBalances): Balances {
  return {
    cash: loadUnits('cash', s.cashCents),
    reserved: loadUnits('cash', s.reservedCents),
    state: s.state,
    owner: s.owner ?? null,
    positions: s.positions.map(
      (p): Position => ({ symbol: p.symbol, quantity: loadUnits('quantity', p.quantityUnits), costBasis: loadUnits('cash', p.costBasisCents) }),
    ),
  };
}

/** Mongoose schema fragment shared by journal entries and the account projection. */
export const storedBalancesDefinition = {
  cashCents: { type: BigInt, required: true },
  reservedCents: { type: BigInt, required: true },
  state: { type: String, required: true },
  owner: { type: String, default: null },
  positions: {
    type: [{ _id: false, symbol: { type: String, required: true }, quantityUnits: { type: BigInt, required: true }, costBasisCents: { type: BigInt, required: true } }],
    default: [],
  },
} as const;

export const storePositions = (ps: Position[]): StoredPosition[] =>
  ps.map((p) => ({ symbol: p.symbol, quantityUnits: storeUnits('quantity', p.quantity), costBasisCents: storeUnits('cash', p.costBasis) }));
export const loadPositions = (ps: StoredPosition[] | undefined): Position[] =>
  (ps ?? []).map((p) => ({ symbol: p.symbol, quantity: loadUnits('quantity', p.quantityUnits), costBasis: loadUnits('cash', p.costBasisCents) }));

/** Running totals as MongoDB holds them: one int64 count of cents per sum, named `<total>Cents`. */
export type StoredTotals = Record<`${keyof Totals}Cents`, bigint>;

export const storeTotals = (t: Totals): StoredTotals =>
  Object.fromEntries(TOTAL_NAMES.map((k) => [`${k}Cents`, storeUnits('cash', t[k])])) as StoredTotals;
export const loadTotals = (s: StoredTotals): Totals =>
  Object.fromEntries(TOTAL_NAMES.map((k) => [k, loadUnits('cash', s[`${k}Cents`] ?? 0n)])) as unknown as Totals;

/** Mongoose schema fragment of the running totals (journal entries and the account projection). */
export const storedTotalsDefinition = Object.fromEntries(TOTAL_NAMES.map((k) => [`${k}Cents`, { type: BigInt, required: true }])) as Record<`${keyof Totals}Cents`, { type: BigIntConstructor; required: true }>;
