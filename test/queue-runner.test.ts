import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from 'bullmq';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { JOBS, jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { AlertRepository } from '../shared/db/alert-repository.js';
import { connectMongo } from '../shared/db/connection.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { connectRedis, type RedisClient } from '../shared/queue/connection.js';
import { raiseDeadLetterAlert } from '../shared/queue/dead-letter-alert.js';
import { deadLetterKey } from '../shared/queue/dead-letter.js';
import { ContractError, Producer } from '../shared/queue/producer.js';
import { createQueueMetrics, type QueueMetrics } from '../shared/queue/queue-metrics.js';
import { createWorker, type Handler, type Handlers } from '../shared/queue/worker-runner.js';
import { alerterHandlers, createAlertCounter, createDeliveryCounter } from '../services/alerter/handlers.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';

const logger = pino({ level: 'silent' });
const iso = isolatedEnv('runner');
let config: Config;
let mongo: Connection;
let workerRedis: RedisClient;
let producerRedis: RedisClient;
let producer: Producer;
let registry: Registry;
let metrics: QueueMetrics;
let deadLetters: DeadLetterRepository;
let alerts: AlertRepository;
const workers: Worker[] = [];

/** Calls per idempotency key, and the keys whose handler always throws (to exhaust attempts). */
const calls = new Map<string, number>();
const alwaysFailing = new Set<string>();

function accountOpsHandlers(): Handlers<'account-ops'> {
  const handler: Handler<'account-ops', 'deposit'> = async (data) => {
    calls.set(data.idempotencyKey, (calls.get(data.idempotencyKey) ?? 0) + 1);
    if (alwaysFailing.has(data.idempotencyKey)) throw new Error(`downstream unavailable for ${data.idempotencyKey}`);
    return { ok: true };
  };
  return Object.fromEntries(Object.keys(JOBS[QUEUE.accountOps]).map((n) => [n, handler])) as unknown as Handlers<'account-ops'>;
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  // Histograms list their _count/_sum samples inside the one metric, under metricName.
  const samples = (await registry.getMetricsAsJSON()).flatMap((m) =>
    m.values.map((v) => ({ ...v, name: (v as { metricName?: string }).metricName ?? m.name })),
  );
  const value = samples.find((v) => v.name === name && Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

beforeAll(async () => {
  config = loadConfig({
    ...iso.env,
    FLEET__QUEUES__ACCOUNT_OPS__ATTEMPTS: '3',
    FLEET__QUEUES__ACCOUNT_OPS__BACKOFF_TYPE: 'fixed',
    FLEET__QUEUES__ACCOUNT_OPS__BACKOFF_DELAY_MS: '20',
  });
  mongo = await connectMongo(config.mongodbUrl, config.mongo, logger);
  workerRedis = await connectRedis(config, 'worker', 'test', logger);
  producerRedis = await connectRedis(config, 'producer', 'test', logger);
  producer = new Producer(producerRedis, config);
  registry = new Registry();
  metrics = createQueueMetrics(registry, () => [producer.queue(QUEUE.accountOps)]);
  deadLetters = new DeadLetterRepository(mongo, raiseDeadLetterAlert(producer));
  await deadLetters.init();
  alerts = new AlertRepository(mongo);
  await alerts.init();
  const deps = { connection: workerRedis, config, logger, metrics, deadLetters };
  workers.push(createWorker(QUEUE.accountOps, accountOpsHandlers(), deps));
  workers.push(
    createWorker(
      QUEUE.alerts,
      alerterHandlers({ alerts, raised: createAlertCounter(registry), deliveries: createDeliveryCounter(registry), now: () => new Date(), producer, webhookUrls: [], webhookTimeoutMs: 1000, deadLetters, watched: () => [], queueBacklogMax: 1000 }),
      deps,
    ),
  );
  for (const w of workers) void w.run();
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await producer?.close();
  workerRedis?.disconnect();
  producerRedis?.disconnect();
  await mongo?.dropDatabase();
  await mongo?.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

describe('producer and worker runner against real Redis and MongoDB', () => {
  it('processes a job once when the same business key is enqueued twice', async () => {
    const data = { accountId: 'acc-1', idempotencyKey: 'dep-once-1', amount: '10.00', actor: 'test' };
    const id = jobId('op', 'acc-1', 'dep-once-1');
    const first = await producer.enqueue(QUEUE.accountOps, 'deposit', data, { jobId: id });
    const second = await producer.enqueue(QUEUE.accountOps, 'deposit', data, { jobId: id });
    expect(second.id).toBe(first.id);
    await waitFor('completion', async () => (await producer.queue(QUEUE.accountOps).getJobState(id)) === 'completed');
    // A replay after completion, while the job is retained, is still a no-op.
    await producer.enqueue(QUEUE.accountOps, 'deposit', data, { jobId: id });
    await new Promise((r) => setTimeout(r, 200));
    expect(calls.get('dep-once-1')).toBe(1);
    expect(await metricValue('fleet_job_duration_seconds_count', { queue: 'account-ops', name: 'deposit', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses an invalid payload at the producer with the reason', async () => {
    await expect(
      producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: 'acc-1', idempotencyKey: 'dep-bad-1', amount: '-5', actor: 'test' }, { jobId: 'op.bad.1' }),
    ).rejects.toThrow(ContractError);
    await expect(
      producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: 'acc-1', idempotencyKey: 'dep-bad-1', amount: '-5', actor: 'test' }, { jobId: 'op.bad.1' }),
    ).rejects.toThrow(/amount: must be greater than zero/);
    expect(await producer.queue(QUEUE.accountOps).getJob('op.bad.1')).toBeUndefined();
  });

  it('fails an invalid payload that bypassed the producer permanently, counts it and keeps working', async () => {
    const queue = producer.queue(QUEUE.accountOps);
    await queue.add('deposit', { accountId: { $ne: null }, amount: 5 }, { jobId: 'op.injected.1', attempts: 3 });
    await queue.add('no-such-job', { accountId: 'acc-1' }, { jobId: 'op.unknown.1', attempts: 3 });
    await waitFor('the injected job failed', async () => (await queue.getJobState('op.injected.1')) === 'failed');
    await waitFor('the unknown job failed', async () => (await queue.getJobState('op.unknown.1')) === 'failed');

    const injected = (await queue.getJob('op.injected.1'))!;
    expect(injected.attemptsMade).toBe(1); // never retried, although 3 attempts were allowed
    expect(injected.failedReason).toMatch(/invalid payload: accountId: .*amount: /);
    expect((await queue.getJob('op.unknown.1'))!.failedReason).toMatch(/no job named "no-such-job"/);
    expect(await metricValue('fleet_jobs_invalid_total', { queue: 'account-ops', name: 'deposit' })).toBe(1);

    const letter = await waitFor('the dead letter', () => deadLetters.model.findOne({ jobId: 'op.injected.1' }).lean());
    expect(letter).toMatchObject({ queue: 'account-ops', failedReason: 'invalid', attemptsMade: 1 });
    expect(JSON.parse(letter.dataJson)).toEqual({ accountId: { $ne: null }, amount: 5 });

    // The worker is still alive and takes the next valid job.
    const id = jobId('op', 'acc-1', 'dep-after-bad');
    await producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: 'acc-1', idempotencyKey: 'dep-after-bad', amount: '1.00', actor: 'test' }, { jobId: id });
    await waitFor('the next job', async () => (await queue.getJobState(id)) === 'completed');
  });

  it('moves a job that exhausted its attempts into the dead-letter store and raises one alert', async () => {
    alwaysFailing.add('dep-exhaust-1');
    const id = jobId('op', 'acc-2', 'dep-exhaust-1');
    await producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: 'acc-2', idempotencyKey: 'dep-exhaust-1', amount: '3.00', actor: 'test' }, { jobId: id });
    const letter = await waitFor('the dead letter', () => deadLetters.model.findOne({ jobId: id }).lean());
    expect(calls.get('dep-exhaust-1')).toBe(3);
    expect(letter).toMatchObject({ queue: 'account-ops', name: 'deposit', failedReason: 'exhausted', attemptsMade: 3 });
    expect(letter.reason).toMatch(/downstream unavailable/);
    expect(await metricValue('fleet_jobs_failed_total', { queue: 'account-ops', name: 'deposit', reason: 'exhausted' })).toBe(1);

    // The alerter stores the job-failed alert once, even when the letter is recorded again.
    const period = deadLetterKey({ queue: 'account-ops', jobId: id });
    await waitFor('the alert', () => alerts.model.findOne({ rule: 'job-failed', period }).lean());
    const { recordedAt: _, _id: __, ...again } = letter;
    await deadLetters.record({ ...again, failedAt: new Date() });
    await new Promise((r) => setTimeout(r, 300));
    expect(await alerts.model.countDocuments({ rule: 'job-failed', period })).toBe(1);
    expect(await deadLetters.model.countDocuments({ jobId: id })).toBe(1);
  });
});
