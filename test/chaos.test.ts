import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { jobId, type JobInput } from '../shared/contracts/jobs.js';
import { QUEUE, QUEUE_NAMES } from '../shared/contracts/queues.js';
import { connectMongo } from '../shared/db/connection.js';
import { FORK_DONE, ForkRepository } from '../shared/db/fork-repository.js';
import { MERGE_DONE } from '../shared/db/merge-repository.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { type ConsolidationDeps, openConsolidationDeps, requestMerges } from '../shared/ledger/consolidation.js';
import { requestFork, runFork } from '../shared/ledger/fork-saga.js';
import { runMerge } from '../shared/ledger/merge-saga.js';
import { transferOp } from '../services/account-ops/postings.js';
import type { JobData } from '../shared/contracts/jobs.js';
import { failingAt } from './helpers/stepped.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { storedOutcome } from '../shared/ledger/operation.js';
import { type LedgerStores, openLedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { connectRedis, type RedisClient } from '../shared/queue/connection.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { Producer } from '../shared/queue/producer.js';
import { systemClock } from '../shared/runtime/clock.js';
import { Decimal } from '../shared/money/decimal.js';
import { Rng } from '../scripts/simulation/random.js';
import { dropQueuePrefix, isolatedEnv } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { silentLogger } from './helpers/ledger-harness.js';
import { DIST, Proc } from './helpers/processes.js';
import { RestartableRedis } from './helpers/restartable-redis.js';

/**
 * SPEC §11: a seeded, replayable fault-injection run. Random deposits, withdrawals, transfers, trades,
 * forks, merges and snapshots go through the queues to real worker processes while the run delivers
 * some twice, SIGKILLs workers (their jobs stall and are taken up again once the lock expires) and
 * restarts Redis (AOF). Every invariant is checked after every step and, once idle, at the end.
 * Two replicas of every worker run, as a scaled-out fleet does. On a Redis Cluster
 * (`npm run test:cluster`) the queues live on the cluster and the run kills workers but does not
 * restart Redis: a master's failover is the cluster's, argued in docs/scaling.md.
 * CHAOS_SEED replays a run; CHAOS_STEPS sets its length (`npm run test:chaos` runs a long one).
 */
const SEED = Number(process.env['CHAOS_SEED'] ?? 1);
const STEPS = Number(process.env['CHAOS_STEPS'] ?? 40);
const SERVICES = ['account-ops', 'fork-executor', 'consolidation-scanner', 'performance-snapshotter'] as const;
const REPLICAS = 2;
const WORKERS = SERVICES.flatMap((s) => Array.from({ length: REPLICAS }, (_, i) => `${s}#${i}`));
const ACCOUNTS = ['acc-x1', 'acc-x2', 'acc-x3', 'acc-x4', 'acc-x5', 'acc-x6'];
const SYMBOLS = ['AAA', 'BBB', 'CCC'];
const PRICES: Record<string, string> = { AAA: '101.250000', BBB: '57.100000', CCC: '12.345600' };
const fail = (what: string) => `${what} — replay with CHAOS_SEED=${SEED} CHAOS_STEPS=${STEPS}`;

const iso = isolatedEnv('chaos');
const CLUSTER = !!iso.redisClusterNodes;
let redis: RestartableRedis | null = null;
let sideRedis: RedisClient;
let config: Config;
let mongo: Connection;
let stores: LedgerStores;
let producer: Producer;
let cd: ConsolidationDeps;
let forks: ForkRepository;
const procs = new Map<string, Proc>();
let env: Record<string, string>;
/** Fault points the worker processes fail at (throw) while this file names them. */
const FAULT_FILE = join(mkdtempSync(join(tmpdir(), 'chaos-faults-')), 'faults');
const THROW_POINTS = ['transfer.after-hold', 'transfer.after-credit', 'fork.after-start', 'fork.after-child', 'fork.after-fork-in', 'fork.after-fork-out', 'merge.after-start', 'merge.after-merge-in', 'merge.after-merge-out'];
/** A second "worker" in this process: its own stores, so its runs race the processes' runs as another process would. */
let side: LedgerStores;
const sideRuns: Array<Promise<unknown>> = [];

// Short locks: a killed worker's job is taken up again within seconds; stalls never exhaust a job.
const fastLocks = Object.fromEntries(
  QUEUE_NAMES.flatMap((q) => {
    const k = `FLEET__QUEUES__${q.toUpperCase().replace(/-/g, '_')}`;
    return [[`${k}__LOCK_DURATION_MS`, '3000'], [`${k}__STALLED_INTERVAL_MS`, '1000'], [`${k}__MAX_STALLED_COUNT`, '50']];
  }),
);

/** Deps of the side worker: its own stores, and one write in three failing (before it, or after it landed). */
function sideDeps(rng: Rng) {
  const base = { stores: side, forks: side.forks, merges: side.merges, config, clock: systemClock, cooldownHours: config.fork.cooldownHours };
  return rng.next() < 0.33 ? { ...base, hooks: failingAt(rng.int(0, 8), rng.next() < 0.5 ? 'before' : 'after') } : base;
}

async function startWorker(name: string): Promise<void> {
  const { env: ports } = await portEnv();
  procs.set(name, new Proc(join(DIST, 'services', name.split('#')[0]!, 'main.js'), { ...env, ...ports }));
}

/** Enqueue until Redis takes it: during a restart the producer fails fast and the driver tries again. */
async function enqueue<Q extends (typeof QUEUE)[keyof typeof QUEUE]>(queue: Q, name: string, data: unknown, id: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await producer.enqueue(queue, name as never, data as JobInput<Q, never>, { jobId: id });
      return;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

beforeAll(async () => {
  if (!CLUSTER) redis = await RestartableRedis.start();
  // Sagas whose job gave up (attempts spent during an outage) are resumed by the recovery jobs: soon, here.
  env = { ...iso.env, ...(redis ? { REDIS_URL: redis.url } : {}), FLEET__FORK__RECOVER_AFTER_SEC: '5', FLEET_FAULT_FILE: FAULT_FILE, ...fastLocks };
  config = loadConfig({ ...env });
  mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
  // The side worker locks documents in Redis as the services do, so its writes and theirs exclude each other.
  sideRedis = await connectRedis(config, 'worker', 'chaos-side', silentLogger);
  stores = await openLedgerStores(mongo);
  side = await openLedgerStores(mongo, { skipInit: true, locks: new RedisDocLocks(sideRedis, config.queuePrefix) });
  producer = new Producer(await connectRedis(config, 'producer', 'chaos', silentLogger), config);
  cd = await openConsolidationDeps(mongo, stores, config, systemClock);
  forks = new ForkRepository(mongo);
  await forks.init();
  await stores.prices.upsert(SYMBOLS.map((symbol) => ({ symbol, date: '2026-01-02', close: new Decimal(PRICES[symbol]!) })));
  for (const w of WORKERS) await startWorker(w);
  await Promise.all([...procs.values()].map((p) => p.waitForLine(/"msg":"service ready"/, 60_000)));
}, 120_000);

afterAll(async () => {
  for (const p of procs.values()) p.kill('SIGKILL');
  await side?.close();
  sideRedis?.disconnect();
  await producer?.close();
  await mongo?.dropDatabase().catch(() => undefined);
  await mongo?.close();
  await redis?.stop();
  if (CLUSTER) await dropQueuePrefix(iso, iso.queuePrefix);
});

/** Nothing waiting, running or retrying on the queues the run's workers take (scheduled repeats do not count). */
async function idle(): Promise<boolean> {
  for (const q of [QUEUE.accountOps, QUEUE.fork, QUEUE.merge, QUEUE.snapshot]) {
    const queue = producer.queue(q);
    const c = await queue.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children');
    if ((c['waiting'] ?? 0) + (c['active'] ?? 0) + (c['prioritized'] ?? 0) + (c['waiting-children'] ?? 0) > 0) return false;
    const delayed = await queue.getDelayed(0, 200);
    if (delayed.some((j) => !j.repeatJobKey)) return false;
  }
  return true;
}

describe(`fault injection (seed ${SEED}, ${STEPS} steps)`, () => {
  it(`loses no money and no operation under duplicate deliveries, killed workers${CLUSTER ? ' on a Redis Cluster' : ' and a Redis restart'}`, async () => {
    console.log(`chaos: seed ${SEED}, ${STEPS} steps (CHAOS_SEED=${SEED} replays this run)`);
    const rng = new Rng('chaos', SEED);
    const operations: Array<{ accountId: string; key: string }> = [];
    const sagas: Array<{ kind: 'fork' | 'merge'; id: string }> = [];
    const faults: string[] = [];

    for (const [i, id] of ACCOUNTS.entries()) {
      const key = `open-${id}`;
      await enqueue(QUEUE.accountOps, 'open-account', { accountId: id, idempotencyKey: key, actor: 'chaos', tier: 'GEN', name: id, ownerId: 'owner-1', parentId: null, initialDeposit: i < 2 ? '115000.00' : `${20_000 + i * 7_000}.00` }, jobId('chaos', 'open', id));
      operations.push({ accountId: id, key });
    }

    const redisRestartAt = Math.floor(STEPS / 2);
    for (let step = 0; step < STEPS; step++) {
      const account = rng.pick(ACCOUNTS);
      const other = rng.pick(ACCOUNTS.filter((a) => a !== account));
      const key = `chaos-${SEED}-${step}`;
      const roll = rng.next();
      const amount = `${rng.int(1, 25_000)}.${String(rng.int(0, 100)).padStart(2, '0')}`;
      const base = { accountId: account, idempotencyKey: key, actor: 'chaos' };
      let job: { name: string; data: unknown } | null = null;
      if (roll < 0.22) job = { name: 'deposit', data: { ...base, amount } };
      else if (roll < 0.36) job = { name: 'withdrawal', data: { ...base, amount } };
      else if (roll < 0.52) job = { name: 'transfer', data: { ...base, toAccountId: other, amount } };
      else if (roll < 0.7) {
        const symbol = rng.pick(SYMBOLS);
        const a = await stores.accounts.get(account);
        const held = a ? loadBalances(a.head).positions.find((p) => p.symbol === symbol) : undefined;
        const sell = held && rng.next() < 0.5;
        job = { name: 'trade', data: { ...base, side: sell ? 'sell' : 'buy', symbol, quantity: sell ? held.quantity.dividedBy(2).toFixed(8) : `${rng.int(1, 40)}.5`, price: PRICES[symbol] } };
      } else if (roll < 0.8) {
        const a = await stores.accounts.get(account);
        if (a && a.headSeq > 0) {
          const { fork } = await requestFork({ ...cd, forks, cooldownHours: config.fork.cooldownHours }, { parentId: account, parentSeq: a.headSeq, mode: 'full', symbols: [], requestedBy: 'chaos', decisionId: null });
          await enqueue(QUEUE.fork, 'execute', { forkId: fork._id, accountId: account, parentSeq: a.headSeq, mode: 'full', symbols: [], requestedBy: 'chaos', decisionId: null }, jobId('fork', account, a.headSeq));
          sagas.push({ kind: 'fork', id: fork._id });
          // The same fork run at once by another worker, sometimes failing at one of its writes.
          if (rng.next() < 0.5) sideRuns.push(runFork(sideDeps(rng), fork._id, `chaos-dup-${step}`).catch(() => undefined));
        }
      } else if (roll < 0.9) {
        const [id] = await requestMerges(cd, { sourceIds: [account], targetId: other, strategy: 'sibling', amount: null, symbols: [], requestedBy: 'chaos', opportunityId: null, scheduledFor: null });
        if (id) {
          await enqueue(QUEUE.merge, 'execute', { mergeId: id }, jobId('merge', id));
          sagas.push({ kind: 'merge', id });
          if (rng.next() < 0.5) sideRuns.push(runMerge(sideDeps(rng), id, `chaos-dup-${step}`).catch(() => undefined));
        }
      } else {
        await enqueue(QUEUE.snapshot, 'day', { date: systemClock.today() }, jobId('chaos-snapshot', step));
      }
      if (job) {
        await enqueue(QUEUE.accountOps, job.name, job.data, jobId('chaos', step, 'a'));
        // A duplicate delivery: the same operation under another job id.
        if (rng.next() < 0.25) await enqueue(QUEUE.accountOps, job.name, job.data, jobId('chaos', step, 'b'));
        // The same transfer processed at once by a second worker (a stalled job re-run while the first is alive).
        else if (job.name === 'transfer' && rng.next() < 0.4) sideRuns.push(transferOp(sideDeps(rng), job.data as JobData<'account-ops', 'transfer'>, `chaos-dup-${step}`).catch(() => undefined));
        operations.push({ accountId: account, key });
      }

      if (rng.next() < 0.15) {
        const victim = rng.pick(WORKERS);
        procs.get(victim)!.kill('SIGKILL');
        await startWorker(victim);
        faults.push(`step ${step}: killed ${victim}`);
      }
      // Write errors in the worker processes: a fault point fails its step (a connection reset) for a while.
      if (rng.next() < 0.2) {
        const point = rng.pick(THROW_POINTS);
        writeFileSync(FAULT_FILE, `${point} throw\n`);
        faults.push(`step ${step}: ${point} throws`);
      } else if (rng.next() < 0.5) writeFileSync(FAULT_FILE, '');
      if (redis && step === redisRestartAt) {
        await redis.restart();
        faults.push(`step ${step}: restarted Redis`);
      }
      await new Promise((r) => setTimeout(r, rng.int(0, 250)));
      // Mid-flight a projection may trail its journal by an append; every other invariant holds at every moment.
      const report = await verifyLedger(stores, { idle: false });
      const problems = report.problems.filter((p) => !/projection at seq/.test(p));
      expect([report.violations, report.audit.breaks.length, problems.slice(0, 3)], fail(`invariants after step ${step} (${faults.join('; ')})`)).toEqual([0, 0, []]);
    }

    // Idle: every operation has its one outcome, every saga ended, nothing held, verify passes.
    writeFileSync(FAULT_FILE, '');
    await Promise.all(sideRuns);
    const deadline = Date.now() + 150_000;
    let report = await verifyLedger(stores, { idle: true });
    while (Date.now() < deadline && !((await idle()) && (report = await verifyLedger(stores, { idle: true })).ok)) await new Promise((r) => setTimeout(r, 500));
    const open = [];
    for (const sg of sagas) {
      const doc = sg.kind === 'fork' ? await forks.get(sg.id) : await cd.merges.get(sg.id);
      if (doc && !(sg.kind === 'fork' ? FORK_DONE : MERGE_DONE).includes(doc.phase as never)) {
        const job = await producer.queue(sg.kind === 'fork' ? QUEUE.fork : QUEUE.merge).getJob(sg.kind === 'fork' ? jobId('fork', (doc as { parentId: string }).parentId, (doc as { parentSeq: number }).parentSeq) : jobId('merge', sg.id));
        open.push(`${sg.id} ${doc.phase} job=${job ? `${await job.getState()} attempts=${job.attemptsMade} ${job.failedReason ?? ''}` : 'gone'}`);
      }
    }
    for (const c of ['forks', 'merges']) {
      for (const d of await mongo.collection(c).find({ phase: { $in: ['FORKING', 'MERGING', 'HELD', 'CHILD_OPENED', 'MOVED', 'POSTED'] } }).toArray()) open.push(`${c} ${String(d['_id'])} ${String(d['phase'])} updated ${new Date(d['updatedAt'] as Date).toISOString()} listed=${sagas.some((x) => x.id === String(d['_id']))}`);
    }
    expect([report.ok, report.problems.slice(0, 5), open], fail(`verify once idle (${faults.join('; ')})`)).toEqual([true, [], []]);
    for (const op of operations) {
      const stored = await storedOutcome(stores, op.accountId, op.key);
      expect(stored === null || stored === 'running' ? null : stored.status, fail(`outcome of ${op.key}`)).not.toBeNull();
    }
    for (const s of sagas) {
      const doc = s.kind === 'fork' ? await forks.get(s.id) : await cd.merges.get(s.id);
      expect((s.kind === 'fork' ? FORK_DONE : MERGE_DONE).includes(doc!.phase as never), fail(`${s.kind} ${s.id} ended (${doc?.phase})`)).toBe(true);
    }
    // Money is conserved to the cent: the fleet's holdings equal its external flows.
    const t = report.totals;
    const held = new Decimal(t.cash).plus(t.costBasis);
    const flows = new Decimal(t.deposits).minus(t.withdrawals).minus(t.fees).plus(t.dividends).plus(t.realisedPnl);
    expect(held.toFixed(2), fail('money conserved')).toBe(flows.toFixed(2));
    expect(faults.some((f) => f.includes('Redis')), 'the run restarted Redis (one Redis only)').toBe(!CLUSTER);
  }, 600_000);
});
