import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { UnrecoverableError, Worker } from 'bullmq';
import { Registry } from 'prom-client';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { AlertRepository } from '../shared/db/alert-repository.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { bullPrefix, connectRedis } from '../shared/queue/connection.js';
import { createQueueMetrics } from '../shared/queue/queue-metrics.js';
import { createWorker } from '../shared/queue/worker-runner.js';
import { alerterHandlers, createAlertCounter, createDeliveryCounter, webhookHandlers } from '../services/alerter/handlers.js';
import { freeLowPort } from '../scripts/servers/ports.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, silentLogger, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let server: Server;
let registry: Registry;
let alerts: AlertRepository;
let deadLetters: DeadLetterRepository;
const workers: Worker[] = [];
/** What the receiver saw, and how many times it fails before it accepts. */
const received: Array<{ status: number; body: Record<string, unknown> }> = [];
let failuresLeft = 2;
let refuseWith: number | null = null;

beforeAll(async () => {
  const port = await freeLowPort();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const status = refuseWith ?? (failuresLeft-- > 0 ? 503 : 204);
      received.push({ status, body: JSON.parse(body) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  h = await startLedger('alerter', {
    worker: false,
    env: { FLEET__QUEUES__WEBHOOKS__BACKOFF_TYPE: 'fixed', FLEET__QUEUES__WEBHOOKS__BACKOFF_DELAY_MS: '50', FLEET__QUEUES__WEBHOOKS__ATTEMPTS: '5' },
  });
  registry = new Registry();
  alerts = new AlertRepository(h.mongo);
  deadLetters = new DeadLetterRepository(h.mongo);
  await Promise.all([alerts.init(), deadLetters.init()]);
  const connection = await connectRedis(h.config, 'worker', 'alerter-test', silentLogger);
  const wdeps = { connection, config: h.config, logger: silentLogger, metrics: createQueueMetrics(registry, () => []), deadLetters };
  const deliveries = createDeliveryCounter(registry);
  workers.push(
    createWorker(
      QUEUE.alerts,
      alerterHandlers({
        alerts,
        raised: createAlertCounter(registry),
        deliveries,
        now: () => new Date(),
        producer: h.producer,
        webhookUrls: [`http://127.0.0.1:${port}/hook`],
        webhookTimeoutMs: 2000,
        deadLetters,
        watched: () => [h.producer.queue(QUEUE.accountOps), h.producer.queue(QUEUE.merge)],
        queueBacklogMax: 3,
      }),
      wdeps,
    ),
    createWorker(QUEUE.webhooks, webhookHandlers({ deliveries, webhookTimeoutMs: 2000 }), wdeps),
  );
  for (const w of workers) void w.run();
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  server?.close();
  await h?.close();
});

const raise = (period: string, id: string) =>
  h.producer.enqueue(QUEUE.alerts, 'raise', { rule: 'daily-loss', severity: 'warning', accountId: 'acc-1', period, message: 'lost 6.00 %', details: {} }, { jobId: jobId('alert', id) });

describe('the alerter', () => {
  it('delivers a new alert to the webhook, retrying with backoff until the receiver accepts', async () => {
    await raise('2026-11-18', 'a1');
    await waitFor('a delivery', () => received.find((r) => r.status === 204), 15_000);
    expect(received.map((r) => r.status)).toEqual([503, 503, 204]);
    expect(received[2]!.body).toMatchObject({ rule: 'daily-loss', accountId: 'acc-1', period: '2026-11-18', message: 'lost 6.00 %' });
    // The handler counts the delivery once the receiver's answer is back, a moment after the receiver saw it.
    const metrics = await waitFor('the delivery counted', async () => {
      const text = await registry.metrics();
      return text.includes('fleet_webhook_deliveries_total{outcome="delivered"} 1') ? text : null;
    });
    expect(metrics).toContain('fleet_webhook_deliveries_total{outcome="retry"} 2');
  });

  it('stores and delivers an alert once per account, rule and period', async () => {
    const before = received.length;
    await raise('2026-11-18', 'a2'); // the same alert through another job
    await waitFor('the second job done', async () => (await h.producer.queue(QUEUE.alerts).getJobState('alert.a2')) === 'completed');
    await new Promise((r) => setTimeout(r, 300));
    expect(received.length).toBe(before);
    expect(await alerts.model.countDocuments({ rule: 'daily-loss', accountId: 'acc-1' })).toBe(1);
  });

  it('does not retry a webhook that refuses the alert', async () => {
    refuseWith = 400;
    const before = received.length;
    await raise('2026-11-19', 'a3');
    await waitFor('the refusal', () => received.length > before);
    await new Promise((r) => setTimeout(r, 400));
    expect(received.length).toBe(before + 1);
    refuseWith = null;
  });

  it('sweeps jobs that failed for good into the dead-letter store', async () => {
    // A bare BullMQ worker fails one job for good and records no dead letter, as a crash would leave it.
    const queue = h.producer.queue(QUEUE.accountOps);
    const bare = new Worker(QUEUE.accountOps, async () => { throw new UnrecoverableError('gave up'); }, { connection: await connectRedis(h.config, 'worker', 'bare', silentLogger), prefix: bullPrefix(h.config, QUEUE.accountOps) });
    await queue.add('deposit', { broken: true }, { jobId: 'op.swept.1', attempts: 1 });
    await waitFor('the failure', async () => (await queue.getJobState('op.swept.1')) === 'failed');
    await bare.close();
    expect(await deadLetters.model.countDocuments({ jobId: 'op.swept.1' })).toBe(0);

    await h.producer.enqueue(QUEUE.alerts, 'sweep', {}, { jobId: jobId('sweep', 'test') });
    await waitFor('the sweep', async () => (await h.producer.queue(QUEUE.alerts).getJobState('sweep.test')) === 'completed');
    expect((await h.producer.queue(QUEUE.alerts).getJob('sweep.test'))!.returnvalue).toEqual({ swept: 1, backlogged: [] });
    expect(await deadLetters.model.findOne({ jobId: 'op.swept.1' }).lean()).toMatchObject({ queue: 'account-ops', reason: 'gave up' });
  });

  it('raises a queue-backlog alert once an hour for a queue over its limit', async () => {
    const merge = h.producer.queue(QUEUE.merge); // no worker consumes it here
    for (let i = 0; i < 4; i++) await h.producer.enqueue(QUEUE.merge, 'execute', { mergeId: `m${i}` }, { jobId: jobId('merge', `m${i}`) });
    for (const id of ['sweep-b1', 'sweep-b2']) {
      await h.producer.enqueue(QUEUE.alerts, 'sweep', {}, { jobId: jobId('sweep', id) });
      await waitFor('the sweep', async () => (await h.producer.queue(QUEUE.alerts).getJobState(`sweep.${id}`)) === 'completed');
    }
    expect((await h.producer.queue(QUEUE.alerts).getJob('sweep.sweep-b1'))!.returnvalue).toMatchObject({ backlogged: ['merge'] });
    await waitFor('the alert', () => alerts.model.findOne({ rule: 'queue-backlog' }).lean());
    expect(await alerts.model.countDocuments({ rule: 'queue-backlog' })).toBe(1);
    await merge.drain();
  });
});
