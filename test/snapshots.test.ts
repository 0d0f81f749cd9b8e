import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { QUEUE } from '../shared/contracts/queues.js';
import { SnapshotRepository, snapshotIdOf } from '../shared/db/snapshot-repository.js';
import { Decimal } from '../shared/money/decimal.js';
import { type SnapshotDeps, snapshotPage } from '../shared/ledger/snapshot.js';
import { snapshotterHandlers } from '../services/performance-snapshotter/handlers.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let deps: SnapshotDeps;
let handlers: ReturnType<typeof snapshotterHandlers>;
const clock = new FixedClock(new Date('2026-11-16T22:00:00Z'));
const ctx = { job: {} as never, logger: {} as never };

beforeAll(async () => {
  h = await startLedger('snap');
  const snapshots = new SnapshotRepository(h.mongo);
  await snapshots.init();
  deps = { stores: h.stores, snapshots, clock };
  handlers = snapshotterHandlers(deps, h.producer, { ...h.config, performance: { ...h.config.performance, snapshotBatchSize: 2 } }, new Registry());
  await h.stores.prices.upsert([
    { symbol: 'SPY', date: '2026-11-16', close: new Decimal('100.00') },
    { symbol: 'SPY', date: '2026-11-17', close: new Decimal('110.00') },
    { symbol: 'SPY', date: '2026-11-18', close: new Decimal('50.00') },
  ]);
});
afterAll(async () => h?.close());

/** A day's points for every account (one page), as the snapshotter writes them; answers the account's point. */
async function snapshotDay(accountId: string, date: string) {
  await deps.snapshots.markDay(date, clock.now());
  const { written } = await snapshotPage(deps, date, null);
  return { created: written.some((p) => p.accountId === accountId), snapshot: (await deps.snapshots.get(accountId, date))! };
}

describe('daily snapshots (SPEC §7.1)', () => {
  it('value the account at the day\'s closes and take flows out of the return', async () => {
    await openAccount(h, 'acc-snap', '20000.00');
    await h.run('trade', { accountId: 'acc-snap', idempotencyKey: 'snap-buy-1', actor: 'test', side: 'buy', symbol: 'SPY', quantity: '40', price: '100.00' });
    const day1 = await snapshotDay('acc-snap', '2026-11-16');
    expect(day1?.snapshot).toMatchObject({ equityCents: 2_000_000n, dailyReturn: null });
    // Day 2: SPY 100 → 110 (+400.00 on 40 shares) and a 5,000.00 deposit, which is not performance.
    await h.run('deposit', { accountId: 'acc-snap', idempotencyKey: 'snap-dep-2', actor: 'test', amount: '5000.00' });
    const day2 = (await snapshotDay('acc-snap', '2026-11-17')).snapshot;
    expect([day2.equityCents, day2.netFlowCents]).toEqual([2_540_000n, 500_000n]);
    expect(day2.dailyReturn).toBeCloseTo(400 / 20000, 12);
    // The index carries the return forward: 1 → 1.02, its own high-water mark.
    expect([day2.index, day2.indexPeak]).toEqual([1 + 400 / 20000, 1 + 400 / 20000]);
  });

  it('make a re-run of a day a no-op', async () => {
    const again = await snapshotDay('acc-snap', '2026-11-17');
    expect(again?.created).toBe(false);
    expect(await deps.snapshots.model.countDocuments({ accountId: 'acc-snap' })).toBe(2);
  });

  it('fan a day out a page per bucket of accounts, and raise a loss beyond 5 % exactly once', async () => {
    for (const id of ['acc-b1', 'acc-b2', 'acc-b3']) await openAccount(h, id, '10000.00');
    const day = (await handlers.day({ date: '2026-11-18' }, ctx)) as { batches: number };
    expect(day.batches).toBe(64); // 4 accounts, more than a batch of 2: one page per bucket
    const batchJobs = await h.producer.queue(QUEUE.snapshot).getJobs(['waiting']);
    for (const job of batchJobs) await handlers.batch(job.data, ctx);
    for (const job of batchJobs) await handlers.batch(job.data, ctx); // the scheduler firing twice
    // SPY 110 → 50: the account lost 2,400.00 of 25,400.00 (−9.45 %) on the 18th.
    const day3 = await deps.snapshots.get('acc-snap', '2026-11-18');
    expect(day3!.dailyReturn).toBeCloseTo(-2400 / 25400, 12);
    const alerts = (await h.producer.queue(QUEUE.alerts).getJobs(['waiting'])).filter((j) => j.data.accountId === 'acc-snap');
    expect(alerts.map((j) => [j.data.rule, j.data.period])).toEqual([['daily-loss', '2026-11-18']]);
    expect(await deps.snapshots.model.countDocuments({ date: '2026-11-18' })).toBe(4);
  });

  it('act on a breach from the day\'s stored points when the run that wrote them died before checking', async () => {
    await h.stores.prices.upsert([
      { symbol: 'SPY', date: '2026-11-19', close: new Decimal('100.00') },
      { symbol: 'SPY', date: '2026-11-20', close: new Decimal('80.00') },
    ]);
    await openAccount(h, 'acc-crash', '20000.00', { config: { limits: { 'daily-loss': { max: '0.02', action: 'safe' } } } });
    await h.run('trade', { accountId: 'acc-crash', idempotencyKey: 'crash-buy', actor: 'test', side: 'buy', symbol: 'SPY', quantity: '40', price: '100.00' });
    await snapshotDay('acc-crash', '2026-11-19');
    // The run of the 20th wrote its points and died: the retry finds them all written already.
    await snapshotDay('acc-crash', '2026-11-20');
    const rerun = (await handlers.batch({ date: '2026-11-20', bucket: null }, ctx)) as { written: number; actions: number };
    expect([rerun.written, rerun.actions]).toEqual([0, 1]);
    // SPY 100 → 80 on 4,000.00 of 20,000.00: −4 % on the day, over its 2 % limit: out of trading.
    await waitFor('the account SAFE', async () => (loadBalances((await h.stores.journal.head('acc-crash'))!.after).state === 'SAFE' ? true : undefined), 20_000, 100);
  });

  it('roll whole old months into monthly summaries and prune them, once', async () => {
    const old = ['2023-09-28', '2023-09-29', '2023-10-02'].map((date, i) => ({
      _id: snapshotIdOf('acc-old', date),
      accountId: 'acc-old',
      date,
      seq: i + 1,
      equityCents: BigInt(1_000_000 + i * 10_000),
      cashCents: 0n,
      positionsValueCents: 0n,
      netFlowCents: 0n,
      dailyReturn: i === 0 ? null : 0.01,
      createdAt: new Date(),
    }));
    await deps.snapshots.model.insertMany(old);
    // Cutoff inside October 2023: September is whole and goes; October stays until it is whole.
    const first = (await handlers.prune({ date: '2025-10-15' }, ctx)) as { months: number; pruned: number };
    expect(first).toMatchObject({ cutoff: '2023-10-16', months: 1, pruned: 2 });
    const sept = await deps.snapshots.monthly.model.findById('acc-old_2023-09').lean();
    expect(sept).toMatchObject({ days: 2, firstDate: '2023-09-28', lastDate: '2023-09-29', endEquityCents: 1_010_000n });
    expect(sept!.monthReturn).toBeCloseTo(0.01, 12);
    expect(await deps.snapshots.model.countDocuments({ accountId: 'acc-old' })).toBe(1);
    const second = (await handlers.prune({ date: '2025-10-15' }, ctx)) as { pruned: number };
    expect(second.pruned).toBe(0);
    // Inception to date still includes the pruned month: +1 % in September, then +1 % on 2 October.
    const { performanceReport } = await import('../shared/ledger/performance-report.js');
    const report = await performanceReport({ stores: h.stores, snapshots: deps.snapshots, benchmarkSymbol: 'SPY' }, 'acc-old', 'inception');
    expect(report.points).toBe(1);
    expect(report.inceptionToDate).toMatchObject({ from: '2023-09-28', monthsRolledUp: 1 });
    expect(report.inceptionToDate!.totalReturn).toBeCloseTo(1.01 * 1.01 - 1, 12);
  });
});
