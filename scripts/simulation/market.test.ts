import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { businessDays, csvMarket, syntheticMarket } from './market.js';
import { Rng } from './random.js';
import { startingCapitals, tradesFor } from './strategy.js';
import { Decimal } from '../../shared/money/decimal.js';

describe('the simulated market', () => {
  it('is the same for the same seed and different for another', () => {
    const a = syntheticMarket(7, 30, 'SPY');
    const b = syntheticMarket(7, 30, 'SPY');
    const c = syntheticMarket(8, 30, 'SPY');
    expect(a.closes.get('SPY')!.map(String)).toEqual(b.closes.get('SPY')!.map(String));
    expect(a.closes.get('SPY')!.map(String)).not.toEqual(c.closes.get('SPY')!.map(String));
    expect(a.sessions).toHaveLength(a.warmup + 30);
    for (const series of a.closes.values()) for (const close of series) expect(close.isPositive()).toBe(true);
  });

  it('runs on business days only', () => {
    expect(businessDays('2025-01-03', 3)).toEqual(['2025-01-03', '2025-01-06', '2025-01-07']);
  });

  it('reads real closes from CSV, the first file being the benchmark', () => {
    const m = csvMarket([join(import.meta.dirname, '..', '..', 'data', 'market', 'SPY_D.csv')], 20);
    expect([m.benchmark, m.sessions.length - m.warmup, m.closes.get('SPY')!.length]).toEqual(['SPY', 20, m.sessions.length]);
  });
});

describe('the simulated clients', () => {
  it('start with a spread of capital, one on the fork line and every fourth just under it', () => {
    const caps = startingCapitals(new Rng(1), 10);
    expect(caps.filter((c, i) => i % 4 === 3 && i > 3).every((c) => c.gte(104_000) && c.lte(114_000))).toBe(true);
    expect(caps[3]!.gte(115_000) && caps[3]!.lte(118_000)).toBe(true);
    expect(caps.filter((c, i) => i % 4 !== 3).every((c) => c.gte(15_000) && c.lte(95_000))).toBe(true);
  });

  it('buy within the position share they are given', () => {
    const closes = new Map([['ALFA', new Decimal('100')]]);
    for (let seed = 0; seed < 50; seed++) {
      const orders = tradesFor(new Rng(seed), { accountId: 'a', available: new Decimal('50000'), equity: new Decimal('100000'), positions: [{ symbol: 'ALFA', quantity: new Decimal('100') }], maxPositions: 10, maxShare: new Decimal('0.15') }, closes, ['ALFA']);
      for (const o of orders) if (o.kind === 'buy') expect(o.quantity.plus(100).times(100).lte(15_000)).toBe(true);
    }
  });
});
