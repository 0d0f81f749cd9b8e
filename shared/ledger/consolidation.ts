import type { Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import type { StoredAccount } from '../db/account-repository.js';
import type { StoredMerge } from '../db/merge-repository.js';
import { jobId } from '../contracts/jobs.js';
import { QUEUE } from '../contracts/queues.js';
import type { Producer } from '../queue/producer.js';
import { OpportunityRepository, type StoredOpportunity, opportunityIdOf } from '../db/opportunity-repository.js';
import { ReviewRepository } from '../db/review-repository.js';
import { SnapshotRepository, type StoredSnapshot } from '../db/snapshot-repository.js';
import type { Clock } from '../runtime/clock.js';
import type { LedgerStores } from './stores.js';
import { indexStateOf } from './snapshot.js';
import { indexMeasures } from '../domain/value-index.js';
import { loadBalances } from '../db/stored-balances.js';
import { loadUnits } from '../db/stored-units.js';
import { type AccountInputs, type Assessment, type Peer, annualised, annualVolatility, assessConsolidation } from '../domain/consolidation.js';
import type { MergeStrategy } from '../domain/merge.js';
import { TIER_NAMES, tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import { type MergeDeps, mergeGroupIdOf, newTargetIdOf, requestMerge } from './merge-saga.js';

export interface ConsolidationDeps extends MergeDeps {
  snapshots: SnapshotRepository;
  opportunities: OpportunityRepository;
  reviews: ReviewRepository;
  config: Pick<Config, 'tiers' | 'consolidation' | 'reviews'>;
}

/** Peers one assessment compares with at most: a root's siblings are the owner's other roots of its tier. */
const PEERS_MAX = 20;
const SERIES_DAYS = 253;

const returnsOf = (series: StoredSnapshot[]) => series.map((s) => s.dailyReturn).filter((r): r is number => r !== null);

/** Measures of accounts read during one scan batch, so a parent shared by many children is read once. */
export class PeerCache {
  private readonly peers = new Map<string, Promise<Peer>>();
  constructor(private readonly deps: ConsolidationDeps) {}

  get(account: StoredAccount): Promise<Peer> {
    let p = this.peers.get(account._id);
    if (!p) {
      p = (async () => {
        const r = returnsOf((await this.deps.snapshots.trailing(account._id, this.deps.clock.today())).slice(-SERIES_DAYS));
        return {
          accountId: account._id,
          state: account.state,
          equity: loadUnits('cash', account.equityCents),
          positions: account.head.positions.length,
          maxPositions: tierRules(this.deps.config, account.tier, account.config).maxPositions,
          annualReturn: annualised(r, 20),
          volatility: r.length >= 20 ? annualVolatility(r) : null,
        };
      })();
      this.peers.set(account._id, p);
    }
    return p;
  }
}

/**
 * The engine's inputs for one account, measured from its snapshots, journal and hierarchy. Equity is
 * the head valued at today's closes; fees are the fee entries of the cost window; gains the
 * flow-adjusted change of value over the same window.
 */
export async function measureInputs(deps: ConsolidationDeps, account: StoredAccount, manual: boolean, cache = new PeerCache(deps)): Promise<AccountInputs> {
  const c = deps.config.consolidation;
  const today = deps.clock.today();
  const head = loadBalances(account.head);
  const prices = await deps.stores.prices.lastCloses(head.positions.map((p) => p.symbol), today);
  const equity = valuate(head, prices).equity;
  const since = new Date(Date.parse(`${today}T00:00:00Z`) - c.costWindowDays * 86_400_000);
  const series = (await deps.snapshots.trailing(account._id, today)).slice(-SERIES_DAYS);
  const window = series.filter((s) => s.date >= since.toISOString().slice(0, 10));
  let gains = new Decimal(0);
  for (let i = 1; i < window.length; i++) {
    const [prev, cur] = [window[i - 1]!, window[i]!];
    gains = gains.plus(loadUnits('cash', cur.equityCents).minus(loadUnits('cash', cur.netFlowCents)).minus(loadUnits('cash', prev.equityCents)));
  }
  const fees = window.slice(1).reduce((sum, p) => sum.plus(loadUnits('cash', p.feesCents ?? 0n)), new Decimal(0));

  let depth = 0;
  let parent: StoredAccount | null = null;
  for (let up = account.parentId; up && depth <= c.hierarchyDepthMax; depth++) {
    const a = await deps.stores.accounts.get(up);
    if (!a) break;
    parent ??= a;
    up = a.parentId;
  }
  const related = (
    account.parentId
      ? await deps.stores.accounts.children(account.parentId, PEERS_MAX + 1)
      : await deps.stores.accounts.list({ ownerId: account.ownerId ?? undefined, tier: account.tier, parentId: undefined }, { limit: PEERS_MAX + 1 }).then((l) => l.filter((a) => a.parentId === null))
  ).filter((a) => a._id !== account._id && a.state !== 'CLOSED' && a.ownerId === account.ownerId);
  const siblings = await Promise.all(related.slice(0, PEERS_MAX).map((a) => cache.get(a)));
  const isSmall = (a: StoredAccount) => loadUnits('cash', a.equityCents).lt(tierRules(deps.config, a.tier).minCapital);
  const smallSiblingIds = account.parentId ? [...related.filter(isSmall).map((a) => a._id), ...(equity.lt(tierRules(deps.config, account.tier).minCapital) ? [account._id] : [])] : [];

  return {
    accountId: account._id,
    rules: tierRules(deps.config, account.tier, account.config),
    equity,
    cash: head.cash.minus(head.reserved),
    positions: head.positions.length,
    dailyReturns: returnsOf(series),
    cashShares: series.map((s) => (s.equityCents > 0n ? Number(s.cashCents) / Number(s.equityCents) : 0)),
    equities: series.map((s) => loadUnits('cash', s.equityCents)),
    drawdown: series.length > 0 ? -indexMeasures(indexStateOf(series[series.length - 1]!)).drawdown : 0,
    ageDays: Math.floor((deps.clock.now().getTime() - new Date(account.createdAt).getTime()) / 86_400_000),
    isChild: account.parentId !== null,
    holdsCash: account.config.holdsCash === true,
    fees,
    gains,
    windowDays: c.costWindowDays,
    depth,
    parent: parent && parent.state !== 'CLOSED' ? await cache.get(parent) : null,
    siblings,
    smallSiblingIds,
    manual,
  };
}

export async function assessAccount(deps: ConsolidationDeps, account: StoredAccount, manual: boolean, cache?: PeerCache): Promise<{ inputs: AccountInputs; assessment: Assessment }> {
  const inputs = await measureInputs(deps, account, manual, cache);
  return { inputs, assessment: assessConsolidation(inputs, deps.config.consolidation) };
}

/** An assessment as JSON for storage and the API: decimals as strings, ratios as numbers. */
export function assessmentView(a: Assessment, inputs: AccountInputs) {
  return {
    assessment: {
      triggers: a.triggers,
      fired: a.fired,
      proposal: { ...a.proposal, amount: a.proposal.amount?.toFixed(2) ?? null },
      urgency: a.urgency,
      reliability: a.reliability,
      benefits: a.benefits,
      risk: a.risk,
      confidence: a.confidence,
      action: a.action,
    },
    inputs: {
      equity: inputs.equity.toFixed(2),
      cash: inputs.cash.toFixed(2),
      positions: inputs.positions,
      days: inputs.dailyReturns.length,
      fees: inputs.fees.toFixed(2),
      gains: inputs.gains.toFixed(2),
      windowDays: inputs.windowDays,
      depth: inputs.depth,
      parentId: inputs.parent?.accountId ?? null,
      siblings: inputs.siblings.map((s) => s.accountId),
      smallSiblingIds: inputs.smallSiblingIds,
    },
  };
}

export interface MergeOrder {
  sourceIds: string[];
  targetId: string | null;
  strategy: MergeStrategy;
  amount: Decimal | null;
  symbols: string[];
  requestedBy: string;
  opportunityId: string | null;
  scheduledFor: Date | null;
}

/**
 * Turns an order into merge records, one per source, on each source's current journal seq: the same
 * order on the same states names the same merges (a repeat never merges twice). Several sources with
 * no target, or strategy `new`, open one new account for the group.
 */
export async function requestMerges(deps: ConsolidationDeps, order: MergeOrder): Promise<string[]> {
  const sources: StoredAccount[] = [];
  for (const id of order.sourceIds) {
    const a = await deps.stores.accounts.get(id);
    if (a) sources.push(a);
  }
  if (sources.length === 0) return [];
  const isNew = order.strategy === 'new';
  const groupId = sources.length > 1 || isNew ? mergeGroupIdOf(sources.map((s) => ({ id: s._id, seq: s.headSeq }))) : null;
  const parents = new Set(sources.map((s) => s.parentId));
  const tier = TIER_NAMES[Math.max(...sources.map((s) => TIER_NAMES.indexOf(s.tier)))]!;
  const targetId = isNew ? newTargetIdOf(groupId!) : order.targetId;
  if (!targetId) return [];
  const ids: string[] = [];
  for (const s of sources) {
    const { merge } = await requestMerge(deps, {
      sourceId: s._id,
      sourceSeq: s.headSeq,
      targetId,
      strategy: order.strategy,
      partial: order.strategy === 'partial' ? { amount: order.amount ?? undefined, symbols: order.symbols } : null,
      newTarget: isNew ? { tier, name: `Consolidated ${tier} (${sources.length} accounts)`, ownerId: s.ownerId, parentId: parents.size === 1 ? [...parents][0]! : null } : null,
      groupId,
      opportunityId: order.opportunityId,
      requestedBy: order.requestedBy,
      scheduledFor: order.scheduledFor,
    });
    ids.push(merge._id);
  }
  return ids;
}

/** Records what the scan found for an account today; null when nothing fired. Acting on it is the caller's. */
export async function recordOpportunity(deps: ConsolidationDeps, account: StoredAccount, inputs: AccountInputs, a: Assessment): Promise<{ opportunity: StoredOpportunity; created: boolean } | null> {
  if (a.fired.length === 0) return null;
  const view = assessmentView(a, inputs);
  const r = await deps.opportunities.recordOnce({
    _id: opportunityIdOf(account._id, deps.clock.today()),
    accountId: account._id,
    ownerId: account.ownerId,
    date: deps.clock.today(),
    seq: account.headSeq,
    fired: a.fired,
    strategy: a.proposal.strategy,
    targetId: a.proposal.targetId,
    sourceIds: a.proposal.sourceIds,
    amount: a.proposal.amount?.toFixed(2) ?? null,
    urgency: a.urgency,
    confidence: a.confidence,
    action: a.action,
    assessment: view.assessment as unknown as Record<string, unknown>,
    inputs: view.inputs,
    mergeIds: [],
    reviewId: null,
    createdAt: deps.clock.now(),
  });
  return { opportunity: r.stored, created: r.created };
}

/** The order an opportunity proposes (auto-execution and an approved review carry it out alike). */
export const orderOf = (o: StoredOpportunity, requestedBy: string): MergeOrder => ({
  sourceIds: o.sourceIds,
  targetId: o.targetId,
  strategy: o.strategy as MergeStrategy,
  amount: o.amount ? new Decimal(o.amount) : null,
  symbols: [],
  requestedBy,
  opportunityId: o._id,
  scheduledFor: null,
});

/** What assessing and requesting merges needs, opened on one connection (scanner, API, tests). */
export async function openConsolidationDeps(mongo: Connection, stores: LedgerStores, config: ConsolidationDeps['config'], clock: Clock): Promise<ConsolidationDeps> {
  const merges = stores.merges;
  const [snapshots, opportunities, reviews] = [new SnapshotRepository(mongo), new OpportunityRepository(mongo), new ReviewRepository(mongo)];
  await Promise.all([snapshots.init(), opportunities.init(), reviews.init()]);
  return { stores, merges, snapshots, opportunities, reviews, config, clock };
}

/** Enqueues a merge's job, keyed by the merge; a scheduled merge waits as a delayed job until its time. */
export async function enqueueMerge(producer: Producer, merge: Pick<StoredMerge, '_id' | 'scheduledFor'>, now: Date): Promise<void> {
  const delay = merge.scheduledFor ? Math.max(0, new Date(merge.scheduledFor).getTime() - now.getTime()) : 0;
  await producer.enqueue(QUEUE.merge, 'execute', { mergeId: merge._id }, { jobId: jobId('merge', merge._id), ...(delay > 0 ? { delayMs: delay } : {}) });
}
