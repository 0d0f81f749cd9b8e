import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import {
  type AccountInputs,
  type Peer,
  annualised,
  assessConsolidation,
  capitalOptimisation,
  manualRequest,
  operationalEfficiency,
  riskManagement,
  systemOptimisation,
  underperformance,
} from './consolidation.js';
import { tierRules } from './tiers.js';

const c = defaults.consolidation;
const GEN = tierRules(defaults, 'GEN');
const d = (s: string) => new Decimal(s);
/** A constant daily return that compounds to `annual` over a 252-session year. */
const dailyFor = (annual: number) => (1 + annual) ** (1 / 252) - 1;

function inputs(over: Partial<AccountInputs> = {}): AccountInputs {
  return {
    accountId: 'acc_src',
    rules: GEN,
    equity: d('50000.00'),
    cash: d('10000.00'),
    positions: 2,
    dailyReturns: Array(60).fill(dailyFor(0.08)),
    cashShares: Array(60).fill(0.2),
    equities: Array(60).fill(d('50000.00')),
    drawdown: 0,
    ageDays: 400,
    isChild: true,
    holdsCash: false,
    fees: d('0.00'),
    gains: d('1000.00'),
    windowDays: 90,
    depth: 1,
    parent: peer('acc_parent', { annualReturn: 0.12, volatility: 0.1 }),
    siblings: [],
    smallSiblingIds: [],
    manual: false,
    ...over,
  };
}
function peer(accountId: string, over: Partial<Peer> = {}): Peer {
  return { accountId, state: 'ACTIVE', equity: d('60000.00'), positions: 3, maxPositions: 10, annualReturn: 0.1, volatility: 0.15, ...over };
}

describe('trigger 1: underperformance (annualised < 5 % over ≥ 63 sessions)', () => {
  it('fires just below 5 % and not at or above it', () => {
    expect(underperformance(inputs({ dailyReturns: Array(63).fill(dailyFor(0.0499)) }), c).fired).toBe(true);
    expect(underperformance(inputs({ dailyReturns: Array(63).fill(dailyFor(0.0501)) }), c).fired).toBe(false);
  });
  it('needs a quarter (63 sessions) of history: six weeks of returns say little about a year', () => {
    expect(underperformance(inputs({ dailyReturns: Array(62).fill(-0.01) }), c).fired).toBe(false);
    expect(underperformance(inputs({ dailyReturns: Array(63).fill(-0.01) }), c).fired).toBe(true);
  });
  it('annualises by 252 sessions', () => {
    expect(annualised(Array(252).fill(dailyFor(0.1)))).toBeCloseTo(0.1, 10);
  });
});

describe('trigger 2: operational efficiency', () => {
  // The line is 10,000 × (1 − 0.05) = 9,500.00; it must hold on 5 sessions in a row.
  const below = (equity: string, pastSessions: string[]) => inputs({ equity: d(equity), equities: [...pastSessions.map(d), d(equity)] });
  it('fires a cent below min × (1 − tolerance) sustained for the sessions needed, not at the line', () => {
    expect(operationalEfficiency(below('9499.99', ['9499.99', '9499.99', '9499.99', '9499.99']), c).fired).toBe(true);
    expect(operationalEfficiency(below('9500.00', ['9400.00', '9400.00', '9400.00', '9400.00']), c).fired).toBe(false);
  });
  it('does not fire on a dip shorter than the sessions needed, nor just under the minimum', () => {
    expect(operationalEfficiency(below('9499.99', ['9499.99', '9499.99', '9600.00', '9499.99']), c).fired).toBe(false);
    expect(operationalEfficiency(below('9499.99', ['9499.99', '9499.99', '9499.99']), c).fired).toBe(false);
    expect(operationalEfficiency(below('9999.99', ['9999.99', '9999.99', '9999.99', '9999.99']), c).fired).toBe(false);
  });
  it('fires at once under half the minimum, critical', () => {
    const t = operationalEfficiency(below('4999.99', []), c);
    expect([t.fired, t.urgency]).toEqual([true, 'critical']);
    expect(operationalEfficiency(below('5000.00', []), c).fired).toBe(false);
  });
  it('is high under 90 % of the minimum, medium above', () => {
    expect(operationalEfficiency(below('8999.99', Array(4).fill('8999.99')), c).urgency).toBe('high');
    expect(operationalEfficiency(below('9000.00', Array(4).fill('9000.00')), c).urgency).toBe('medium');
  });
  it('fires when fixed costs exceed half of the gains, not at half', () => {
    expect(operationalEfficiency(inputs({ fees: d('500.01'), gains: d('1000.00') }), c).fired).toBe(true);
    expect(operationalEfficiency(inputs({ fees: d('500.00'), gains: d('1000.00') }), c).fired).toBe(false);
    expect(operationalEfficiency(inputs({ fees: d('1.00'), gains: d('-5.00') }), c).fired).toBe(true);
  });
});

describe('grace of a young child and cash held on purpose', () => {
  const lowFor = (n: number) => ({ equity: d('9000.00'), equities: Array(n).fill(d('9000.00')) });
  it('exempts a child from non-critical triggers until its grace period ends', () => {
    const young = assessConsolidation(inputs({ ...lowFor(10), ageDays: 119 }), c);
    expect(young.fired).toEqual([]);
    expect(young.triggers.find((t) => t.trigger === 'operational-efficiency')!.detail['exemptInGrace']).toBe(true);
    expect(assessConsolidation(inputs({ ...lowFor(10), ageDays: 120 }), c).fired).toContain('operational-efficiency');
    // A root account has no grace: it was not forked.
    expect(assessConsolidation(inputs({ ...lowFor(10), ageDays: 10, isChild: false }), c).fired).toContain('operational-efficiency');
  });
  it('keeps a critical trigger and an operator request during the grace period', () => {
    const critical = assessConsolidation(inputs({ equity: d('4000.00'), ageDays: 5 }), c);
    expect(critical.fired).toContain('operational-efficiency');
    expect(assessConsolidation(inputs({ ageDays: 5, manual: true }), c).fired).toEqual(['manual-request']);
  });
  it('never calls cash idle in an account whose strategy holds cash', () => {
    const idle = { cashShares: Array(40).fill(0.9) };
    expect(capitalOptimisation(inputs(idle), c).fired).toBe(true);
    expect(capitalOptimisation(inputs({ ...idle, holdsCash: true }), c).fired).toBe(false);
  });
});

describe('trigger 3: risk management', () => {
  it('fires on a drawdown past 20 %, not at 20 %', () => {
    // The drawdown is the newest point's, from its value index's high-water mark (as the loss limits read it).
    expect(riskManagement(inputs({ drawdown: 0.2001 }), c).fired).toBe(true);
    expect(riskManagement(inputs({ drawdown: 0.2 }), c).fired).toBe(false);
    expect(riskManagement(inputs({ drawdown: 0.4001 }), c).urgency).toBe('critical');
  });
  it('fires on volatility above the limit × the tier risk multiplier', () => {
    // Alternating ±x has annual volatility x·√252·√(N/(N−1)); the Gen limit is 0.40 × 1.0.
    const swing = (x: number) => Array.from({ length: 40 }, (_, i) => (i % 2 ? x : -x));
    const limitDaily = 0.4 / Math.sqrt(252) / Math.sqrt(40 / 39);
    expect(riskManagement(inputs({ dailyReturns: swing(limitDaily * 1.01) }), c).fired).toBe(true);
    expect(riskManagement(inputs({ dailyReturns: swing(limitDaily * 0.99) }), c).fired).toBe(false);
    const rev = tierRules(defaults, 'REV');
    expect(riskManagement(inputs({ rules: rev, dailyReturns: swing(limitDaily * 1.1) }), c).fired).toBe(false);
  });
});

describe('trigger 4: capital optimisation (idle cash)', () => {
  it('fires after 30 sessions above 50 % cash, not after 29', () => {
    expect(capitalOptimisation(inputs({ cashShares: [0.1, ...Array(30).fill(0.51)] }), c).fired).toBe(true);
    expect(capitalOptimisation(inputs({ cashShares: [0.1, ...Array(29).fill(0.51)] }), c).fired).toBe(false);
    expect(capitalOptimisation(inputs({ cashShares: Array(40).fill(0.5) }), c).fired).toBe(false);
  });
});

describe('trigger 5: manual request', () => {
  it('fires only when asked', () => {
    expect(manualRequest(inputs({ manual: true })).fired).toBe(true);
    expect(manualRequest(inputs()).fired).toBe(false);
  });
});

describe('trigger 6: system optimisation', () => {
  it('fires past the depth limit, not at it', () => {
    expect(systemOptimisation(inputs({ depth: 5 }), c).fired).toBe(true);
    expect(systemOptimisation(inputs({ depth: 4 }), c).fired).toBe(false);
  });
  it('fires with more than five small accounts under one parent, this one among them', () => {
    const six = ['acc_a', 'acc_b', 'acc_c', 'acc_d', 'acc_e', 'acc_src'];
    expect(systemOptimisation(inputs({ smallSiblingIds: six }), c).fired).toBe(true);
    expect(systemOptimisation(inputs({ smallSiblingIds: six.slice(1) }), c).fired).toBe(false);
    expect(systemOptimisation(inputs({ smallSiblingIds: [...six.slice(0, 5), 'acc_f'] }), c).fired).toBe(false);
  });
});

describe('decision', () => {
  it('merges a small account into its parent at once: reliable, large benefit, little risk, high urgency', () => {
    const a = assessConsolidation(inputs({ equity: d('4000.00'), cash: d('4000.00'), positions: 0 }), c);
    expect([a.fired, a.proposal.strategy, a.proposal.targetId, a.urgency, a.action]).toEqual([['operational-efficiency'], 'parent', 'acc_parent', 'critical', 'execute']);
    // 0.30 × 1 + 0.40 × 1 (250 a year on 4,000 is over 2 %) + 0.30 × (1 − risk)
    const risk = 0.5 * (4000 / 64000) + 0.5 * (3 / 10);
    expect(a.confidence).toBeCloseTo(0.3 + 0.4 + 0.3 * (1 - risk), 3);
    expect(a.benefits.savingsPerYear).toBe('250.00');
  });

  it('sends a medium-urgency underperformer to review, and quantifies the expected change', () => {
    const a = assessConsolidation(inputs({ dailyReturns: Array(63).fill(dailyFor(0.01)) }), c);
    expect([a.fired, a.urgency, a.action]).toEqual([['underperformance'], 'medium', 'review']);
    // 50,000 × (12 % − 1 %) a year
    expect(Number(a.benefits.expectedPerformanceChangePerYear)).toBeCloseTo(5500, 0);
  });

  it('picks the best-performing open sibling for a root, and moves only the excess of idle cash', () => {
    const siblings = [peer('acc_b', { annualReturn: 0.2 }), peer('acc_a', { annualReturn: 0.3, state: 'SUSPENDED' }), peer('acc_c', { annualReturn: 0.05 })];
    const loser = assessConsolidation(inputs({ parent: null, siblings, dailyReturns: Array(63).fill(dailyFor(-0.1)) }), c);
    expect([loser.proposal.strategy, loser.proposal.targetId]).toEqual(['sibling', 'acc_b']);
    const idle = assessConsolidation(inputs({ cash: d('40000.00'), cashShares: Array(30).fill(0.8) }), c);
    expect([idle.proposal.strategy, idle.proposal.amount?.toFixed(2), idle.action]).toEqual(['partial', '15000.00', 'review']);
  });

  it('merges a crowd of small siblings into one new account', () => {
    const six = ['acc_f', 'acc_b', 'acc_c', 'acc_d', 'acc_e', 'acc_src'];
    const a = assessConsolidation(inputs({ smallSiblingIds: six }), c);
    expect([a.proposal.strategy, a.proposal.targetId, a.proposal.sourceIds]).toEqual(['new', null, [...six].sort()]);
  });

  it('does nothing when no trigger fires, nor when no account can take the merge', () => {
    expect(assessConsolidation(inputs(), c).action).toBe('none');
    const orphan = assessConsolidation(inputs({ parent: null, equity: d('100.00') }), c);
    expect([orphan.fired, orphan.proposal.targetId, orphan.risk, orphan.action]).toEqual([['operational-efficiency'], null, 1, 'none']);
  });
});
