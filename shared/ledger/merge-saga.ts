import { type StoredAccount, newAccount } from '../db/account-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { MERGE_DONE, type MergePhase, type MergeRepository, type StoredMerge, type StoredNewTarget } from '../db/merge-repository.js';
import { storePositions } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { type Balances, ZERO } from '../domain/balances.js';
import type { Move, Operation } from '../domain/ledger.js';
import { type MergeStrategy, mergePlanValue, planMerge, reconcileConfig, targetLimitsProblem } from '../domain/merge.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { STATE_ALLOWS } from '../domain/states.js';
import { tierRules } from '../domain/tiers.js';
import type { Decimal } from '../money/decimal.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type LedgerDeps, confirmedProblem, peekAccount } from './post.js';
import { sagaSteps } from './saga-steps.js';

export interface MergeDeps extends LedgerDeps {
  merges: MergeRepository;
}

/**
 * A merge is identified by its source, the journal seq it was requested on and its target: a repeat
 * names the same merge; two targets for one state of the source race on the source's start, which
 * only one can make.
 */
export const mergeIdOf = (sourceId: string, seq: number, targetId: string) => `merge_${sourceId}_${seq}_${sha256Hex(targetId).slice(0, 8)}`;
/** Several sources merged into one new account: the group and its account follow from the sources' states. */
export const mergeGroupIdOf = (sources: Array<{ id: string; seq: number }>) =>
  `mgrp_${sha256Hex(sources.map((s) => `${s.id}@${s.seq}`).sort().join(',')).slice(0, 24)}`;
export const newTargetIdOf = (groupId: string) => `acc_n${sha256Hex(groupId).slice(0, 19)}`;

const ACCEPTS_MERGES = STATE_ALLOWS.transferIn as readonly string[];
const RANK: Record<MergePhase, number> = { REQUESTED: 0, MERGING: 1, HELD: 2, MOVED: 3, POSTED: 4, COMPLETED: 5, ROLLED_BACK: 5, REJECTED: 5 };

export interface MergeRequest {
  sourceId: string;
  sourceSeq: number;
  targetId: string;
  strategy: MergeStrategy;
  partial: { amount?: Decimal | undefined; symbols?: string[] | undefined } | null;
  newTarget: StoredNewTarget | null;
  groupId: string | null;
  opportunityId: string | null;
  requestedBy: string;
  scheduledFor: Date | null;
}

export async function requestMerge(deps: MergeDeps, r: MergeRequest): Promise<{ merge: StoredMerge; created: boolean }> {
  const now = deps.clock.now();
  return deps.merges.getOrCreate({
    _id: mergeIdOf(r.sourceId, r.sourceSeq, r.targetId),
    groupId: r.groupId,
    sourceId: r.sourceId,
    targetId: r.targetId,
    strategy: r.strategy,
    partial: r.partial ? { amountCents: r.partial.amount ? storeUnits('cash', r.partial.amount) : null, symbols: r.partial.symbols ?? [] } : null,
    newTarget: r.newTarget,
    sourceSeq: r.sourceSeq,
    phase: 'REQUESTED',
    plan: null,
    lineage: [],
    opportunityId: r.opportunityId,
    requestedBy: r.requestedBy,
    requestedAt: now,
    scheduledFor: r.scheduledFor,
    startedAt: null,
    completedAt: null,
    error: null,
    updatedAt: now,
  });
}

const partialOf = (m: Pick<StoredMerge, 'partial'>) => (m.partial ? { amount: m.partial.amountCents !== null ? loadUnits('cash', m.partial.amountCents) : undefined, symbols: m.partial.symbols } : null);

type MergeSpec = Pick<StoredMerge, '_id' | 'sourceId' | 'targetId' | 'newTarget' | 'partial'>;

/** Why the target cannot take the move now (reads the target: the credit's append decides again); null if it can. */
const targetProblem = (deps: MergeDeps, m: MergeSpec, source: StoredAccount, plan: Pick<Move, 'cash' | 'positions'>) =>
  confirmedProblem((fresh) => targetProblemAsRead(deps, m, source, plan, fresh));

async function targetProblemAsRead(deps: MergeDeps, m: MergeSpec, source: StoredAccount, plan: Pick<Move, 'cash' | 'positions'>, fresh: boolean): Promise<Refusal | null> {
  if (m.newTarget) return m.newTarget.ownerId === source.ownerId ? null : refuse('owner_mismatch', "a new target belongs to the sources' owner");
  if (m.targetId === m.sourceId) return refuse('same_account', 'an account cannot merge into itself');
  const target = await peekAccount(deps, m.targetId, { fresh });
  if (!target) return refuse('account_not_found', `no target account ${m.targetId}`);
  if (target.account.ownerId !== source.ownerId) return refuse('owner_mismatch', 'source and target belong to different owners');
  if (!target.head) return refuse('account_not_open', `the target ${m.targetId} is not open`);
  if (!ACCEPTS_MERGES.includes(target.head.state) || target.head.owner) return refuse('invalid_state', `the target is ${target.head.state}; it takes merges when ACTIVE or SAFE`);
  return limitsProblem(deps, target.head, target.account, source, plan);
}

async function limitsProblem(deps: MergeDeps, targetHead: Balances, target: StoredAccount, source: StoredAccount, plan: Pick<Move, 'cash' | 'positions'>): Promise<Refusal | null> {
  const prices = await deps.stores.prices.lastCloses([...targetHead.positions, ...plan.positions].map((p) => p.symbol), deps.clock.today());
  return targetLimitsProblem(targetHead, plan, tierRules(deps.config, target.tier, reconcileConfig(target.config, source.config)), prices);
}

/**
 * The source's start entry on the head given, or why it may not start: the source ACTIVE, held by no
 * saga, nothing reserved, the plan possible, the target able to take it. Run inside the start's
 * append (on the head it lands on) and before a merge is requested.
 */
async function startOf(deps: MergeDeps, m: MergeSpec, head: Balances, source: StoredAccount): Promise<Operation | Refusal> {
  if (head.state !== 'ACTIVE') return refuse('invalid_state', `the source is ${head.state}; merges start from ACTIVE`);
  if (head.owner) return refuse('account_locked', `the source belongs to ${head.owner}`);
  if (!head.reserved.isZero()) return refuse('invalid_state', "a transfer holds part of the source's cash; the merge waits until it settles");
  const plan = planMerge(head, partialOf(m));
  if ('code' in plan) return plan;
  const problem = await targetProblem(deps, m, source, plan);
  if (problem) return problem;
  const prices = await deps.stores.prices.lastCloses(plan.positions.map((p) => p.symbol), deps.clock.today());
  return { kind: 'merge-start', mergeId: m._id, counterpartyId: m.targetId, closesSource: plan.closesSource, cash: plan.cash, positions: plan.positions, value: mergePlanValue(plan, prices) };
}

/** Why a merge may not start now, read without writing anything; null if it may. */
export async function mergePrerequisite(deps: MergeDeps, m: Pick<StoredMerge, 'sourceId' | 'targetId' | 'newTarget'> & Partial<Pick<StoredMerge, 'partial'>>): Promise<Refusal | null> {
  const source = await peekAccount(deps, m.sourceId);
  if (!source) return refuse('account_not_found', `no account ${m.sourceId}`);
  if (!source.head) return refuse('account_not_open', `account ${m.sourceId} is not open`);
  const op = await startOf(deps, { _id: 'merge-prerequisite', partial: null, ...m }, source.head, source.account);
  return 'kind' in op ? null : op;
}

function moveOf(start: StoredEntry): Move & { closesSource: boolean } {
  const op = loadOperation(start.kind, start.op);
  if (op.kind !== 'merge-start') throw new Error(`entry ${start.idempotencyKey} is a ${op.kind}, not a merge start`);
  return { cash: op.cash, positions: op.positions, value: op.value, closesSource: op.closesSource };
}

function recordOf(deps: MergeDeps, start: StoredMerge) {
  let m = start;
  return {
    get: () => m,
    async moveTo(to: MergePhase, patch: Partial<StoredMerge> = {}): Promise<void> {
      if (RANK[m.phase] >= RANK[to]) return;
      // Whoever reads the merge as ended reads its accounts' projections as of its end.
      if (MERGE_DONE.includes(to)) await deps.stores.projector.flush();
      await deps.hooks?.beforeWrite?.(`merge-phase ${to}`);
      if (await deps.merges.advance(m._id, m.phase, to, patch, deps.clock.now())) m = { ...m, ...patch, phase: to };
      else m = (await deps.merges.get(m._id))!;
    },
  };
}

/**
 * Drives a merge to COMPLETED, ROLLED_BACK or REJECTED, each step an entry keyed by the merge: the
 * source's start (MERGING, owned, cash held, plan recorded) → a new target's open, for strategy `new`
 * → the target's credit with netting and its limits checked on its head, the point of no return → the
 * source's debit → the target's configuration reconciled, children re-parented → the source CLOSED
 * (or back to ACTIVE after a partial merge). A refusal before the credit rolls back; after it, retried.
 */
export async function runMerge(deps: MergeDeps, mergeId: string, jobId: string | null): Promise<StoredMerge> {
  const loaded = await deps.merges.get(mergeId);
  if (!loaded) throw new Error(`no merge ${mergeId}`);
  if (MERGE_DONE.includes(loaded.phase)) return loaded;
  const record = recordOf(deps, loaded);
  const m = loaded;
  const steps = sagaSteps(deps, m._id, 'merge', m.requestedBy, jobId);
  const started = RANK[record.get().phase] >= RANK.MERGING ? await steps.recorded('start') : null;
  const start = started ?? (await steps.post(m.sourceId, 'start', (head, source) => startOf(deps, m, head, source)));
  if (start.status === 'refused') {
    await record.moveTo(start.refusal.code === 'aborted' ? 'ROLLED_BACK' : 'REJECTED', { error: { code: start.refusal.code, message: start.refusal.message }, completedAt: deps.clock.now() });
    return record.get();
  }
  const move = moveOf(start.entry);
  const lineage = move.positions.map((p) => ({ ...storePositions([p])[0]!, fromAccountId: m.sourceId }));
  await record.moveTo('MERGING', { startedAt: record.get().startedAt ?? deps.clock.now(), plan: { cashCents: storeUnits('cash', move.cash), positions: storePositions(move.positions), closesSource: move.closesSource }, lineage });
  faultPoint('merge.after-start');

  if (RANK[record.get().phase] < RANK.MOVED) {
    if (m.newTarget) await openNewTarget(deps, m, m.newTarget, jobId);
    const source = (await peekAccount(deps, m.sourceId))!.account;
    const credited = await steps.post(m.targetId, 'in', async (head, target) => {
      return (await limitsProblem(deps, head, target, source, move)) ?? { kind: 'merge-in', mergeId: m._id, counterpartyId: m.sourceId, ...move };
    });
    if (credited.status === 'refused') return (await abortMerge(deps, record.get(), credited.refusal, jobId)).merge;
    faultPoint('merge.after-merge-in');
    await record.moveTo('MOVED');
  }

  // The target has the money: from here the merge only goes forward.
  await steps.must(m.sourceId, 'out', () => ({ kind: 'merge-out', mergeId: m._id, counterpartyId: m.targetId, ...move }));
  faultPoint('merge.after-merge-out');
  const source = (await deps.stores.accounts.get(m.sourceId))!;
  const now = deps.clock.now();
  await deps.hooks?.beforeWrite?.(`merge-config ${m.targetId}`);
  await deps.stores.accounts.updateConfig(m.targetId, (current) => reconcileConfig(current, source.config), now);
  if (move.closesSource) {
    await deps.hooks?.beforeWrite?.(`merge-hierarchy ${m.sourceId}`);
    await deps.stores.accounts.recordMerge(m.sourceId, m.targetId, now);
    await steps.must(m.sourceId, 'close', () => ({ kind: 'state-change', to: 'CLOSED', reason: `merged into ${m.targetId} by ${m._id}` }));
  } else {
    await steps.must(m.sourceId, 'active', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `partial merge ${m._id} completed` }));
  }
  faultPoint('merge.after-close');
  await record.moveTo('COMPLETED', { completedAt: deps.clock.now() });
  return record.get();
}

/** Strategy `new`: the group's account, opened once by whichever of its merges comes first. */
async function openNewTarget(deps: MergeDeps, m: StoredMerge, t: StoredNewTarget, jobId: string | null): Promise<void> {
  await deps.hooks?.beforeWrite?.(`target-document ${m.targetId}`);
  await deps.stores.accounts.createIfAbsent(newAccount({ _id: m.targetId, tier: t.tier, name: t.name, ownerId: t.ownerId, parentId: t.parentId, config: {}, state: 'ACTIVE' }, deps.clock.now()));
  await sagaSteps(deps, m.groupId ?? m._id, 'merge', m.requestedBy, jobId).must(m.targetId, 'open', () => ({ kind: 'open', state: 'ACTIVE', owner: null, deposit: ZERO }));
}

/**
 * Strategy `new`, rolling back: a target no other live merge of the group can still use is closed if
 * it was opened (policy applies: one another merge credited is not empty, and stays open), and if it
 * never was, its opening is claimed and its document, which holds nothing, removed.
 */
async function closeUnusedTarget(deps: MergeDeps, m: StoredMerge, jobId: string | null): Promise<void> {
  const others = (await deps.merges.ofGroup(m.groupId!)).filter((o) => o._id !== m._id && o.phase !== 'ROLLED_BACK' && o.phase !== 'REJECTED');
  if (others.length > 0) return;
  const target = await peekAccount(deps, m.targetId, { fresh: true });
  if (!target) return;
  if (target.head) {
    if (target.head.state !== 'CLOSED') await sagaSteps(deps, m._id, 'merge', m.requestedBy, jobId).post(m.targetId, 'target-close', () => ({ kind: 'state-change', to: 'CLOSED', reason: `merge group ${m.groupId} rolled back` }));
    return;
  }
  const open = await sagaSteps(deps, m.groupId!, 'merge', m.requestedBy, jobId).claim(m.sourceId, 'open', `merge group ${m.groupId} rolled back before its target opened`);
  if (open.claimed) {
    await deps.hooks?.beforeWrite?.(`target-delete ${m.targetId}`);
    await deps.stores.accounts.deleteUnopened(m.targetId);
  }
}

/**
 * Rolls a merge back if the target has not been credited, deciding from its keys: the credit's key is
 * claimed first (if the target was credited, the merge can only go forward: `committed`), then the
 * start (one that applied gives back its hold and returns the source to ACTIVE). A new target nobody
 * moved into is closed again (refused, and so kept, if another merge of its group credited it).
 */
export async function abortMerge(deps: MergeDeps, m: StoredMerge, reason: { code: string; message: string }, jobId: string | null): Promise<{ merge: StoredMerge; committed: boolean }> {
  const record = recordOf(deps, m);
  const steps = sagaSteps(deps, m._id, 'merge', m.requestedBy, jobId);
  const why = `merge ${m._id} rolled back: ${reason.message}`.slice(0, 500);
  const credit = await steps.claim(m.sourceId, 'in', why);
  if (!credit.claimed) return { merge: record.get(), committed: true };
  const start = await steps.claim(m.sourceId, 'start', why);
  if (!start.claimed) {
    const move = moveOf(start.entry);
    if (!move.cash.isZero()) await steps.must(m.sourceId, 'release', () => ({ kind: 'release', amount: move.cash, transferId: m._id }));
    await steps.must(m.sourceId, 'restore', () => ({ kind: 'state-change', to: 'ACTIVE', reason: why }));
  }
  if (m.newTarget && m.groupId) await closeUnusedTarget(deps, m, jobId);
  const rejected = start.claimed && start.refusal.code !== 'aborted';
  const error = rejected && start.claimed ? { code: start.refusal.code, message: start.refusal.message } : { code: reason.code, message: reason.message };
  await record.moveTo(rejected ? 'REJECTED' : 'ROLLED_BACK', { error, completedAt: deps.clock.now() });
  return { merge: record.get(), committed: false };
}
