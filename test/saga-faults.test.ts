import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAccount, stateChange, trade, transferOp, withdrawal } from '../services/account-ops/postings.js';
import { FORK_DONE } from '../shared/db/fork-repository.js';
import { MERGE_DONE } from '../shared/db/merge-repository.js';
import { abortFork, runFork } from '../shared/ledger/fork-saga.js';
import { abortMerge, runMerge } from '../shared/ledger/merge-saga.js';
import { settleSagaJob } from '../shared/ledger/saga-job.js';
import { transfer } from '../shared/ledger/transfer.js';
import { payloadHashOf, scopedKey } from '../shared/ledger/operation.js';
import type { Outcome } from '../shared/ledger/outcome.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { Decimal } from '../shared/money/decimal.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';
import { type SagaWorld, head, money, moved, newFork, newMerge, open, sagaWorld, walkProblems } from './helpers/saga-world.js';
import { SteppedRun, failingAt } from './helpers/stepped.js';

/**
 * A saga's job fails at each of its writes in turn, before the write or after it landed (its reply
 * lost: a connection reset), on an early attempt (the job is retried) and on its last one (the job
 * rolls back what it still can). Then an operator acts on the saga's accounts at each step. After
 * each: one outcome, balances exact, every entry following from the one before, moved-in = moved-out.
 */
/** Every pair of stopping points of a saga is many runs: minutes under a loaded machine, not seconds. */
const LONG = 300_000;
let h: LedgerHarness;
let w: SagaWorld;
beforeAll(async () => {
  h = await startLedger('sagafaults', { worker: false });
  w = await sagaWorld(h);
});
afterAll(async () => {
  await w?.a.close();
  await w?.b.close();
  await h?.close();
});

const EARLY = { attemptsMade: 0, opts: { attempts: 5 } };
const LAST = { attemptsMade: 4, opts: { attempts: 5 } };

async function writesOfFork(): Promise<number> {
  const probe = await newFork(w, `fault-probe-${Math.random().toString(36).slice(2, 8)}`);
  const solo = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), probe._id, 'probe'));
  await solo.finish();
  return solo.writes.length;
}

describe('a fork job failing at every write', () => {
  it('retried, or rolled back on its last attempt while it can be, ends exactly once with every cent in place', async () => {
    const n = await writesOfFork();
    const outcomes = new Set<string>();
    for (let k = 0; k < n; k++) {
      for (const when of ['before', 'after'] as const) {
        for (const job of [EARLY, LAST]) {
          const f = await newFork(w, `fk-${k}-${when}-${job.attemptsMade}`);
          const deps = w.deps(w.a, failingAt(k, when));
          const attempt = settleSagaJob(job, {
            run: () => runFork(deps, f._id, 'job'),
            get: async () => (await w.operator.forks.get(f._id))!,
            abort: async (current, reason) => ({ committed: (await abortFork(w.deps(w.a), current, reason, 'job')).committed }),
            done: FORK_DONE,
            onStuck: async () => undefined,
          });
          const settled = await attempt.catch((err: Error) => err);
          // A job that gave up (an early attempt, or past the point of no return) is run again: BullMQ's retry, or recovery.
          if (settled instanceof Error) await runFork(w.deps(w.b), f._id, 'retry');
          const fork = (await w.operator.forks.get(f._id))!;
          outcomes.add(`${fork.phase}`);
          const where = `write ${k} ${when}, attempt ${job.attemptsMade + 1}`;
          expect([where, FORK_DONE.includes(fork.phase)]).toEqual([where, true]);
          const [p, c] = [money(await head(w, f.parentId)), money(await head(w, f.childId))];
          if (fork.phase === 'COMPLETED') expect([where, p?.cash, c?.cash, p?.owner, c?.owner]).toEqual([where, '10000.00', '102000.00', null, null]);
          else expect([where, p?.cash, p?.state, p?.owner, c?.cash ?? '0.00']).toEqual([where, '112000.00', 'ACTIVE', null, '0.00']);
          const m = await moved(w, f._id);
          expect([where, m.in]).toEqual([where, m.out]);
          expect(await walkProblems(w, [f.parentId, f.childId])).toEqual([]);
        }
      }
    }
    // Early failures are retried to completion; a last attempt before the credit rolls back.
    expect([...outcomes].sort()).toEqual(['COMPLETED', 'ROLLED_BACK']);
  }, LONG);
});

describe('a merge job failing at every write', () => {
  it('ends exactly once with every cent in place', async () => {
    const probe = await newMerge(w, 'fault-probe');
    const solo = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), probe._id, 'probe'));
    await solo.finish();
    const n = solo.writes.length;
    for (let k = 0; k < n; k++) {
      for (const when of ['before', 'after'] as const) {
        for (const job of [EARLY, LAST]) {
          const m = await newMerge(w, `mk-${k}-${when}-${job.attemptsMade}`);
          const deps = w.deps(w.a, failingAt(k, when));
          const settled = await settleSagaJob(job, {
            run: () => runMerge(deps, m._id, 'job'),
            get: async () => (await w.operator.merges.get(m._id))!,
            abort: async (current, reason) => ({ committed: (await abortMerge(w.deps(w.a), current, reason, 'job')).committed }),
            done: MERGE_DONE,
            onStuck: async () => undefined,
          }).catch((err: Error) => err);
          if (settled instanceof Error) await runMerge(w.deps(w.b), m._id, 'retry');
          const merge = (await w.operator.merges.get(m._id))!;
          const where = `write ${k} ${when}, attempt ${job.attemptsMade + 1}`;
          const [s, t] = [money(await head(w, m.sourceId)), money(await head(w, m.targetId))];
          if (merge.phase === 'COMPLETED') expect([where, s?.cash, s?.state, t?.cash]).toEqual([where, '0.00', 'CLOSED', '80000.00']);
          else expect([where, merge.phase, s?.cash, s?.state, s?.owner, t?.cash]).toEqual([where, 'ROLLED_BACK', '30000.00', 'ACTIVE', null, '50000.00']);
          const mv = await moved(w, m._id);
          expect([where, mv.in]).toEqual([where, mv.out]);
          expect(await walkProblems(w, [m.sourceId, m.targetId])).toEqual([]);
        }
      }
    }
  }, LONG);
});

describe('a transfer failing at every write', () => {
  it('settles once, in one direction, when its job is retried', async () => {
    for (let k = 0; k < 5; k++) {
      for (const when of ['before', 'after'] as const) {
        const [from, to] = [await open(w, `acc-xf-${k}-${when}`, '500.00'), await open(w, `acc-xt-${k}-${when}`, '500.00')];
        const req = { fromId: from, toId: to, amount: new Decimal('200.00'), scopedKey: scopedKey(from, 'x'), payloadHash: payloadHashOf('transfer', { k, when }), actor: 'test', jobId: null };
        const first = await transfer({ ...w.deps(w.a), hooks: failingAt(k, when) }, req).catch((err: Error) => err);
        const again = await transfer(w.deps(w.b), req);
        if (!(first instanceof Error)) expect(again).toEqual(first);
        expect(again.status).toBe('applied');
        expect([money(await head(w, from))?.cash, money(await head(w, to))?.cash]).toEqual(['300.00', '700.00']);
        expect(await walkProblems(w, [from, to])).toEqual([]);
      }
    }
  }, LONG);
});

/** Everything an operator can do to an account, each refused while a saga holds it. */
async function interfere(accountId: string, tag: string, thirdId: string): Promise<Record<string, string>> {
  const d = w.deps(w.operator);
  const base = { accountId, actor: 'operator' };
  const status = (o: Outcome) => (o.status === 'applied' ? 'applied' : o.code);
  return {
    state: status(await stateChange(d, { ...base, idempotencyKey: `${tag}-state`, to: 'SAFE', reason: 'operator' }, null)),
    trade: status(await trade(d, { ...base, idempotencyKey: `${tag}-trade`, side: 'buy', symbol: 'OPX', quantity: '1', price: '10.00', fees: '0.00' }, null)),
    withdrawal: status(await withdrawal(d, { ...base, idempotencyKey: `${tag}-wd`, amount: '1.00', close: false }, null)),
    transfer: status(await transferOp(d, { ...base, idempotencyKey: `${tag}-tr`, toAccountId: thirdId, amount: '1.00' }, null)),
    close: status(await stateChange(d, { ...base, idempotencyKey: `${tag}-close`, to: 'CLOSED', reason: 'operator' }, null)),
  };
}

describe('an operator acting on a fork at every step', () => {
  it('is refused on every account the fork holds, and the fork still ends once with every cent in place', async () => {
    const n = await writesOfFork();
    const third = await open(w, 'acc-third', '100.00');
    const LOCKED = { state: 'account_locked', trade: 'account_locked', withdrawal: 'account_locked', transfer: 'account_locked', close: 'account_locked' };
    for (let k = 0; k <= n; k++) {
      const f = await newFork(w, `op-${k}`);
      const run = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), f._id, 'job'));
      await run.advance(k);
      const parentState = (await head(w, f.parentId))!;
      const childState = await head(w, f.childId);
      const onParent = await interfere(f.parentId, `op-${k}-p`, third);
      if (parentState.owner) expect([k, onParent]).toEqual([k, LOCKED]);
      if (childState?.owner) expect([k, await interfere(f.childId, `op-${k}-c`, third)]).toEqual([k, LOCKED]);
      const fork = await run.finish();
      // Before its start the operator's changes count (a parent put in SAFE does not fork); after it, none can.
      if (parentState.owner) expect([k, fork.phase]).toEqual([k, 'COMPLETED']);
      expect(FORK_DONE.includes(fork.phase)).toBe(true);
      const m = await moved(w, f._id);
      expect([k, m.in]).toEqual([k, m.out]);
      expect(await walkProblems(w, [f.parentId, f.childId, third])).toEqual([]);
    }
  }, LONG);
});

describe('an operator acting on a merge at every step', () => {
  it('is refused on the source while the merge holds it, and the merge ends once', async () => {
    const probe = await newMerge(w, 'op-probe');
    const solo = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), probe._id, 'probe'));
    await solo.finish();
    const third = await open(w, 'acc-third-m', '100.00');
    for (let k = 0; k <= solo.writes.length; k++) {
      const m = await newMerge(w, `opm-${k}`);
      const run = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), m._id, 'job'));
      await run.advance(k);
      const source = (await head(w, m.sourceId))!;
      const onSource = await interfere(m.sourceId, `opm-${k}-s`, third);
      if (source.owner) expect(Object.values(onSource).every((v) => v === 'account_locked')).toBe(true);
      const merge = await run.finish();
      expect(MERGE_DONE.includes(merge.phase)).toBe(true);
      const mv = await moved(w, m._id);
      expect([k, mv.in]).toEqual([k, mv.out]);
      expect(await walkProblems(w, [m.sourceId, m.targetId, third])).toEqual([]);
    }
  }, LONG);
});

describe('after every fault and every interference', () => {
  it('the whole ledger verifies as idle and conserves money to the cent', async () => {
    await openAccount(w.deps(w.operator), { accountId: 'acc-last', idempotencyKey: 'open-last', actor: 'test', tier: 'GEN', name: 'last', ownerId: null, parentId: null, config: {}, initialDeposit: '1.00' }, null);
    await Promise.all([w.a.projector.flush(), w.b.projector.flush(), w.operator.projector.flush()]);
    const report = await verifyLedger(w.operator, { idle: true });
    expect(report.problems).toEqual([]);
    const t = report.totals;
    const held = new Decimal(t.cash).plus(t.costBasis);
    expect(held.toFixed(2)).toBe(new Decimal(t.deposits).minus(t.withdrawals).minus(t.fees).plus(t.dividends).plus(t.realisedPnl).toFixed(2));
  }, LONG);
});
