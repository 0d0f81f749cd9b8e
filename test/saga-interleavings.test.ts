import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abortFork, runFork } from '../shared/ledger/fork-saga.js';
import { abortMerge, runMerge } from '../shared/ledger/merge-saga.js';
import { resumeTransfer, transfer } from '../shared/ledger/transfer.js';
import { payloadHashOf, scopedKey } from '../shared/ledger/operation.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { Decimal } from '../shared/money/decimal.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';
import { type SagaWorld, head, money, moved, newFork, newMerge, open, sagaWorld, walkProblems } from './helpers/saga-world.js';
import { SteppedRun } from './helpers/stepped.js';

/**
 * Two runs of the same saga (a stalled job re-run while the first is alive, or recovery resuming a
 * slow run), each in its own "process", driven write by write through every pair of stopping points:
 * run A makes i writes, run B makes j, then A and B go to their ends. Then the same with an abort
 * racing the run. After each: one outcome, balances exact, every journal entry following from the one
 * before, moved-in equal to moved-out.
 */
/** Every pair of stopping points of a saga is many runs: minutes under a loaded machine, not seconds. */
const LONG = 300_000;
let h: LedgerHarness;
let w: SagaWorld;

beforeAll(async () => {
  h = await startLedger('interleave', { worker: false });
  w = await sagaWorld(h);
});
afterAll(async () => {
  await w?.a.close();
  await w?.b.close();
  await h?.close();
});

/** How many writes one undisturbed run makes. */
async function writesOf(run: (s: SteppedRun<unknown>) => Promise<unknown>, make: () => SteppedRun<unknown>): Promise<number> {
  const solo = make();
  await run(solo);
  return solo.writes.length;
}

async function expectForkEnded(forkId: string, parentId: string, childId: string) {
  const fork = (await w.operator.forks.get(forkId))!;
  const [p, c] = [money(await head(w, parentId)), money(await head(w, childId))];
  if (fork.phase === 'COMPLETED') {
    expect([p, c]).toEqual([
      { cash: '10000.00', reserved: '0.00', state: 'ACTIVE', owner: null },
      { cash: '102000.00', reserved: '0.00', state: 'ACTIVE', owner: null },
    ]);
    expect((await w.operator.accounts.children(parentId)).map((a) => a._id)).toEqual([childId]);
    expect(await w.operator.journal.byKey(`${forkId}:restore`)).toBeNull();
  } else {
    expect(fork.phase).toBe('ROLLED_BACK');
    expect(p).toEqual({ cash: '112000.00', reserved: '0.00', state: 'ACTIVE', owner: null });
    // A child opened before the rollback is closed empty; one never opened leaves no document.
    expect(c === null || (c.cash === '0.00' && c.state === 'CLOSED')).toBe(true);
    if (c === null) expect(await w.operator.accounts.get(childId)).toBeNull();
    expect(await w.operator.journal.byKey(`${forkId}:out`)).toBeNull();
  }
  const m = await moved(w, forkId);
  expect(m.in).toBe(m.out);
  expect(await walkProblems(w, [parentId, childId])).toEqual([]);
  return fork.phase;
}

describe('two runs of one fork', () => {
  let n = 0;
  it('count the writes of one run', async () => {
    const probe = await newFork(w, 'probe');
    n = await writesOf((s) => s.finish(), () => new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), probe._id, 'probe')));
    expect(n).toBeGreaterThanOrEqual(6);
  }, LONG);

  it('through every pair of stopping points end with one fork, one child and every cent in place', async () => {
    for (let i = 0; i <= n; i++) {
      for (let j = 0; j <= n; j++) {
        const f = await newFork(w, `ff-${i}-${j}`);
        const a = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), f._id, 'job-a'));
        const b = new SteppedRun((hooks) => runFork(w.deps(w.b, hooks), f._id, 'job-b'));
        await a.advance(i);
        await b.advance(j);
        const [ra, rb] = [await a.finish(), await b.finish()];
        expect([`${i},${j}`, ra.phase, rb.phase]).toEqual([`${i},${j}`, 'COMPLETED', 'COMPLETED']);
        expect(await expectForkEnded(f._id, f.parentId, f.childId)).toBe('COMPLETED');
      }
    }
  }, LONG);

  it('with an abort racing the run at every pair of points: completed or rolled back, never both, never money twice', async () => {
    const phases = new Set<string>();
    for (let i = 0; i <= n; i++) {
      for (let j = 0; j <= 6; j++) {
        const f = await newFork(w, `fa-${i}-${j}`);
        const run = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), f._id, 'job-a'));
        const abort = new SteppedRun((hooks) => abortFork(w.deps(w.b, hooks), f, { code: 'aborted', message: 'test' }, 'job-b'));
        await run.advance(i);
        await abort.advance(j);
        await run.finish().catch(() => undefined);
        const aborted = await abort.finish();
        // The run may have been stopped by the abort mid-way: a recovery run finishes whatever is left.
        await runFork(w.deps(w.a), f._id, 'recovery');
        const phase = await expectForkEnded(f._id, f.parentId, f.childId);
        expect(aborted.committed).toBe(phase === 'COMPLETED');
        phases.add(phase);
      }
    }
    expect([...phases].sort()).toEqual(['COMPLETED', 'ROLLED_BACK']);
  }, LONG);
});

async function expectMergeEnded(mergeId: string, sourceId: string, targetId: string) {
  const merge = (await w.operator.merges.get(mergeId))!;
  const [s, t] = [money(await head(w, sourceId)), money(await head(w, targetId))];
  if (merge.phase === 'COMPLETED') {
    expect([s, t]).toEqual([
      { cash: '0.00', reserved: '0.00', state: 'CLOSED', owner: null },
      { cash: '80000.00', reserved: '0.00', state: 'ACTIVE', owner: null },
    ]);
    expect((await w.operator.accounts.get(sourceId))!.mergedInto).toBe(targetId);
  } else {
    expect(merge.phase).toBe('ROLLED_BACK');
    expect([s, t]).toEqual([
      { cash: '30000.00', reserved: '0.00', state: 'ACTIVE', owner: null },
      { cash: '50000.00', reserved: '0.00', state: 'ACTIVE', owner: null },
    ]);
  }
  const m = await moved(w, mergeId);
  expect(m.in).toBe(m.out);
  expect(await walkProblems(w, [sourceId, targetId])).toEqual([]);
  return merge.phase;
}

describe('two runs of one merge', () => {
  let n = 0;
  it('count the writes of one run', async () => {
    const probe = await newMerge(w, 'probe');
    n = await writesOf((s) => s.finish(), () => new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), probe._id, 'probe')));
    expect(n).toBeGreaterThanOrEqual(5);
  }, LONG);

  it('through every pair of stopping points end with one merge and every cent in place', async () => {
    for (let i = 0; i <= n; i++) {
      for (let j = 0; j <= n; j++) {
        const m = await newMerge(w, `mm-${i}-${j}`);
        const a = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), m._id, 'job-a'));
        const b = new SteppedRun((hooks) => runMerge(w.deps(w.b, hooks), m._id, 'job-b'));
        await a.advance(i);
        await b.advance(j);
        const [ra, rb] = [await a.finish(), await b.finish()];
        expect([`${i},${j}`, ra.phase, rb.phase]).toEqual([`${i},${j}`, 'COMPLETED', 'COMPLETED']);
        expect(await expectMergeEnded(m._id, m.sourceId, m.targetId)).toBe('COMPLETED');
      }
    }
  }, LONG);

  it('with an abort racing the run at every pair of points: completed or rolled back, never both', async () => {
    const phases = new Set<string>();
    for (let i = 0; i <= n; i++) {
      for (let j = 0; j <= 5; j++) {
        const m = await newMerge(w, `ma-${i}-${j}`);
        const run = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), m._id, 'job-a'));
        const abort = new SteppedRun((hooks) => abortMerge(w.deps(w.b, hooks), m, { code: 'aborted', message: 'test' }, 'job-b'));
        await run.advance(i);
        await abort.advance(j);
        await run.finish().catch(() => undefined);
        const aborted = await abort.finish();
        await runMerge(w.deps(w.a), m._id, 'recovery');
        const phase = await expectMergeEnded(m._id, m.sourceId, m.targetId);
        expect(aborted.committed).toBe(phase === 'COMPLETED');
        phases.add(phase);
      }
    }
    expect([...phases].sort()).toEqual(['COMPLETED', 'ROLLED_BACK']);
  }, LONG);
});

describe('two runs of one transfer', () => {
  const start = async (tag: string, amount: string) => {
    const [from, to] = [await open(w, `acc-tf-${tag}`, '1000.00'), await open(w, `acc-tt-${tag}`, '1000.00')];
    const key = scopedKey(from, `tr-${tag}`);
    const req = { fromId: from, toId: to, amount: new Decimal(amount), scopedKey: key, payloadHash: payloadHashOf('transfer', { amount, tag }), actor: 'test', jobId: null };
    return { from, to, req };
  };

  it('through every pair of stopping points settle once, in one direction, to the cent', async () => {
    let n = 0;
    {
      const probe = await start('probe', '10.00');
      const solo = new SteppedRun((hooks) => transfer({ ...w.deps(w.a), hooks }, probe.req));
      await solo.finish();
      n = solo.writes.length;
      expect(n).toBeGreaterThanOrEqual(4);
    }
    for (const amount of ['250.00', '1500.00']) {
      for (let i = 0; i <= n; i++) {
        for (let j = 0; j <= n; j++) {
          const t = await start(`${amount}-${i}-${j}`, amount);
          const a = new SteppedRun((hooks) => transfer({ ...w.deps(w.a), hooks }, t.req));
          const b = new SteppedRun((hooks) => transfer({ ...w.deps(w.b), hooks }, t.req));
          await a.advance(i);
          await b.advance(j);
          const [ra, rb] = [await a.finish(), await b.finish()];
          // Both runs answer the same: applied when the source can pay, refused (and nothing held) when not.
          const expected = amount === '250.00' ? 'applied' : 'refused';
          expect([`${amount} ${i},${j}`, ra.status, rb.status]).toEqual([`${amount} ${i},${j}`, expected, expected]);
          const [f, d] = [money(await head(w, t.from)), money(await head(w, t.to))];
          expect([f, d]).toEqual(
            expected === 'applied'
              ? [{ cash: '750.00', reserved: '0.00', state: 'ACTIVE', owner: null }, { cash: '1250.00', reserved: '0.00', state: 'ACTIVE', owner: null }]
              : [{ cash: '1000.00', reserved: '0.00', state: 'ACTIVE', owner: null }, { cash: '1000.00', reserved: '0.00', state: 'ACTIVE', owner: null }],
          );
          expect(await walkProblems(w, [t.from, t.to])).toEqual([]);
        }
      }
    }
  }, LONG);

  it('recovery racing a slow run never both credits and releases', async () => {
    for (let i = 0; i <= 4; i++) {
      const t = await start(`rec-${i}`, '100.00');
      const a = new SteppedRun((hooks) => transfer({ ...w.deps(w.a), hooks }, t.req));
      await a.advance(i);
      // The recovery job takes up the transfer while the first run is stopped before its i-th write.
      const record = await w.operator.transfers.get(`tr_${(await import('../shared/runtime/canonical-json.js')).sha256Hex(t.req.scopedKey).slice(0, 24)}`);
      if (record) await resumeTransfer(w.deps(w.b), record, 'recovery');
      await a.finish();
      const m = await moved(w, record?._id ?? 'none');
      expect(m.in).toBe(m.out);
      expect(await walkProblems(w, [t.from, t.to])).toEqual([]);
    }
  }, LONG);
});

describe('after every interleaving', () => {
  it('the whole ledger verifies as idle: nothing held, nothing in flight, every saga balanced', async () => {
    await Promise.all([w.a.projector.flush(), w.b.projector.flush(), w.operator.projector.flush()]);
    const report = await verifyLedger(w.operator, { idle: true });
    expect(report.problems).toEqual([]);
    expect(report.sagaConservationViolations).toBe(0);
    expect(new Decimal(report.totals.cash).plus(report.totals.costBasis).toFixed(2)).toBe(new Decimal(report.totals.deposits).minus(report.totals.withdrawals).toFixed(2));
  }, LONG);
});
