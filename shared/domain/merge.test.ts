import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import { type Balances, emptyBalances } from './balances.js';
import { applyEffects } from './ledger.js';
import { netLot, planMerge, reconcileConfig, targetLimitsProblem } from './merge.js';
import { tierRules } from './tiers.js';

const d = (s: string) => new Decimal(s);
const lot = (symbol: string, quantity: string, costBasis: string) => ({ symbol, quantity: d(quantity), costBasis: d(costBasis) });
const GEN = tierRules(defaults, 'GEN');

describe('netting lots (SPEC §5.3)', () => {
  it('adds same-sign quantities and combines their cost basis', () => {
    const r = netLot(lot('AAA', '10.5', '1050.00'), lot('AAA', '0.00000001', '0.01'));
    expect([r.position?.quantity.toString(), r.position?.costBasis.toFixed(2), r.realisedPnl.toFixed(2)]).toEqual(['10.50000001', '1050.01', '0.00']);
  });

  it('nets a long against a smaller short: the short closes, its profit or loss is realised', () => {
    // Long 10 bought for 1000.00; short 4 sold for 480.00 (basis −480.00). Closing 4 long costs 400.00.
    const r = netLot(lot('AAA', '10', '1000.00'), lot('AAA', '-4', '-480.00'));
    expect([r.position?.quantity.toString(), r.position?.costBasis.toFixed(2), r.realisedPnl.toFixed(2)]).toEqual(['6', '600.00', '80.00']);
  });

  it('nets a short against a larger long the other way round, and to nothing when equal', () => {
    const r = netLot(lot('AAA', '-10', '-1000.00'), lot('AAA', '3', '330.00'));
    expect([r.position?.quantity.toString(), r.position?.costBasis.toFixed(2), r.realisedPnl.toFixed(2)]).toEqual(['-7', '-700.00', '-30.00']);
    const flat = netLot(lot('AAA', '5', '500.00'), lot('AAA', '-5', '-450.00'));
    expect([flat.position, flat.realisedPnl.toFixed(2)]).toEqual([null, '-50.00']);
  });
});

describe('merge plans', () => {
  const source: Balances = { ...emptyBalances('MERGING', 'm'), cash: d('1234.56'), positions: [lot('AAA', '1.5', '150.00'), lot('BBB', '2', '300.00')] };

  it('a full merge moves all cash and positions; the source is left empty', () => {
    const plan = planMerge(source, null);
    if ('code' in plan) throw new Error(plan.message);
    const held = applyEffects(source, { kind: 'hold', amount: plan.cash, transferId: 'm' }).after;
    const out = applyEffects(held, { kind: 'merge-out', mergeId: 'm', counterpartyId: 't', cash: plan.cash, positions: plan.positions, value: plan.cash }).after;
    expect([out.cash.toFixed(2), out.reserved.toFixed(2), out.positions.length, plan.closesSource]).toEqual(['0.00', '0.00', 0, true]);
  });

  it('a partial merge moves named positions or an amount, and refuses what is not there', () => {
    const bySymbol = planMerge(source, { symbols: ['BBB'] });
    expect('code' in bySymbol ? bySymbol.code : [bySymbol.positions.map((p) => p.symbol), bySymbol.cash.toFixed(2), bySymbol.closesSource]).toEqual([['BBB'], '0.00', false]);
    expect((planMerge(source, { symbols: ['ZZZ'] }) as { code: string }).code).toBe('sell_exceeds_position');
    expect((planMerge(source, { amount: d('1234.57') }) as { code: string }).code).toBe('insufficient_funds');
    const byAmount = planMerge(source, { amount: d('1234.56') });
    expect('code' in byAmount ? byAmount.code : byAmount.cash.toFixed(2)).toBe('1234.56');
  });

  it('checks the target limits on the netted result: position count and share of equity', () => {
    const prices = new Map([['AAA', d('100')], ['BBB', d('150')]]);
    const target: Balances = { ...emptyBalances('ACTIVE'), cash: d('100000.00'), positions: [] };
    expect(targetLimitsProblem(target, { cash: d('0'), positions: [lot('AAA', '200', '20000.00')] }, GEN, prices)).toBeNull();
    // 201 × 100 = 20,100 of 120,100 is 16.7 %; 300 × 100 = 30,000 of 130,000 is 23 % > 20 %.
    expect(targetLimitsProblem(target, { cash: d('0'), positions: [lot('AAA', '300', '30000.00')] }, GEN, prices)?.code).toBe('max_capital_per_position');
    const full: Balances = { ...target, positions: Array.from({ length: 10 }, (_, i) => lot(`S${i}`, '1', '1.00')) };
    expect(targetLimitsProblem(full, { cash: d('0'), positions: [lot('AAA', '1', '100.00')] }, GEN, prices)?.code).toBe('max_positions');
    expect(targetLimitsProblem(full, { cash: d('0'), positions: [lot('S3', '1', '1.00')] }, GEN, prices)).toBeNull();
  });
});

describe('configuration reconciliation', () => {
  it('keeps the stricter risk limit of either side and the target for everything else', () => {
    const merged = reconcileConfig(
      { maxPositions: 8, maxCapitalPerPosition: '0.15', targetAllocation: [{ symbol: 'AAA', weight: '1' }] },
      { maxPositions: 5, maxCapitalPerPosition: '0.18', drawdownLimit: '0.10', cashBuffer: '0.10', targetAllocation: [{ symbol: 'BBB', weight: '1' }] },
    );
    expect(merged).toEqual({ maxPositions: 5, maxCapitalPerPosition: '0.15', drawdownLimit: '0.10', cashBuffer: '0.10', targetAllocation: [{ symbol: 'AAA', weight: '1' }] });
  });
});

describe('loss limits through a merge', () => {
  it('keep, per rule, the lower allowed loss and the stronger action of both sides', () => {
    const out = reconcileConfig({ limits: { drawdown: { max: '0.20', action: 'suspend' }, 'daily-loss': { max: '0.05', action: 'alert' } } }, { limits: { drawdown: { max: '0.05', action: 'safe' } } });
    expect(out.limits).toEqual({ drawdown: { max: '0.05', action: 'suspend' }, 'daily-loss': { max: '0.05', action: 'alert' } });
    expect(reconcileConfig({}, { limits: { drawdown: { max: '0.05', action: 'suspend' } } }).limits).toEqual({ drawdown: { max: '0.05', action: 'suspend' } });
  });
});
