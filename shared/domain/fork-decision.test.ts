import { describe, expect, it } from 'vitest';
import { combine, delayToNextWindowMs, marketFactor, marketTime, performanceFactor, systemLoadFactor, timingFactor } from './fork-decision.js';

/** Closes with a given daily move pattern, starting at 100. */
const series = (moves: number[]) => moves.reduce((acc, m) => [...acc, acc[acc.length - 1]! * (1 + m)], [100]);
const alternating = (n: number, size: number) => Array.from({ length: n }, (_, i) => (i % 2 ? -size : size));

describe('market factor', () => {
  it('is neutral without enough benchmark history', () => {
    expect(marketFactor(series(alternating(19, 0.01)), 1).score).toBe(0.5);
  });
  it('scores 1 when recent volatility is at most 0.75 of its long-run level and liquidity is full', () => {
    const calmRecently = series([...alternating(200, 0.02), ...alternating(20, 0.005)]);
    expect(marketFactor(calmRecently, 1).score).toBe(1);
    expect(marketFactor(calmRecently, 0).score).toBe(0.5);
  });
  it('scores 0 when recent volatility is twice its long-run level or more', () => {
    const stormy = series([...alternating(200, 0.005), ...alternating(20, 0.04)]);
    expect(marketFactor(stormy, 1).score).toBe(0);
  });
  it('is linear between the two edges', () => {
    // ±1 % every day: both windows have the same moves, so the ratio is the sample-size correction
    // √((20/19)/(220/219)) ≈ 1.0236, which scores 1 − (ratio − 0.75)/1.25 ≈ 0.7811.
    const ratio = Math.sqrt(20 / 19 / (220 / 219));
    expect(marketFactor(series(alternating(220, 0.01)), 1).score).toBeCloseTo(1 - (ratio - 0.75) / 1.25, 4);
  });
});

describe('performance factor', () => {
  it('is neutral with under 20 daily values', () => {
    expect(performanceFactor(series(alternating(18, 0.01))).score).toBe(0.5);
  });
  it('gives a steady 20 %+ grower with no drawdown nearly full marks', () => {
    const grower = series(Array.from({ length: 252 }, () => 0.0008)); // ≈ 22 % a year, no down day
    const f = performanceFactor(grower);
    expect(f.detail['maxDrawdown']).toBe(0);
    expect(f.detail['consistency']).toBe(1);
    expect(f.score).toBeGreaterThan(0.99);
  });
  it('gives a steady loser with a deep drawdown a low score', () => {
    const loser = series(Array.from({ length: 252 }, () => -0.002));
    const f = performanceFactor(loser);
    expect(f.detail['consistency']).toBe(0);
    expect(f.score).toBeLessThan(0.2);
  });
});

describe('system load factor', () => {
  it('is 1 when idle, 0 when saturated, and weighs in-flight forks over backlog', () => {
    expect(systemLoadFactor(0, 5, 0, 50).score).toBe(1);
    expect(systemLoadFactor(5, 5, 50, 50).score).toBe(0);
    expect(systemLoadFactor(5, 5, 0, 50).score).toBe(0.3);
    expect(systemLoadFactor(0, 5, 500, 50).score).toBe(0.7);
  });
});

describe('timing factor', () => {
  it('is 0 on a non-business day', () => {
    expect(timingFactor(false, 120, 0, 0.01).score).toBe(0);
  });
  it('is 1 mid-session, 0.6 in the first and last hour, 0.4 outside hours, 1 on a date-only clock', () => {
    expect(timingFactor(true, 60, 0, 0.01).score).toBe(1);
    expect(timingFactor(true, 330, 0, 0.01).score).toBe(1);
    expect(timingFactor(true, 59, 0, 0.01).score).toBe(0.6);
    expect(timingFactor(true, 331, 0, 0.01).score).toBe(0.6);
    expect(timingFactor(true, -1, 0, 0.01).score).toBe(0.4);
    expect(timingFactor(true, 391, 0, 0.01).score).toBe(0.4);
    expect(timingFactor(true, null, 0, 0.01).score).toBe(1);
  });
  it('halves after a move beyond three times the 20-session volatility', () => {
    expect(timingFactor(true, 120, 0.031, 0.01).score).toBe(0.5);
    expect(timingFactor(true, 120, 0.03, 0.01).score).toBe(1);
  });
});

describe('combining factors', () => {
  const f = (score: number) => ({ score, detail: {} });
  const w = { market: 0.3, performance: 0.4, systemLoad: 0.2, timing: 0.1 };
  const t = { executeNow: 0.8, approve: 0.7 };
  it('weighs 30/40/20/10 and maps 0.80 and 0.70 to the three outcomes', () => {
    expect(combine({ market: f(1), performance: f(1), systemLoad: f(1), timing: f(1) }, w, t)).toEqual({ confidence: 1, outcome: 'execute' });
    expect(combine({ market: f(1), performance: f(0.5), systemLoad: f(1), timing: f(1) }, w, t)).toEqual({ confidence: 0.8, outcome: 'execute' });
    expect(combine({ market: f(1), performance: f(0.25), systemLoad: f(1), timing: f(1) }, w, t)).toEqual({ confidence: 0.7, outcome: 'scheduled' });
    expect(combine({ market: f(0.5), performance: f(0.5), systemLoad: f(1), timing: f(1) }, w, t)).toEqual({ confidence: 0.65, outcome: 'review' });
  });
});

describe('market calendar', () => {
  it('reads weekday and minutes from the open in the market time zone', () => {
    // 2026-11-20 is a Friday; 15:30 UTC is 10:30 in New York.
    expect(marketTime(new Date('2026-11-20T15:30:00Z'), 'America/New_York')).toEqual({ businessDay: true, minutesFromOpen: 60, date: '2026-11-20' });
    expect(marketTime(new Date('2026-11-21T15:30:00Z'), 'America/New_York').businessDay).toBe(false);
  });
  it('waits from a Saturday to Monday 10:30 for the next favourable window', () => {
    const saturdayNoon = new Date('2026-11-21T17:00:00Z'); // 12:00 in New York
    expect(delayToNextWindowMs(saturdayNoon, 'America/New_York')).toBe((48 - 1.5) * 3600_000);
    expect(delayToNextWindowMs(new Date('2026-11-20T16:00:00Z'), 'America/New_York')).toBe(0);
  });
});
