import { describe, expect, it } from 'vitest';
import { Decimal } from './decimal.js';
import { INT64_MAX, UnitConversionError, formatUnits, fromUnits, roundTo, toUnits } from './units.js';
import { MoneyParseError, parseUnitsString } from './parse.js';

describe('integer storage units', () => {
  it('converts each kind exactly both ways', () => {
    expect(toUnits('cash', '100000.00')).toBe(10_000_000n);
    expect(toUnits('quantity', '0.00000001')).toBe(1n);
    expect(toUnits('price', '135.5625')).toBe(135_562_500n);
    expect(fromUnits('cash', 10_000_001n).toString()).toBe('100000.01');
    expect(fromUnits('quantity', 123_456_789n).toString()).toBe('1.23456789');
    expect(fromUnits('price', -1n).toString()).toBe('-0.000001');
  });

  it('keeps values far beyond 2^53 cents exact', () => {
    const beyond = 2n ** 53n + 1n; // 9007199254740993 cents: a JS number would round it
    const d = fromUnits('cash', beyond);
    expect(d.toFixed(2)).toBe('90071992547409.93');
    expect(toUnits('cash', d)).toBe(beyond);
    expect(toUnits('cash', fromUnits('cash', INT64_MAX))).toBe(INT64_MAX);
  });

  it('refuses what int64 cannot hold instead of wrapping', () => {
    expect(() => toUnits('cash', '92233720368547758.08')).toThrow(UnitConversionError);
    expect(() => fromUnits('cash', INT64_MAX + 1n)).toThrow(UnitConversionError);
  });

  it('refuses more places than the kind keeps rather than rounding silently', () => {
    expect(() => toUnits('cash', '0.001')).toThrow(/more than 2 decimal places/);
    expect(() => toUnits('quantity', '1.000000001')).toThrow(UnitConversionError);
    expect(() => toUnits('cash', new Decimal(Number.NaN))).toThrow(/not finite/);
  });

  it('rounds half-even at the one place an operation rounds', () => {
    expect(roundTo('cash', '0.125').toFixed(2)).toBe('0.12');
    expect(roundTo('cash', '0.135').toFixed(2)).toBe('0.14');
    expect(roundTo('cash', '-0.125').toFixed(2)).toBe('-0.12');
    expect(roundTo('cash', '2.675').toFixed(2)).toBe('2.68'); // exact decimal, unlike the float 2.675
    expect(roundTo('quantity', '0.000000005').toString()).toBe('0');
    expect(roundTo('quantity', '0.000000015').toString()).toBe('0.00000002');
    expect(formatUnits('cash', '7')).toBe('7.00');
  });
});

describe('parsing external decimal strings', () => {
  it('accepts plain decimals within the kind', () => {
    expect(parseUnitsString('cash', '100000.00').toString()).toBe('100000');
    expect(parseUnitsString('quantity', '0.12345678').toString()).toBe('0.12345678');
  });

  it.each(['1e5', '0x10', ' 1.00', '1.', '.5', '+1', '01.00', 'NaN', 'Infinity', '1,000.00', ''])('refuses %j', (text) => {
    expect(() => parseUnitsString('cash', text)).toThrow(MoneyParseError);
  });

  it('refuses over-precise and unstorable amounts', () => {
    expect(() => parseUnitsString('cash', '1.005')).toThrow(/at most 2 decimal places/);
    expect(() => parseUnitsString('cash', '99999999999999999999.00')).toThrow(UnitConversionError);
  });
});
