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
import { connectRedis } from '../../shared/queue/connection.js';
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
  worker: Worker | null;
  /** Runs one operation through the queue and waits for its outcome. */
  run(name: string, data: Record<string, unknown>, id?: string): Promise<Outcome>;
  close(): Promise<void>;
}

export async function startLedger(tag: string, opts: { env?: Record<string, string>; worker?: boolean; clock?: Clock } = {}): Promise<LedgerHarness> {
  const iso = isolatedEnv(tag);
  const config = loadConfig({ ...iso.env, ...opts.env });
  const mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
  const workerRedis = await connectRedis(config.redisUrl, 'worker', tag, silentLogger);
  // Every "process" of a test locks documents in Redis, as the services do: one process's projector
  // and another's saga then exclude each other on FerretDB's read-then-write updates.
  const storesOf = (o: Omit<LedgerStoresOptions, 'locks'> = {}) => openLedgerStores(mongo, { ...o, locks: new RedisDocLocks(workerRedis, config.queuePrefix) });
  const stores = await storesOf();
  const producerRedis = await connectRedis(config.redisUrl, 'producer', tag, silentLogger);
  const producer = new Producer(producerRedis, config);
  const registry = new Registry();
  const deps: ReinvestDeps = { stores, config, clock: opts.clock ?? systemClock };
  let worker: Worker | null = null;
  if (opts.worker !== false) {
    const deadLetters = new DeadLetterRepository(mongo);
    await deadLetters.init();
    const metrics = createQueueMetrics(registry, () => []);
    worker = createWorker(QUEUE.accountOps, accountOpsHandlers(deps, registry, silentLogger, producer), { connection: workerRedis, config, logger: silentLogger, metrics, deadLetters });
    void worker.run();
  }
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
    async run(name, data, id) {
      const job = await queue.add(name, data, { jobId: id ?? jobId('t', String(data['accountId'] ?? 'x'), `${Date.now()}-${counter++}`) });
      const deadline = Date.now() + 30_000;
      for (;;) {
        const state = await job.getState();
        if (state === 'completed') {
          // The answer is out; the projection follows in its batch: written now, so a test can read it.
          await stores.projector.flush();
          return (await queue.getJob(job.id!))!.returnvalue as Outcome;
        }
        if (state === 'failed') throw new Error(`job ${job.id} failed: ${(await queue.getJob(job.id!))?.failedReason}`);
        if (Date.now() > deadline) throw new Error(`job ${job.id} still ${state} after 30 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await worker?.close();
      await stores.close();
      await producer.close();
      workerRedis.disconnect();
      producerRedis.disconnect();
      await mongo.dropDatabase();
      await mongo.close();
      await dropQueuePrefix(iso.redisUrl, iso.queuePrefix);
    },
  };
}

/** Opens an account through the queue with a first deposit; returns its id. */
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
