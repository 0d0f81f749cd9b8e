import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FollowUps } from '../shared/queue/follow-ups.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { Decimal } from '../shared/money/decimal.js';
import { tierRules } from '../shared/domain/tiers.js';
import { positionValue, valuate } from '../shared/domain/valuation.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { afterPosting } from '../services/account-ops/after-posting.js';
import { waitFor } from './helpers/env.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));
const CLOSES = { AAA: '100.00', BBB: '50.00', CCC: '20.00', DDD: '10.00' } as const;

beforeAll(async () => {
  h = await startLedger('reinvest', { clock });
  h.deps.afterPosting = afterPosting(new FollowUps(h.producer), h.deps);
  await h.stores.prices.upsert(Object.entries(CLOSES).map(([symbol, close]) => ({ symbol, date: '2026-11-17', close: new Decimal(close) })));
});
afterAll(async () => h?.close());

const head = async (id: string) => (await h.stores.journal.head(id))!;
const reinvestments = async (id: string) => (await h.stores.journal.model.find({ accountId: id, kind: 'reinvestment' }).lean()).length;

/** Every limit of SPEC §6 on the account as it stands. */
async function expectWithinLimits(id: string, buffer: string) {
  const b = loadBalances((await head(id)).after);
  const prices = new Map(Object.entries(CLOSES).map(([s, c]) => [s, new Decimal(c)]));
  const equity = valuate(b, prices).equity;
  const rules = tierRules(h.config, 'GEN');
  expect(b.cash.gte(equity.times(buffer).toDecimalPlaces(2))).toBe(true);
  expect(b.positions.length).toBeLessThanOrEqual(rules.maxPositions);
  for (const p of b.positions) expect(positionValue(p, prices).lte(equity.times(rules.maxCapitalPerPosition))).toBe(true);
  return b;
}

describe('reinvestment in account-ops (SPEC §6)', () => {
  it('a dividend to an opted-in account buys toward its target allocation, within every limit, once', async () => {
    const config = { cashBuffer: '0.10', targetAllocation: [{ symbol: 'AAA', weight: '0.25' }, { symbol: 'BBB', weight: '0.15' }], reinvestment: { enabled: true, strategy: 'strategic' } };
    await openAccount(h, 'acc-ri', '100000.00', { config });
    const out = await h.run('dividend', { accountId: 'acc-ri', idempotencyKey: 'div-1-ri-0001', actor: 'test', symbol: 'AAA', amount: '100.00' });
    expect(out.status).toBe('applied');
    await waitFor('a reinvestment entry', async () => (await reinvestments('acc-ri')) === 1, 20_000, 100);
    const b = await expectWithinLimits('acc-ri', '0.10');
    // AAA capped at 20 % by the Gen limit (not its 25 % target), BBB at its 15 % target.
    expect(b.positions.map((p) => [p.symbol, p.costBasis.toFixed(2)])).toEqual([['AAA', '20019.99'], ['BBB', '15015.00']]);
    const entry = await head('acc-ri');
    expect([entry.kind, entry.op.reason]).toEqual(['reinvestment', 'dividend']);
    // The same trigger again (a redelivered job) changes nothing.
    const again = await h.run('reinvest', { accountId: 'acc-ri', trigger: 'dividend', key: `seq-${out.status === 'applied' ? out.seq : 0}` });
    expect(again.status).toBe('applied');
    expect(await reinvestments('acc-ri')).toBe(1);
  });

  it('closing a position reinvests proportionally into the rest, keeping the default 5 % buffer', async () => {
    await openAccount(h, 'acc-rp', '100000.00', { config: { reinvestment: { enabled: true } } });
    for (const [s, q] of [['AAA', '100'], ['BBB', '100'], ['CCC', '250']] as const) {
      await h.run('trade', { accountId: 'acc-rp', idempotencyKey: `buy-rp-${s}-1`, actor: 'test', side: 'buy', symbol: s, quantity: q, price: CLOSES[s] });
    }
    expect(await reinvestments('acc-rp')).toBe(0);
    await h.run('trade', { accountId: 'acc-rp', idempotencyKey: 'sell-rp-CCC-1', actor: 'test', side: 'sell', symbol: 'CCC', quantity: '250', price: '20.00' });
    await waitFor('a reinvestment entry', async () => (await reinvestments('acc-rp')) === 1, 20_000, 100);
    const b = await expectWithinLimits('acc-rp', '0.05');
    expect((await head('acc-rp')).op.reason).toBe('position-closed');
    expect(b.positions.map((p) => p.symbol)).toEqual(['AAA', 'BBB']);
  });

  it('the schedule reinvests opted-in accounts once per date; accounts that did not opt in are left alone', async () => {
    // DDD rose steadily over the last ten sessions: the dynamic strategy's only riser.
    await h.stores.prices.upsert(Array.from({ length: 10 }, (_, i) => ({ symbol: 'DDD', date: `2026-11-${String(i + 1).padStart(2, '0')}`, close: new Decimal((9 + i / 10).toFixed(2)) })));
    await openAccount(h, 'acc-rs', '50000.00', { config: { reinvestment: { enabled: true, strategy: 'dynamic', universe: ['DDD'] } } });
    await openAccount(h, 'acc-rn', '50000.00');
    const first = await h.run('reinvest-scan', { date: '2026-11-18' }, 'reinvest-scan.a');
    await h.run('reinvest-scan', { date: '2026-11-18' }, 'reinvest-scan.b');
    expect(first).toMatchObject({ date: '2026-11-18' });
    await waitFor('the scheduled reinvestment', async () => (await reinvestments('acc-rs')) === 1, 20_000, 100);
    const b = await expectWithinLimits('acc-rs', '0.05');
    expect([b.positions.map((p) => p.symbol), (await head('acc-rs')).op.reason]).toEqual([['DDD'], 'schedule']);
    expect(await reinvestments('acc-rn')).toBe(0);
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });
});
