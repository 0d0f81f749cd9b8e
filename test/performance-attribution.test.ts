import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { snapshotPage } from '../shared/ledger/snapshot.js';
import { Decimal } from '../shared/money/decimal.js';
import { startApi, type TestApi } from './helpers/api.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'attribution-admin-key-012345';
const ID = 'acc-attr';
const clock = new FixedClock(new Date('2026-11-18T22:00:00Z'));
let h: LedgerHarness;
let testApi: TestApi;
let snapshots: SnapshotRepository;
const days = Array.from({ length: 11 }, (_, i) => new Date(Date.UTC(2026, 10, 2) + i * 86_400_000).toISOString().slice(0, 10));
// ACME climbs 1.50 a day from 100 (bought at 100.00 on day 1, when it closes at 101.50); BETA zigzags around 50.
const acme = (i: number) => new Decimal(100).plus(new Decimal('1.5').times(i));
const beta = (i: number) => new Decimal(50).plus(i % 2 ? '0.80' : '-0.40').plus(new Decimal('0.1').times(i));
let n = 0;
const post = async (name: string, data: Record<string, unknown>) => {
  const o = await h.run(name, { accountId: ID, idempotencyKey: `attr-step-${n++}`, actor: 'test', ...data });
  expect(o.status).toBe('applied');
};

interface Report {
  metrics: { totalReturn: number };
  startEquity: string;
  endEquity: string;
  trend: { slopePerDay: number; direction: string; points: number; pValue: number };
  attribution: { method: string; accountReturn: number; contributions: Array<{ symbol: string; contribution: number; pnl: string }>; cash: { contribution: number; pnl: string }; residual: number };
}
const report = async (period: string): Promise<Report> =>
  JSON.parse((await testApi.app.inject({ method: 'GET', url: `/api/v1/accounts/${ID}/performance?period=${period}`, headers: { authorization: `Bearer ${ADMIN}` } })).body);

beforeAll(async () => {
  h = await startLedger('perfattr');
  snapshots = new SnapshotRepository(h.mongo);
  await snapshots.init();
  testApi = await startApi(h, { adminKey: ADMIN, clock });
  await h.stores.prices.upsert(days.flatMap((date, i) => [{ symbol: 'ACME', date, close: acme(i) }, { symbol: 'BETA', date, close: beta(i) }]));

  // What happens after each day's close, before its point: day 1 the buys, later a dividend, a deposit, a fee and a sale.
  const after: Record<number, () => Promise<void>> = {
    1: async () => {
      await post('trade', { side: 'buy', symbol: 'ACME', quantity: '90', price: '100.00', fees: '1.00' });
      await post('trade', { side: 'buy', symbol: 'BETA', quantity: '10', price: '50.00', fees: '0.50' });
    },
    4: () => post('dividend', { symbol: 'BETA', amount: '3.00' }),
    6: () => post('deposit', { amount: '5000.00' }),
    7: () => post('fee', { amount: '2.50', reason: 'custody' }),
    8: () => post('trade', { side: 'sell', symbol: 'BETA', quantity: '4', price: '52.00', fees: '0.25' }),
  };
  await openAccount(h, ID, '50000.00');
  for (const [i, date] of days.entries()) {
    await after[i]?.();
    await snapshots.markDay(date, clock.now());
    await snapshotPage({ stores: h.stores, snapshots, clock }, date, null);
  }
});
afterAll(async () => {
  await testApi?.close();
  await h?.close();
});

describe('performance: trend and attribution', () => {
  it('attributes the return to each position and cash, summing to the reported total return', async () => {
    const r = await report('inception');
    const a = r.attribution;
    expect(a.method).toBe('carino');
    expect(a.accountReturn).toBeCloseTo(r.metrics.totalReturn, 12);
    const sum = a.contributions.reduce((s, c) => s + c.contribution, a.cash.contribution);
    expect(Math.abs(sum - r.metrics.totalReturn)).toBeLessThan(1e-9);
    expect(Math.abs(a.residual)).toBeLessThan(1e-12);
    expect(a.contributions.map((c) => c.symbol)).toEqual(['ACME', 'BETA']);
  });

  it('gives each line its P&L in money: the price move on what was held, dividends and sales included', async () => {
    const a = (await report('inception')).attribution;
    const pnl = Object.fromEntries(a.contributions.map((c) => [c.symbol, c.pnl]));
    const last = days.length - 1;
    expect(pnl['ACME']).toBe(acme(last).minus(100).times(90).toFixed(2));
    // 10 bought at 50.00, a 3.00 dividend, 4 sold at 52.00, 6 held at the last close.
    expect(pnl['BETA']).toBe(beta(last).times(6).minus(500).plus(3).plus(new Decimal(4).times(52)).toFixed(2));
    // Fees only: 1.00 + 0.50 + 0.25 on the trades and 2.50 of custody.
    expect(a.cash.pnl).toBe('-4.25');
    expect(a.cash.contribution).toBeLessThan(0);
  });

  it('adds up the P&L of the lines to the change of value less the deposit', async () => {
    const r = await report('inception');
    const total = [...r.attribution.contributions.map((c) => c.pnl), r.attribution.cash.pnl].reduce((s, p) => s.plus(p), new Decimal(0));
    expect(total.toFixed(2)).toBe(new Decimal(r.endEquity).minus(r.startEquity).minus('5000.00').toFixed(2));
  });

  it('sums to the period\'s return when the period starts after the buys', async () => {
    const r = await report('week');
    expect(Math.abs(r.attribution.contributions.reduce((s, c) => s + c.contribution, r.attribution.cash.contribution) - r.metrics.totalReturn)).toBeLessThan(1e-9);
    expect(r.attribution.accountReturn).toBeCloseTo(r.metrics.totalReturn, 12);
  });

  it('sees the steadily rising index as a significant upward trend', async () => {
    const t = (await report('inception')).trend;
    expect(t.points).toBe(days.length);
    expect(t.slopePerDay).toBeGreaterThan(0);
    expect(t.pValue).toBeLessThan(0.05);
    expect(t.direction).toBe('up');
  });
});
