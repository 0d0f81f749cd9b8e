import { Decimal, type DecimalValue } from './decimal.js';

/** Decimal places of each stored kind (SPEC §3.1): cents, 1e-8 of a unit, 1e-6 of a price unit. */
export const SCALE = { cash: 2, quantity: 8, price: 6 } as const;
export type UnitKind = keyof typeof SCALE;

/** MongoDB int64 bounds: a count of units outside them cannot be stored. */
export const INT64_MAX = 9_223_372_036_854_775_807n;
export const INT64_MIN = -9_223_372_036_854_775_808n;

export class UnitConversionError extends Error {
  override readonly name = 'UnitConversionError';
}

/** Rounds half-even to the kind's scale: the one place an operation rounds (SPEC §3.1). */
export function roundTo(kind: UnitKind, value: DecimalValue): Decimal {
  return new Decimal(value).toDecimalPlaces(SCALE[kind], Decimal.ROUND_HALF_EVEN);
}

/**
 * Exact Decimal → integer units. Refuses rather than rounds: a value with more places than the
 * kind keeps must be rounded on purpose first (roundTo), so no conversion silently moves money.
 */
export function toUnits(kind: UnitKind, value: DecimalValue): bigint {
  const d = new Decimal(value);
  if (!d.isFinite()) throw new UnitConversionError(`${kind} value is not finite: ${d.toString()}`);
  const scaled = d.times(new Decimal(10).pow(SCALE[kind]));
  if (!scaled.isInteger()) {
    throw new UnitConversionError(`${kind} value ${d.toString()} has more than ${SCALE[kind]} decimal places`);
  }
  const units = BigInt(scaled.toFixed(0));
  if (units > INT64_MAX || units < INT64_MIN) {
    throw new UnitConversionError(`${kind} value ${d.toString()} is outside the storable int64 range`);
  }
  return units;
}

/** Exact integer units → Decimal; bigint in, so no count is ever squeezed through a JS number. */
export function fromUnits(kind: UnitKind, units: bigint): Decimal {
  if (units > INT64_MAX || units < INT64_MIN) {
    throw new UnitConversionError(`${kind} units ${units.toString()} are outside the int64 range`);
  }
  return new Decimal(units.toString()).dividedBy(new Decimal(10).pow(SCALE[kind]));
}

/** Decimal string for JSON with exactly the kind's places ("100000.00"). */
export function formatUnits(kind: UnitKind, value: DecimalValue): string {
  return new Decimal(value).toFixed(SCALE[kind], Decimal.ROUND_HALF_EVEN);
}
