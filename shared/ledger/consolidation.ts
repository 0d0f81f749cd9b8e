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

/** A peer's measures for the engine, from its projection and its kept series. */
function peerOf(deps: ConsolidationDeps, account: StoredAccount, series: StoredSnapshot[]): Peer {
  const r = returnsOf(series.slice(-SERIES_DAYS));
  return {
    accountId: account._id,
    state: account.state,
    equity: loadUnits('cash', account.equityCents),
    positions: account.head.positions.length,
    maxPositions: tierRules(deps.config, account.tier, account.config).maxPositions,
    annualReturn: annualised(r, 20),
    volatility: r.length >= 20 ? annualVolatility(r) : null,
  };
}

/**
 * The engine's inputs for a page of accounts, measured from their snapshots, journals and
 * hierarchy, with each thing read once for the page: the closes of every symbol held, the
 * ancestors a level at a time, the children of every parent and the roots of every owner in one
 * read each, and the series of the page and its peers together (`trailingMany`). Equity is the head
 * valued at today's closes; fees are the fee entries of the cost window; gains the flow-adjusted
 * change of value over the same window. Advisory: a merge it proposes checks the accounts again
 * when it runs (the saga's own guards), so a page read a moment before a change cannot move money.
 */
export async function measurePage(deps: ConsolidationDeps, accounts: StoredAccount[], manual: boolean): Promise<Map<string, AccountInputs>> {
  const c = deps.config.consolidation;
  const today = deps.clock.today();
  const known = new Map(accounts.map((a) => [a._id, a]));
  // Ancestors, a level at a time, as deep as the depth rule looks.
  let wanted = accounts.map((a) => a.parentId).filter((id): id is string => id !== null && !known.has(id));
  for (let level = 0; level <= c.hierarchyDepthMax && wanted.length > 0; level++) {
    const found = await deps.stores.accounts.getMany(wanted);
    for (const a of found.values()) known.set(a._id, a);
    wanted = [...found.values()].map((a) => a.parentId).filter((id): id is string => id !== null && !known.has(id));
  }
  const children = await deps.stores.accounts.firstOfGroups('parentId', accounts.flatMap((a) => (a.parentId ? [a.parentId] : [])), PEERS_MAX + 1);
  // A root's peers are its owner's other roots of its tier (an ownerless root has none): one grouped read a tier.
  const roots = new Map<string, StoredAccount[]>();
  for (const tier of new Set(accounts.filter((a) => a.parentId === null && a.ownerId).map((a) => a.tier))) {
    const owners = accounts.flatMap((a) => (a.parentId === null && a.ownerId && a.tier === tier ? [a.ownerId] : []));
    for (const [owner, group] of await deps.stores.accounts.firstOfGroups('ownerId', owners, PEERS_MAX + 1, tier)) roots.set(`${tier}\u0000${owner}`, group);
  }
  const relatedOf = (a: StoredAccount) =>
    (a.parentId ? children.get(a.parentId)! : a.ownerId ? roots.get(`${a.tier}\u0000${a.ownerId}`)! : []).filter((r) => r._id !== a._id && r.state !== 'CLOSED' && r.ownerId === a.ownerId);
  const peersOf = (a: StoredAccount) => {
    const parent = a.parentId ? known.get(a.parentId) : undefined;
    return [...relatedOf(a).slice(0, PEERS_MAX), ...(parent && parent.state !== 'CLOSED' ? [parent] : [])];
  };
  const series = await deps.snapshots.trailingMany([...accounts, ...accounts.flatMap(peersOf)].map((a) => a._id), today);
  const prices = await deps.stores.prices.lastCloses([...new Set(accounts.flatMap((a) => a.head.positions.map((p) => p.symbol)))], today);
  const peers = new Map<string, Peer>();
  const peer = (a: StoredAccount) => peers.get(a._id) ?? peers.set(a._id, peerOf(deps, a, series.get(a._id)!)).get(a._id)!;
  const since = new Date(Date.parse(`${today}T00:00:00Z`) - c.costWindowDays * 86_400_000).toISOString().slice(0, 10);
  const isSmall = (a: StoredAccount, equity = loadUnits('cash', a.equityCents)) => equity.lt(tierRules(deps.config, a.tier).minCapital);

  const out = new Map<string, AccountInputs>();
  for (const account of accounts) {
    const head = loadBalances(account.head);
    const equity = valuate(head, prices).equity;
    const trail = series.get(account._id)!.slice(-SERIES_DAYS);
    const window = trail.filter((s) => s.date >= since);
    let gains = new Decimal(0);
    for (let i = 1; i < window.length; i++) {
      const [prev, cur] = [window[i - 1]!, window[i]!];
      gains = gains.plus(loadUnits('cash', cur.equityCents).minus(loadUnits('cash', cur.netFlowCents)).minus(loadUnits('cash', prev.equityCents)));
    }
    const fees = window.slice(1).reduce((sum, p) => sum.plus(loadUnits('cash', p.feesCents ?? 0n)), new Decimal(0));
    let depth = 0;
    for (let up = account.parentId; up && depth <= c.hierarchyDepthMax; depth++) {
      const a = known.get(up);
      if (!a) break;
      up = a.parentId;
    }
    const parent = account.parentId ? known.get(account.parentId) : undefined;
    const related = relatedOf(account);
    out.set(account._id, {
      accountId: account._id,
      rules: tierRules(deps.config, account.tier, account.config),
      equity,
      cash: head.cash.minus(head.reserved),
      positions: head.positions.length,
      dailyReturns: returnsOf(trail),
      cashShares: trail.map((s) => (s.equityCents > 0n ? Number(s.cashCents) / Number(s.equityCents) : 0)),
      equities: trail.map((s) => loadUnits('cash', s.equityCents)),
      drawdown: trail.length > 0 ? -indexMeasures(indexStateOf(trail[trail.length - 1]!)).drawdown : 0,
      ageDays: Math.floor((deps.clock.now().getTime() - new Date(account.createdAt).getTime()) / 86_400_000),
      isChild: account.parentId !== null,
      holdsCash: account.config.holdsCash === true,
      fees,
      gains,
      windowDays: c.costWindowDays,
      depth,
      parent: parent && parent.state !== 'CLOSED' ? peer(parent) : null,
      siblings: related.slice(0, PEERS_MAX).map(peer),
      smallSiblingIds: account.parentId ? [...related.filter((a) => isSmall(a)).map((a) => a._id), ...(isSmall(account, equity) ? [account._id] : [])] : [],
      manual,
    });
  }
  return out;
}

/** One account's inputs (an operator's request, the API's assessment): a page of one. */
export async function measureInputs(deps: ConsolidationDeps, account: StoredAccount, manual: boolean): Promise<AccountInputs> {
  return (await measurePage(deps, [account], manual)).get(account._id)!;
}

export async function assessAccount(deps: ConsolidationDeps, account: StoredAccount, manual: boolean): Promise<{ inputs: AccountInputs; assessment: Assessment }> {
  const inputs = await measureInputs(deps, account, manual);
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

/**
 * Records what the scan found today for each account of a page where something fired, in one insert
 * (a re-run of the day finds its opportunities and adds none). Acting on them is the caller's.
 */
export async function recordOpportunities(
  deps: ConsolidationDeps,
  assessed: Array<{ account: StoredAccount; inputs: AccountInputs; assessment: Assessment }>,
): Promise<Map<string, { opportunity: StoredOpportunity; created: boolean }>> {
  const fired = assessed.filter((x) => x.assessment.fired.length > 0);
  const docs = fired.map(({ account, inputs, assessment: a }): StoredOpportunity => {
    const view = assessmentView(a, inputs);
    return {
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
    };
  });
  const results = await deps.opportunities.recordMany(docs);
  return new Map(results.map((r, i) => [fired[i]!.account._id, { opportunity: r.stored, created: r.created }]));
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
