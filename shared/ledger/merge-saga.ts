import type { MergeRepository, StoredMerge, StoredMergePlan, StoredNewTarget } from '../db/merge-repository.js';
import { loadBalances, loadPositions, storePositions } from '../db/stored-balances.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { type Balances, emptyBalances } from '../domain/balances.js';
import { type MergePlan, type MergeStrategy, planMerge, reconcileConfig, targetLimitsProblem } from '../domain/merge.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { STATE_ALLOWS } from '../domain/states.js';
import { tierRules } from '../domain/tiers.js';
import type { Decimal } from '../money/decimal.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type StoredAccount, newAccount } from '../db/account-repository.js';
import { type LedgerDeps, sagaPoster } from './post.js';

export interface MergeDeps extends LedgerDeps {
  merges: MergeRepository;
}

/**
 * A merge is identified by its source, the journal seq it was requested on and its target: a repeat
 * names the same merge; two targets for one state of the source race on the source's move to
 * MERGING, which only one can make.
 */
export const mergeIdOf = (sourceId: string, seq: number, targetId: string) => `merge_${sourceId}_${seq}_${sha256Hex(targetId).slice(0, 8)}`;
/** Several sources merged into one new account: the group and its account follow from the sources' states. */
export const mergeGroupIdOf = (sources: Array<{ id: string; seq: number }>) =>
  `mgrp_${sha256Hex(sources.map((s) => `${s.id}@${s.seq}`).sort().join(',')).slice(0, 24)}`;
export const newTargetIdOf = (groupId: string) => `acc_n${sha256Hex(groupId).slice(0, 19)}`;

const STEPS_MAX = 10;
const ACCEPTS_MERGES = STATE_ALLOWS.transferIn as readonly string[];

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

async function headOf(deps: LedgerDeps, account: StoredAccount): Promise<Balances> {
  const head = await deps.stores.journal.head(account._id, account.headSeq);
  return head ? loadBalances(head.after) : emptyBalances('SAFE');
}

/** Why a merge may not start now, checked before it is requested and again inside the saga; null if it may. */
export async function mergePrerequisite(deps: MergeDeps, m: Pick<StoredMerge, 'sourceId' | 'targetId' | 'newTarget'>): Promise<Refusal | null> {
  const source = await deps.stores.accounts.get(m.sourceId);
  if (!source) return refuse('account_not_found', `no account ${m.sourceId}`);
  const b = await headOf(deps, source);
  if (b.state !== 'ACTIVE') return refuse('invalid_state', `the source is ${b.state}; merges start from ACTIVE`);
  if (!b.reserved.isZero()) return refuse('invalid_state', 'a transfer holds part of the source\'s cash; the merge waits until it settles');
  if (m.newTarget) return m.newTarget.ownerId === source.ownerId ? null : refuse('owner_mismatch', 'a new target belongs to the sources\' owner');
  if (m.targetId === m.sourceId) return refuse('same_account', 'an account cannot merge into itself');
  const target = await deps.stores.accounts.get(m.targetId);
  if (!target) return refuse('account_not_found', `no target account ${m.targetId}`);
  if (target.ownerId !== source.ownerId) return refuse('owner_mismatch', 'source and target belong to different owners');
  const t = await headOf(deps, target);
  return ACCEPTS_MERGES.includes(t.state) ? null : refuse('invalid_state', `the target is ${t.state}; it takes merges when ACTIVE or SAFE`);
}

const storePlan = (p: MergePlan): StoredMergePlan => ({
  cashCents: storeUnits('cash', p.cash),
  positions: storePositions(p.positions),
  closesSource: p.closesSource,
});
const loadPlan = (s: StoredMergePlan): MergePlan => ({
  cash: loadUnits('cash', s.cashCents),
  positions: loadPositions(s.positions),
  closesSource: s.closesSource,
});
const partialOf = (m: StoredMerge) => (m.partial ? { amount: m.partial.amountCents !== null ? loadUnits('cash', m.partial.amountCents) : undefined, symbols: m.partial.symbols } : null);

/**
 * Drives a merge from whatever phase it is in to COMPLETED, ROLLED_BACK or REJECTED (SPEC §5.3). Every
 * step is a journal entry keyed by the merge, so a replay finds its steps done and goes on; the plan is
 * stored once. The target's limits are checked when planning and again inside the entry that credits
 * it (on its head, under the append): a violation at either point rolls back. From the credit on, the
 * merge can only complete.
 */
export async function runMerge(deps: MergeDeps, mergeId: string, jobId: string | null): Promise<StoredMerge> {
  let m = (await deps.merges.get(mergeId))!;
  const post = sagaPoster(deps, m._id, m.requestedBy, jobId);
  const advance = async (to: StoredMerge['phase'], patch: Partial<StoredMerge> = {}) => {
    await deps.merges.advance(m._id, m.phase, to, patch, deps.clock.now());
    m = { ...m, ...patch, phase: to };
  };
  const reject = (r: Refusal) => advance('REJECTED', { error: { code: r.code, message: r.message }, completedAt: deps.clock.now() });
  const rollBackWith = async (r: Refusal) => {
    await rollBackMerge(deps, m, r, jobId);
    return (await deps.merges.get(m._id))!;
  };

  for (let i = 0; i < STEPS_MAX; i++) {
    switch (m.phase) {
      case 'REQUESTED': {
        // A crash after the source went MERGING but before the phase was saved: this merge started it.
        if (await deps.stores.journal.byKey(`${m._id}:merging`)) {
          await advance('MERGING', { startedAt: m.startedAt ?? deps.clock.now() });
          break;
        }
        const problem = await mergePrerequisite(deps, m);
        if (problem) {
          await reject(problem);
          break;
        }
        const moved = await post(m.sourceId, 'merging', () => ({ kind: 'state-change', to: 'MERGING', reason: `merge ${m._id} into ${m.targetId}` }), false);
        if (moved.status === 'refused') {
          await reject(moved.refusal);
          break;
        }
        faultPoint('merge.after-merging');
        await advance('MERGING', { startedAt: deps.clock.now() });
        break;
      }
      case 'MERGING': {
        if (m.newTarget) await openNewTarget(deps, m, m.newTarget, jobId);
        if (!m.plan) {
          const planned = await planNow(deps, m);
          if ('code' in planned) return rollBackWith(planned);
          const lineage = planned.positions.map((p) => ({ ...storePositions([p])[0]!, fromAccountId: m.sourceId }));
          m = { ...m, ...(await deps.merges.setPlanOnce(m._id, storePlan(planned), lineage)), phase: m.phase };
        }
        const plan = loadPlan(m.plan!);
        if (!plan.cash.isZero()) await post(m.sourceId, 'hold', () => ({ kind: 'hold', amount: plan.cash, transferId: m._id }));
        faultPoint('merge.after-hold');
        await advance('HELD');
        break;
      }
      case 'HELD': {
        const plan = loadPlan(m.plan!);
        const source = (await deps.stores.accounts.get(m.sourceId))!;
        const credited = await post(m.targetId, 'merge-in', async (head, target) => {
          if (!ACCEPTS_MERGES.includes(head.state)) return refuse('invalid_state', `the target is ${head.state}`);
          const prices = await deps.stores.prices.lastCloses([...head.positions, ...plan.positions].map((p) => p.symbol), deps.clock.today());
          const rules = tierRules(deps.config, target.tier, reconcileConfig(target.config, source.config));
          return targetLimitsProblem(head, plan, rules, prices) ?? { kind: 'merge-in', mergeId: m._id, counterpartyId: m.sourceId, cash: plan.cash, positions: plan.positions };
        });
        if (credited.status === 'refused') return rollBackWith(credited.refusal);
        faultPoint('merge.after-merge-in');
        await advance('MOVED');
        break;
      }
      case 'MOVED': {
        const plan = loadPlan(m.plan!);
        await post(m.sourceId, 'merge-out', () => ({ kind: 'merge-out', mergeId: m._id, counterpartyId: m.targetId, cash: plan.cash, positions: plan.positions }));
        faultPoint('merge.after-merge-out');
        await advance('POSTED');
        break;
      }
      case 'POSTED': {
        const [source, target] = await Promise.all([deps.stores.accounts.get(m.sourceId), deps.stores.accounts.get(m.targetId)]);
        const now = deps.clock.now();
        await deps.stores.accounts.updateProfile(m.targetId, { config: reconcileConfig(target!.config, source!.config) }, now);
        if (loadPlan(m.plan!).closesSource) {
          await deps.stores.accounts.recordMerge(m.sourceId, m.targetId, source!.parentId, now);
          await post(m.sourceId, 'source-close', () => ({ kind: 'state-change', to: 'CLOSED', reason: `merged into ${m.targetId} by ${m._id}` }), false);
        } else {
          await post(m.sourceId, 'source-active', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `partial merge ${m._id} completed` }));
        }
        faultPoint('merge.after-close');
        await advance('COMPLETED', { completedAt: deps.clock.now() });
        break;
      }
      case 'COMPLETED':
      case 'ROLLED_BACK':
      case 'REJECTED':
        return m;
    }
  }
  throw new Error(`merge ${m._id} did not settle within ${STEPS_MAX} steps (phase ${m.phase})`);
}

/** Strategy `new`: the group's account, opened once by whichever of its merges comes first. */
async function openNewTarget(deps: MergeDeps, m: StoredMerge, t: StoredNewTarget, jobId: string | null): Promise<void> {
  const now = deps.clock.now();
  await deps.stores.accounts.createIfAbsent(newAccount({ _id: m.targetId, tier: t.tier, name: t.name, ownerId: t.ownerId, parentId: t.parentId, config: {}, state: 'ACTIVE' }, now));
  await sagaPoster(deps, m.groupId ?? m._id, m.requestedBy, jobId)(m.targetId, 'open', () => ({ kind: 'open', state: 'ACTIVE' }));
}

/** Plans on the source's head (now MERGING, so only this saga changes it) and checks the target's limits. */
async function planNow(deps: MergeDeps, m: StoredMerge): Promise<MergePlan | Refusal> {
  const [source, target] = await Promise.all([deps.stores.accounts.get(m.sourceId), deps.stores.accounts.get(m.targetId)]);
  if (!target) return refuse('account_not_found', `no target account ${m.targetId}`);
  const [s, t] = await Promise.all([headOf(deps, source!), headOf(deps, target)]);
  if (!ACCEPTS_MERGES.includes(t.state)) return refuse('invalid_state', `the target is ${t.state}`);
  const plan = planMerge(s, partialOf(m));
  if ('code' in plan) return plan;
  const prices = await deps.stores.prices.lastCloses([...t.positions, ...plan.positions].map((p) => p.symbol), deps.clock.today());
  return targetLimitsProblem(t, plan, tierRules(deps.config, target.tier, reconcileConfig(target.config, source!.config)), prices) ?? plan;
}

/**
 * Undoes what this merge did before the target was credited: gives back its hold and returns the
 * source to ACTIVE, each only if this merge's own entry for it exists. A new target nobody moved into
 * is closed again (refused, and so kept, if another merge of its group credited it). Safe to repeat.
 */
export async function rollBackMerge(deps: MergeDeps, m: StoredMerge, reason: { code: string; message: string }, jobId: string | null): Promise<void> {
  if (['MOVED', 'POSTED', 'COMPLETED', 'ROLLED_BACK', 'REJECTED'].includes(m.phase)) return;
  if (await deps.stores.journal.byKey(`${m._id}:merge-in`)) return; // credited: recovery completes it
  const post = sagaPoster(deps, m._id, m.requestedBy, jobId);
  const hold = await deps.stores.journal.byKey(`${m._id}:hold`);
  if (hold) await post(m.sourceId, 'release', () => ({ kind: 'release', amount: loadUnits('cash', hold.op.amountCents), transferId: m._id }));
  if (await deps.stores.journal.byKey(`${m._id}:merging`)) await post(m.sourceId, 'source-restore', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `merge ${m._id} rolled back` }));
  if (m.newTarget && m.groupId) {
    const others = (await deps.merges.ofGroup(m.groupId)).filter((o) => o._id !== m._id && !['ROLLED_BACK', 'REJECTED'].includes(o.phase));
    if (others.length === 0 && (await deps.stores.accounts.get(m.targetId))) {
      await post(m.targetId, 'target-close', () => ({ kind: 'state-change', to: 'CLOSED', reason: `merge group ${m.groupId} rolled back` }), false);
    }
  }
  await deps.merges.advance(m._id, m.phase, 'ROLLED_BACK', { error: { code: reason.code, message: reason.message }, completedAt: deps.clock.now() }, deps.clock.now());
}
