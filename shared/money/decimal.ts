import { Decimal as DecimalJs } from 'decimal.js';

/**
 * The one Decimal used for money, quantities and prices. 40 significant digits hold any int64
 * count of units with its scale; half-even is the banking default (SPEC §3.1). Plain notation
 * up to 1e40 so toString() never produces exponent form for stored values.
 */
export const Decimal = DecimalJs.clone({
  precision: 40,
  rounding: DecimalJs.ROUND_HALF_EVEN,
  toExpNeg: -40,
  toExpPos: 40,
});
export type Decimal = InstanceType<typeof Decimal>;
/** Anything a Decimal can be built from (string, number literal in code, Decimal). */
export type DecimalValue = DecimalJs.Value;
