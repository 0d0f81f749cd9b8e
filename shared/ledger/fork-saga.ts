import { newAccount } from '../db/account-repository.js';
import type { ForkRepository, StoredFork, StoredForkPlan } from '../db/fork-repository.js';
import { loadBalances, loadPositions, storePositions } from '../db/stored-balances.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { emptyBalances } from '../domain/balances.js';
import { childLimitsProblem, forkEligibility, planFork, type ForkMode, type ForkPlan } from '../domain/fork.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type LedgerDeps, sagaPoster } from './post.js';

export interface ForkDeps extends LedgerDeps {
  forks: ForkRepository;
  cooldownHours: number;
}

/** A fork is identified by its parent and the journal seq it was decided on: one fork per state of the parent. */
export const forkIdOf = (parentId: string, seq: number) => `fork_${parentId}_${seq}`;
/** The child's id follows from the fork, so a replay finds the child it created. */
export const childIdOf = (forkId: string) => `acc_c${sha256Hex(forkId).slice(0, 19)}`;

const STEPS_MAX = 12;

export async function requestFork(
  deps: ForkDeps,
  r: { parentId: string; parentSeq: number; mode: ForkMode; symbols: string[]; requestedBy: string; decisionId: string | null },
): Promise<{ fork: StoredFork; created: boolean }> {
  const id = forkIdOf(r.parentId, r.parentSeq);
  const now = deps.clock.now();
  return deps.forks.getOrCreate({
    _id: id,
    parentId: r.parentId,
    childId: childIdOf(id),
    mode: r.mode,
    symbols: r.symbols,
    parentSeq: r.parentSeq,
    phase: 'REQUESTED',
    plan: null,
    decisionId: r.decisionId,
    requestedBy: r.requestedBy,
    requestedAt: now,
    startedAt: null,
    completedAt: null,
    error: null,
    updatedAt: now,
  });
}

/** Why a fork may not start now (SPEC §4.3), checked before and again inside the saga; null if it may. */
export async function forkPrerequisite(deps: ForkDeps, f: Pick<StoredFork, '_id' | 'parentId'> & Partial<Pick<StoredFork, 'mode' | 'symbols'>>): Promise<Refusal | null> {
  const account = await deps.stores.accounts.get(f.parentId);
  if (!account) return refuse('account_not_found', `no account ${f.parentId}`);
  const head = await deps.stores.journal.head(f.parentId, account.headSeq);
  const b = head ? loadBalances(head.after) : emptyBalances('SAFE');
  if (b.state !== 'ACTIVE') return refuse('invalid_state', `the account is ${b.state}; forks start from ACTIVE`);
  if (!b.reserved.isZero()) return refuse('invalid_state', 'a transfer holds part of the cash; the fork waits until it settles');
  const since = deps.clock.now().getTime() - deps.cooldownHours * 3600_000;
  for (const other of await deps.forks.ofParent(f.parentId)) {
    if (other._id === f._id) continue;
    if (['FORKING', 'HELD', 'CHILD_OPENED', 'MOVED', 'POSTED'].includes(other.phase)) return refuse('invalid_state', `fork ${other._id} is in progress`);
    if (other.startedAt && new Date(other.startedAt).getTime() > since) {
      return refuse('cooldown', `the account forked (or tried to) at ${new Date(other.startedAt).toISOString()}; forks are ${deps.cooldownHours} h apart`);
    }
  }
  const prices = await deps.stores.prices.lastCloses(b.positions.map((p) => p.symbol), deps.clock.today());
  const eligibility = forkEligibility(tierRules(deps.config, account.tier, account.config), valuate(b, prices).equity);
  if (!eligibility.eligible) return refuse('not_eligible', eligibility.reason);
  if (!f.mode) return null;
  // A split the child's tier cannot hold would only roll back (and start the cooldown): refuse it first.
  const plan = planFork(b, prices, eligibility.forkAmount, f.mode, f.symbols ?? []);
  if ('code' in plan) return plan;
  return childLimitsProblem(plan, tierRules(deps.config, eligibility.childTier, account.config), prices);
}

const storePlan = (forkAmount: ForkPlan['cash'], p: ForkPlan): StoredForkPlan => ({
  forkAmountCents: storeUnits('cash', forkAmount),
  cashCents: storeUnits('cash', p.cash),
  positions: storePositions(p.positions),
});
const loadPlan = (s: StoredForkPlan): ForkPlan => ({
  cash: loadUnits('cash', s.cashCents),
  positions: loadPositions(s.positions),
});

/**
 * Drives a fork from whatever phase it is in to COMPLETED, ROLLED_BACK or REJECTED (SPEC §4.4).
 * Every step is a journal entry keyed by the fork, so a replay after a crash finds its steps done and
 * goes on; the plan is stored once, so the replay moves exactly what the first run planned. Up to the
 * child's credit, a refusal rolls back; from then on the fork can only complete.
 */
export async function runFork(deps: ForkDeps, forkId: string, jobId: string | null): Promise<StoredFork> {
  let f = (await deps.forks.get(forkId))!;
  const post = sagaPoster(deps, f._id, f.requestedBy, jobId);
  const advance = async (to: StoredFork['phase'], patch: Partial<StoredFork> = {}) => {
    await deps.forks.advance(f._id, f.phase, to, patch, deps.clock.now());
    f = { ...f, ...patch, phase: to };
  };

  for (let i = 0; i < STEPS_MAX; i++) {
    switch (f.phase) {
      case 'REQUESTED': {
        // A crash after the parent went FORKING but before the phase was saved: this fork started it.
        if (await deps.stores.journal.byKey(`${f._id}:forking`)) {
          await advance('FORKING', { startedAt: f.startedAt ?? deps.clock.now() });
          break;
        }
        const problem = await forkPrerequisite(deps, f);
        if (problem) {
          await advance('REJECTED', { error: { code: problem.code, message: problem.message }, completedAt: deps.clock.now() });
          break;
        }
        const moved = await post(f.parentId, 'forking', () => ({ kind: 'state-change', to: 'FORKING', reason: `fork ${f._id}` }), false);
        if (moved.status === 'refused') {
          await advance('REJECTED', { error: { code: moved.refusal.code, message: moved.refusal.message }, completedAt: deps.clock.now() });
          break;
        }
        faultPoint('fork.after-forking');
        await advance('FORKING', { startedAt: deps.clock.now() });
        break;
      }
      case 'FORKING': {
        if (!f.plan) {
          const planned = await planNow(deps, f);
          if ('code' in planned) {
            await rollBack(deps, f, planned, jobId);
            return (await deps.forks.get(f._id))!;
          }
          f = { ...f, plan: await deps.forks.setPlanOnce(f._id, storePlan(planned.forkAmount, planned.plan)) };
        }
        const plan = loadPlan(f.plan!);
        if (plan.cash.isPositive() && !plan.cash.isZero()) await post(f.parentId, 'hold', () => ({ kind: 'hold', amount: plan.cash, transferId: f._id }));
        faultPoint('fork.after-hold');
        await advance('HELD');
        break;
      }
      case 'HELD': {
        const parent = (await deps.stores.accounts.get(f.parentId))!;
        const childTier = tierRules(deps.config, parent.tier).nextTier!;
        const now = deps.clock.now();
        // The child inherits the parent's configuration overrides (SPEC §4.4).
        await deps.stores.accounts.createIfAbsent(newAccount({ _id: f.childId, tier: childTier, name: `${parent.name} / ${childTier}`, ownerId: parent.ownerId, parentId: parent._id, config: parent.config, state: 'FORKING' }, now));
        await post(f.childId, 'child-open', () => ({ kind: 'open', state: 'FORKING' }));
        faultPoint('fork.after-child');
        await advance('CHILD_OPENED');
        break;
      }
      case 'CHILD_OPENED': {
        const plan = loadPlan(f.plan!);
        await post(f.childId, 'fork-in', () => ({ kind: 'fork-in', forkId: f._id, counterpartyId: f.parentId, cash: plan.cash, positions: plan.positions }));
        faultPoint('fork.after-fork-in');
        await advance('MOVED');
        break;
      }
      case 'MOVED': {
        const plan = loadPlan(f.plan!);
        await post(f.parentId, 'fork-out', () => ({ kind: 'fork-out', forkId: f._id, counterpartyId: f.childId, cash: plan.cash, positions: plan.positions }));
        faultPoint('fork.after-fork-out');
        await advance('POSTED');
        break;
      }
      case 'POSTED': {
        await post(f.childId, 'child-active', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `fork ${f._id} completed` }));
        await post(f.parentId, 'parent-active', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `fork ${f._id} completed` }));
        faultPoint('fork.after-activate');
        await advance('COMPLETED', { completedAt: deps.clock.now() });
        break;
      }
      case 'COMPLETED':
      case 'ROLLED_BACK':
      case 'REJECTED':
        return f;
    }
  }
  throw new Error(`fork ${f._id} did not settle within ${STEPS_MAX} steps (phase ${f.phase})`);
}

/** Re-checks eligibility on the parent's head (now FORKING, so it cannot change) and plans the move. */
async function planNow(deps: ForkDeps, f: StoredFork): Promise<{ forkAmount: ForkPlan['cash']; plan: ForkPlan } | Refusal> {
  const parent = (await deps.stores.accounts.get(f.parentId))!;
  const head = loadBalances((await deps.stores.journal.head(f.parentId, parent.headSeq))!.after);
  const prices = await deps.stores.prices.lastCloses(head.positions.map((p) => p.symbol), deps.clock.today());
  const rules = tierRules(deps.config, parent.tier, parent.config);
  const eligibility = forkEligibility(rules, valuate(head, prices).equity);
  if (!eligibility.eligible) return refuse('not_eligible', eligibility.reason);
  const plan = planFork(head, prices, eligibility.forkAmount, f.mode, f.symbols);
  if ('code' in plan) return plan;
  const childRules = tierRules(deps.config, eligibility.childTier, parent.config);
  return childLimitsProblem(plan, childRules, prices) ?? { forkAmount: eligibility.forkAmount, plan };
}

/**
 * Undoes what this fork did before the child was credited: gives back its hold, closes its child,
 * returns the parent to ACTIVE; each only if this fork's own entry for it exists. Safe to repeat.
 */
export async function rollBack(deps: ForkDeps, f: StoredFork, reason: Refusal | { code: string; message: string }, jobId: string | null): Promise<void> {
  const has = async (step: string) => (await deps.stores.journal.byKey(`${f._id}:${step}`)) !== null;
  if (['MOVED', 'POSTED', 'COMPLETED', 'ROLLED_BACK', 'REJECTED'].includes(f.phase)) return;
  const post = sagaPoster(deps, f._id, f.requestedBy, jobId);
  const hold = await deps.stores.journal.byKey(`${f._id}:hold`);
  if (hold) await post(f.parentId, 'release', () => ({ kind: 'release', amount: loadUnits('cash', hold.op.amountCents), transferId: f._id }));
  if (await has('child-open')) await post(f.childId, 'child-close', () => ({ kind: 'state-change', to: 'CLOSED', reason: `fork ${f._id} rolled back` }));
  if (await has('forking')) await post(f.parentId, 'parent-restore', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `fork ${f._id} rolled back` }));
  await deps.forks.advance(f._id, f.phase, 'ROLLED_BACK', { error: { code: reason.code, message: reason.message }, completedAt: deps.clock.now() }, deps.clock.now());
}
