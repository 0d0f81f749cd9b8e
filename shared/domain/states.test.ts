import { describe, expect, it } from 'vitest';
import { ACCOUNT_STATES, MANUAL_TARGET_STATES, TRANSITIONS, canTransition, canTransitionManually } from './states.js';
import { tierRules } from './tiers.js';
import { defaults } from '../../config/defaults.js';

describe('the state machine', () => {
  it('has a row for every state and only known targets', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ACCOUNT_STATES].sort());
    for (const targets of Object.values(TRANSITIONS)) for (const t of targets) expect(ACCOUNT_STATES).toContain(t);
  });

  it('makes CLOSED terminal and lets sagas return their accounts to ACTIVE', () => {
    for (const s of ACCOUNT_STATES) expect(canTransition('CLOSED', s)).toBe(false);
    expect(canTransition('FORKING', 'ACTIVE')).toBe(true);
    expect(canTransition('MERGING', 'CLOSED')).toBe(true);
    expect(canTransition('FORKING', 'ERROR')).toBe(false);
    expect(canTransition('SAFE', 'MERGING')).toBe(false);
    expect(canTransition('ACTIVE', 'ACTIVE')).toBe(false);
  });

  it('never lets a person move an account into or out of a saga state', () => {
    for (const from of ['FORKING', 'MERGING'] as const) for (const to of ACCOUNT_STATES) expect([from, to, canTransitionManually(from, to)]).toEqual([from, to, false]);
    for (const from of ACCOUNT_STATES) for (const to of ['FORKING', 'MERGING'] as const) expect(canTransitionManually(from, to)).toBe(false);
    expect(MANUAL_TARGET_STATES).not.toContain('FORKING');
    expect(canTransitionManually('SAFE', 'ACTIVE')).toBe(true);
  });
});

describe('tier rules', () => {
  it('reads the tier table and lets overrides only tighten it', () => {
    const rev = tierRules(defaults, 'REV');
    expect(rev.minCapital.toFixed(2)).toBe('100000.00');
    expect(rev.forkThreshold?.toFixed(2)).toBe('500000.00');
    expect(tierRules(defaults, 'COM').forkThreshold).toBeNull();
    const strict = tierRules(defaults, 'GEN', { maxPositions: 3, maxCapitalPerPosition: '0.10' });
    expect([strict.maxPositions, strict.maxCapitalPerPosition.toString()]).toEqual([3, '0.1']);
    const loose = tierRules(defaults, 'GEN', { maxPositions: 99, maxCapitalPerPosition: '0.90' });
    expect([loose.maxPositions, loose.maxCapitalPerPosition.toString()]).toEqual([10, '0.2']);
  });
});
