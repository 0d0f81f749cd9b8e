import { newAccount, type StoredAccount } from '../db/account-repository.js';
import { FORK_DONE, type ForkPhase, type ForkRepository, type StoredFork } from '../db/fork-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { storePositions } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { storeUnits } from '../db/stored-units.js';
import { type Balances, ZERO } from '../domain/balances.js';
import { absorbingMerge, childLimitsProblem, forkEligibility, planFork, planValue, type ForkMode } from '../domain/fork.js';
import type { Move, Operation } from '../domain/ledger.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { tierRules } from '../domain/tiers.js';
import { valuate } from '../domain/valuation.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type LedgerDeps, peekAccount } from './post.js';
import { sagaSteps } from './saga-steps.js';

export interface ForkDeps extends LedgerDeps {
  forks: ForkRepository;
  cooldownHours: number;
  /** A parent that absorbed one of its own children does not fork again for this many days (0: no wait). */
  afterMergeCooldownDays?: number;
}

/** A fork is identified by its parent and the journal seq it was decided on: one fork per state of the parent. */
export const forkIdOf = (parentId: string, seq: number) => `fork_${parentId}_${seq}`;
/** The child's id follows from the fork, so a replay finds the child it created. */
export const childIdOf = (forkId: string) => `acc_c${sha256Hex(forkId).slice(0, 19)}`;

/** Phases in order: the record only moves forward (a slower run never writes an earlier phase back). */
const RANK: Record<ForkPhase, number> = { REQUESTED: 0, FORKING: 1, HELD: 2, CHILD_OPENED: 3, MOVED: 4, POSTED: 5, COMPLETED: 6, ROLLED_BACK: 6, REJECTED: 6 };

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

type ForkSpec = Pick<StoredFork, '_id' | 'parentId' | 'childId' | 'mode' | 'symbols'>;

/**
 * The parent's start entry for this fork on the head given, or why it may not start: not ACTIVE, held
 * by another saga, cash held by a transfer, another fork in progress or within the cooldown, not
 * eligible, or a split the child's tier cannot hold (refused here rather than rolled back every day).
 * Run inside the start's append, on the head it lands on; also run before a fork is requested.
 */
async function startOf(deps: ForkDeps, f: ForkSpec, head: Balances, account: StoredAccount): Promise<Operation | Refusal> {
  if (head.state !== 'ACTIVE') return refuse('invalid_state', `the account is ${head.state}; forks start from ACTIVE`);
  if (head.owner) return refuse('account_locked', `the account belongs to ${head.owner}`);
  if (!head.reserved.isZero()) return refuse('invalid_state', 'a transfer holds part of the cash; the fork waits until it settles');
  const since = deps.clock.now().getTime() - deps.cooldownHours * 3600_000;
  for (const other of await deps.forks.ofParent(f.parentId)) {
    if (other._id === f._id) continue;
    if (other.startedAt && new Date(other.startedAt).getTime() > since) {
      return refuse('cooldown', `the account forked (or tried to) at ${new Date(other.startedAt).toISOString()}; forks are ${deps.cooldownHours} h apart`);
    }
  }
  const absorbed = await childAbsorbedSince(deps, f.parentId);
  if (absorbed) return refuse('cooldown', `the account absorbs (or absorbed) its child ${absorbed.sourceId} (merge ${absorbed._id}, ${absorbed.phase}); it forks again ${deps.afterMergeCooldownDays} days after that`);
  const prices = await deps.stores.prices.lastCloses(head.positions.map((p) => p.symbol), deps.clock.today());
  const eligibility = forkEligibility(tierRules(deps.config, account.tier, account.config), valuate(head, prices).equity);
  if (!eligibility.eligible) return refuse('not_eligible', eligibility.reason);
  const plan = planFork(head, prices, eligibility.forkAmount, f.mode, f.symbols);
  if ('code' in plan) return plan;
  const problem = childLimitsProblem(plan, tierRules(deps.config, eligibility.childTier, account.config), prices);
  if (problem) return problem;
  return { kind: 'fork-start', forkId: f._id, counterpartyId: f.childId, cash: plan.cash, positions: plan.positions, value: planValue(plan, prices) };
}

/** The merge of one of the parent's own children into it within the after-merge cooldown, if any. */
async function childAbsorbedSince(deps: ForkDeps, parentId: string) {
  const days = deps.afterMergeCooldownDays ?? 0;
  return days === 0 ? null : absorbingMerge(await deps.stores.merges.ofTarget(parentId), deps.clock.now(), days);
}

/** Why a fork may not start now, read without writing anything (the start's append decides again); null if it may. */
export async function forkPrerequisite(deps: ForkDeps, f: Pick<StoredFork, '_id' | 'parentId'> & Partial<Pick<StoredFork, 'mode' | 'symbols'>>): Promise<Refusal | null> {
  const parent = await peekAccount(deps, f.parentId);
  if (!parent) return refuse('account_not_found', `no account ${f.parentId}`);
  if (!parent.head) return refuse('account_not_open', `account ${f.parentId} is not open`);
  const op = await startOf(deps, { _id: f._id, parentId: f.parentId, childId: childIdOf(f._id), mode: f.mode ?? 'full', symbols: f.symbols ?? [] }, parent.head, parent.account);
  return 'code' in op && !('kind' in op) ? op : null;
}

/** The move a start entry recorded: what the fork moves, whichever run planned it. */
function moveOf(start: StoredEntry): Move {
  const op = loadOperation(start.kind, start.op);
  if (op.kind !== 'fork-start') throw new Error(`entry ${start.idempotencyKey} is a ${op.kind}, not a fork start`);
  return { cash: op.cash, positions: op.positions, value: op.value };
}

/** The fork's record, moved forward only; a run that loses the compare-and-set re-reads it and goes on from the journal. */
function recordOf(deps: ForkDeps, start: StoredFork) {
  let f = start;
  return {
    get: () => f,
    async moveTo(to: ForkPhase, patch: Partial<StoredFork> = {}): Promise<void> {
      if (RANK[f.phase] >= RANK[to]) return;
      // Whoever reads the fork as ended reads its accounts' projections as of its end.
      if (FORK_DONE.includes(to)) await deps.stores.projector.flush();
      await deps.hooks?.beforeWrite?.(`fork-phase ${to}`);
      if (await deps.forks.advance(f._id, f.phase, to, patch, deps.clock.now())) f = { ...f, ...patch, phase: to };
      else f = (await deps.forks.get(f._id))!;
    },
  };
}

/**
 * Drives a fork to COMPLETED, ROLLED_BACK or REJECTED. Each step is one entry keyed by the fork, so
 * a replay or a second run at the same time finds each decision already taken and follows it. Steps:
 * the parent's start (FORKING, owned by the fork, the cash held and the plan recorded, all checks in
 * that one append) → the child's document and its open entry (FORKING, owned) → the child's credit,
 * the point of no return → the parent's debit (back to ACTIVE) → the child to ACTIVE. A step refused
 * before the credit (or claimed by an abort) rolls back; a step after it can only be retried.
 */
export async function runFork(deps: ForkDeps, forkId: string, jobId: string | null): Promise<StoredFork> {
  const loaded = await deps.forks.get(forkId);
  if (!loaded) throw new Error(`no fork ${forkId}`);
  if (FORK_DONE.includes(loaded.phase)) {
    if (loaded.phase !== 'COMPLETED') await removeUnopenedChild(deps, loaded);
    return loaded;
  }
  const record = recordOf(deps, loaded);
  const f = loaded;
  const steps = sagaSteps(deps, f._id, 'fork', f.requestedBy, jobId);
  const started = RANK[record.get().phase] >= RANK.FORKING ? await steps.recorded('start') : null;
  const start = started ?? (await steps.post(f.parentId, 'start', (head, account) => startOf(deps, f, head, account)));
  if (start.status === 'refused') {
    const rolledBack = start.refusal.code === 'aborted';
    await record.moveTo(rolledBack ? 'ROLLED_BACK' : 'REJECTED', { error: { code: start.refusal.code, message: start.refusal.message }, completedAt: deps.clock.now() });
    return record.get();
  }
  const move = moveOf(start.entry);
  await record.moveTo('FORKING', { startedAt: record.get().startedAt ?? deps.clock.now(), plan: { forkAmountCents: storeUnits('cash', move.value), cashCents: storeUnits('cash', move.cash), positions: storePositions(move.positions) } });
  faultPoint('fork.after-start');

  if (RANK[record.get().phase] < RANK.MOVED) {
    const parent = (await peekAccount(deps, f.parentId))!.account;
    const childTier = tierRules(deps.config, parent.tier).nextTier!;
    await deps.hooks?.beforeWrite?.(`child-document ${f.childId}`);
    // The child inherits the parent's configuration overrides.
    await deps.stores.accounts.createIfAbsent(newAccount({ _id: f.childId, tier: childTier, name: `${parent.name} / ${childTier}`, ownerId: parent.ownerId, parentId: parent._id, config: parent.config, state: 'FORKING' }, deps.clock.now()));
    const opened = await steps.post(f.childId, 'child-open', () => ({ kind: 'open', state: 'FORKING', owner: f._id, deposit: ZERO }));
    if (opened.status === 'refused') return (await abortFork(deps, record.get(), opened.refusal, jobId)).fork;
    faultPoint('fork.after-child');
    const credited = await steps.post(f.childId, 'in', () => ({ kind: 'fork-in', forkId: f._id, counterpartyId: f.parentId, ...move }));
    if (credited.status === 'refused') return (await abortFork(deps, record.get(), credited.refusal, jobId)).fork;
    faultPoint('fork.after-fork-in');
    await record.moveTo('MOVED');
  }

  // The child has the money: from here the fork only goes forward.
  await steps.must(f.parentId, 'out', () => ({ kind: 'fork-out', forkId: f._id, counterpartyId: f.childId, ...move }));
  faultPoint('fork.after-fork-out');
  await steps.must(f.childId, 'child-active', () => ({ kind: 'state-change', to: 'ACTIVE', reason: `fork ${f._id} completed` }));
  faultPoint('fork.after-activate');
  await record.moveTo('COMPLETED', { completedAt: deps.clock.now() });
  return record.get();
}

/**
 * A run that outlived its fork's rollback may have created the child's document after the rollback
 * removed it (its open was claimed, so it can never open): removed again, holding nothing.
 */
async function removeUnopenedChild(deps: ForkDeps, f: StoredFork): Promise<void> {
  const child = await deps.stores.accounts.get(f.childId);
  if (!child || (await deps.stores.journal.head(f.childId))) return;
  if ((await deps.stores.journal.byKey(`${f._id}:child-open`))?.kind === 'refusal') await deps.stores.accounts.deleteUnopened(f.childId);
}

/**
 * Rolls a fork back if it has not been credited, deciding from its journal keys, never from a phase:
 * first the credit's key is claimed (if the child was credited, the claim fails and the fork can only
 * go forward: `committed`), then the child's open (a child opened is closed; one never opened is not
 * left behind), then the start (a start that applied gives back its hold and returns the parent to
 * ACTIVE). Each claim makes its step impossible for any other run, so nothing can move after it.
 */
export async function abortFork(deps: ForkDeps, f: StoredFork, reason: { code: string; message: string }, jobId: string | null): Promise<{ fork: StoredFork; committed: boolean }> {
  const record = recordOf(deps, f);
  const steps = sagaSteps(deps, f._id, 'fork', f.requestedBy, jobId);
  const why = `fork ${f._id} rolled back: ${reason.message}`.slice(0, 500);
  const credit = await steps.claim(f.parentId, 'in', why);
  if (!credit.claimed) return { fork: record.get(), committed: true };
  const opened = await steps.claim(f.parentId, 'child-open', why);
  if (!opened.claimed) await steps.must(f.childId, 'child-close', () => ({ kind: 'state-change', to: 'CLOSED', reason: why }));
  else if (!(await deps.stores.journal.head(f.childId))) {
    await deps.hooks?.beforeWrite?.(`child-delete ${f.childId}`);
    await deps.stores.accounts.deleteUnopened(f.childId);
  }
  const start = await steps.claim(f.parentId, 'start', why);
  if (start.claimed) {
    const rejected = start.refusal.code !== 'aborted';
    const error = rejected ? { code: start.refusal.code, message: start.refusal.message } : { code: reason.code, message: reason.message };
    await record.moveTo(rejected ? 'REJECTED' : 'ROLLED_BACK', { error, completedAt: deps.clock.now() });
    return { fork: record.get(), committed: false };
  }
  const move = moveOf(start.entry);
  if (!move.cash.isZero()) await steps.must(f.parentId, 'release', () => ({ kind: 'release', amount: move.cash, transferId: f._id }));
  await steps.must(f.parentId, 'restore', () => ({ kind: 'state-change', to: 'ACTIVE', reason: why }));
  await record.moveTo('ROLLED_BACK', { error: { code: reason.code, message: reason.message }, completedAt: deps.clock.now() });
  return { fork: record.get(), committed: false };
}
