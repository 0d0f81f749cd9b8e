import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import { breachTarget, effectiveLimits, limitBreaches, strongestBreach } from './loss-limits.js';
import { isoWeek, nextIndex } from './value-index.js';

/** The newest point of a series of daily returns (no flows), built the way the snapshotter builds it. */
const series = (returns: Array<[string, number | null]>, start = 100) => {
  let equity = new Decimal(start);
  let point: ReturnType<typeof nextIndex> | null = null;
  for (const [date, r] of returns) {
    if (point) equity = equity.times(1 + (r ?? 0));
    point = nextIndex(point ? { ...point, equity: prevEquity } : null, { date, equity, netFlow: new Decimal(0) });
    prevEquity = equity;
  }
  return point!;
};
let prevEquity = new Decimal(0);

/** The fleet's alert thresholds alone (no tier or account limits): alert only. */
const fleetOnly = effectiveLimits({}, {}, defaults.alerts);
const lossBreaches = (p: Parameters<typeof limitBreaches>[0], _alerts: unknown) => limitBreaches(p, fleetOnly);

describe('loss rules on the flow-adjusted index', () => {
  it('raise a daily loss beyond 5 %, not at exactly 5 %', () => {
    expect(lossBreaches(series([['2026-11-16', null], ['2026-11-17', -0.06]]), defaults.alerts).map((b) => [b.rule, b.period])).toEqual([['daily-loss', '2026-11-17']]);
    expect(lossBreaches(series([['2026-11-16', null], ['2026-11-17', -0.05]]), defaults.alerts)).toEqual([]);
  });
  it('compound a week and a month, flows already excluded from the returns', () => {
    const week = series([['2026-11-13', null], ['2026-11-16', -0.04], ['2026-11-17', -0.04], ['2026-11-18', -0.035]]);
    expect(lossBreaches(week, defaults.alerts).map((b) => [b.rule, b.period])).toEqual([['weekly-loss', '2026-W47']]);
    const month = series([['2026-10-30', null], ...Array.from({ length: 16 }, (_, i): [string, number] => [`2026-11-${String(i + 2).padStart(2, '0')}`, -0.0105])]);
    expect(lossBreaches(month, defaults.alerts).map((b) => b.rule)).toContain('monthly-loss');
  });
  it('do not count a fork or a withdrawal as a loss: the index moves with performance only', () => {
    const day1 = nextIndex(null, { date: '2026-11-16', equity: new Decimal('112000.00'), netFlow: new Decimal(0) });
    // 102,000.00 forked out, and the rest up 1 %.
    const day2 = nextIndex({ ...day1, equity: new Decimal('112000.00') }, { date: '2026-11-17', equity: new Decimal('10100.00'), netFlow: new Decimal('-102000.00') });
    expect(day2.dailyReturn).toBeCloseTo(0.0009, 4);
    expect(lossBreaches(day2, defaults.alerts)).toEqual([]);
  });

  it('raise a drawdown beyond 20 % from the peak', () => {
    const s = series([['2026-10-01', null], ['2026-10-02', 0.1], ['2026-10-20', -0.04], ['2026-11-02', -0.04], ['2026-11-03', -0.04], ['2026-11-04', -0.04], ['2026-11-05', -0.04], ['2026-11-06', -0.0459]]);
    expect(lossBreaches(s, defaults.alerts).find((b) => b.rule === 'drawdown')?.period).toBe('2026-11');
  });
  it('name ISO weeks across a year boundary', () => {
    expect([isoWeek('2026-01-01'), isoWeek('2027-01-01'), isoWeek('2026-12-31')]).toEqual(['2026-W01', '2026-W53', '2026-W53']);
  });
});

describe('limits that act', () => {
  it('an account drawdownLimit of 10 % takes it out of trading at a 17 % drawdown, with the drawdown as the breach that acts', () => {
    const dd = series([['2026-11-02', null], ['2026-11-03', -0.0499], ['2026-11-04', -0.1265]]);
    const limits = effectiveLimits({}, { drawdownLimit: '0.10' }, defaults.alerts);
    const b = limitBreaches(dd, limits);
    // The fall breaches the daily, weekly and monthly alert lines too; the drawdown limit is the one that acts.
    expect(b.map((x) => x.rule).sort()).toEqual(['daily-loss', 'drawdown', 'monthly-loss', 'weekly-loss']);
    const top = strongestBreach(b)!;
    expect([top.rule, top.action, top.severity]).toEqual(['drawdown', 'safe', 'critical']);
    expect(top.message).toMatch(/^17\.0\d % below its high-water mark \(flows excluded\), over its drawdown limit of 10\.00 %; trading stopped \(SAFE\)$/);
    expect(strongestBreach(limitBreaches(dd, fleetOnly))!.action).toBe('alert');
  });
  it('takes the most specific limit: account limits, then drawdownLimit, then the tier, then the fleet', () => {
    const tier = { drawdown: { max: '0.30', action: 'suspend' as const }, 'daily-loss': { max: '0.02', action: 'safe' as const } };
    expect(effectiveLimits(tier, {}, defaults.alerts).drawdown).toEqual({ max: '0.30', action: 'suspend' });
    expect(effectiveLimits(tier, { drawdownLimit: '0.10' }, defaults.alerts).drawdown).toEqual({ max: '0.10', action: 'safe' });
    expect(effectiveLimits(tier, { drawdownLimit: '0.10', limits: { drawdown: { max: '0.12', action: 'alert' } } }, defaults.alerts).drawdown).toEqual({ max: '0.12', action: 'alert' });
    expect(effectiveLimits(tier, {}, defaults.alerts)['weekly-loss']).toEqual({ max: defaults.alerts.weeklyLossMax, action: 'alert' });
  });
  it('moves ACTIVE to SAFE and ACTIVE or SAFE to SUSPENDED, never back, never out of a saga or an error', () => {
    expect([breachTarget('ACTIVE', 'safe'), breachTarget('SAFE', 'safe'), breachTarget('ACTIVE', 'suspend'), breachTarget('SAFE', 'suspend')]).toEqual(['SAFE', null, 'SUSPENDED', 'SUSPENDED']);
    expect([breachTarget('SUSPENDED', 'safe'), breachTarget('FORKING', 'suspend'), breachTarget('ERROR', 'suspend'), breachTarget('ACTIVE', 'alert')]).toEqual([null, null, null, null]);
  });
});
