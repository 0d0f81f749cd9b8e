import type { Config } from '../../config/schema.js';
import type { DecisionRepository, StoredDecision } from '../db/decision-repository.js';
import type { ReviewRepository } from '../db/review-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { forkEligibility, type ForkMode } from '../domain/fork.js';
import { VOL_WINDOW, combine, marketFactor, marketTime, performanceFactor, returnsOf, stdev, systemLoadFactor, timingFactor } from '../domain/fork-decision.js';
import { tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import { formatUnits } from '../money/units.js';
import type { ReviewEvent } from './review-metrics.js';
import { type ForkDeps, forkIdOf, forkPrerequisite, requestFork } from './fork-saga.js';

export interface AssessDeps extends ForkDeps {
  decisions: DecisionRepository;
  reviews: ReviewRepository;
  config: Pick<Config, 'tiers' | 'fork' | 'schedules' | 'reviews'>;
  /** Counts what filing and expiring reviews did (metrics). */
  onReview?: (kind: string, event: ReviewEvent) => void;
  /** Fork jobs ready to run and waiting for a slot, for the system-load factor. */
  forkBacklog: () => Promise<number>;
  /** Daily values of an account, oldest first; empty until snapshots exist. */
  dailyValues: (accountId: string) => Promise<number[]>;
  /** The benchmark's closes up to today, oldest first (a year at most). */
  benchmarkCloses: () => Promise<Array<{ date: string; close: number }>>;
}

export type Assessment =
  | { status: 'decided'; decision: StoredDecision }
  | { status: 'skipped'; reason: string };

/**
 * Measures the inputs, runs the decision engine on an eligible account's journal head and stores the
 * decision with its factor breakdown (SPEC §4.2). A check of the same head finds the stored decision.
 */
export async function assessFork(deps: AssessDeps, accountId: string, source: StoredDecision['source']): Promise<Assessment> {
  const account = await deps.stores.accounts.get(accountId);
  if (!account) return { status: 'skipped', reason: 'no such account' };
  const head = await deps.stores.journal.head(accountId);
  if (!head) return { status: 'skipped', reason: 'no journal yet' };
  const balances = loadBalances(head.after);
  const prices = await deps.stores.prices.lastCloses(balances.positions.map((p) => p.symbol), deps.clock.today());
  const rules = tierRules(deps.config, account.tier, account.config);
  const eligibility = forkEligibility(rules, valuate(balances, prices).equity);
  if (!eligibility.eligible) return { status: 'skipped', reason: eligibility.reason };
  const forkId = forkIdOf(accountId, head.seq);
  const problem = await forkPrerequisite(deps, { _id: forkId, parentId: accountId, mode: deps.config.fork.defaultMode, symbols: [] });
  if (problem) return { status: 'skipped', reason: problem.message };

  const now = deps.clock.now();
  const bench = await deps.benchmarkCloses();
  const closes = bench.map((b) => b.close);
  const recentFrom = new Date(now.getTime() - 28 * 86_400_000).toISOString().slice(0, 10); // ≈ 20 sessions
  const liquidity = bench.filter((b) => b.date >= recentFrom).length / VOL_WINDOW;
  const r = returnsOf(closes);
  const vol20 = r.length >= VOL_WINDOW ? stdev(r.slice(-VOL_WINDOW)) : null;
  const t = marketTime(now, deps.config.schedules.timezone);
  const [inFlight, backlog, values] = await Promise.all([deps.forks.inFlight(), deps.forkBacklog(), deps.dailyValues(accountId)]);
  const f = deps.config.fork;
  const factors = {
    market: marketFactor(closes, liquidity),
    performance: performanceFactor(values),
    systemLoad: systemLoadFactor(inFlight, f.maxInFlight, backlog, f.backlogMax),
    timing: timingFactor(t.businessDay, t.minutesFromOpen, r.at(-1) ?? null, vol20),
  };
  const weights = { market: Number(f.weightMarket), performance: Number(f.weightPerformance), systemLoad: Number(f.weightSystemLoad), timing: Number(f.weightTiming) };
  const { confidence, outcome } = combine(factors, weights, { executeNow: Number(f.executeNowConfidence), approve: Number(f.approveConfidence) });
  const id = source === 'check' ? `dec_${accountId}_${head.seq}` : `dec_${accountId}_${head.seq}_a${now.getTime()}`;
  const { decision } = await deps.decisions.store({
    _id: id,
    accountId,
    seq: head.seq,
    source,
    at: now,
    equity: formatUnits('cash', eligibility.equity),
    forkAmount: formatUnits('cash', eligibility.forkAmount),
    childTier: eligibility.childTier,
    inputs: { benchmarkSymbol: f.benchmarkSymbol, benchmarkCloses: closes.length, dailyValues: values.length, inFlight, backlog, marketDate: t.date },
    factors,
    weights,
    confidence,
    outcome,
    forkId,
    reviewId: null,
  });
  return { status: 'decided', decision };
}

/** What a decision leads to: a fork now, a fork at the next window, or a review record. Idempotent. */
export async function actOnDecision(
  deps: AssessDeps,
  d: StoredDecision,
  enqueueFork: (fork: { forkId: string; accountId: string; parentSeq: number; mode: ForkMode; decisionId: string }, delayMs: number) => Promise<void>,
  delayMs: () => number,
): Promise<void> {
  if (d.outcome === 'review') {
    // One open fork review per account: a newer decision refreshes it (approving it approves the newest).
    const account = await deps.stores.accounts.get(d.accountId);
    const filed = await deps.reviews.file({ kind: 'fork', accountId: d.accountId, ownerId: account?.ownerId ?? null, decisionId: d._id, forkId: d.forkId, urgency: 'medium', day: deps.clock.today(), now: deps.clock.now(), snoozeDays: deps.config.reviews.snoozeDaysAfterReject });
    deps.onReview?.('fork', filed.event);
    if (filed.review && d.reviewId !== filed.review._id) await deps.decisions.setReview(d._id, filed.review._id);
    return;
  }
  // A decision that acts on its own supersedes a review still waiting for the account.
  if (await deps.reviews.expire('fork', d.accountId, `superseded by decision ${d._id}`, deps.clock.now())) deps.onReview?.('fork', 'expired');
  const mode = deps.config.fork.defaultMode;
  await requestFork(deps, { parentId: d.accountId, parentSeq: d.seq, mode, symbols: [], requestedBy: 'threshold-monitor', decisionId: d._id });
  await enqueueFork({ forkId: d.forkId, accountId: d.accountId, parentSeq: d.seq, mode, decisionId: d._id }, d.outcome === 'execute' ? 0 : delayMs());
}
