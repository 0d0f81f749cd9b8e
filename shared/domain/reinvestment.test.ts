import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import { type Balances, emptyBalances } from './balances.js';
import { applyEffects, checkPolicy } from './ledger.js';
import { planReinvestment, type ReinvestSettings, trendOf } from './reinvestment.js';
import { tierRules } from './tiers.js';
import { positionValue, valuate } from './valuation.js';

const d = (s: string) => new Decimal(s);
const GEN = tierRules(defaults, 'GEN');
const lot = (symbol: string, quantity: string, costBasis: string) => ({ symbol, quantity: d(quantity), costBasis: d(costBasis) });
const prices = new Map([['AAA', d('100')], ['BBB', d('50')], ['CCC', d('20')], ['DDD', d('10')]]);
const settings = (over: Partial<ReinvestSettings> = {}): ReinvestSettings => ({ strategy: 'proportional', cashBuffer: d('0.05'), targetAllocation: [], universe: [], ...over });

function account(): Balances {
  // Equity 100,000: 83,000 cash, AAA 10,000 (10 %), BBB 5,000 (5 %), CCC 2,000 (2 %).
  return { ...emptyBalances('ACTIVE'), cash: d('83000.00'), positions: [lot('AAA', '100', '9000.00'), lot('BBB', '100', '5000.00'), lot('CCC', '100', '2000.00')] };
}

/** Every limit of SPEC §6 on the result, and the ledger's own policy on the entry. */
function expectWithinLimits(b: Balances, buys: ReturnType<typeof planReinvestment>, buffer: Decimal) {
  const op = { kind: 'reinvestment' as const, trigger: 'test', buys };
  expect(checkPolicy(b, op, { rules: GEN, prices, sagaId: null })).toBeNull();
  const after = applyEffects(b, op).after;
  const equity = valuate(after, prices).equity;
  expect(equity.toFixed(2)).toBe(valuate(b, prices).equity.toFixed(2));
  expect(after.cash.gte(equity.times(buffer).toDecimalPlaces(2))).toBe(true);
  expect(after.positions.length).toBeLessThanOrEqual(GEN.maxPositions);
  for (const p of after.positions) expect(positionValue(p, prices).lte(equity.times(GEN.maxCapitalPerPosition))).toBe(true);
  return after;
}

describe('reinvestment (SPEC §6)', () => {
  it('proportional: follows the current weights, each capped at 20 % of equity, keeping the 5 % buffer', () => {
    const b = account();
    const buys = planReinvestment(b, prices, GEN, settings(), new Map());
    const after = expectWithinLimits(b, buys, d('0.05'));
    // Investable 78,000 split 10:5:2; AAA and BBB hit the 20 % cap (20,000 − a cent), CCC takes its share.
    expect(buys.map((x) => x.symbol)).toEqual(['AAA', 'BBB', 'CCC']);
    expect(after.positions.find((p) => p.symbol === 'AAA')!.quantity.times(100).toFixed(2)).toBe('19999.99');
  });

  it('strategic: buys toward the target allocation, never beyond it or into unpriced symbols', () => {
    const b = account();
    const s = settings({ strategy: 'strategic', targetAllocation: [{ symbol: 'DDD', weight: d('0.15') }, { symbol: 'AAA', weight: d('0.05') }, { symbol: 'ZZZ', weight: d('0.5') }] });
    const buys = planReinvestment(b, prices, GEN, s, new Map());
    expectWithinLimits(b, buys, d('0.05'));
    // AAA already holds 10 % (> 5 %): only DDD has a shortfall (15,000).
    expect(buys.map((x) => [x.symbol, x.quantity.times(x.price).toFixed(2)])).toEqual([['DDD', '15000.00']]);
  });

  it('dynamic: tilts to rising symbols by momentum over volatility, and respects max_positions', () => {
    const b = { ...account(), positions: [...account().positions, ...Array.from({ length: 7 }, (_, i) => lot(`H${i}`, '1', '1.00'))] };
    const trends = new Map([['DDD', { momentum: 0.2, volatility: 0.1 }], ['AAA', { momentum: 0.1, volatility: 0.2 }], ['BBB', { momentum: -0.1, volatility: 0.1 }]]);
    const buys = planReinvestment(b, prices, GEN, settings({ strategy: 'dynamic', universe: ['DDD'] }), trends);
    // Ten positions held: the new DDD is skipped, AAA (rising) is topped up, falling BBB is not bought.
    expect(buys.map((x) => x.symbol)).toEqual(['AAA']);
    expectWithinLimits(b, buys, d('0.05'));
  });

  it('buys nothing inside the buffer', () => {
    const b = { ...account(), cash: d('4000.00') }; // equity 21,000; the buffer 4,200 exceeds the cash
    expect(planReinvestment(b, prices, GEN, settings({ cashBuffer: d('0.2') }), new Map())).toEqual([]);
  });

  it('measures trend as the window return and annualised volatility', () => {
    const t = trendOf([100, 101, 102, 103]);
    expect(t?.momentum).toBeCloseTo(0.03, 10);
    expect(trendOf([1, 2])).toBeNull();
  });
});
