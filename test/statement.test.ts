import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { Decimal } from '../shared/money/decimal.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'test-admin-key-statement-0123456';
const clock = new FixedClock(new Date('2026-03-02T12:00:00Z'));
let h: LedgerHarness;
let api: TestApi;
const keys: Record<string, string> = {};
let main: string;
let other: string;
let bobs: string;

const get = async (url: string, key = ADMIN) => {
  const res = await api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, text: res.body, headers: res.headers, json: () => JSON.parse(res.body) as any };
};
const post = async (url: string, payload: object, key = ADMIN) => (await api.app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${key}` } })).json();
const tx = async (id: string, body: object) => {
  const r = await post(`/api/v1/accounts/${id}/transactions?wait=true`, body);
  if (r.status !== 'applied') throw new Error(`setup: ${JSON.stringify(r)}`);
};
const open = async (name: string, ownerId: string, deposit: string) => (await post('/api/v1/accounts?wait=true', { type: 'GEN', name, ownerId, initialDeposit: deposit, idempotencyKey: `open-${name}` })).id as string;

beforeAll(async () => {
  h = await startLedger('statement', { clock });
  api = await startApi(h, { adminKey: ADMIN, clock, api: { rateLimitMax: 100_000 } });
  keys['alice-viewer'] = await makeKey(api.keys, 'viewer', 'alice');
  keys['bob'] = await makeKey(api.keys, 'operator', 'bob');
  await h.stores.prices.upsert([
    { symbol: 'ACME', date: '2026-03-02', close: new Decimal('100.00') },
    { symbol: 'ACME', date: '2026-03-03', close: new Decimal('110.00') },
    { symbol: 'ACME', date: '2026-03-04', close: new Decimal('120.00') },
  ]);
  // Day 1 (03-02): open with 20000.00, a deposit.
  main = await open('main', 'alice', '20000.00');
  other = await open('other', 'alice', '50.00');
  bobs = await open('bobs', 'bob', '10.00');
  await tx(main, { kind: 'deposit', amount: '250.50', idempotencyKey: 'st-dep-1' });
  // Day 2 (03-03): a trade with fees, a transfer out, a dividend, a fee.
  clock.advanceHours(24);
  await tx(main, { kind: 'trade', side: 'buy', symbol: 'ACME', quantity: '2', price: '110.00', fees: '1.25', idempotencyKey: 'st-buy-1' });
  await tx(main, { kind: 'transfer', amount: '20.00', toAccountId: other, idempotencyKey: 'st-transfer-1' });
  await tx(main, { kind: 'dividend', amount: '4.40', symbol: 'ACME', idempotencyKey: 'st-div-1' });
  await tx(main, { kind: 'fee', amount: '2.00', reason: 'custody', idempotencyKey: 'st-fee-1' });
  // Day 3 (03-04): sell one at a gain, withdraw.
  clock.advanceHours(24);
  await tx(main, { kind: 'trade', side: 'sell', symbol: 'ACME', quantity: '1', price: '120.00', fees: '0.75', idempotencyKey: 'st-sell-1' });
  await tx(main, { kind: 'withdrawal', amount: '30.00', idempotencyKey: 'st-withdraw-1' });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

describe('account statements', () => {
  it('states a whole history exactly: opening, entries with cash after each, totals, closing', async () => {
    const s = (await get(`/api/v1/accounts/${main}/statement?from=2026-03-02&to=2026-03-04`)).json();
    expect(s.opening).toEqual({ cash: '0.00', equity: '0.00' });
    expect(s.entries.map((e: { date: string; kind: string; amount: string; fees: string; cash: string }) => [e.date, e.kind, e.amount, e.fees, e.cash])).toEqual([
      ['2026-03-02', 'open', '20000.00', '0.00', '20000.00'],
      ['2026-03-02', 'deposit', '250.50', '0.00', '20250.50'],
      ['2026-03-03', 'trade', '-221.25', '1.25', '20029.25'],
      ['2026-03-03', 'hold', '0.00', '0.00', '20029.25'],
      ['2026-03-03', 'transfer-out', '-20.00', '0.00', '20009.25'],
      ['2026-03-03', 'dividend', '4.40', '0.00', '20013.65'],
      ['2026-03-03', 'fee', '-2.00', '2.00', '20011.65'],
      ['2026-03-04', 'trade', '119.25', '0.75', '20130.90'],
      ['2026-03-04', 'withdrawal', '-30.00', '0.00', '20100.90'],
    ]);
    expect(s.entries.find((e: { kind: string }) => e.kind === 'transfer-out').counterparty).toBe(other);
    expect(s.totals).toEqual({ deposits: '20250.50', withdrawals: '30.00', fees: '4.00', dividends: '4.40', realisedPnl: '10.00', transfersIn: '0.00', transfersOut: '20.00' });
    // One ACME left, valued at the close of the 4th.
    expect(s.closing).toEqual({ cash: '20100.90', equity: '20220.90' });
    expect(s.returns).toEqual({ timeWeighted: null, moneyWeighted: null });
    expect(s.entries.at(-1).cash).toBe(s.closing.cash);
    expect(s.entries.map((e: { seq: number }) => e.seq)).toEqual([...s.entries.map((e: { seq: number }) => e.seq)].sort((a: number, b: number) => a - b));
  });

  it("measures the period's time- and money-weighted returns from the daily points", async () => {
    const point = (date: string, equity: bigint, flow: bigint, dailyReturn: number | null) =>
      api.api.performance.snapshots.record({ _id: `${other}:${date}`, accountId: other, date, seq: 1, equityCents: equity, cashCents: equity, positionsValueCents: 0n, netFlowCents: flow, dailyReturn, createdAt: new Date() });
    await point('2026-02-27', 1_000_000n, 0n, null);
    await point('2026-03-02', 1_001_000n, 0n, 0.001);
    await point('2026-03-03', 1_502_001n, 500_000n, 0.001);
    const s = (await get(`/api/v1/accounts/${other}/statement?from=2026-03-02&to=2026-03-03`)).json();
    expect(s.returns.timeWeighted).toBeCloseTo(0.002001, 12);
    expect(s.returns.moneyWeighted).toEqual(expect.any(Number));
    expect(s.returns.moneyWeighted).toBeGreaterThan(0);
    // A period of one point: no return to measure.
    expect((await get(`/api/v1/accounts/${other}/statement?from=2026-02-27&to=2026-02-27`)).json().returns).toEqual({ timeWeighted: null, moneyWeighted: null });
  });

  it('opens a later period where the earlier one closed', async () => {
    const first = (await get(`/api/v1/accounts/${main}/statement?from=2026-03-02&to=2026-03-02`)).json();
    const second = (await get(`/api/v1/accounts/${main}/statement?from=2026-03-03&to=2026-03-04`)).json();
    expect(first.closing.cash).toBe('20250.50');
    expect(second.opening).toEqual(first.closing);
    expect(second.totals.deposits).toBe('0.00');
    // A period without entries opens and closes at the same cash.
    const quiet = (await get(`/api/v1/accounts/${main}/statement?from=2026-03-05&to=2026-03-06`)).json();
    expect([quiet.entries, quiet.opening.cash, quiet.closing.cash, quiet.totals.fees]).toEqual([[], '20100.90', '20100.90', '0.00']);
    expect(new Decimal(second.opening.cash).plus(second.entries.reduce((s: Decimal, e: { amount: string }) => s.plus(e.amount), new Decimal(0))).toFixed(2)).toBe(second.closing.cash);
  });

  it('answers CSV whose last balance is the account cash', async () => {
    const res = await get(`/api/v1/accounts/${main}/statement?format=csv&from=2026-03-01&to=2026-03-31`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const lines = res.text.trim().split('\n');
    expect(lines[0]).toBe('date,seq,kind,amount,fees,counterparty,balance');
    const rows = parse(res.text, { columns: true }) as Array<Record<string, string>>;
    const account = (await get(`/api/v1/accounts/${main}`)).json();
    expect(rows.at(-1)!['balance']).toBe(account.cash);
    // Without from and to: from the account's first day to today.
    expect((await get(`/api/v1/accounts/${main}/statement`)).json().entries.length).toBe(rows.length);
  });

  it('refuses bad periods and other owners', async () => {
    expect((await get(`/api/v1/accounts/${main}/statement?from=2026-03-04&to=2026-03-02`)).status).toBe(400);
    expect((await get(`/api/v1/accounts/${main}/statement?from=2000-01-01&to=2026-03-02`)).status).toBe(422);
    expect((await get(`/api/v1/accounts/${main}/statement`, keys['alice-viewer'])).status).toBe(200);
    expect((await get(`/api/v1/accounts/${main}/statement`, keys['bob'])).status).toBe(404);
  });
});

describe('journal export', () => {
  const lines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { cursor: string; accountId: string; seq: number; cash: string; totals: Record<string, string> });

  it("streams an owner's entries, and the fleet's for an admin", async () => {
    const alice = await get('/api/v1/export/journal', keys['alice-viewer']);
    expect(alice.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const own = lines(alice.text);
    expect(new Set(own.map((l) => l.accountId))).toEqual(new Set([main, other]));
    const all = lines((await get('/api/v1/export/journal')).text);
    expect(new Set(all.map((l) => l.accountId))).toEqual(new Set([main, other, bobs]));
    expect(all.find((l) => l.accountId === main && l.seq === 2)!.totals['deposits']).toBe('20250.50');
    expect((await get(`/api/v1/export/journal?accountId=${bobs}`, keys['alice-viewer'])).status).toBe(404);
    const day3 = lines((await get('/api/v1/export/journal?from=2026-03-04&to=2026-03-04')).text);
    expect(day3.map((l) => [l.accountId, l.seq])).toEqual([[main, 8], [main, 9]]);
  });

  it('pages by the cursor of the last line: every entry exactly once', async () => {
    const all = lines((await get('/api/v1/export/journal')).text);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = lines((await get(`/api/v1/export/journal?limit=3${cursor ? `&cursor=${cursor}` : ''}`)).text);
      seen.push(...page.map((l) => `${l.accountId}:${l.seq}`));
      if (page.length < 3) break;
      cursor = page.at(-1)!.cursor;
    }
    expect(seen).toEqual(all.map((l) => `${l.accountId}:${l.seq}`));
    expect(new Set(seen).size).toBe(seen.length);
    // Accounts in id order, each one's entries by seq: every account's chain reads in order.
    const order = all.map((l) => [l.accountId, l.seq] as const);
    expect(order).toEqual([...order].sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : a[0] < b[0] ? -1 : 1)));
    expect(all.at(-1)!.cursor).toBe(`${all.at(-1)!.accountId}.${all.at(-1)!.seq}`);
  });

  it("pages an owner's period, and a cursor naming another owner's account shows nothing of it", async () => {
    const key = keys['alice-viewer'];
    const want = lines((await get('/api/v1/export/journal?from=2026-03-03&to=2026-03-04', key)).text).map((l) => `${l.accountId}:${l.seq}`);
    expect(want.length).toBeGreaterThan(2);
    const seen: string[] = [];
    for (let cursor: string | undefined; ; ) {
      const page = lines((await get(`/api/v1/export/journal?from=2026-03-03&to=2026-03-04&limit=2${cursor ? `&cursor=${cursor}` : ''}`, key)).text);
      seen.push(...page.map((l) => `${l.accountId}:${l.seq}`));
      if (page.length < 2) break;
      cursor = page.at(-1)!.cursor;
    }
    expect(seen).toEqual(want);
    const foreign = lines((await get(`/api/v1/export/journal?cursor=${bobs}.1`, key)).text);
    expect(foreign.filter((l) => l.accountId !== main && l.accountId !== other)).toEqual([]);
    expect((await get('/api/v1/export/journal?cursor=not-a-cursor', key)).status).toBe(400);
  });
});
