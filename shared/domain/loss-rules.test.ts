import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { isoWeek, lossBreaches, type DayPoint } from './loss-rules.js';

const series = (returns: Array<[string, number | null]>, start = 100): DayPoint[] => {
  let v = start;
  return returns.map(([date, r]) => {
    v = r === null ? v : v * (1 + r);
    return { date, value: v, dailyReturn: r };
  });
};

describe('loss rules (SPEC §7.4)', () => {
  it('raise a daily loss beyond 5 %, not at exactly 5 %', () => {
    expect(lossBreaches(series([['2026-11-16', null], ['2026-11-17', -0.06]]), defaults.alerts).map((b) => [b.rule, b.period])).toEqual([['daily-loss', '2026-11-17']]);
    expect(lossBreaches(series([['2026-11-16', null], ['2026-11-17', -0.05]]), defaults.alerts)).toEqual([]);
  });
  it('compound a week and a month, flows already excluded from the returns', () => {
    const week = series([['2026-11-16', -0.04], ['2026-11-17', -0.04], ['2026-11-18', -0.035]]);
    expect(lossBreaches(week, defaults.alerts).map((b) => [b.rule, b.period])).toEqual([['weekly-loss', '2026-W47']]);
    const month = series(Array.from({ length: 16 }, (_, i): [string, number] => [`2026-11-${String(i + 2).padStart(2, '0')}`, -0.0105]));
    expect(lossBreaches(month, defaults.alerts).map((b) => b.rule)).toContain('monthly-loss');
  });
  it('raise a drawdown beyond 20 % from the peak', () => {
    const s = series([['2026-10-01', null], ['2026-10-02', 0.1], ['2026-10-20', -0.04], ['2026-11-02', -0.04], ['2026-11-03', -0.04], ['2026-11-04', -0.04], ['2026-11-05', -0.04], ['2026-11-06', -0.0459]]);
    expect(lossBreaches(s, defaults.alerts).find((b) => b.rule === 'drawdown')?.period).toBe('2026-11');
  });
  it('name ISO weeks across a year boundary', () => {
    expect([isoWeek('2026-01-01'), isoWeek('2027-01-01'), isoWeek('2026-12-31')]).toEqual(['2026-W01', '2026-W53', '2026-W53']);
  });
});
