import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import { type Balances, emptyBalances } from './balances.js';
import { absorbingMerge, childLimitsProblem, forkEligibility, planFork, type ForkPlan } from './fork.js';
import { applyEffects } from './ledger.js';
import { tierRules } from './tiers.js';

const d = (s: string | number) => new Decimal(s);
const GEN = tierRules(defaults, 'GEN');
const REV = tierRules(defaults, 'REV');

describe('fork eligibility: threshold × (1 + margin) + minimum', () => {
  it('forks a Gen at 117,000.00 into a Rev of 107,000.00, the parent keeping 10,000.00', () => {
    const e = forkEligibility(GEN, d('117000.00'));
    expect(e.eligible && [e.forkAmount.toFixed(2), e.childTier]).toEqual(['107000.00', 'REV']);
    // The edge: 100,000 × 1.05 + 10,000; the child starts 5 % above the Rev minimum.
    const edge = forkEligibility(GEN, d('115000.00'));
    expect(edge.eligible && edge.forkAmount.toFixed(2)).toBe('105000.00');
  });

  it('does not fork a Gen a cent under its line, nor a Com at any size', () => {
    expect(forkEligibility(GEN, d('114999.99')).eligible).toBe(false);
    expect(forkEligibility(tierRules(defaults, 'COM'), d('99000000.00')).eligible).toBe(false);
    expect(forkEligibility(REV, d('624999.99')).eligible).toBe(false);
    const rev = forkEligibility(REV, d('625000.00'));
    expect(rev.eligible && [rev.forkAmount.toFixed(2), rev.childTier]).toEqual(['525000.00', 'COM']);
  });

  it('forks at threshold + minimum when the margin is zero', () => {
    const plain = tierRules({ tiers: { ...defaults.tiers, GEN: { ...defaults.tiers.GEN, forkMargin: '0' } } }, 'GEN');
    expect(forkEligibility(plain, d('110000.00')).eligible).toBe(true);
    expect(forkEligibility(plain, d('109999.99')).eligible).toBe(false);
  });
});

function parent(): Balances {
  return {
    ...emptyBalances('FORKING'),
    cash: d('52000.01'),
    positions: [
      { symbol: 'AAA', quantity: d('100.00000001'), costBasis: d('20000.03') },
      { symbol: 'BBB', quantity: d('33.33333333'), costBasis: d('9999.99') },
    ],
  };
}
const prices = new Map([
  ['AAA', d('300.00')],
  ['BBB', d('900.00')],
]);

/** Parent after fork-out + child after fork-in must equal the parent before, field by field. */
function conserved(before: Balances, plan: ForkPlan) {
  const op = { forkId: 'f', counterpartyId: 'x', cash: plan.cash, positions: plan.positions, value: plan.cash };
  const held = applyEffects(before, { kind: 'fork-start', ...op }).after;
  expect([held.state, held.owner, held.reserved.toFixed(2)]).toEqual(['FORKING', 'f', plan.cash.toFixed(2)]);
  const p = applyEffects(held, { kind: 'fork-out', ...op }).after;
  const c = applyEffects(emptyBalances('FORKING', 'f'), { kind: 'fork-in', ...op }).after;
  expect([p.state, p.owner]).toEqual(['ACTIVE', null]);
  expect(p.cash.plus(c.cash).toFixed(2)).toBe(before.cash.toFixed(2));
  expect(p.reserved.toFixed(2)).toBe('0.00');
  for (const q of before.positions) {
    const pp = p.positions.find((x) => x.symbol === q.symbol);
    const cc = c.positions.find((x) => x.symbol === q.symbol);
    expect((pp?.quantity ?? d(0)).plus(cc?.quantity ?? d(0)).toString()).toBe(q.quantity.toString());
    expect((pp?.costBasis ?? d(0)).plus(cc?.costBasis ?? d(0)).toFixed(2)).toBe(q.costBasis.toFixed(2));
  }
  return { p, c };
}

describe('fork plans by inheritance mode', () => {
  it('full: the fraction F/E of cash and of every position, cost split pro rata, remainders kept', () => {
    // E = 52,000.01 + 30,000.00 (AAA 100.00000001 × 300 = 30000.000003) + 30,000.00 (BBB) = 112,000.01;
    // f = F/E = 102,000.01 / 112,000.01; each amount moved is rounded half-even (checked with Python's decimal).
    const plan = planFork(parent(), prices, d('102000.01'), 'full') as ForkPlan;
    expect(plan.cash.toFixed(2)).toBe('47357.15');
    expect(plan.positions.map((p) => [p.symbol, p.quantity.toString(), p.costBasis.toFixed(2)])).toEqual([
      ['AAA', '91.07142938', '18214.31'],
      ['BBB', '30.35714312', '9107.13'],
    ]);
    conserved(parent(), plan);
  });

  it('partial: named positions move whole, the rest of F in cash', () => {
    const plan = planFork(parent(), prices, d('80000.00'), 'partial', ['BBB']) as ForkPlan;
    expect(plan.positions.map((p) => [p.symbol, p.quantity.toString()])).toEqual([['BBB', '33.33333333']]);
    expect(plan.cash.toFixed(2)).toBe('50000.00'); // 80,000 − 30,000.00 of BBB
    conserved(parent(), plan);
    // 102,000 − 30,000 = 72,000 in cash, but only 52,000.01 is available.
    expect((planFork(parent(), prices, d('102000.00'), 'partial', ['BBB']) as { code: string }).code).toBe('insufficient_funds');
    // The named positions alone are worth more than F.
    expect((planFork(parent(), prices, d('50000.00'), 'partial', ['BBB', 'AAA']) as { code: string }).code).toBe('insufficient_funds');
    expect((planFork(parent(), prices, d('10.00'), 'partial', ['ZZZ']) as { code: string }).code).toBe('sell_exceeds_position');
  });

  it('config-only: cash only, refused when cash is short of F', () => {
    const plan = planFork(parent(), prices, d('52000.01'), 'config-only') as ForkPlan;
    expect([plan.cash.toFixed(2), plan.positions.length]).toEqual(['52000.01', 0]);
    conserved(parent(), plan);
    expect((planFork(parent(), prices, d('52000.02'), 'config-only') as { code: string }).code).toBe('insufficient_funds');
  });

  it("checks the child's tier limits before anything moves", () => {
    const heavy: ForkPlan = { cash: d('10.00'), positions: [{ symbol: 'AAA', quantity: d('100'), costBasis: d('1.00') }] };
    expect(childLimitsProblem(heavy, REV, prices)?.code).toBe('max_capital_per_position');
    const many: ForkPlan = { cash: d('1.00'), positions: Array.from({ length: 21 }, (_, i) => ({ symbol: `S${i}`, quantity: d('1'), costBasis: d('1.00') })) };
    expect(childLimitsProblem(many, REV, new Map())?.code).toBe('max_positions');
    expect(childLimitsProblem({ cash: d('100000.00'), positions: [] }, REV, prices)).toBeNull();
  });
});

describe('the after-merge cooldown', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  const daysAgo = (n: number) => new Date(now.getTime() - n * 86_400_000);
  const merge = (over: Partial<{ strategy: string; phase: string; requestedAt: Date; startedAt: Date | null; completedAt: Date | null }>) =>
    ({ strategy: 'parent', phase: 'COMPLETED', requestedAt: daysAgo(40), startedAt: daysAgo(40), completedAt: daysAgo(29.99), ...over });
  it('holds a parent that took a child back within the days, and lets it fork after them', () => {
    expect(absorbingMerge([merge({})], now, 30)).not.toBeNull();
    expect(absorbingMerge([merge({ completedAt: daysAgo(30.01) })], now, 30)).toBeNull();
  });
  it('counts a merge under way from its start, and never one that moved nothing or was not a child coming home', () => {
    expect(absorbingMerge([merge({ phase: 'MOVED', completedAt: null, startedAt: daysAgo(1) })], now, 30)).not.toBeNull();
    expect(absorbingMerge([merge({ phase: 'ROLLED_BACK' }), merge({ phase: 'REJECTED' }), merge({ strategy: 'partial' }), merge({ strategy: 'sibling' })], now, 30)).toBeNull();
  });
});
