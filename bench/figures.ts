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
import { bullPrefix } from '../shared/queue/connection.js';
import { snapshotterHandlers } from '../services/performance-snapshotter/handlers.js';
import { thresholdMonitorHandlers } from '../services/threshold-monitor/handlers.js';
import { type BenchContext, percentile, pool, scrapeByLabel, scrapeCounter, silent, until } from './context.js';
import mongoose from 'mongoose';
import { Book } from 'medici';
import { newAccount } from '../shared/db/account-repository.js';
import { storeUnits } from '../shared/db/stored-units.js';
import { nextEntry } from '../shared/ledger/entry.js';

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
  const worker = new Worker(queue.name, async () => undefined, { connection: ctx.workerRedis, prefix: bullPrefix(ctx.config, queue.name), concurrency: 100, removeOnComplete: { count: 0 } });
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
export async function postingsE2e(ctx: BenchContext, operations: number, accounts: number): Promise<Figure[]> {
  const ids = Array.from({ length: accounts }, (_, i) => `acc-p${String(i).padStart(5, '0')}`);
  await openAccounts(ctx, ids, '50000.00');
  const workers = await Promise.all([ctx.spawnService('account-ops'), ctx.spawnService('account-ops')]);
  const commands = async () => (await Promise.all(workers.map((w) => scrapeCounter(w.metricsPort, 'fleet_db_commands_total')))).reduce((a, b) => a + b, 0);
  const before = await ctx.stores.journal.model.estimatedDocumentCount();
  const commandsBefore = await commands();
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
  await until('postings committed', async () => (await ctx.stores.journal.model.estimatedDocumentCount()) >= before + expectedEntries, 1_800_000, 100);
  const elapsed = performance.now() - start;
  // Projections trail the postings by design; what they cost is counted once they are written.
  await until('projections written', async () => (await ctx.stores.accounts.list({}, { limit: 500 })).every((a) => a.headSeq > 1 || !ids.includes(a._id)), 120_000, 500).catch(() => undefined);
  const roundTrips = (await commands()) - commandsBefore;
  const byCommand: Record<string, number> = {};
  for (const w of workers) for (const [k, v] of Object.entries(await scrapeByLabel(w.metricsPort, 'fleet_db_commands_total'))) byCommand[k] = (byCommand[k] ?? 0) + v;
  const detail = { operations, accounts, workers: '2 account-ops processes × 16', entries: expectedEntries, transfersShare: 0.2 };
  return [
    { name: 'postings_e2e_per_s', value: rate(operations, elapsed), unit: 'operations/s', ...detail },
    { name: 'postings_db_round_trips', value: Math.round((roundTrips / operations) * 100) / 100, unit: 'database commands per applied posting', commands: roundTrips, byCommand, ...detail, note: 'counted by the MongoDB driver\'s command monitoring in both account-ops processes over the run, projections and scheduled jobs included' },
  ];
}

/**
 * The peer a user would pick instead: medici (mongoose, double entry) committing the same deposits
 * on the same server, 16 at a time like the bare inserts.
 */
export async function mediciPeer(ctx: BenchContext, entries: number): Promise<Figure> {
  const url = new URL(ctx.env['MONGODB_URL']!);
  url.pathname = `${url.pathname}_medici`;
  await mongoose.connect(url.toString());
  try {
    const book = new Book('bench');
    const start = performance.now();
    await pool(Array.from({ length: entries }, (_, i) => i), 16, async (i) => {
      await book.entry('deposit').debit(`Assets:Cash:acc-${i % 200}`, 10).credit('Liabilities:Deposits', 10).commit();
    });
    return { name: 'peer_medici_entries_per_s', value: rate(entries, performance.now() - start), unit: 'entries/s', entries, concurrency: 16, peer: 'medici 7 (npm), same server, same run' };
  } finally {
    await mongoose.connection.dropDatabase().catch(() => undefined);
    await mongoose.disconnect();
  }
}

/**
 * Accounts opened as real accounts: the document, its sealed 'open' entry and first deposit (the
 * entries postings would write), and its projection, written in bulk.
 */
export async function openAccounts(ctx: BenchContext, ids: string[], deposit: string, tier: 'GEN' = 'GEN'): Promise<void> {
  const now = new Date();
  const day = now.toISOString().slice(0, 10);
  for (let i = 0; i < ids.length; i += 2000) {
    const batch = ids.slice(i, i + 2000);
    const docs = [];
    const entries = [];
    for (const id of batch) {
      const fields = { accountId: id, payloadHash: null, sagaId: null, actor: 'bench', jobId: null, day, at: now };
      const amount = new Decimal(deposit);
      const open = nextEntry(null, { ...fields, idempotencyKey: `${id}/open` }, { kind: 'open', state: 'ACTIVE', owner: null, deposit: amount }, { ...emptyBalances('ACTIVE'), cash: amount }, new Decimal(0));
      entries.push(open);
      docs.push({ ...newAccount({ _id: id, tier, name: id, ownerId: null, parentId: null, config: {}, state: 'ACTIVE' }, now), headSeq: 1, head: open.after, totals: open.totals, equityCents: storeUnits('cash', amount) });
    }
    await ctx.stores.accounts.model.collection.insertMany(docs as never[], { ordered: false });
    await ctx.stores.journal.model.collection.insertMany(entries as never[], { ordered: false });
  }
}

/** Fork saga duration (start to COMPLETED) with 5 in flight, from a real fork-executor process. */
export async function forkSagas(ctx: BenchContext, forks: number): Promise<Figure[]> {
  const fk = await openForkingDeps(ctx.mongo, ctx.stores, ctx.config, systemClock, ctx.producer.queue(QUEUE.fork));
  const ids = Array.from({ length: forks }, (_, i) => `acc-f${String(i).padStart(5, '0')}`);
  // Over the Gen fork line (threshold × (1 + margin) + the Rev minimum = 115,000.00), so every saga runs.
  await openAccounts(ctx, ids, '120000.00');
  await ctx.spawnService('fork-executor');
  for (const id of ids) {
    const { fork } = await requestFork(fk, { parentId: id, parentSeq: 1, mode: 'full', symbols: [], requestedBy: 'bench', decisionId: null });
    await ctx.producer.enqueue(QUEUE.fork, 'execute', { forkId: fork._id, accountId: id, parentSeq: 1, mode: 'full', symbols: [], requestedBy: 'bench', decisionId: null }, { jobId: jobId('fork', id, 1) });
  }
  const repo = new ForkRepository(ctx.mongo);
  await until('forks done', async () => {
    const [done, refused] = await Promise.all([repo.model.countDocuments({ phase: 'COMPLETED' }), repo.model.countDocuments({ phase: { $in: ['REJECTED', 'ROLLED_BACK'] } })]);
    // A saga that ends otherwise would leave the wait to its deadline: the figure is void, say so at once.
    if (refused > 0) throw new Error(`${refused} of the bench's forks ended without completing (REJECTED or ROLLED_BACK)`);
    return done >= forks;
  }, 900_000, 200);
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
        const id = `acc-s${String(n).padStart(6, '0')}`;
        return { ...newAccount({ _id: id, tier: 'GEN', name: 'scan', ownerId: null, parentId: null, config: {}, state: 'ACTIVE' }, now), headSeq: 1, head, equityCents: eligible ? 11_500_000n : 5_000_000n + BigInt(n), forkCandidate: eligible } as never;
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

/**
 * A daily snapshot of every account: the day's fan-out and its page jobs on an in-process worker
 * (concurrency from config), over real accounts (documents, sealed entries, projections).
 */
export async function dailySnapshot(ctx: BenchContext, accounts: number, reportAs: number): Promise<Figure> {
  await openAccounts(ctx, Array.from({ length: accounts }, (_, i) => `acc-d${String(i).padStart(6, '0')}`), '50000.00');
  const snapshots = new SnapshotRepository(ctx.mongo);
  await snapshots.init();
  const handlers = snapshotterHandlers({ stores: ctx.stores, snapshots, clock: systemClock }, ctx.producer, ctx.config, new Registry());
  const deadLetters = new DeadLetterRepository(ctx.mongo);
  await deadLetters.init();
  const worker = createWorker(QUEUE.snapshot, { day: handlers.day, batch: handlers.batch, limits: handlers.limits }, { connection: ctx.workerRedis, config: ctx.config, logger: silent, metrics: createQueueMetrics(new Registry(), () => []), deadLetters });
  const date = new Date().toISOString().slice(0, 10);
  const start = performance.now();
  void worker.run();
  await ctx.producer.enqueue(QUEUE.snapshot, 'day', { date }, { jobId: jobId('bench-day', date) });
  await until('snapshots written', async () => (await snapshots.model.estimatedDocumentCount()) >= accounts, 3_600_000, 250);
  const seconds = (performance.now() - start) / 1000;
  await worker.close();
  const scaled = seconds * (reportAs / accounts);
  return {
    name: 'snapshot_100k_s',
    value: ms(scaled),
    unit: 's',
    accountsMeasured: accounts,
    measuredSeconds: ms(seconds),
    ...(reportAs !== accounts ? { scaledLinearlyTo: reportAs, note: `measured on ${accounts} real accounts, scaled linearly to ${reportAs}` } : { note: `measured on ${accounts} real accounts` }),
    workerConcurrency: ctx.config.queues.snapshot.workerConcurrency,
  };
}

/** GET /api/v1/accounts/{id} at a fixed rate from autocannon against a real api process. */
export async function apiGet(ctx: BenchContext, ratePerSecond: number, seconds: number): Promise<Figure[]> {
  const ids = Array.from({ length: 50 }, (_, i) => `acc-a${String(i).padStart(3, '0')}`);
  await openAccounts(ctx, ids, '25000.00');
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

/**
 * Deposits through `POST /bulk/transactions?wait=true`, a thousand a request, from real api and
 * account-ops processes: items applied per second, the request's whole time (planning, one addBulk,
 * the jobs, the projections caught up) included.
 */
export async function bulkDeposits(ctx: BenchContext, batches: number): Promise<Figure> {
  const ids = Array.from({ length: 50 }, (_, i) => `acc-b${String(i).padStart(3, '0')}`);
  await openAccounts(ctx, ids, '25000.00');
  const port = String(20000 + Math.floor(Math.random() * 20000));
  await Promise.all([ctx.spawnService('api', { API_PORT: port, FLEET__API__RATE_LIMIT_MAX: '1000000' }), ctx.spawnService('account-ops')]);
  const post = async (b: number) => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ accountId: ids[i % ids.length], kind: 'deposit', amount: '1.00', idempotencyKey: `bench-bulk-${b}-${i}` }));
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/bulk/transactions?wait=true`, { method: 'POST', headers: { authorization: `Bearer ${ctx.env['ADMIN_API_KEY']}`, 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
    const body = (await res.json()) as { counts?: { applied: number } };
    if (res.status !== 200 || body.counts?.applied !== 1000) throw new Error(`bulk batch ${b}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  };
  await post(-1); // warm-up: connections, caches
  const started = Date.now();
  for (let b = 0; b < batches; b++) await post(b);
  return { name: 'bulk_deposits_per_s', value: rate(batches * 1000, Date.now() - started), unit: 'items/s', batches, itemsPerBatch: 1000 };
}
