import { Decimal } from './decimal.js';
import { SCALE, type UnitKind, toUnits } from './units.js';

/** Plain decimal notation only: no exponent, no sign other than '-', no spaces, no hex. */
const DECIMAL_RE = /^-?(0|[1-9]\d{0,29})(\.\d{1,30})?$/;

export class MoneyParseError extends Error {
  override readonly name = 'MoneyParseError';
}

/** Parses an external decimal string into a Decimal; refuses anything a person did not mean. */
export function parseDecimal(text: string): Decimal {
  if (!DECIMAL_RE.test(text)) throw new MoneyParseError(`not a plain decimal number: ${JSON.stringify(text.slice(0, 40))}`);
  return new Decimal(text);
}

/** Parses a string of the kind, refusing more places than the kind keeps or a value int64 cannot hold. */
export function parseUnitsString(kind: UnitKind, text: string): Decimal {
  const d = parseDecimal(text);
  if (d.decimalPlaces() > SCALE[kind]) {
    throw new MoneyParseError(`${kind} takes at most ${SCALE[kind]} decimal places: ${text}`);
  }
  toUnits(kind, d);
  return d;
}
