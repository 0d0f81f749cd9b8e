import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal } from '../shared/money/decimal.js';
import { stressCommand } from '../scripts/cli-stress.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'stress-admin-key-0123456789';
const clock = new FixedClock(new Date('2026-11-18T22:00:00Z'));
let h: LedgerHarness;
let api: TestApi;

const post = async (body: unknown, key = ADMIN) => {
  const res = await api.app.inject({ method: 'POST', url: '/api/v1/risk/stress', headers: { authorization: `Bearer ${key}` }, payload: body as object });
  return { status: res.statusCode, body: JSON.parse(res.body) };
};
async function buy(accountId: string, symbol: string, quantity: string, price: string) {
  const outcome = await h.run('trade', { accountId, idempotencyKey: `buy-${accountId}-${symbol}`, actor: 'test', side: 'buy', symbol, quantity, price });
  expect(outcome.status).toBe('applied');
}
/** Days before the fixed clock's today, oldest first. */
const days = Array.from({ length: 60 }, (_, i) => new Date(Date.UTC(2026, 8, 1) + i * 86_400_000).toISOString().slice(0, 10));

beforeAll(async () => {
  h = await startLedger('stress');
  api = await startApi(h, { adminKey: ADMIN, clock });
  // 90 ACME bought at 100.00 (no close loaded: valued at cost, as the fleet values it), cash beside it;
  // this account's own drawdown limit (4 %) takes it out of trading.
  await openAccount(h, 'acc-acme', '50000.00', { config: { drawdownLimit: '0.04' } });
  await buy('acc-acme', 'ACME', '90', '100.00');
  // Over its fork line (110000.00 with the tests' tiers) now, under it after the shock.
  await openAccount(h, 'acc-big', '120000.00');
  await buy('acc-big', 'ACME', '240', '100.00');
  // Just over its tier's floor (10000.00) now.
  await openAccount(h, 'acc-small', '11000.00');
  await buy('acc-small', 'ACME', '22', '100.00');
  // A subtree: a parent and its child.
  await openAccount(h, 'acc-root', '30000.00');
  await buy('acc-root', 'ACME', '10', '100.00');
  await openAccount(h, 'acc-leaf', '15000.00', { parentId: 'acc-root' });
  await buy('acc-leaf', 'ACME', '20', '100.00');
  // HIBETA moves twice as much as the benchmark every day: its beta is 2.
  let spy = new Decimal(100);
  let hi = new Decimal(100);
  const closes = days.map((date, i) => {
    const b = [0.01, -0.005, 0.007, -0.012][i % 4]!;
    if (i > 0) {
      spy = spy.times(1 + b);
      hi = hi.times(1 + 2 * b);
    }
    return [{ symbol: 'SPY', date, close: spy.toDecimalPlaces(6) }, { symbol: 'HIBETA', date, close: hi.toDecimalPlaces(6) }];
  });
  // A window in 2008: OLDCO fell from 80.00 to 20.00; SPY from 125.00 (the Friday before) to 68.75.
  await h.stores.prices.upsert([
    ...closes.flat(),
    { symbol: 'OLDCO', date: '2008-09-15', close: new Decimal('80') },
    { symbol: 'OLDCO', date: '2009-03-09', close: new Decimal('20') },
    { symbol: 'SPY', date: '2008-09-12', close: new Decimal('125') },
    { symbol: 'SPY', date: '2009-03-09', close: new Decimal('68.75') },
  ]);
  await openAccount(h, 'acc-mix', '50000.00');
  await buy('acc-mix', 'HIBETA', '10', '100.00');
  await buy('acc-mix', 'OLDCO', '100', '20.00');
  await buy('acc-mix', 'NEWCO', '50', '10.00');
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

describe('stress tests', () => {
  it('revalues 90 ACME at 100.00 under a −25 % ACME shock to a loss of exactly 2250.00, and names the limits it breaches', async () => {
    const r = await post({ accountIds: ['acc-acme'], shocks: { ACME: '-0.25' } });
    expect(r.status).toBe(200);
    const [a] = r.body.accounts;
    expect(a).toMatchObject({ accountId: 'acc-acme', equity: '50000.00', stressedEquity: '47750.00', pnl: '-2250.00' });
    expect(a.positions).toEqual([expect.objectContaining({ symbol: 'ACME', quantity: '90', value: '9000.00', stressedValue: '6750.00', pnl: '-2250.00', shock: '-0.25', shockSource: 'given' })]);
    // −4.5 %: past the account's 4 % drawdown limit, which takes it out of trading.
    expect(a.consequences.limitsBreached).toEqual([expect.objectContaining({ rule: 'drawdown', action: 'safe', toState: 'SAFE' })]);
    expect(a.consequences).toMatchObject({ minCapitalBroken: false, forkEligibilityLost: false, minCapital: '10000.00', forkLine: '110000.00' });
    expect(r.body.total).toEqual({ equity: '50000.00', stressedEquity: '47750.00', pnl: '-2250.00' });
  });

  it('says which accounts lose their fork line or break their floor, and totals them to the cent', async () => {
    const r = await post({ accountIds: ['acc-big', 'acc-small'], shocks: { ACME: '-0.5' } });
    const [big, small] = r.body.accounts;
    expect([big.pnl, big.stressedEquity, big.consequences.forkEligibilityLost, big.consequences.minCapitalBroken]).toEqual(['-12000.00', '108000.00', true, false]);
    expect([small.pnl, small.stressedEquity, small.consequences.minCapitalBroken, small.consequences.forkEligibilityLost]).toEqual(['-1100.00', '9900.00', true, false]);
    expect(r.body.total).toEqual({ equity: '131000.00', stressedEquity: '117900.00', pnl: '-13100.00' });
  });

  it('stresses a whole subtree from its root', async () => {
    const r = await post({ rootId: 'acc-root', shocks: { ACME: '-0.10' } });
    expect(r.body.accounts.map((a: { accountId: string }) => a.accountId)).toEqual(['acc-root', 'acc-leaf']);
    expect(r.body.total.pnl).toBe('-300.00');
  });

  it('moves each symbol by its beta under a market shock, and replays a historical window from loaded closes', async () => {
    const market = await post({ accountIds: ['acc-mix'], market: '-0.30' });
    const hi = market.body.accounts[0].positions.find((p: { symbol: string }) => p.symbol === 'HIBETA');
    expect(hi.beta).toBeCloseTo(2, 3);
    expect(Number(hi.shock)).toBeCloseTo(-0.6, 3);
    // No history: the market's own move (beta taken as 1).
    expect(market.body.accounts[0].positions.find((p: { symbol: string }) => p.symbol === 'NEWCO')).toMatchObject({ beta: null, shock: '-0.3', value: '500.00', stressedValue: '350.00' });

    const window = await post({ accountIds: ['acc-mix'], window: { from: '2008-09-15', to: '2009-03-09' } });
    const pos = Object.fromEntries(window.body.accounts[0].positions.map((p: { symbol: string }) => [p.symbol, p]));
    expect(pos['OLDCO']).toMatchObject({ shock: '-0.75', shockSource: 'window', value: '2000.00', stressedValue: '500.00', pnl: '-1500.00' });
    // Without closes in the window, a symbol moves as the benchmark did: 125.00 → 68.75.
    expect(pos['NEWCO']).toMatchObject({ shock: '-0.45', shockSource: 'benchmark', stressedValue: '275.00' });
  });

  it('runs a named scenario from config/, and refuses an unknown one or two at once', async () => {
    const named = await post({ accountIds: ['acc-acme'], scenario: 'market-correction' });
    expect(named.status).toBe(200);
    expect(named.body).toMatchObject({ scenario: 'market-correction', definition: { market: '-0.10' } });
    expect(named.body.accounts[0].pnl).toBe('-900.00');
    expect((await post({ accountIds: ['acc-acme'], scenario: 'no-such' })).body.error.code).toBe('unknown_scenario');
    // A name that is a property of every object is not a scenario.
    expect((await post({ accountIds: ['acc-acme'], scenario: 'constructor' })).body.error.code).toBe('unknown_scenario');
    expect((await post({ accountIds: ['acc-acme'], shocks: { ACME: '-0.1' }, market: '-0.2' })).status).toBe(400);
    expect((await post({ accountIds: ['acc-acme'], shocks: { ACME: '-1.5' } })).status).toBe(400);
    expect((await post({ shocks: { ACME: '-0.1' } })).status).toBe(400);
  });

  it('lets a viewer stress its own accounts only: another owner\'s answers 404', async () => {
    const viewer = await makeKey(api.keys, 'viewer', 'owner-1');
    expect((await post({ accountIds: ['acc-acme'], shocks: { ACME: '-0.25' } }, viewer)).body.accounts[0].pnl).toBe('-2250.00');
    const stranger = await makeKey(api.keys, 'viewer', 'someone-else');
    expect((await post({ accountIds: ['acc-acme'], shocks: { ACME: '-0.25' } }, stranger)).status).toBe(404);
    expect((await post({ rootId: 'acc-root', shocks: { ACME: '-0.25' } }, stranger)).status).toBe(404);
  });

  it('answers the same through the CLI', async () => {
    const writes: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
    try {
      expect(await stressCommand({ ...h.config, fork: { ...h.config.fork } }, silentLogger, h.mongo, { accounts: 'acc-acme,acc-small', shock: ['ACME=-0.25'] }, clock)).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    const out = JSON.parse(writes.join(''));
    expect(out.accounts.map((a: { pnl: string }) => a.pnl)).toEqual(['-2250.00', '-550.00']);
    expect(out.total.pnl).toBe('-2800.00');
  });
});
