import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import type { Balances } from '../domain/balances.js';
import { effectiveLimits } from '../domain/loss-limits.js';
import { tierRules } from '../domain/tiers.js';
import { Decimal } from '../money/decimal.js';
import { betaShock, revalue, stressConsequences, windowMove } from './stress.js';

const d = (s: string) => new Decimal(s);
const balances = (cash: string, positions: Array<[string, string, string]>): Balances => ({
  cash: d(cash),
  reserved: d('0'),
  state: 'ACTIVE',
  owner: null,
  positions: positions.map(([symbol, quantity, costBasis]) => ({ symbol, quantity: d(quantity), costBasis: d(costBasis) })),
});
const given = (shocks: Record<string, string>) => (s: string) => (shocks[s] ? { shock: d(shocks[s]), source: 'given' as const } : { shock: d('0'), source: 'none' as const });
const today = { date: '2026-11-18', index: 1, peak: 1, weekBase: 1, monthBase: 1, dailyReturn: 0 };

describe('a stress revaluation', () => {
  it('moves each position by its shock and leaves cash alone, exact to the cent', () => {
    const r = revalue(balances('41000.00', [['ACME', '90', '9000.00'], ['BETA', '3', '30.00']]), new Map([['BETA', d('10.005')]]), given({ ACME: '-0.25', BETA: '-0.1' }));
    // ACME has no close: valued at its cost, as the fleet values it; BETA at 3 × 10.005 = 30.015 → 30.02 (half-even).
    expect(r.positions.map((p) => [p.symbol, p.value.toFixed(2), p.stressedValue.toFixed(2), p.pnl.toFixed(2)])).toEqual([
      ['ACME', '9000.00', '6750.00', '-2250.00'],
      ['BETA', '30.02', '27.01', '-3.01'],
    ]);
    expect([r.equity.toFixed(2), r.stressedEquity.toFixed(2), r.pnl.toFixed(2)]).toEqual(['50030.02', '47777.01', '-2253.01']);
  });

  it('takes a window move from closes and a market shock through beta, never below −100 %', () => {
    expect(windowMove(d('80'), d('20'))!.toFixed()).toBe('-0.75');
    expect(windowMove(undefined, d('20'))).toBeNull();
    expect(betaShock(d('-0.30'), 1.5).toFixed()).toBe('-0.45');
    expect(betaShock(d('-0.60'), 2.5).toFixed()).toBe('-1');
    expect(betaShock(d('-0.30'), -0.5).toFixed()).toBe('0.15');
  });
});

describe('what the fleet\'s rules draw from a stressed value', () => {
  const gen = tierRules(defaults, 'GEN');
  const fleetLimits = effectiveLimits({}, {}, defaults.alerts);
  it('loses the fork line and breaks the floor only when the move crosses them', () => {
    const lost = stressConsequences({ now: today, limits: fleetLimits, rules: gen, equity: d('120000.00'), stressedEquity: d('114999.99') });
    expect([gen.forkLine!.toFixed(2), lost.forkEligibilityLost, lost.minCapitalBroken]).toEqual(['115000.00', true, false]);
    const broken = stressConsequences({ now: today, limits: fleetLimits, rules: gen, equity: d('11000.00'), stressedEquity: d('9999.99') });
    expect([broken.forkEligibilityLost, broken.minCapitalBroken]).toEqual([false, true]);
    // Already below the floor: nothing is newly broken.
    expect(stressConsequences({ now: today, limits: fleetLimits, rules: gen, equity: d('9000.00'), stressedEquity: d('8000.00') }).minCapitalBroken).toBe(false);
  });

  it('names the limits the move breaches that are not breached now, with their action', () => {
    const own = effectiveLimits({}, { drawdownLimit: '0.04' }, defaults.alerts);
    const c = stressConsequences({ now: today, limits: own, rules: gen, equity: d('50000.00'), stressedEquity: d('47750.00') });
    expect(c.limitsBreached.map((b) => [b.rule, b.action])).toEqual([['drawdown', 'safe']]);
    // The same account 6 % down: the fleet's daily-loss alert too.
    const deeper = stressConsequences({ now: today, limits: own, rules: gen, equity: d('50000.00'), stressedEquity: d('47000.00') });
    expect(deeper.limitsBreached.map((b) => b.rule).sort()).toEqual(['daily-loss', 'drawdown']);
    // A drawdown already past its limit is not news.
    const deep = { ...today, index: 0.9 };
    expect(stressConsequences({ now: deep, limits: own, rules: gen, equity: d('50000.00'), stressedEquity: d('49000.00') }).limitsBreached.map((b) => b.rule)).not.toContain('drawdown');
  });
});
