import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import type { StoredFork } from '../shared/db/fork-repository.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import type { AssessDeps } from '../shared/ledger/fork-assessment.js';
import { requestFork } from '../shared/ledger/fork-saga.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';
import { DIST, Proc } from './helpers/processes.js';

let h: LedgerHarness;
let fk: AssessDeps;
const procs: Proc[] = [];
// Short locks, so a job whose worker was killed is taken up again within seconds.
const FAST_LOCKS = { FLEET__QUEUES__FORK__LOCK_DURATION_MS: '4000', FLEET__QUEUES__FORK__STALLED_INTERVAL_MS: '1000', FLEET__QUEUES__FORK__MAX_STALLED_COUNT: '5' };

beforeAll(async () => {
  h = await startLedger('forkproc', { env: FAST_LOCKS });
  fk = await openForkingDeps(h.mongo, h.stores, h.config, h.deps.clock, h.producer.queue(QUEUE.fork));
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await h?.close();
});

async function executor(extra: Record<string, string> = {}): Promise<Proc> {
  const { env } = await portEnv();
  const proc = new Proc(join(DIST, 'services', 'fork-executor', 'main.js'), { ...h.iso.env, ...env, ...FAST_LOCKS, ...extra });
  procs.push(proc);
  await proc.waitForLine(/"msg":"service ready"/, 40_000);
  return proc;
}

async function enqueueFork(parentId: string): Promise<string> {
  const seq = (await h.stores.accounts.get(parentId))!.headSeq;
  const { fork } = await requestFork(fk, { parentId, parentSeq: seq, mode: 'full', symbols: [], requestedBy: 'test', decisionId: null });
  await h.producer.enqueue(QUEUE.fork, 'execute', { forkId: fork._id, accountId: parentId, parentSeq: seq, mode: 'full', symbols: [], requestedBy: 'test', decisionId: null }, { jobId: jobId('fork', parentId, seq) });
  return fork._id;
}

const done = (f: StoredFork | null) => !!f && ['COMPLETED', 'ROLLED_BACK', 'REJECTED'].includes(f.phase);

describe('fork executors as real processes', () => {
  it('never run more than 5 forks at once across three processes of local concurrency 10', async () => {
    const parents = Array.from({ length: 30 }, (_, i) => `acc-par-${String(i).padStart(2, '0')}`);
    await Promise.all(parents.map((p) => openAccount(h, p, '112000.00')));
    const ids: string[] = [];
    for (const p of parents) ids.push(await enqueueFork(p));
    await Promise.all([1, 2, 3].map(() => executor({ FLEET__QUEUES__FORK__WORKER_CONCURRENCY: '10' })));
    const forks = await waitFor('30 finished forks', async () => {
      const all = await Promise.all(ids.map((id) => fk.forks.get(id)));
      return all.every(done) ? (all as StoredFork[]) : undefined;
    }, 60_000, 200);
    expect(forks.every((f) => f.phase === 'COMPLETED')).toBe(true);
    // Sweep the recorded start and end times: the most forks running at one moment.
    const events = forks.flatMap((f) => [
      { t: +new Date(f.startedAt!), d: 1 },
      { t: +new Date(f.completedAt!), d: -1 },
    ]);
    events.sort((a, b) => a.t - b.t || a.d - b.d);
    let running = 0;
    let most = 0;
    for (const e of events) most = Math.max(most, (running += e.d));
    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBeGreaterThan(1);
    for (const p of procs.splice(0)) {
      p.kill('SIGTERM');
      await p.exitWithin(15_000);
    }
  });

  const STEPS = ['fork.after-start', 'fork.after-child', 'fork.after-fork-in', 'fork.after-fork-out', 'fork.after-activate'];

  it('finishes a fork killed at any saga step with exactly one child', async () => {
    const forkIds: Record<string, string> = {};
    for (const [i, step] of STEPS.entries()) {
      const parent = `acc-crash-${i}`;
      await openAccount(h, parent, '112000.00');
      const proc = await executor({ FLEET_FAULT_POINTS: step });
      forkIds[step] = await enqueueFork(parent);
      expect((await proc.exitWithin(20_000)).signal).toBe('SIGKILL');
    }
    // One healthy executor takes up every stalled job and resumes each saga where it stopped.
    await executor();
    for (const [i, step] of STEPS.entries()) {
      const f = await waitFor(`fork killed ${step} to finish`, async () => {
        const x = await fk.forks.get(forkIds[step]!);
        return done(x) ? x : undefined;
      }, 30_000, 200);
      expect([step, f.phase]).toEqual([step, 'COMPLETED']);
      const children = await h.stores.accounts.children(`acc-crash-${i}`);
      expect(children.map((c) => c._id)).toEqual([f.childId]);
      const parent = loadBalances((await h.stores.journal.head(`acc-crash-${i}`))!.after);
      expect([parent.state, parent.cash.toFixed(2), parent.reserved.toFixed(2)]).toEqual(['ACTIVE', '10000.00', '0.00']);
    }
    const report = await verifyLedger(h.stores, { idle: true });
    expect(report.problems).toEqual([]);
  });
});

describe('threshold monitors as real processes', () => {
  it('keep one scheduler per tier and one decision per account head when two replicas scan', async () => {
    const accounts = Array.from({ length: 5 }, (_, i) => `acc-scan-${i}`);
    await Promise.all(accounts.map((a) => openAccount(h, a, '115000.00')));
    const start = async () => {
      const { env } = await portEnv();
      const p = new Proc(join(DIST, 'services', 'threshold-monitor', 'main.js'), { ...h.iso.env, ...env });
      procs.push(p);
      await p.waitForLine(/"msg":"service ready"/);
    };
    await Promise.all([start(), start()]);
    const schedulers = await h.producer.queue(QUEUE.thresholdScan).getJobSchedulers();
    expect(schedulers.map((s) => s.key ?? s.id).sort()).toEqual(['threshold-scan-COM', 'threshold-scan-GEN', 'threshold-scan-REV']);
    // Two scans of the same tier, as two replicas' schedulers firing for one period would make.
    await h.producer.enqueue(QUEUE.thresholdScan, 'scan', { tier: 'GEN' }, { jobId: jobId('scan', 'GEN', 'a') });
    await h.producer.enqueue(QUEUE.thresholdScan, 'scan', { tier: 'GEN' }, { jobId: jobId('scan', 'GEN', 'b') });
    await waitFor('a decision for each account', async () => (await fk.decisions.model.countDocuments({ accountId: { $in: accounts } })) === accounts.length, 30_000, 200);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await fk.decisions.model.countDocuments({ accountId: { $in: accounts } })).toBe(accounts.length);
    expect(await fk.reviews.model.countDocuments({ accountId: { $in: accounts } })).toBe(accounts.length);
  });
});
