import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE } from '../shared/contracts/queues.js';
import { AlertRepository } from '../shared/db/alert-repository.js';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { snapshotPage } from '../shared/ledger/snapshot.js';
import { Decimal } from '../shared/money/decimal.js';
import { startApi, type TestApi } from './helpers/api.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'performance-admin-key-012345';
const clock = new FixedClock(new Date('2026-11-18T22:00:00Z'));
let h: LedgerHarness;
let testApi: TestApi;
let app: TestApi['app'];
let snapshots: SnapshotRepository;
const days = Array.from({ length: 25 }, (_, i) => new Date(Date.UTC(2026, 9, 20) + i * 86_400_000).toISOString().slice(0, 10));

const get = async (url: string) => JSON.parse((await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${ADMIN}` } })).body);

beforeAll(async () => {
  h = await startLedger('apiperf');
  snapshots = new SnapshotRepository(h.mongo);
  const alerts = new AlertRepository(h.mongo);
  await Promise.all([snapshots.init(), alerts.init()]);
  testApi = await startApi(h, { adminKey: ADMIN, clock });
  app = testApi.app;

  // Two stocks that move differently; a benchmark (SPY) that drifts up.
  await h.stores.prices.upsert(
    days.flatMap((date, i) => [
      { symbol: 'UPP', date, close: new Decimal(100 * 1.01 ** i).toDecimalPlaces(6) },
      { symbol: 'DWN', date, close: new Decimal(100 * (i % 2 ? 0.98 : 1.01) ** i).toDecimalPlaces(6) },
      { symbol: 'SPY', date, close: new Decimal(300 * 1.002 ** i + (i % 3)).toDecimalPlaces(6) },
    ]),
  );
  for (const [id, sym] of [['acc-up', 'UPP'], ['acc-down', 'DWN']] as const) {
    await openAccount(h, id, '10000.00');
    await h.run('trade', { accountId: id, idempotencyKey: `perf-buy-${id}`, actor: 'test', side: 'buy', symbol: sym, quantity: '19', price: '100.00' });
  }
  for (const date of days) {
    await snapshots.markDay(date, clock.now());
    await snapshotPage({ stores: h.stores, snapshots, clock }, date, null);
  }
});
afterAll(async () => {
  await testApi?.close();
  await h?.close();
});

describe('performance API', () => {
  it('reports every figure for a period, computed on the flow-adjusted series', async () => {
    const r = await get('/api/v1/accounts/acc-up/performance?period=inception');
    expect(r).toMatchObject({ accountId: 'acc-up', period: 'inception', points: 25, from: days[0], to: days.at(-1) });
    // No flows: the index return is the value return.
    expect(r.metrics.totalReturn).toBeCloseTo(Number(r.endEquity) / Number(r.startEquity) - 1, 10);
    expect(r.metrics.maxDrawdown).toBe(0);
    expect(r.metrics.calmar).toBeNull();
    expect(r.benchmark.source).toBe('SPY');
    expect(r.benchmark.beta).not.toBeNull();
    expect(r.moneyWeightedReturn).toBeNull();
    const week = await get('/api/v1/accounts/acc-up/performance?period=week');
    expect(week.points).toBe(8);
  });

  it('lists the points with decimal strings', async () => {
    const s = await get(`/api/v1/performance/snapshots?accountId=acc-down&from=${days[1]}&to=${days[3]}`);
    expect(s.items.map((p: { date: string }) => p.date)).toEqual(days.slice(1, 4));
    expect(s.items[0].equity).toMatch(/^\d+\.\d{2}$/);
  });

  it('compares accounts with a significance test of the difference in mean daily return', async () => {
    const c = JSON.parse((await app.inject({ method: 'POST', url: '/api/v1/performance/compare', headers: { authorization: `Bearer ${ADMIN}` }, payload: { accountIds: ['acc-up', 'acc-down'] } })).body);
    expect(c.accounts).toHaveLength(2);
    expect(c.differences[0]).toMatchObject({ a: 'acc-up', b: 'acc-down' });
    expect(c.differences[0].welch.df).toBeGreaterThan(1);
    expect(c.differences[0].welch.pValue).toBeGreaterThan(0);
    expect(c.correlation.accountIds).toEqual(['acc-up', 'acc-down']);
  });

  it('summarises a hierarchy with contributions, ranking and recommendations', async () => {
    await h.stores.accounts.model.updateOne({ _id: 'acc-down' }, { $set: { parentId: 'acc-up' } });
    const x = await get('/api/v1/performance/hierarchy?rootId=acc-up');
    expect(x.members).toEqual(['acc-up', 'acc-down']);
    expect(x.contributions.map((c: { accountId: string }) => c.accountId)).toEqual(['acc-up', 'acc-down']);
    expect(x.ranking[0].accountId).toBe('acc-up');
    expect(x.recommendations.find((r: { accountId: string }) => r.accountId === 'acc-up')?.action).toBe('fork-candidate');
  });

  it('shows a dashboard of the fleet', async () => {
    const d = await get('/api/v1/performance/dashboard');
    expect(d.accounts).toMatchObject({ total: 2, byTier: { GEN: 2 } });
    expect(d.latestDay).toMatchObject({ date: days.at(-1), snapshots: 2 });
    expect(d.topPerformers).toHaveLength(2);
  });

  it('lets an admin run a day\'s snapshot now, and no one else', async () => {
    const post = (auth: string | null) =>
      app.inject({ method: 'POST', url: '/api/v1/performance/snapshots', headers: auth ? { authorization: `Bearer ${auth}` } : {}, payload: { date: '2026-11-18' } });
    const res = await post(ADMIN);
    expect(res.statusCode).toBe(202);
    const { jobId } = JSON.parse(res.body);
    expect((await h.producer.queue(QUEUE.snapshot).getJob(jobId))?.data).toEqual({ date: '2026-11-18' });
    expect((await post(null)).statusCode).toBe(401);
  });
});
