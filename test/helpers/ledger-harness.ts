import type { Worker } from 'bullmq';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { connectMongo } from '../../shared/db/connection.js';
import { DeadLetterRepository } from '../../shared/db/dead-letter-repository.js';
import type { ReinvestDeps } from '../../services/account-ops/reinvest.js';
import { type Clock, systemClock } from '../../shared/runtime/clock.js';
import { type LedgerStores, type LedgerStoresOptions, openLedgerStores } from '../../shared/ledger/stores.js';
import { RedisDocLocks } from '../../shared/db/doc-locks.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import { connectRedis, type RedisClient } from '../../shared/queue/connection.js';
import { Producer } from '../../shared/queue/producer.js';
import { createQueueMetrics } from '../../shared/queue/queue-metrics.js';
import { createWorker } from '../../shared/queue/worker-runner.js';
import { accountOpsHandlers } from '../../services/account-ops/handlers.js';
import { dropQueuePrefix, isolatedEnv } from './env.js';

export const silentLogger = pino({ level: 'silent' });

/** The ledger and a real account-ops worker in this process, on the real servers, isolated per file. */
export interface LedgerHarness {
  iso: ReturnType<typeof isolatedEnv>;
  config: Config;
  mongo: Connection;
  stores: LedgerStores;
  /** The stores of another process on the same servers (its own caches, the shared Redis locks). */
  storesOf(opts?: Omit<LedgerStoresOptions, 'locks'>): Promise<LedgerStores>;
  deps: ReinvestDeps;
  producer: Producer;
  registry: Registry;
  /** Every replica's registry (the first is `registry`): a job's metrics are in the one that ran it. */
  registries: Registry[];
  /** The first account-ops worker (null with `worker: false`). */
  worker: Worker | null;
  /** Every replica's worker: `replicas: 2` runs a second one as another process would (its own stores and connection). */
  workers: Worker[];
  /** Runs one operation through the queue and waits for its outcome. */
  run(name: string, data: Record<string, unknown>, id?: string): Promise<Outcome>;
  close(): Promise<void>;
}

export async function startLedger(tag: string, opts: { env?: Record<string, string>; worker?: boolean; replicas?: number; clock?: Clock } = {}): Promise<LedgerHarness> {
  const iso = isolatedEnv(tag);
  const config = loadConfig({ ...iso.env, ...opts.env });
  const mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
  const workerRedis = await connectRedis(config, 'worker', tag, silentLogger);
  // Every "process" of a test locks documents in Redis, as the services do: one process's projector
  // and another's saga then exclude each other on FerretDB's read-then-write updates.
  const storesOf = (o: Omit<LedgerStoresOptions, 'locks'> = {}) => openLedgerStores(mongo, { ...o, locks: new RedisDocLocks(workerRedis, config.queuePrefix) });
  const stores = await storesOf();
  const producerRedis = await connectRedis(config, 'producer', tag, silentLogger);
  const producer = new Producer(producerRedis, config);
  const registry = new Registry();
  const deps: ReinvestDeps = { stores, config, clock: opts.clock ?? systemClock };
  const workers: Worker[] = [];
  const registries: Registry[] = [registry];
  const replicaStores: LedgerStores[] = [stores];
  const replicaRedis: RedisClient[] = [];
  if (opts.worker !== false) {
    const deadLetters = new DeadLetterRepository(mongo);
    await deadLetters.init();
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      // Each replica counts in its own registry, as each process does; the harness's is replica 0's.
      const replicaRegistry = i === 0 ? registry : new Registry();
      if (i > 0) registries.push(replicaRegistry);
      const metrics = createQueueMetrics(replicaRegistry, () => []);
      // Replica 0 is this harness's own stores; each further one has its stores, caches and Redis connection.
      const connection = i === 0 ? workerRedis : await connectRedis(config, 'worker', `${tag}-${i}`, silentLogger);
      const own = i === 0 ? stores : await storesOf({ skipInit: true });
      // A test that changes h.deps (a hook, afterPosting) changes it for every replica; only the stores differ.
      const replicaDeps = i === 0 ? deps : new Proxy(deps, { get: (target, key) => (key === 'stores' ? own : Reflect.get(target, key)) });
      if (i > 0) {
        replicaStores.push(own);
        replicaRedis.push(connection);
      }
      const worker = createWorker(QUEUE.accountOps, accountOpsHandlers(replicaDeps, replicaRegistry, silentLogger, producer), { connection, config, logger: silentLogger, metrics, deadLetters });
      void worker.run();
      workers.push(worker);
    }
  }
  const worker = workers[0] ?? null;
  const queue = producer.queue(QUEUE.accountOps);
  let counter = 0;
  return {
    iso,
    config,
    mongo,
    stores,
    storesOf: (o) => storesOf({ skipInit: true, ...o }),
    deps,
    producer,
    registry,
    worker,
    workers,
    registries,
    async run(name, data, id) {
      const job = await queue.add(name, data, { jobId: id ?? jobId('t', String(data['accountId'] ?? 'x'), `${Date.now()}-${counter++}`) });
      // Polled, from every 20 ms up to every 250 ms: a test that runs hundreds of jobs at once must not
      // bury Redis (a cluster shares the CI machine's two cores with the workers) under its own polls.
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      for (let every = 20; ; every = Math.min(250, Math.ceil(every * 1.5))) {
        const state = await job.getState();
        if (state === 'completed') {
          // The answer is out; the projection follows in its batch: written now, so a test can read it.
          await Promise.all(replicaStores.map((s) => s.projector.flush()));
          return (await queue.getJob(job.id!))!.returnvalue as Outcome;
        }
        if (state === 'failed') throw new Error(`job ${job.id} failed: ${(await queue.getJob(job.id!))?.failedReason}`);
        if (Date.now() > deadline) throw new Error(`job ${job.id} still ${state} after ${RUN_TIMEOUT_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, every));
      }
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      for (const s of replicaStores) await s.close();
      replicaRedis.forEach((r) => r.disconnect());
      await producer.close();
      workerRedis.disconnect();
      producerRedis.disconnect();
      await mongo.dropDatabase();
      await mongo.close();
      await dropQueuePrefix(iso, iso.queuePrefix);
    },
  };
}

/** Opens an account through the queue with a first deposit; returns its id. */
/** How long `run` waits for one job: generous, for a job queued behind hundreds on a loaded machine. */
const RUN_TIMEOUT_MS = 60_000;

export async function openAccount(h: LedgerHarness, accountId: string, deposit?: string, extra: Record<string, unknown> = {}): Promise<string> {
  const outcome = await h.run('open-account', {
    accountId,
    idempotencyKey: `open-${accountId}`,
    actor: 'test',
    tier: 'GEN',
    name: accountId,
    ownerId: 'owner-1',
    parentId: null,
    ...(deposit ? { initialDeposit: deposit } : {}),
    ...extra,
  });
  if (outcome.status !== 'applied') throw new Error(`open ${accountId}: ${outcome.status === 'refused' ? outcome.message : ''}`);
  return accountId;
}
