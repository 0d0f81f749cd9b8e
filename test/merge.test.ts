import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { QUEUE } from '../shared/contracts/queues.js';
import type { StoredMerge } from '../shared/db/merge-repository.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { storeUnits } from '../shared/db/stored-units.js';
import type { Balances } from '../shared/domain/balances.js';
import { Decimal } from '../shared/money/decimal.js';
import { type ConsolidationDeps, openConsolidationDeps, requestMerges } from '../shared/ledger/consolidation.js';
import { requestFork, runFork } from '../shared/ledger/fork-saga.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import type { AssessDeps } from '../shared/ledger/fork-assessment.js';
import { runMerge } from '../shared/ledger/merge-saga.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { consolidationHandlers, createMergeMetrics } from '../services/consolidation-scanner/handlers.js';
import { waitFor } from './helpers/env.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { portEnv } from './helpers/fleet-env.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';
import { DIST, Proc } from './helpers/processes.js';

let h: LedgerHarness;
let fk: AssessDeps;
let cd: ConsolidationDeps;
const procs: Proc[] = [];
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));
const FAST_LOCKS = { FLEET__QUEUES__MERGE__LOCK_DURATION_MS: '4000', FLEET__QUEUES__MERGE__STALLED_INTERVAL_MS: '1000', FLEET__QUEUES__MERGE__MAX_STALLED_COUNT: '5' };

beforeAll(async () => {
  // The scan's triggers are tested on accounts opened today: no child grace period here (it has unit tests).
  h = await startLedger('merge', { clock, env: { ...FAST_LOCKS, FLEET__CONSOLIDATION__CHILD_GRACE_DAYS: '0' } });
  fk = await openForkingDeps(h.mongo, h.stores, h.config, clock, h.producer.queue(QUEUE.fork));
  cd = await openConsolidationDeps(h.mongo, h.stores, h.config, clock);
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await h?.close();
});

const balances = async (id: string) => loadBalances((await h.stores.journal.head(id))!.after);
const snapshotOf = (b: Balances) => ({
  cash: b.cash.toFixed(2),
  reserved: b.reserved.toFixed(2),
  state: b.state,
  positions: b.positions.map((p) => `${p.symbol} ${p.quantity.toFixed(8)} @ ${p.costBasis.toFixed(2)}`),
});
const buy = (accountId: string, symbol: string, quantity: string, price: string) =>
  h.run('trade', { accountId, idempotencyKey: `buy-${accountId}-${symbol}`, actor: 'test', side: 'buy', symbol, quantity, price });
async function merge(sourceId: string, targetId: string, strategy: 'parent' | 'sibling' | 'partial' = 'sibling', extra: { amount?: string; symbols?: string[] } = {}) {
  const [id] = await requestMerges(cd, { sourceIds: [sourceId], targetId, strategy, amount: extra.amount ? new Decimal(extra.amount) : null, symbols: extra.symbols ?? [], requestedBy: 'test', opportunityId: null, scheduledFor: null });
  const m = await runMerge(cd, id!, null);
  await h.stores.projector.flush();
  return m;
}

describe('merge saga', () => {
  it('a full fork with positions merged back restores the parent exactly, to the cent and the 1e-8 unit', async () => {
    await h.stores.prices.upsert([
      { symbol: 'AAA', date: '2026-11-17', close: new Decimal('301.25') },
      { symbol: 'BBB', date: '2026-11-17', close: new Decimal('257.130001') },
    ]);
    await openAccount(h, 'acc-roundtrip', '200000.00');
    expect((await buy('acc-roundtrip', 'AAA', '93.33333333', '300.00')).status).toBe('applied');
    expect((await buy('acc-roundtrip', 'BBB', '77.7', '257.130001')).status).toBe('applied');
    const before = snapshotOf(await balances('acc-roundtrip'));

    const { fork } = await requestFork(fk, { parentId: 'acc-roundtrip', parentSeq: (await h.stores.accounts.get('acc-roundtrip'))!.headSeq, mode: 'full', symbols: [], requestedBy: 'test', decisionId: null });
    const f = await runFork(fk, fork._id, null);
    expect(f.phase).toBe('COMPLETED');
    expect(snapshotOf(await balances('acc-roundtrip'))).not.toEqual(before);

    const m = await merge(f.childId, 'acc-roundtrip', 'parent');
    expect(m).toMatchObject({ phase: 'COMPLETED', error: null });
    expect(snapshotOf(await balances('acc-roundtrip'))).toEqual(before);
    const child = await h.stores.accounts.get(f.childId);
    expect([child!.state, child!.mergedInto]).toEqual(['CLOSED', 'acc-roundtrip']);
    // Every moved lot names where it came from.
    expect(m.lineage.map((l) => [l.symbol, l.fromAccountId])).toEqual([['AAA', f.childId], ['BBB', f.childId]]);
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });

  it('nets a lot into the same symbol held by the target: quantities add and cost bases combine', async () => {
    await openAccount(h, 'acc-net-t', '100000.00');
    await openAccount(h, 'acc-net-s', '50000.00');
    await buy('acc-net-t', 'AAA', '10.5', '300.00');
    await buy('acc-net-s', 'AAA', '0.25000001', '310.00');
    const m = await merge('acc-net-s', 'acc-net-t');
    expect(m.phase).toBe('COMPLETED');
    const t = await balances('acc-net-t');
    expect(snapshotOf(t).positions).toEqual(['AAA 10.75000001 @ 3227.50']);
    expect(t.cash.toFixed(2)).toBe(new Decimal('100000.00').minus('3150.00').plus('50000.00').minus('77.50').toFixed(2));
  });

  it('is refused before anything moves when the merge would break the target position limit', async () => {
    await openAccount(h, 'acc-full-t', '100000.00');
    for (let i = 0; i < 10; i++) await h.run('trade', { accountId: 'acc-full-t', idempotencyKey: `buy-full-${i}`, actor: 'test', side: 'buy', symbol: `F${i}`, quantity: '1', price: '10.00' });
    await openAccount(h, 'acc-full-s', '20000.00');
    await buy('acc-full-s', 'ZZZ', '10', '100.00');
    const [t0, s0] = [snapshotOf(await balances('acc-full-t')), snapshotOf(await balances('acc-full-s'))];
    const m = await merge('acc-full-s', 'acc-full-t');
    expect(m).toMatchObject({ phase: 'REJECTED', error: { code: 'max_positions' } });
    expect(snapshotOf(await balances('acc-full-t'))).toEqual(t0);
    expect(snapshotOf(await balances('acc-full-s'))).toEqual(s0);
    expect((await h.stores.accounts.get('acc-full-s'))!.mergedInto).toBeNull();
  });

  it('a partial merge moves an amount and leaves the source open; children of a merged source move to the target', async () => {
    await openAccount(h, 'acc-pm-t', '50000.00');
    await openAccount(h, 'acc-pm-s', '30000.00');
    await openAccount(h, 'acc-pm-kid', '10000.00', { parentId: 'acc-pm-s' });
    const partial = await merge('acc-pm-s', 'acc-pm-t', 'partial', { amount: '12345.67' });
    expect(partial.phase).toBe('COMPLETED');
    expect([(await balances('acc-pm-s')).cash.toFixed(2), (await balances('acc-pm-s')).state]).toEqual(['17654.33', 'ACTIVE']);
    expect((await balances('acc-pm-t')).cash.toFixed(2)).toBe('62345.67');
    expect((await merge('acc-pm-s', 'acc-pm-t')).phase).toBe('COMPLETED');
    expect((await h.stores.accounts.get('acc-pm-kid'))!.parentId).toBe('acc-pm-t');
    expect((await balances('acc-pm-t')).cash.toFixed(2)).toBe('80000.00');
  });

  it('refuses an empty or foreign target before anything moves, and a repeat of a finished merge changes nothing', async () => {
    await openAccount(h, 'acc-own-a', '20000.00');
    await openAccount(h, 'acc-own-b', '20000.00', { ownerId: 'owner-2' });
    const foreign = await merge('acc-own-a', 'acc-own-b');
    expect(foreign).toMatchObject({ phase: 'REJECTED', error: { code: 'owner_mismatch' } });
    expect(await merge('acc-own-a', 'acc-missing')).toMatchObject({ phase: 'REJECTED', error: { code: 'account_not_found' } });
    expect((await runMerge(cd, foreign._id, null)).phase).toBe('REJECTED');
    expect((await balances('acc-own-a')).state).toBe('ACTIVE');
  });
});

describe('consolidation scan on constructed histories', () => {
  const day = (i: number) => new Date(Date.UTC(2026, 7, 1) + i * 86_400_000).toISOString().slice(0, 10);
  /** Stores `n` daily points ending yesterday, each from a return and a cash share. */
  async function history(accountId: string, n: number, r: (i: number) => number, cashShare = 0.1) {
    let value = 100_000;
    let index = 1;
    let peak = 1;
    for (let i = 0; i < n; i++) {
      value *= 1 + (i === 0 ? 0 : r(i));
      index *= 1 + (i === 0 ? 0 : r(i));
      peak = Math.max(peak, index);
      const equity = new Decimal(value.toFixed(2));
      await cd.snapshots.record({
        _id: `${accountId}_${day(i)}`,
        accountId,
        date: day(i),
        seq: 1,
        equityCents: storeUnits('cash', equity),
        cashCents: storeUnits('cash', equity.times(cashShare).toDecimalPlaces(2)),
        positionsValueCents: 0n,
        netFlowCents: 0n,
        dailyReturn: i === 0 ? null : r(i),
        index,
        indexPeak: peak,
        weekBase: 1,
        monthBase: 1,
        createdAt: new Date(),
      });
    }
  }
  const daily = (annual: number) => (1 + annual) ** (1 / 252) - 1;

  it('fires each trigger on its history and not on a history just inside its threshold', async () => {
    const owner = { ownerId: 'owner-scan' };
    await openAccount(h, 'acc-s-root', '200000.00', owner);
    const kid = (id: string, deposit: string, parentId = 'acc-s-root') => openAccount(h, id, deposit, { ...owner, parentId });
    await kid('acc-s-under', '50000.00');
    await history('acc-s-under', 64, () => daily(0.04));
    await kid('acc-s-ok', '50000.00');
    await history('acc-s-ok', 64, () => daily(0.06));
    await kid('acc-s-small', '4000.00');
    await kid('acc-s-risk', '50000.00');
    await history('acc-s-risk', 40, () => 0.79 ** (1 / 39) - 1);
    await kid('acc-s-idle', '50000.00');
    await history('acc-s-idle', 31, () => daily(0.06), 0.9);
    // A chain deeper than the limit of 4.
    for (let i = 1; i <= 5; i++) await kid(`acc-s-d${i}`, '20000.00', i === 1 ? 'acc-s-root' : `acc-s-d${i - 1}`);

    const handlers = consolidationHandlers(cd, h.producer, createMergeMetrics(new Registry(), cd), { onMergeFinished: async () => undefined, onMergeStuck: async () => undefined }, silentLogger);
    const date = clock.today();
    await handlers.batch({ date, afterAccountId: 'acc-s-', limit: 500 }, { job: { id: 'scan-test' } } as never);
    const fired = async (id: string) => (await cd.opportunities.get(`copp_${id}_${date}`))?.fired ?? [];
    expect(await fired('acc-s-under')).toEqual(['underperformance']);
    expect(await fired('acc-s-ok')).toEqual([]);
    expect(await fired('acc-s-small')).toEqual(['operational-efficiency']);
    expect(await fired('acc-s-risk')).toContain('risk-management');
    expect(await fired('acc-s-idle')).toEqual(['capital-optimisation']);
    expect(await fired('acc-s-d5')).toEqual(['system-optimisation']);
    expect(await fired('acc-s-d4')).toEqual([]);
    // The manual trigger fires when an operator asks.
    const { assessAccount } = await import('../shared/ledger/consolidation.js');
    expect((await assessAccount(cd, (await h.stores.accounts.get('acc-s-ok'))!, true)).assessment.fired).toEqual(['manual-request']);

    // The sub-minimum account is merged into its parent at once; the underperformer waits for review.
    const small = (await cd.opportunities.get(`copp_acc-s-small_${date}`))!;
    expect([small.action, small.strategy, small.targetId, small.mergeIds.length]).toEqual(['execute', 'parent', 'acc-s-root', 1]);
    const under = (await cd.opportunities.get(`copp_acc-s-under_${date}`))!;
    expect([under.action, under.reviewId]).toEqual(['review', `rev_merge_acc-s-under_${date}`]);
    expect(await h.producer.queue(QUEUE.merge).getJob(`merge.${small.mergeIds[0]}`)).toBeTruthy();
    // A second scan of the day (a scheduler firing twice) acts on nothing twice.
    await handlers.batch({ date, afterAccountId: 'acc-s-', limit: 500 }, { job: { id: 'scan-test-2' } } as never);
    expect((await cd.opportunities.get(small._id))!.mergeIds).toEqual(small.mergeIds);
    expect(await cd.reviews.model.countDocuments({ accountId: 'acc-s-under' })).toBe(1);
    // The next day the same condition refreshes the open review instead of filing another.
    // An open review whose condition no longer holds (acc-s-ok fires nothing) expires with the next scan.
    await cd.reviews.file({ kind: 'merge', accountId: 'acc-s-ok', ownerId: 'owner-scan', decisionId: 'copp_earlier', urgency: 'medium', day: '2026-11-01', now: clock.now(), snoozeDays: 10 });
    clock.advanceHours(24);
    await handlers.batch({ date: clock.today(), afterAccountId: 'acc-s-', limit: 500 }, { job: { id: 'scan-test-3' } } as never);
    expect((await cd.reviews.get('rev_merge_acc-s-ok_2026-11-01'))!.state).toBe('EXPIRED');
    clock.advanceHours(-24);
    const open = (await cd.reviews.openOf('merge', 'acc-s-under'))!;
    expect([open._id, open.refreshes, await cd.reviews.model.countDocuments({ accountId: 'acc-s-under' })]).toEqual([`rev_merge_acc-s-under_${date}`, 1, 1]);
  });
});

describe('consolidation scan fan-out', () => {
  it('covers every active account once, in pages of the configured size, and a second fan-out adds nothing', async () => {
    const small = { ...cd, config: { ...cd.config, consolidation: { ...cd.config.consolidation, scanPageSizeMax: 3 } } };
    const handlers = consolidationHandlers(small, h.producer, createMergeMetrics(new Registry(), cd), { onMergeFinished: async () => undefined, onMergeStuck: async () => undefined }, silentLogger);
    const date = '2031-01-02';
    const first = (await handlers.scan({ date }, { job: { id: 'fanout-1' } } as never)) as { batches: number };
    const again = (await handlers.scan({ date }, { job: { id: 'fanout-2' } } as never)) as { batches: number };
    const queue = h.producer.queue(QUEUE.consolidationScan);
    const jobs = (await queue.getJobs(['waiting', 'prioritized', 'delayed'])).filter((j) => j.name === 'batch' && j.data.date === date);
    const pages = await Promise.all(jobs.map(async (j) => (await h.stores.accounts.list({ state: 'ACTIVE' }, { afterId: j.data.afterAccountId ?? undefined, limit: j.data.limit })).map((a) => a._id)));
    const active = [];
    for (let after: string | undefined; ; ) {
      const page = await h.stores.accounts.list({ state: 'ACTIVE' }, { afterId: after, limit: 200 });
      active.push(...page.map((a) => a._id));
      if (page.length < 200) break;
      after = page.at(-1)!._id;
    }
    for (const j of jobs) await j.remove();
    expect(active.length).toBeGreaterThan(6);
    expect({ batches: first.batches, again: again.batches, jobs: jobs.length, covered: pages.flat().sort(), sizes: pages.every((p) => p.length <= 3) }).toEqual({
      batches: Math.ceil(active.length / 3),
      again: Math.ceil(active.length / 3),
      jobs: Math.ceil(active.length / 3),
      covered: [...active].sort(),
      sizes: true,
    });
  });
});

describe('merge workers as real processes', () => {
  const STEPS = ['merge.after-start', 'merge.after-merge-in', 'merge.after-merge-out', 'merge.after-close'];

  it('finishes a merge killed at any saga step with one clean outcome', async () => {
    const ids: Record<string, string> = {};
    const start = async (extra: Record<string, string> = {}) => {
      const { env } = await portEnv();
      const proc = new Proc(join(DIST, 'services', 'consolidation-scanner', 'main.js'), { ...h.iso.env, ...env, ...FAST_LOCKS, ...extra });
      procs.push(proc);
      await proc.waitForLine(/"msg":"service ready"/, 40_000);
      return proc;
    };
    for (const [i, step] of STEPS.entries()) {
      await openAccount(h, `acc-kt-${i}`, '60000.00');
      await openAccount(h, `acc-ks-${i}`, '25000.00');
      await buy(`acc-ks-${i}`, 'AAA', '10', '300.00');
      const proc = await start({ FLEET_FAULT_POINTS: step });
      const [id] = await requestMerges(cd, { sourceIds: [`acc-ks-${i}`], targetId: `acc-kt-${i}`, strategy: 'sibling', amount: null, symbols: [], requestedBy: 'test', opportunityId: null, scheduledFor: null });
      await h.producer.enqueue(QUEUE.merge, 'execute', { mergeId: id! }, { jobId: `merge.${id}` });
      ids[step] = id!;
      expect((await proc.exitWithin(20_000)).signal).toBe('SIGKILL');
    }
    const healthy = await start();
    for (const [i, step] of STEPS.entries()) {
      const m = await waitFor(() => `merge killed ${step} to finish; the worker said:\n${healthy.lines.filter((l) => /warn|error|fatal/.test(l)).slice(-5).join('\n')}`, async () => {
        const x = await cd.merges.get(ids[step]!);
        return x && ['COMPLETED', 'ROLLED_BACK', 'REJECTED'].includes(x.phase) ? (x as StoredMerge) : undefined;
      }, 30_000, 200);
      expect([step, m.phase]).toEqual([step, 'COMPLETED']);
      const [t, s] = [await balances(`acc-kt-${i}`), await balances(`acc-ks-${i}`)];
      expect([t.cash.toFixed(2), t.positions.map((p) => p.quantity.toString()), s.state, s.cash.toFixed(2)]).toEqual(['82000.00', ['10'], 'CLOSED', '0.00']);
    }
    // The healthy worker also carries out merges earlier tests left queued (the scan's): verify once idle.
    await waitFor('no merge in flight', async () => ((await cd.merges.inFlight()) === 0 ? true : undefined), 30_000, 200);
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  }, 180_000);
});
