import { Worker } from 'bullmq';
import autocannon from 'autocannon';
import { Registry } from 'prom-client';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { ForkRepository } from '../shared/db/fork-repository.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { storeBalances } from '../shared/db/stored-balances.js';
import { emptyBalances } from '../shared/domain/balances.js';
import { Decimal } from '../shared/money/decimal.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import { requestFork } from '../shared/ledger/fork-saga.js';
import { systemClock } from '../shared/runtime/clock.js';
import { createQueueMetrics } from '../shared/queue/queue-metrics.js';
import { createWorker } from '../shared/queue/worker-runner.js';
import { openAccount } from '../services/account-ops/postings.js';
import { snapshotterHandlers } from '../services/performance-snapshotter/handlers.js';
import { thresholdMonitorHandlers } from '../services/threshold-monitor/handlers.js';
import { type BenchContext, percentile, pool, silent, until } from './context.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  [detail: string]: unknown;
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000 * 10) / 10;
const ms = (x: number) => Math.round(x * 100) / 100;

/** Bare BullMQ, no-op processor, same Redis: the queue layer's limit. */
export async function bullmqNoop(ctx: BenchContext, jobs: number): Promise<Figure> {
  const queue = ctx.producer.queue(QUEUE.thresholdScan);
  let done = 0;
  const worker = new Worker(queue.name, async () => undefined, { connection: ctx.workerRedis, prefix: ctx.config.queuePrefix, concurrency: 100, removeOnComplete: { count: 0 } });
  worker.on('completed', () => void done++);
  const start = performance.now();
  for (let i = 0; i < jobs; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ name: 'scan', data: { tier: 'GEN' }, opts: { removeOnComplete: true } })));
  }
  await until('no-op jobs done', async () => done >= jobs, 600_000, 20);
  const elapsed = performance.now() - start;
  await worker.close();
  return { name: 'bullmq_noop_jobs_per_s', value: rate(jobs, elapsed), unit: 'jobs/s', jobs, workerConcurrency: 100 };
}

/** Bare inserts of journal-sized documents, 16 at a time, same server: the storage layer's limit. */
export async function journalInserts(ctx: BenchContext, docs: number): Promise<Figure> {
  const model = ctx.stores.journal.model;
  const after = storeBalances({ ...emptyBalances('ACTIVE'), cash: new Decimal('12345.67'), positions: [{ symbol: 'SPY', quantity: new Decimal('10'), costBasis: new Decimal('4500.00') }] });
  const start = performance.now();
  await pool(Array.from({ length: docs }, (_, i) => i), 16, async (i) => {
    await model.collection.insertOne({ accountId: `raw-${i % 1000}`, seq: Math.floor(i / 1000) + 1, kind: 'deposit', idempotencyKey: `raw-${i}`, op: { amountCents: 100n }, realisedPnlCents: 0n, after, actor: 'bench', jobId: null, at: new Date() });
  });
  return { name: 'journal_insert_per_s', value: rate(docs, performance.now() - start), unit: 'inserts/s', docs, concurrency: 16 };
}

/** Deposits and transfers through the queue, committed by two real account-ops processes. */
export async function postingsE2e(ctx: BenchContext, operations: number, accounts: number): Promise<Figure> {
  const ids = Array.from({ length: accounts }, (_, i) => `acc-p${String(i).padStart(5, '0')}`);
  await pool(ids, 16, async (id) => {
    await openAccount({ stores: ctx.stores, config: ctx.config, clock: systemClock }, { accountId: id, idempotencyKey: `open-${id}`, actor: 'bench', tier: 'GEN', name: id, ownerId: null, parentId: null, config: {}, initialDeposit: '50000.00' }, null);
  });
  await Promise.all([ctx.spawnService('account-ops'), ctx.spawnService('account-ops')]);
  const before = await ctx.stores.journal.model.estimatedDocumentCount();
  let expectedEntries = 0;
  const start = performance.now();
  await pool(Array.from({ length: operations }, (_, i) => i), 32, async (i) => {
    const from = ids[(i * 7919) % accounts]!;
    const key = `bench-${i}-op`;
    if (i % 5 === 0) {
      const to = ids[(i * 104729 + 1) % accounts]!;
      expectedEntries += from === to ? 0 : 3;
      if (from !== to) await ctx.producer.enqueue(QUEUE.accountOps, 'transfer', { accountId: from, toAccountId: to, idempotencyKey: key, actor: 'bench', amount: '1.00' }, { jobId: jobId('op', from, key) });
    } else {
      expectedEntries += 1;
      await ctx.producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: from, idempotencyKey: key, actor: 'bench', amount: '10.00' }, { jobId: jobId('op', from, key) });
    }
  });
  await until('postings committed', async () => (await ctx.stores.journal.model.estimatedDocumentCount()) >= before + expectedEntries, 1_800_000, 200);
  const elapsed = performance.now() - start;
  return { name: 'postings_e2e_per_s', value: rate(operations, elapsed), unit: 'operations/s', operations, accounts, workers: '2 account-ops processes × 16', entries: expectedEntries };
}

/** Fork saga duration (start to COMPLETED) with 5 in flight, from a real fork-executor process. */
export async function forkSagas(ctx: BenchContext, forks: number): Promise<Figure[]> {
  const fk = await openForkingDeps(ctx.mongo, ctx.stores, ctx.config, systemClock, ctx.producer.queue(QUEUE.fork));
  const ids = Array.from({ length: forks }, (_, i) => `acc-f${String(i).padStart(5, '0')}`);
  await pool(ids, 16, async (id) => {
    await openAccount({ stores: ctx.stores, config: ctx.config, clock: systemClock }, { accountId: id, idempotencyKey: `open-${id}`, actor: 'bench', tier: 'GEN', name: id, ownerId: null, parentId: null, config: {}, initialDeposit: '112000.00' }, null);
  });
  await ctx.spawnService('fork-executor');
  for (const id of ids) {
    const { fork } = await requestFork(fk, { parentId: id, parentSeq: 2, mode: 'full', symbols: [], requestedBy: 'bench', decisionId: null });
    await ctx.producer.enqueue(QUEUE.fork, 'execute', { forkId: fork._id, accountId: id, parentSeq: 2, mode: 'full', symbols: [], requestedBy: 'bench', decisionId: null }, { jobId: jobId('fork', id, 2) });
  }
  const repo = new ForkRepository(ctx.mongo);
  await until('forks done', async () => (await repo.model.countDocuments({ phase: 'COMPLETED' })) >= forks, 900_000, 200);
  const durations = (await repo.model.find({ phase: 'COMPLETED' }).lean()).map((f) => +new Date(f.completedAt!) - +new Date(f.startedAt!)).sort((a, b) => a - b);
  return [
    { name: 'fork_saga_p50_ms', value: ms(percentile(durations, 50)), unit: 'ms', forks, inFlightLimit: 5 },
    { name: 'fork_saga_p99_ms', value: ms(percentile(durations, 99)), unit: 'ms', forks, inFlightLimit: 5 },
  ];
}

/** 100,000 accounts (1 % above the fork line); the tier's scan pages through them and enqueues checks. */
export async function thresholdScan(ctx: BenchContext, accounts: number): Promise<Figure> {
  const now = new Date();
  const head = storeBalances(emptyBalances('ACTIVE'));
  for (let i = 0; i < accounts; i += 5000) {
    await ctx.stores.accounts.model.collection.insertMany(
      Array.from({ length: Math.min(5000, accounts - i) }, (_, k) => {
        const n = i + k;
        const eligible = n % 100 === 0;
        return { _id: `acc-s${String(n).padStart(6, '0')}` as unknown as never, tier: 'GEN', name: 'scan', ownerId: null, parentId: null, mergedInto: null, config: {}, createdAt: now, updatedAt: now, headSeq: 1, state: 'ACTIVE', head, equityCents: eligible ? 11_500_000n : 5_000_000n + BigInt(n), forkCandidate: eligible };
      }),
      { ordered: false },
    );
  }
  const fk = await openForkingDeps(ctx.mongo, ctx.stores, ctx.config, systemClock, ctx.producer.queue(QUEUE.fork));
  const handlers = thresholdMonitorHandlers(fk, ctx.producer, new Registry());
  const start = performance.now();
  const result = (await handlers.scan({ tier: 'GEN' }, { job: {} as never, logger: silent })) as { enqueued: number };
  return { name: 'threshold_scan_100k_s', value: ms((performance.now() - start) / 1000), unit: 's', accounts, eligibleFound: result.enqueued };
}

/** A daily snapshot of every account: the day's fan-out and its batches on an in-process worker (concurrency 8). */
export async function dailySnapshot(ctx: BenchContext, accounts: number, reportAs: number): Promise<Figure> {
  const now = new Date();
  const after = storeBalances({ ...emptyBalances('ACTIVE'), cash: new Decimal('50000.00') });
  for (let i = 0; i < accounts; i += 5000) {
    const batch = Array.from({ length: Math.min(5000, accounts - i) }, (_, k) => `acc-d${String(i + k).padStart(6, '0')}`);
    await ctx.stores.accounts.model.collection.insertMany(batch.map((id) => ({ _id: id as unknown as never, tier: 'GEN', name: 'snap', ownerId: null, parentId: null, mergedInto: null, config: {}, createdAt: now, updatedAt: now, headSeq: 1, state: 'ACTIVE', head: after, equityCents: 5_000_000n })), { ordered: false });
    await ctx.stores.journal.model.collection.insertMany(batch.map((id) => ({ accountId: id, seq: 1, kind: 'open', idempotencyKey: `${id}:open`, op: {}, realisedPnlCents: 0n, after, actor: 'bench', jobId: null, at: now })), { ordered: false });
  }
  const snapshots = new SnapshotRepository(ctx.mongo);
  await snapshots.init();
  const handlers = snapshotterHandlers({ stores: ctx.stores, snapshots, clock: systemClock }, ctx.producer, ctx.config, new Registry());
  const deadLetters = new DeadLetterRepository(ctx.mongo);
  await deadLetters.init();
  const worker = createWorker(QUEUE.snapshot, { day: handlers.day, batch: handlers.batch }, { connection: ctx.workerRedis, config: ctx.config, logger: silent, metrics: createQueueMetrics(new Registry(), () => []), deadLetters });
  const date = now.toISOString().slice(0, 10);
  const start = performance.now();
  void worker.run();
  await ctx.producer.enqueue(QUEUE.snapshot, 'day', { date }, { jobId: jobId('bench-day', date) });
  await until('snapshots written', async () => (await snapshots.model.estimatedDocumentCount()) >= accounts, 3_600_000, 500);
  const seconds = (performance.now() - start) / 1000;
  await worker.close();
  const scaled = seconds * (reportAs / accounts);
  return { name: 'snapshot_100k_s', value: ms(scaled), unit: 's', accountsMeasured: accounts, measuredSeconds: ms(seconds), ...(reportAs !== accounts ? { scaledLinearlyTo: reportAs } : {}), workerConcurrency: ctx.config.queues.snapshot.workerConcurrency };
}

/** GET /api/v1/accounts/{id} at a fixed rate from autocannon against a real api process. */
export async function apiGet(ctx: BenchContext, ratePerSecond: number, seconds: number): Promise<Figure[]> {
  const ids = Array.from({ length: 50 }, (_, i) => `acc-a${String(i).padStart(3, '0')}`);
  await pool(ids, 8, async (id) => {
    await openAccount({ stores: ctx.stores, config: ctx.config, clock: systemClock }, { accountId: id, idempotencyKey: `open-${id}`, actor: 'bench', tier: 'GEN', name: id, ownerId: null, parentId: null, config: {}, initialDeposit: '25000.00' }, null);
  });
  const port = String(20000 + Math.floor(Math.random() * 20000));
  await ctx.spawnService('api', { API_PORT: port, FLEET__API__RATE_LIMIT_MAX: '1000000' });
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 10,
    overallRate: ratePerSecond,
    duration: seconds,
    headers: { authorization: `Bearer ${ctx.env['ADMIN_API_KEY']}` },
    requests: ids.map((id) => ({ method: 'GET' as const, path: `/api/v1/accounts/${id}` })),
  });
  const detail = { ratePerSecond, seconds, requests: result.requests.total, non2xx: result.non2xx, errors: result.errors };
  return [
    { name: 'api_get_p50_ms', value: result.latency.p50, unit: 'ms', ...detail },
    { name: 'api_get_p99_ms', value: result.latency.p99, unit: 'ms', ...detail },
  ];
}
