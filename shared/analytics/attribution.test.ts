import { describe, expect, it } from 'vitest';
import { Decimal } from '../money/decimal.js';
import { type AttributionDay, attribute, linkingFactors } from './attribution.js';

/** A day of a two-symbol account: P&L in money, the return from the account's own figures. */
const day = (startValue: string, pnl: Record<string, string>, other = '0'): AttributionDay => {
  const held = Object.values(pnl).reduce((s, p) => s.plus(p), new Decimal(0));
  const totalPnl = held.plus(other);
  return { startValue: new Decimal(startValue), r: totalPnl.dividedBy(startValue).toNumber(), pnl: new Map(Object.entries(pnl).map(([s, p]) => [s, new Decimal(p)])), totalPnl };
};

describe('return attribution by position', () => {
  // V: 10000 → 10300 → 9900 → 10100 (no flows); fees −5 on day 2 fall to cash.
  const days = [day('10000', { AAA: '250.00', BBB: '50.00' }), day('10300', { AAA: '-420.00', BBB: '25.00' }, '-5.00'), day('9900', { AAA: '150.00', BBB: '50.00' })];
  const a = attribute(days);

  it('links the days so the contributions and cash add up to the compounded return', () => {
    expect(a.method).toBe('carino');
    expect(a.accountReturn).toBeCloseTo(10100 / 10000 - 1, 15);
    const sum = a.contributions.reduce((s, c) => s + c.contribution, a.cash.contribution);
    expect(Math.abs(sum - a.accountReturn)).toBeLessThan(1e-15);
    expect(Math.abs(a.residual)).toBeLessThan(1e-15);
  });

  it('sums each line\'s P&L in money, to the cent, and puts what no position earned in cash', () => {
    expect(a.contributions.map((c) => [c.symbol, c.pnl])).toEqual([['BBB', '125.00'], ['AAA', '-20.00']]);
    expect(a.cash.pnl).toBe('-5.00');
    expect(a.cash.contribution).toBeLessThan(0);
  });

  it('scales each day by ln(1 + r)/r over ln(1 + R)/R (Carino)', () => {
    const r = days.map((d) => d.r);
    const R = r.reduce((g, x) => g * (1 + x), 1) - 1;
    const { factors } = linkingFactors(r);
    factors.forEach((k, t) => expect(k).toBeCloseTo((Math.log1p(r[t]!) / r[t]!) / (Math.log1p(R) / R), 14));
  });

  it('falls back to Menchero when a day loses everything, still summing exactly', () => {
    const r = [0.1, -1, 0];
    const { method, factors, total } = linkingFactors(r);
    expect(method).toBe('menchero');
    expect(total).toBe(-1);
    expect(r.reduce((s, x, t) => s + x * factors[t]!, 0)).toBeCloseTo(-1, 15);
  });

  it('attributes nothing to a day without a base and nothing over no days', () => {
    const empty = attribute([{ startValue: new Decimal(0), r: 0, pnl: new Map([['AAA', new Decimal('10.00')]]), totalPnl: new Decimal('10.00') }]);
    expect(empty.contributions).toEqual([{ symbol: 'AAA', contribution: 0, pnl: '10.00' }]);
    expect([empty.accountReturn, empty.cash.contribution, empty.residual]).toEqual([0, 0, 0]);
    expect(attribute([])).toMatchObject({ accountReturn: 0, contributions: [], residual: 0 });
  });

  it('keeps the sum exact over a long, volatile run', () => {
    let v = new Decimal(100000);
    const long: AttributionDay[] = [];
    for (let t = 0; t < 500; t++) {
      const a1 = new Decimal(((Math.sin(t) * 900) | 0) / 1).toFixed(2);
      const b1 = new Decimal(((Math.cos(3 * t) * 700) | 0) / 1).toFixed(2);
      const d = day(v.toFixed(2), { A: a1, B: b1 }, '-1.25');
      long.push(d);
      v = v.plus(d.totalPnl);
    }
    const x = attribute(long);
    expect(x.accountReturn).toBeCloseTo(v.dividedBy(100000).minus(1).toNumber(), 12);
    expect(Math.abs(x.residual)).toBeLessThan(1e-12);
  });
});
