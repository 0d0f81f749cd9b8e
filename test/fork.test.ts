import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { QUEUE } from '../shared/contracts/queues.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { Decimal } from '../shared/money/decimal.js';
import type { AssessDeps } from '../shared/ledger/fork-assessment.js';
import { runFork, requestFork } from '../shared/ledger/fork-saga.js';
import { openForkingDeps } from '../shared/ledger/forking-deps.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { thresholdMonitorHandlers } from '../services/threshold-monitor/handlers.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let fk: AssessDeps;
// Wednesday 2026-11-18, 11:00 in New York: a business day, mid-session.
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));

beforeAll(async () => {
  h = await startLedger('fork', { replicas: 2 });
  h.deps.clock = clock;
  fk = await openForkingDeps(h.mongo, h.stores, h.config, clock, h.producer.queue(QUEUE.fork));
});
afterAll(async () => h?.close());

const balances = async (id: string) => loadBalances((await h.stores.journal.head(id))!.after);
const seqOf = async (id: string) => (await h.stores.journal.head(id))!.seq;
async function fork(parentId: string, mode: 'full' | 'partial' | 'config-only' = 'full', symbols: string[] = []) {
  const { fork: f } = await requestFork(fk, { parentId, parentSeq: await seqOf(parentId), mode, symbols, requestedBy: 'test', decisionId: null });
  const done = await runFork(fk, f._id, null);
  await h.stores.projector.flush();
  return done;
}

describe('fork amounts and modes', () => {
  it('forks a Gen at 112,000.00 into a Rev child of 102,000.00, the parent keeping 10,000.00', async () => {
    await openAccount(h, 'acc-112k', '112000.00');
    const f = await fork('acc-112k');
    expect(f.phase).toBe('COMPLETED');
    const [parent, child] = [await balances('acc-112k'), await balances(f.childId)];
    expect([parent.cash.toFixed(2), parent.state]).toEqual(['10000.00', 'ACTIVE']);
    expect([child.cash.toFixed(2), child.state]).toEqual(['102000.00', 'ACTIVE']);
    const childAccount = await h.stores.accounts.get(f.childId);
    expect(childAccount).toMatchObject({ tier: 'REV', parentId: 'acc-112k', ownerId: 'owner-1' });
    expect((await h.stores.accounts.children('acc-112k')).map((a) => a._id)).toEqual([f.childId]);
  });

  it('does not fork a Gen at 109,999.99', async () => {
    await openAccount(h, 'acc-short', '109999.99');
    const f = await fork('acc-short');
    expect(f).toMatchObject({ phase: 'REJECTED', error: { code: 'not_eligible' } });
    expect((await balances('acc-short')).state).toBe('ACTIVE');
  });

  it('full mode splits cash and every position pro rata, conserving each to the last unit', async () => {
    await openAccount(h, 'acc-full', '200000.00');
    const buy = (symbol: string, quantity: string, price: string) =>
      h.run('trade', { accountId: 'acc-full', idempotencyKey: `buy-${symbol}-full`, actor: 'test', side: 'buy', symbol, quantity, price });
    // Each under 15 % of equity, so the Rev child's limit holds.
    expect((await buy('AAA', '93.33333333', '300.00')).status).toBe('applied');
    expect((await buy('BBB', '77.7', '257.130001')).status).toBe('applied');
    const before = await balances('acc-full');
    const f = await fork('acc-full');
    expect(f.phase).toBe('COMPLETED');
    const [p, c] = [await balances('acc-full'), await balances(f.childId)];
    expect(p.cash.plus(c.cash).toFixed(2)).toBe(before.cash.toFixed(2));
    for (const q of before.positions) {
      const pp = p.positions.find((x) => x.symbol === q.symbol)!;
      const cc = c.positions.find((x) => x.symbol === q.symbol)!;
      expect(pp.quantity.plus(cc.quantity).toString()).toBe(q.quantity.toString());
      expect(pp.costBasis.plus(cc.costBasis).toFixed(2)).toBe(q.costBasis.toFixed(2));
      // Pro rata: the child's share of each position is the share of value it received.
      expect(cc.quantity.dividedBy(q.quantity).toNumber()).toBeCloseTo(190000 / 200000, 6);
    }
  });

  it('partial mode moves the named positions whole and the rest in cash', async () => {
    await openAccount(h, 'acc-partial', '150000.00');
    await h.run('trade', { accountId: 'acc-partial', idempotencyKey: 'buy-ccc-partial', actor: 'test', side: 'buy', symbol: 'CCC', quantity: '100', price: '200.00' });
    const f = await fork('acc-partial', 'partial', ['CCC']);
    expect(f.phase).toBe('COMPLETED');
    const c = await balances(f.childId);
    expect(c.positions.map((x) => [x.symbol, x.quantity.toString(), x.costBasis.toFixed(2)])).toEqual([['CCC', '100', '20000.00']]);
    expect(c.cash.toFixed(2)).toBe('120000.00'); // F = 140,000 − 20,000 of CCC at cost (no close loaded)
    expect((await balances('acc-partial')).positions).toEqual([]);
  });

  it('config-only mode is refused before anything moves when cash is short of F (no cooldown starts)', async () => {
    await openAccount(h, 'acc-config', '150000.00');
    await h.run('trade', { accountId: 'acc-config', idempotencyKey: 'buy-ddd-config', actor: 'test', side: 'buy', symbol: 'DDD', quantity: '150', price: '200.00' });
    const before = await balances('acc-config');
    const f = await fork('acc-config', 'config-only');
    expect(f).toMatchObject({ phase: 'REJECTED', startedAt: null, error: { code: 'insufficient_funds' } });
    const after = await balances('acc-config');
    expect([after.state, after.cash.toFixed(2), after.reserved.toFixed(2)]).toEqual(['ACTIVE', before.cash.toFixed(2), '0.00']);
    expect(await h.stores.accounts.children('acc-config')).toEqual([]);
  });

  it('refuses a full fork whose child would break its tier limits, instead of rolling it back every day', async () => {
    await openAccount(h, 'acc-heavy', '150000.00');
    // 18 % of equity in one symbol: a Gen may hold it, the Rev child (15 %) may not.
    await h.run('trade', { accountId: 'acc-heavy', idempotencyKey: 'buy-eee-heavy', actor: 'test', side: 'buy', symbol: 'EEE', quantity: '135', price: '200.00' });
    const f = await fork('acc-heavy');
    expect(f).toMatchObject({ phase: 'REJECTED', startedAt: null, error: { code: 'max_capital_per_position' } });
    expect((await balances('acc-heavy')).state).toBe('ACTIVE');
  });
});

describe('fork candidates', () => {
  it('are marked by the projection when a posting reaches the fork line, and unmarked below it', async () => {
    await openAccount(h, 'acc-line', '109999.99');
    expect((await h.stores.accounts.get('acc-line'))!.forkCandidate).toBe(false);
    await h.run('deposit', { accountId: 'acc-line', idempotencyKey: 'line-dep-1', actor: 'test', amount: '0.01' });
    expect((await h.stores.accounts.get('acc-line'))!.forkCandidate).toBe(true);
    await h.run('withdrawal', { accountId: 'acc-line', idempotencyKey: 'line-wd-1', actor: 'test', amount: '0.01' });
    expect((await h.stores.accounts.get('acc-line'))!.forkCandidate).toBe(false);
  });
});

describe('fork safety', () => {
  it('answers the same fork for a second request on the same head, never a second child', async () => {
    await openAccount(h, 'acc-twice', '120000.00');
    const seq = await seqOf('acc-twice');
    const a = await requestFork(fk, { parentId: 'acc-twice', parentSeq: seq, mode: 'full', symbols: [], requestedBy: 'one', decisionId: null });
    const b = await requestFork(fk, { parentId: 'acc-twice', parentSeq: seq, mode: 'config-only', symbols: [], requestedBy: 'two', decisionId: null });
    expect([a.created, b.created, b.fork._id]).toEqual([true, false, a.fork._id]);
    const [r1, r2] = await Promise.all([runFork(fk, a.fork._id, null), runFork(fk, a.fork._id, null)]);
    expect([r1.phase, r2.phase]).toEqual(['COMPLETED', 'COMPLETED']);
    expect(await h.stores.accounts.children('acc-twice')).toHaveLength(1);
  });

  it('keeps 24 hours between fork attempts on the fleet clock', async () => {
    await h.run('deposit', { accountId: 'acc-twice', idempotencyKey: 'refill-twice-1', actor: 'test', amount: '200000.00' });
    const again = await fork('acc-twice');
    expect(again).toMatchObject({ phase: 'REJECTED', error: { code: 'cooldown' } });
    clock.advanceHours(24.01);
    await h.run('deposit', { accountId: 'acc-twice', idempotencyKey: 'refill-twice-2', actor: 'test', amount: '0.01' });
    expect((await fork('acc-twice')).phase).toBe('COMPLETED');
    expect(await h.stores.accounts.children('acc-twice')).toHaveLength(2);
  });

  it('leaves a ledger that verifies', async () => {
    const report = await verifyLedger(h.stores, { idle: true });
    expect(report.problems).toEqual([]);
    expect(report.totals.movedIn).toBe(report.totals.movedOut);
  });
});

describe('the threshold monitor', () => {
  it('stores a decision with its breakdown and, without history, sends the fork to review', async () => {
    await openAccount(h, 'acc-decide', '112000.00');
    const handlers = thresholdMonitorHandlers(fk, h.producer, new Registry());
    const job = { job: {} as never, logger: {} as never };
    const out = (await handlers.check({ accountId: 'acc-decide', seq: 1 }, job)) as { outcome: string; confidence: number };
    // market 0.5 (no benchmark), performance 0.5 (no daily values), load 1, timing 1 → 0.65
    expect(out).toMatchObject({ outcome: 'review', confidence: 0.65 });
    const decision = await fk.decisions.latestFor('acc-decide');
    expect(decision?.factors.systemLoad.score).toBe(1);
    expect(decision).toMatchObject({ equity: '112000.00', forkAmount: '102000.00', childTier: 'REV' });
    expect((await fk.reviews.list({ state: 'PENDING' }, 10)).map((r) => r.accountId)).toContain('acc-decide');
    // The same head checked again decides nothing new.
    await handlers.check({ accountId: 'acc-decide', seq: 1 }, job);
    expect(await fk.decisions.model.countDocuments({ accountId: 'acc-decide' })).toBe(1);
  });

  it('executes at once when a calm market lifts confidence to 0.80', async () => {
    // A calm benchmark year: recent volatility below its long-run level.
    const days = Array.from({ length: 253 }, (_, i) => new Date(Date.UTC(2026, 10, 18) - (252 - i) * 86_400_000).toISOString().slice(0, 10));
    let close = 400;
    await h.stores.prices.upsert(days.map((date, i) => ({ symbol: 'SPY', date, close: new Decimal((close *= 1 + (i % 2 ? -1 : 1) * (i > days.length - 25 ? 0.002 : 0.01))).toDecimalPlaces(6) })));
    await openAccount(h, 'acc-go', '112000.00');
    const fresh = await openForkingDeps(h.mongo, h.stores, h.config, clock, h.producer.queue(QUEUE.fork));
    const handlers = thresholdMonitorHandlers(fresh, h.producer, new Registry());
    const out = (await handlers.check({ accountId: 'acc-go', seq: 1 }, { job: {} as never, logger: {} as never })) as { outcome: string; confidence: number };
    expect(out.outcome).toBe('execute');
    expect(out.confidence).toBeGreaterThanOrEqual(0.8);
    const queued = await h.producer.queue(QUEUE.fork).getJob('fork.acc-go.1');
    expect(queued?.data).toMatchObject({ forkId: 'fork_acc-go_1', accountId: 'acc-go', parentSeq: 1, mode: 'full' });
  });
});
