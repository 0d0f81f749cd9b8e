import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Worker } from 'bullmq';
import { Registry } from 'prom-client';
import { QUEUE } from '../shared/contracts/queues.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import type { AssessDeps } from '../shared/ledger/fork-assessment.js';
import { connectRedis } from '../shared/queue/connection.js';
import { createQueueMetrics } from '../shared/queue/queue-metrics.js';
import { createWorker } from '../shared/queue/worker-runner.js';
import { startApi, type TestApi } from './helpers/api.js';
import { createForkMetrics, forkExecutorHandlers } from '../services/fork-executor/handlers.js';
import { thresholdMonitorHandlers } from '../services/threshold-monitor/handlers.js';
import { consolidationHandlers, createMergeMetrics } from '../services/consolidation-scanner/handlers.js';
import { type ConsolidationDeps, openConsolidationDeps } from '../shared/ledger/consolidation.js';
import { waitFor } from './helpers/env.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'forking-admin-key-0123456789';
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));
let h: LedgerHarness;
let fk: AssessDeps;
let forkWorker: Worker;
let mergeWorker: Worker;
let cd: ConsolidationDeps;
let testApi: TestApi;
let app: TestApi['app'];

const call = async (method: 'GET' | 'POST', url: string, payload?: object) => {
  const res = await app.inject({ method, url, ...(payload ? { payload } : {}), headers: { authorization: `Bearer ${ADMIN}` } });
  return { status: res.statusCode, body: JSON.parse(res.body) as any };
};

beforeAll(async () => {
  h = await startLedger('apifork');
  h.deps.clock = clock;
  fk = await openForkingDeps(h.mongo, h.stores, h.config, clock, h.producer.queue(QUEUE.fork));
  const dead = new DeadLetterRepository(h.mongo);
  await dead.init();
  const registry = new Registry();
  forkWorker = createWorker(QUEUE.fork, forkExecutorHandlers(fk, createForkMetrics(registry, fk.forks), { onFinished: async () => undefined, onStuck: async () => undefined }, silentLogger), {
    connection: await connectRedis(h.config, 'worker', 'apifork', silentLogger),
    config: h.config,
    logger: silentLogger,
    metrics: createQueueMetrics(registry, () => []),
    deadLetters: dead,
  });
  void forkWorker.run();
  cd = await openConsolidationDeps(h.mongo, h.stores, h.config, clock);
  const merges = consolidationHandlers(cd, h.producer, createMergeMetrics(registry, cd), { onMergeFinished: async () => undefined, onMergeStuck: async () => undefined }, silentLogger);
  mergeWorker = createWorker(QUEUE.merge, { execute: merges.execute, recover: merges.recover, resume: merges.resume }, {
    connection: await connectRedis(h.config, 'worker', 'apimerge', silentLogger),
    config: h.config,
    logger: silentLogger,
    metrics: createQueueMetrics(new Registry(), () => []),
    deadLetters: dead,
  });
  void mergeWorker.run();
  testApi = await startApi(h, { adminKey: ADMIN, clock });
  app = testApi.app;
});
afterAll(async () => {
  await testApi?.close();
  await forkWorker?.close();
  await mergeWorker?.close();
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
    await thresholdMonitorHandlers(fk, h.producer, new Registry()).check({ accountId: 'acc-review', seq: 1 }, { job: {} as never, logger: {} as never });
    const pending = await call('GET', '/api/v1/reviews?state=PENDING');
    const review = pending.body.items.find((r: { accountId: string }) => r.accountId === 'acc-review');
    expect(review).toMatchObject({ kind: 'fork', state: 'PENDING', forkId: 'fork_acc-review_1' });
    // What the person decides on: the decision's factors, weights and inputs.
    const detail = (await call('GET', `/api/v1/reviews/${review.id}`)).body;
    expect(detail.decision).toMatchObject({ id: review.decisionId, confidence: expect.any(Number), outcome: 'review', equity: '120000.00', factors: { market: { score: expect.any(Number) }, performance: { score: expect.any(Number) }, systemLoad: { score: expect.any(Number) }, timing: { score: expect.any(Number) } }, inputs: expect.any(Object) });
    const approved = await call('POST', `/api/v1/reviews/${review.id}/approve`, { note: 'looks fine' });
    expect(approved.body).toMatchObject({ state: 'APPROVED', decidedBy: 'admin-env', note: 'looks fine' });
    const twice = await call('POST', `/api/v1/reviews/${review.id}/reject`);
    expect([twice.status, twice.body.error.code]).toEqual([409, 'already_decided']);
    const deadline = Date.now() + 15_000;
    let fork = await fk.forks.get('fork_acc-review_1');
    while (fork?.phase !== 'COMPLETED' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      fork = await fk.forks.get('fork_acc-review_1');
    }
    expect(fork?.phase).toBe('COMPLETED');
  });
});

describe('consolidation through the API', () => {
  const cash = async (id: string) => (await call('GET', `/api/v1/accounts/${id}`)).body.cash;

  it('assesses a forked child as a manual request and merges it back into its parent, waiting for the outcome', async () => {
    await openAccount(h, 'acc-cm-p', '112000.00');
    const forked = await call('POST', '/api/v1/forking/execute?wait=true', { accountId: 'acc-cm-p' });
    expect(forked.status).toBe(201);
    const child = forked.body.childId as string;

    const assessed = await call('POST', '/api/v1/consolidation/assess', { accountId: child });
    expect(assessed.status).toBe(200);
    expect(assessed.body.items[0]).toMatchObject({ accountId: child, assessment: { fired: ['manual-request'], proposal: { strategy: 'parent', targetId: 'acc-cm-p' } } });

    const merged = await call('POST', '/api/v1/consolidation/execute?wait=true', { sourceId: child });
    expect(merged.status).toBe(201);
    expect(merged.body.merges[0]).toMatchObject({ sourceId: child, targetId: 'acc-cm-p', strategy: 'parent', state: 'COMPLETED' });
    expect(await cash('acc-cm-p')).toBe('112000.00');
    expect((await call('GET', `/api/v1/accounts/${child}`)).body.state).toBe('CLOSED');
    // The same request on the closed source is refused, not a second merge.
    expect((await call('POST', '/api/v1/consolidation/execute', { sourceId: child, targetId: 'acc-cm-p' })).status).toBe(409);
    const status = await call('GET', '/api/v1/consolidation/status');
    expect(status.body.recent.map((m: { sourceId: string }) => m.sourceId)).toContain(child);
  });

  it('merges several accounts into one new account, and moves part of one into another', async () => {
    await openAccount(h, 'acc-cm-a', '11000.00');
    await openAccount(h, 'acc-cm-b', '12000.50');
    const merged = await call('POST', '/api/v1/consolidation/execute?wait=true', { sourceIds: ['acc-cm-a', 'acc-cm-b'] });
    expect(merged.status).toBe(201);
    const [a, b] = merged.body.merges;
    expect([a.strategy, a.targetId === b.targetId, a.groupId === b.groupId]).toEqual(['new', true, true]);
    expect(await cash(a.targetId)).toBe('23000.50');

    await openAccount(h, 'acc-cm-c', '30000.00');
    const partial = await call('POST', '/api/v1/consolidation/execute?wait=true', { sourceId: 'acc-cm-c', targetId: a.targetId, amount: '5000.25' });
    expect([partial.status, partial.body.merges[0].strategy]).toEqual([201, 'partial']);
    expect([await cash('acc-cm-c'), await cash(a.targetId)]).toEqual(['24999.75', '28000.75']);
  });

  it('carries out an approved merge review', async () => {
    await openAccount(h, 'acc-cm-r', '40000.00');
    await openAccount(h, 'acc-cm-rs', '9000.00', { parentId: 'acc-cm-r' });
    const date = clock.today();
    await cd.opportunities.recordOnce({ _id: `copp_acc-cm-rs_${date}`, accountId: 'acc-cm-rs', ownerId: 'owner-1', date, seq: 1, fired: ['operational-efficiency'], strategy: 'parent', targetId: 'acc-cm-r', sourceIds: ['acc-cm-rs'], amount: null, urgency: 'medium', confidence: 0.6, action: 'review', assessment: {}, inputs: {}, mergeIds: [], reviewId: null, createdAt: clock.now() });
    const { review } = await cd.reviews.file({ kind: 'merge', accountId: 'acc-cm-rs', ownerId: 'owner-1', decisionId: `copp_acc-cm-rs_${date}`, urgency: 'medium', day: date, now: clock.now(), snoozeDays: 10 });
    expect(review!._id).toBe(`rev_merge_acc-cm-rs_${date}`);
    expect((await call('GET', `/api/v1/reviews/${review!._id}`)).body.decision).toMatchObject({ id: `copp_acc-cm-rs_${date}`, fired: ['operational-efficiency'], strategy: 'parent', targetId: 'acc-cm-r', confidence: 0.6 });
    expect((await call('POST', `/api/v1/reviews/${review!._id}/approve`, {})).status).toBe(200);
    await waitFor('the approved merge', async () => (await cash('acc-cm-r')) === '49000.00', 20_000, 100);
    expect((await call('GET', '/api/v1/consolidation/opportunities')).body.items[0]).toMatchObject({ accountId: 'acc-cm-rs', mergeIds: [expect.any(String)] });
  });

  it('refuses malformed requests with 400 and names no merge', async () => {
    for (const body of [{ sourceId: 'acc-cm-c', sourceIds: ['acc-cm-c'] }, {}, { sourceId: { $ne: null } }, { sourceId: 'acc-cm-c', strategy: 'partial' }, { sourceId: 'acc-cm-c', amount: '-1.00', targetId: 'acc-cm-a' }, { sourceIds: ['acc-cm-c'], strategy: 'new', targetId: 'acc-cm-a' }]) {
      const res = await call('POST', '/api/v1/consolidation/execute', body);
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400]);
    }
    expect((await call('POST', '/api/v1/consolidation/execute', { sourceId: 'acc-nobody' })).status).toBe(404);
  });
});
