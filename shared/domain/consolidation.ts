import type { Config } from '../../config/schema.js';
import { PERIODS_PER_YEAR } from '../analytics/metrics.js';
import { std } from '../analytics/stats.js';
import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import type { MergeStrategy } from './merge.js';
import type { TierRules } from './tiers.js';

/**
 * The consolidation engine (SPEC §5.1–5.2): six triggers, each a documented, deterministic function
 * of measured inputs; a strategy and target; urgency; quantified benefits; and confidence
 * 0.30·trigger reliability + 0.40·benefit magnitude + 0.30·(1 − risk). Ratios are floats (as in §7);
 * money (equity, savings, expected performance change) stays Decimal. Formulas: docs/consolidation.md.
 */

export const TRIGGERS = ['underperformance', 'operational-efficiency', 'risk-management', 'capital-optimisation', 'manual-request', 'system-optimisation'] as const;
export type Trigger = (typeof TRIGGERS)[number];
export const URGENCIES = ['low', 'medium', 'high', 'critical'] as const;
export type Urgency = (typeof URGENCIES)[number];
export const urgencyRank = (u: Urgency) => URGENCIES.indexOf(u);

export type ConsolidationConfig = Config['consolidation'];

/** A peer the source could merge into: its parent or a sibling, as measured on its own series. */
export interface Peer {
  accountId: string;
  state: string;
  equity: Decimal;
  positions: number;
  /** The peer's own position limit (its tier and overrides). */
  maxPositions: number;
  /** Annualised flow-adjusted return and volatility; null without enough history. */
  annualReturn: number | null;
  volatility: number | null;
}

export interface AccountInputs {
  accountId: string;
  rules: TierRules;
  equity: Decimal;
  cash: Decimal;
  positions: number;
  /** Flow-adjusted daily returns of the account's snapshots, oldest first (SPEC §7.1). */
  dailyReturns: number[];
  /** Cash as a share of equity on each of the same days, oldest first. */
  cashShares: number[];
  /** Drawdown of the newest point's flow-adjusted value index from its high-water mark (≥ 0), as the loss limits read it. */
  drawdown: number;
  /** Equity on each of the same days, oldest first (today's snapshot last, once it is taken). */
  equities: Decimal[];
  /** Days since the account opened, and whether it has a parent (a fork child, or opened under one). */
  ageDays: number;
  isChild: boolean;
  /** The account's strategy holds cash on purpose (its config says so): idle cash is not a trigger. */
  holdsCash: boolean;
  /** Account fees (fixed costs) and performance gains in cash over the window of `windowDays`. */
  fees: Decimal;
  gains: Decimal;
  windowDays: number;
  /** 0 for a root account. */
  depth: number;
  parent: Peer | null;
  siblings: Peer[];
  /** Siblings (this account included) below their tier's minimum, under the same parent. */
  smallSiblingIds: string[];
  manual: boolean;
}

export interface TriggerResult {
  trigger: Trigger;
  fired: boolean;
  reliability: number;
  urgency: Urgency;
  /** The measured value and the threshold it was compared with, for the record. */
  detail: Record<string, number | string | boolean | null>;
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const num = (d: Decimal | string) => new Decimal(d).toNumber();

/** Annualised return of daily returns: (∏(1 + r))^(252/N) − 1; null under the minimum history. */
export function annualised(r: number[], minDays = 1): number | null {
  if (r.length < minDays || r.length === 0) return null;
  const growth = r.reduce((g, x) => g * (1 + x), 1);
  return growth ** (PERIODS_PER_YEAR / r.length) - 1;
}
export const annualVolatility = (r: number[]): number | null => (r.length < 2 ? null : std(r) * Math.sqrt(PERIODS_PER_YEAR));

/** Reliability grows with the history the measure stands on: 0.5 at `from` days, 1 at a year. */
const historyReliability = (days: number, from: number) => round4(0.5 + 0.5 * clamp01((days - from) / Math.max(1, PERIODS_PER_YEAR - from)));

/** 1. annualised flow-adjusted return below the floor over at least the minimum history. */
export function underperformance(a: AccountInputs, c: ConsolidationConfig): TriggerResult {
  const annual = annualised(a.dailyReturns, c.underperformanceMinHistoryDays);
  const floor = num(c.underperformanceAnnualReturn);
  const fired = annual !== null && annual < floor;
  return {
    trigger: 'underperformance',
    fired,
    reliability: historyReliability(a.dailyReturns.length, c.underperformanceMinHistoryDays),
    urgency: annual !== null && annual < -floor * 4 ? 'high' : 'medium',
    detail: { annualReturn: annual === null ? null : round4(annual), floor, days: a.dailyReturns.length, minDays: c.underperformanceMinHistoryDays },
  };
}

/**
 * Sessions in a row, newest first, whose equity is below `line`: today's equity, then the snapshots
 * before it (today's own snapshot, when taken, is the same day and is not counted twice).
 */
function sessionsBelow(a: AccountInputs, line: Decimal): number {
  if (!a.equity.lt(line)) return 0;
  let run = 1;
  const past = a.equities.slice(0, -1);
  for (let i = past.length - 1; i >= 0 && past[i]!.lt(line); i--) run++;
  return run;
}

/**
 * 2. equity below the tier's minimum, with hysteresis: below min × (1 − tolerance) on
 * `belowMinSessions` sessions in a row (under half the minimum fires at once, critical); or fixed
 * costs above a share of the window's gains. An account that sits at its floor (a parent just after
 * its fork) does not fire on an ordinary dip.
 */
export function operationalEfficiency(a: AccountInputs, c: ConsolidationConfig): TriggerResult {
  const line = roundTo('cash', a.rules.minCapital.times(new Decimal(1).minus(c.belowMinTolerance)));
  const ratio = a.rules.minCapital.isZero() ? 1 : num(a.equity.dividedBy(a.rules.minCapital));
  const sessions = sessionsBelow(a, line);
  const critical = ratio < 0.5;
  const belowMin = critical || sessions >= c.belowMinSessions;
  const share = a.gains.isPositive() && !a.gains.isZero() ? num(a.fees.dividedBy(a.gains)) : a.fees.isZero() ? 0 : Number.POSITIVE_INFINITY;
  const costly = share > num(c.fixedCostShareOfReturnsMax);
  return {
    trigger: 'operational-efficiency',
    fired: belowMin || costly,
    // Equity against a minimum is a fact; a cost share over a short window is a noisier one.
    reliability: belowMin ? 1 : 0.8,
    urgency: belowMin ? (critical ? 'critical' : ratio < 0.9 ? 'high' : 'medium') : 'medium',
    detail: {
      equity: a.equity.toFixed(2),
      minCapital: a.rules.minCapital.toFixed(2),
      belowMinLine: line.toFixed(2),
      sessionsBelow: sessions,
      sessionsNeeded: c.belowMinSessions,
      belowMin,
      fixedCostShare: Number.isFinite(share) ? round4(share) : null,
      fixedCostShareMax: num(c.fixedCostShareOfReturnsMax),
    },
  };
}

/** 3. drawdown of the value index beyond the limit (the loss limits' measure), or volatility above the tier's limit × risk multiplier. */
export function riskManagement(a: AccountInputs, c: ConsolidationConfig): TriggerResult {
  const drawdown = a.drawdown;
  const vol = annualVolatility(a.dailyReturns);
  const volLimit = num(c.volatilityMax) * num(a.rules.riskMultiplier);
  const drawdownMax = num(c.drawdownMax);
  const deep = drawdown > drawdownMax;
  const wild = vol !== null && a.dailyReturns.length >= 20 && vol > volLimit;
  return {
    trigger: 'risk-management',
    fired: deep || wild,
    reliability: historyReliability(a.dailyReturns.length, 20),
    urgency: drawdown > 2 * drawdownMax ? 'critical' : deep || wild ? 'high' : 'medium',
    detail: { drawdown: round4(drawdown), drawdownMax, volatility: vol === null ? null : round4(vol), volatilityLimit: round4(volLimit) },
  };
}

/** 4. cash above a share of equity on each of the last `idleCashSustainedDays` snapshots; never for an account that holds cash on purpose. */
export function capitalOptimisation(a: AccountInputs, c: ConsolidationConfig): TriggerResult {
  const max = num(c.idleCashShareMax);
  let run = 0;
  for (let i = a.cashShares.length - 1; i >= 0 && a.cashShares[i]! > max; i--) run++;
  return {
    trigger: 'capital-optimisation',
    fired: !a.holdsCash && run >= c.idleCashSustainedDays,
    reliability: 0.9,
    urgency: 'low',
    detail: { idleDays: run, sustainedDays: c.idleCashSustainedDays, holdsCash: a.holdsCash, cashShare: a.cashShares.length ? round4(a.cashShares[a.cashShares.length - 1]!) : null, cashShareMax: max },
  };
}

/** 5. an operator asked (through the API). */
export function manualRequest(a: AccountInputs): TriggerResult {
  return { trigger: 'manual-request', fired: a.manual, reliability: 1, urgency: 'high', detail: { requested: a.manual } };
}

/** 6. the hierarchy too deep, or too many accounts under one parent below their minimum. */
export function systemOptimisation(a: AccountInputs, c: ConsolidationConfig): TriggerResult {
  const deep = a.depth > c.hierarchyDepthMax;
  const crowded = a.smallSiblingIds.length > c.smallAccountsPerParentMax && a.smallSiblingIds.includes(a.accountId);
  return {
    trigger: 'system-optimisation',
    fired: deep || crowded,
    reliability: 0.9,
    urgency: crowded ? 'medium' : 'low',
    detail: { depth: a.depth, depthMax: c.hierarchyDepthMax, smallUnderParent: a.smallSiblingIds.length, smallMax: c.smallAccountsPerParentMax },
  };
}

/**
 * Every trigger on the account. A child within its grace period after opening keeps only what is
 * critical (and an operator's request): a young fork child has no history to judge and sits near its
 * floor by construction, so merging it back would only undo the fork.
 */
export function evaluateTriggers(a: AccountInputs, c: ConsolidationConfig): TriggerResult[] {
  const all = [underperformance(a, c), operationalEfficiency(a, c), riskManagement(a, c), capitalOptimisation(a, c), manualRequest(a), systemOptimisation(a, c)];
  if (!inGrace(a, c)) return all;
  return all.map((t) => (t.fired && t.urgency !== 'critical' && t.trigger !== 'manual-request' ? { ...t, fired: false, detail: { ...t.detail, exemptInGrace: true, graceDays: c.childGraceDays, ageDays: a.ageDays } } : t));
}

export const inGrace = (a: Pick<AccountInputs, 'isChild' | 'ageDays'>, c: ConsolidationConfig) => a.isChild && a.ageDays < c.childGraceDays;

const ACCEPTS = ['ACTIVE', 'SAFE'];

export interface Proposal {
  strategy: MergeStrategy;
  /** Null for strategy `new` (the saga opens the target) or when no peer can take the merge. */
  targetId: string | null;
  sourceIds: string[];
  /** Partial merges of idle cash: the amount over the idle-cash share. */
  amount: Decimal | null;
}

/**
 * Strategy and target (SPEC §5.2): idle cash alone moves the excess (partial) to the parent or the best
 * sibling; a crowd of small siblings merges into one new account; otherwise the whole account merges
 * into its parent, or, for a root or a parent that cannot take it, into the best-performing sibling.
 */
export function propose(a: AccountInputs, fired: Trigger[], c: ConsolidationConfig): Proposal {
  const open = (p: Peer | null | undefined): p is Peer => !!p && ACCEPTS.includes(p.state);
  const bestSibling = a.siblings.filter(open).sort((x, y) => (y.annualReturn ?? -Infinity) - (x.annualReturn ?? -Infinity) || (x.accountId < y.accountId ? -1 : 1))[0];
  const peer = open(a.parent) ? a.parent : (bestSibling ?? null);
  const onlyIdleCash = fired.every((t) => t === 'capital-optimisation');
  if (onlyIdleCash) {
    const amount = roundTo('cash', a.cash.minus(a.equity.times(c.idleCashShareMax)));
    return { strategy: 'partial', targetId: peer?.accountId ?? null, sourceIds: [a.accountId], amount: amount.isPositive() && !amount.isZero() ? amount : null };
  }
  if (fired.includes('system-optimisation') && a.smallSiblingIds.length > c.smallAccountsPerParentMax && a.smallSiblingIds.includes(a.accountId)) {
    return { strategy: 'new', targetId: null, sourceIds: [...a.smallSiblingIds].sort(), amount: null };
  }
  if (open(a.parent)) return { strategy: 'parent', targetId: a.parent.accountId, sourceIds: [a.accountId], amount: null };
  return { strategy: 'sibling', targetId: bestSibling?.accountId ?? null, sourceIds: [a.accountId], amount: null };
}

export interface Benefits {
  /** Fixed costs avoided a year: the account's running cost plus its fees, annualised. */
  savingsPerYear: string;
  /** Annualised volatility the moved money sheds by joining the target (never negative). */
  riskReduction: number;
  /** Source equity × (target's annual return − source's), a year; null when either is unmeasured. */
  expectedPerformanceChangePerYear: string | null;
  /** The three as scores in [0, 1] and their maximum, the benefit magnitude. */
  scores: { savings: number; risk: number; performance: number };
  magnitude: number;
}

export function benefits(a: AccountInputs, target: Peer | null, c: ConsolidationConfig): Benefits {
  const feesPerYear = a.windowDays > 0 ? a.fees.times(365).dividedBy(a.windowDays) : new Decimal(0);
  const savings = roundTo('cash', new Decimal(c.accountFixedCostPerYear).plus(feesPerYear));
  const ownVol = annualVolatility(a.dailyReturns);
  const riskReduction = ownVol !== null && target?.volatility != null ? Math.max(0, ownVol - target.volatility) : 0;
  const ownReturn = annualised(a.dailyReturns, 1);
  const spread = ownReturn !== null && target?.annualReturn != null ? target.annualReturn - ownReturn : null;
  const perf = spread === null ? null : roundTo('cash', a.equity.times(spread));
  const equity = num(a.equity);
  const scores = {
    // 2 % of equity a year in running costs is as bad as it gets; a large account barely feels them.
    savings: round4(equity > 0 ? clamp01(num(savings) / equity / 0.02) : 1),
    risk: round4(clamp01(riskReduction / 0.2)),
    performance: round4(spread === null ? 0 : clamp01(spread / 0.1)),
  };
  return {
    savingsPerYear: savings.toFixed(2),
    riskReduction: round4(riskReduction),
    expectedPerformanceChangePerYear: perf === null ? null : perf.toFixed(2),
    scores,
    magnitude: Math.max(scores.savings, scores.risk, scores.performance),
  };
}

/**
 * Risk of carrying out the merge, in [0, 1]: half the source's share of the combined equity (a large
 * move into a small target changes it most), half how full the target's position limit would be;
 * 1 when there is no target that can take it.
 */
export function mergeRisk(a: AccountInputs, target: Peer | null): number {
  if (!target) return 1;
  const combined = a.equity.plus(target.equity);
  const share = combined.isZero() ? 1 : num(a.equity.dividedBy(combined));
  const fill = clamp01((target.positions + a.positions) / target.maxPositions);
  return round4(clamp01(0.5 * share + 0.5 * fill));
}

export interface Assessment {
  triggers: TriggerResult[];
  fired: Trigger[];
  proposal: Proposal;
  urgency: Urgency;
  reliability: number;
  benefits: Benefits;
  risk: number;
  confidence: number;
  /** Auto-execute at confidence ≥ the threshold and urgency ≥ its floor (SPEC §5.2); else a review; `none` without a target. */
  action: 'none' | 'execute' | 'review';
}

export function assessConsolidation(a: AccountInputs, c: ConsolidationConfig): Assessment {
  const triggers = evaluateTriggers(a, c);
  const firedResults = triggers.filter((t) => t.fired);
  const fired = firedResults.map((t) => t.trigger);
  const proposal = propose(a, fired, c);
  const target = [a.parent, ...a.siblings].find((p) => p && p.accountId === proposal.targetId) ?? null;
  const urgency = firedResults.reduce<Urgency>((u, t) => (urgencyRank(t.urgency) > urgencyRank(u) ? t.urgency : u), 'low');
  const reliability = firedResults.reduce((m, t) => Math.max(m, t.reliability), 0);
  const b = benefits(a, target, c);
  // A new account starts empty: nothing to fill, and the sources are the whole of it.
  const risk = proposal.strategy === 'new' ? 0.5 : mergeRisk(a, target);
  const confidence = round4(num(c.weightTriggerReliability) * reliability + num(c.weightBenefit) * b.magnitude + num(c.weightRisk) * (1 - risk));
  const executable = proposal.strategy === 'new' || (proposal.targetId !== null && (proposal.strategy !== 'partial' || proposal.amount !== null));
  // Nothing fired, or no account can take the merge: recorded as an opportunity, nothing to approve.
  const action =
    fired.length === 0 || !executable
      ? 'none'
      : confidence >= num(c.autoExecuteConfidence) && urgencyRank(urgency) >= urgencyRank(c.autoExecuteUrgency)
        ? 'execute'
        : 'review';
  return { triggers, fired, proposal, urgency: fired.length ? urgency : 'low', reliability, benefits: b, risk, confidence, action };
}
