import { openConsolidationDeps } from '../shared/ledger/consolidation.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueEvents, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { QUEUE } from '../shared/contracts/queues.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import type { AssessDeps } from '../shared/ledger/fork-assessment.js';
import { connectRedis, redisOptions } from '../shared/queue/connection.js';
import { createQueueMetrics } from '../shared/queue/queue-metrics.js';
import { createWorker } from '../shared/queue/worker-runner.js';
import { buildApp } from '../services/api/app.js';
import { Authenticator } from '../services/api/auth.js';
import { Operations } from '../services/api/operations.js';
import { createForkMetrics, forkExecutorHandlers } from '../services/fork-executor/handlers.js';
import { thresholdMonitorHandlers } from '../services/threshold-monitor/handlers.js';
import { ApiKeyRepository } from '../shared/db/api-key-repository.js';
import { AlertRepository } from '../shared/db/alert-repository.js';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'forking-admin-key-0123456789';
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));
let h: LedgerHarness;
let fk: AssessDeps;
let events: QueueEvents;
let forkWorker: Worker;
let app: Awaited<ReturnType<typeof buildApp>>;

const call = async (method: 'GET' | 'POST', url: string, payload?: object) => {
  const res = await app.inject({ method, url, ...(payload ? { payload } : {}), headers: { authorization: `Bearer ${ADMIN}` } });
  return { status: res.statusCode, body: JSON.parse(res.body) as any };
};

beforeAll(async () => {
  h = await startLedger('apifork');
  h.deps.clock = clock;
  fk = await openForkingDeps(h.mongo, h.stores, h.config, clock, h.producer.queue(QUEUE.fork));
  events = new QueueEvents(QUEUE.accountOps, { connection: new Redis(h.config.redisUrl, redisOptions('worker', 'apifork')), prefix: h.config.queuePrefix });
  await events.waitUntilReady();
  const dead = new DeadLetterRepository(h.mongo);
  await dead.init();
  const registry = new Registry();
  forkWorker = createWorker(QUEUE.fork, forkExecutorHandlers(fk, createForkMetrics(registry, fk.forks), { onFinished: async () => undefined }, silentLogger), {
    connection: await connectRedis(h.config.redisUrl, 'worker', 'apifork', silentLogger),
    config: h.config,
    logger: silentLogger,
    metrics: createQueueMetrics(registry, () => []),
    deadLetters: dead,
  });
  void forkWorker.run();
  const api = { stores: h.stores, operations: new Operations(h.producer, events, h.stores.idempotency, 15_000), clock, config: h.config, producer: h.producer, forking: fk, performance: { snapshots: new SnapshotRepository(h.mongo), alerts: new AlertRepository(h.mongo) }, consolidation: await openConsolidationDeps(h.mongo, h.stores, h.config, clock) };
  app = await buildApp({ logger: silentLogger, api, auth: new Authenticator(new ApiKeyRepository(h.mongo), ADMIN), rateLimitRedis: null });
});
afterAll(async () => {
  await app?.close();
  await forkWorker?.close();
  await events?.close();
  await h?.close();
});

describe('forking through the API', () => {
  it('lists eligible accounts as opportunities, and assesses one with its factor breakdown', async () => {
    await openAccount(h, 'acc-opp', '112000.00');
    await openAccount(h, 'acc-small', '50000.00');
    const opp = await call('GET', '/api/v1/forking/opportunities');
    expect(opp.status).toBe(200);
    expect(opp.body.items.map((i: { accountId: string }) => i.accountId)).toEqual(['acc-opp']);
    expect(opp.body.items[0]).toMatchObject({ equity: '112000.00', forkAmount: '102000.00', childType: 'REV', latestDecision: null });

    const assessed = await call('POST', '/api/v1/forking/assess', { accountId: 'acc-opp' });
    expect(assessed.status).toBe(200);
    expect(assessed.body).toMatchObject({ accountId: 'acc-opp', confidence: 0.65, outcome: 'review' });
    expect(Object.keys(assessed.body.factors).sort()).toEqual(['market', 'performance', 'systemLoad', 'timing']);
    const refused = await call('POST', '/api/v1/forking/assess', { accountId: 'acc-small' });
    expect([refused.status, refused.body.error.code]).toEqual([422, 'not_assessable']);
  });

  it('executes a fork on approval, answers the same fork to a second execute, then refuses for cooldown', async () => {
    const first = await call('POST', '/api/v1/forking/execute?wait=true', { accountId: 'acc-opp' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ parentId: 'acc-opp', state: 'COMPLETED', mode: 'full' });
    const children = await call('GET', '/api/v1/accounts?parentId=acc-opp');
    expect(children.body.items.map((a: { id: string }) => a.id)).toEqual([first.body.childId]);
    expect(children.body.items[0]).toMatchObject({ type: 'REV', cash: '102000.00', state: 'ACTIVE' });

    // The parent's head moved with the fork; with fresh money it is eligible again, but cooling down.
    await h.run('deposit', { accountId: 'acc-opp', idempotencyKey: 'opp-refill-1', actor: 'test', amount: '150000.00' });
    const again = await call('POST', '/api/v1/forking/execute', { accountId: 'acc-opp' });
    expect([again.status, again.body.error.code]).toEqual([422, 'cooldown']);

    const status = await call('GET', '/api/v1/forking/status?limit=5');
    expect(status.body).toMatchObject({ inFlight: 0, limit: 5 });
    expect(status.body.recent[0]).toMatchObject({ id: first.body.id, parentId: 'acc-opp', childId: first.body.childId, state: 'COMPLETED', error: null });
  });

  it('answers an execute racing another on the same head with the same fork', async () => {
    await openAccount(h, 'acc-race', '112000.00');
    const [a, b] = await Promise.all([call('POST', '/api/v1/forking/execute', { accountId: 'acc-race' }), call('POST', '/api/v1/forking/execute', { accountId: 'acc-race' })]);
    expect([a.status, b.status].sort()).toEqual([200, 202]);
    expect(a.body.id).toBe(b.body.id);
  });

  it('turns a low-confidence decision into a review that an operator approves into a fork', async () => {
    await openAccount(h, 'acc-review', '120000.00');
    await thresholdMonitorHandlers(fk, h.producer, new Registry()).check({ accountId: 'acc-review', seq: 2 }, { job: {} as never, logger: {} as never });
    const pending = await call('GET', '/api/v1/reviews?state=PENDING');
    const review = pending.body.items.find((r: { accountId: string }) => r.accountId === 'acc-review');
    expect(review).toMatchObject({ kind: 'fork', state: 'PENDING', forkId: 'fork_acc-review_2' });
    const approved = await call('POST', `/api/v1/reviews/${review.id}/approve`, { note: 'looks fine' });
    expect(approved.body).toMatchObject({ state: 'APPROVED', decidedBy: 'admin-env', note: 'looks fine' });
    const twice = await call('POST', `/api/v1/reviews/${review.id}/reject`);
    expect([twice.status, twice.body.error.code]).toEqual([409, 'already_decided']);
    const deadline = Date.now() + 15_000;
    let fork = await fk.forks.get('fork_acc-review_2');
    while (fork?.phase !== 'COMPLETED' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      fork = await fk.forks.get('fork_acc-review_2');
    }
    expect(fork?.phase).toBe('COMPLETED');
  });
});
