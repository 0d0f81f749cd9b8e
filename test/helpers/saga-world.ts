import { expect } from 'vitest';
import { openAccount } from '../../services/account-ops/postings.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import { loadUnits } from '../../shared/db/stored-units.js';
import type { Balances } from '../../shared/domain/balances.js';
import { type ForkDeps, requestFork } from '../../shared/ledger/fork-saga.js';
import { type MergeDeps, requestMerge } from '../../shared/ledger/merge-saga.js';
import type { WriteHooks } from '../../shared/ledger/post.js';
import type { LedgerStores } from '../../shared/ledger/stores.js';
import { JournalWalk } from '../../shared/ledger/verify.js';
import { FixedClock } from './fixed-clock.js';
import type { LedgerHarness } from './ledger-harness.js';

/**
 * Sagas run by "processes" that share nothing but the database: each set of stores has its own head
 * cache, per-account lock, writer and projector, as two fleet processes would.
 */
export interface SagaWorld {
  h: LedgerHarness;
  clock: FixedClock;
  /** Run A, run B, and the operator (as the API and account-ops would act). */
  a: LedgerStores;
  b: LedgerStores;
  operator: LedgerStores;
  deps(stores: LedgerStores, hooks?: WriteHooks): ForkDeps & MergeDeps;
}

export async function sagaWorld(h: LedgerHarness): Promise<SagaWorld> {
  // Wednesday 2026-11-18, 11:00 in New York: a business day.
  const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));
  h.deps.clock = clock;
  const [a, b] = [await h.storesOf(), await h.storesOf()];
  return {
    h,
    clock,
    a,
    b,
    operator: h.stores,
    deps: (stores, hooks) => ({ stores, forks: stores.forks, merges: stores.merges, config: h.config, clock, cooldownHours: 24, ...(hooks ? { hooks } : {}) }),
  };
}

export async function open(w: SagaWorld, id: string, deposit: string): Promise<string> {
  const o = await openAccount(w.deps(w.operator), { accountId: id, idempotencyKey: `open-${id}`, actor: 'test', tier: 'GEN', name: id, ownerId: 'owner-1', parentId: null, config: {}, initialDeposit: deposit }, null);
  expect(o.status).toBe('applied');
  return id;
}

export async function newFork(w: SagaWorld, tag: string) {
  const parent = await open(w, `acc-p-${tag}`, '112000.00');
  return (await requestFork(w.deps(w.operator), { parentId: parent, parentSeq: 2, mode: 'full', symbols: [], requestedBy: 'test', decisionId: null })).fork;
}

export async function newMerge(w: SagaWorld, tag: string) {
  const [source, target] = [await open(w, `acc-s-${tag}`, '30000.00'), await open(w, `acc-t-${tag}`, '50000.00')];
  return (await requestMerge(w.deps(w.operator), { sourceId: source, sourceSeq: 2, targetId: target, strategy: 'sibling', partial: null, newTarget: null, groupId: null, opportunityId: null, requestedBy: 'test', scheduledFor: null })).merge;
}

export async function head(w: SagaWorld, id: string): Promise<Balances | null> {
  const e = await w.operator.journal.head(id);
  return e ? loadBalances(e.after) : null;
}

export const money = (b: Balances | null) => (b ? { cash: b.cash.toFixed(2), reserved: b.reserved.toFixed(2), state: b.state, owner: b.owner } : null);

/** Every entry of these accounts checked against its predecessor (links, hashes, balances, totals, holdings). */
export async function walkProblems(w: SagaWorld, ids: string[]): Promise<string[]> {
  const walk = new JournalWalk();
  for (const id of ids) for (const e of await w.operator.journal.pageAsc(id, 1, 1000)) walk.add(e);
  walk.finish();
  return walk.problems;
}

/** What a saga moved in and out, by its entries' keys: equal once it has ended. */
export async function moved(w: SagaWorld, sagaId: string): Promise<{ in: string; out: string }> {
  const total = async (step: string) => {
    const e = await w.operator.journal.byKey(`${sagaId}:${step}`);
    if (!e || e.kind === 'refusal') return '0.00';
    const cost = (e.op.positions ?? []).reduce((s, p) => s + BigInt(p.costBasisCents), 0n);
    return loadUnits('cash', BigInt(e.op.amountCents ?? 0n) + cost).toFixed(2);
  };
  const [i, o] = sagaId.startsWith('tr_') ? ['credit', 'post'] : ['in', 'out'];
  return { in: await total(i), out: await total(o) };
}
