import type { Decimal, DecimalValue } from '../money/decimal.js';
import { type UnitKind, fromUnits, toUnits } from '../money/units.js';

/**
 * The repository boundary of SPEC §3.1: Decimal in code, int64 units in MongoDB. A stored value can
 * arrive as bigint (useBigInt64), a Long, or a small integer a server chose to keep as int32.
 */
export function readStoredUnits(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'object' && value !== null && typeof (value as { toBigInt?: unknown }).toBigInt === 'function') {
    return (value as { toBigInt(): bigint }).toBigInt();
  }
  throw new TypeError(`stored amount is not an integer count of units: ${String(value)}`);
}

export const storeUnits = (kind: UnitKind, value: DecimalValue): bigint => toUnits(kind, value);
export const loadUnits = (kind: UnitKind, stored: unknown): Decimal => fromUnits(kind, readStoredUnits(stored));
