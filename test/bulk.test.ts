import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal } from '../shared/money/decimal.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import type { Principal } from '../services/api/auth.js';
import { type BulkDeps, batchView, submitBatch } from '../services/api/bulk.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'test-admin-key-bulk-0123456789';
let h: LedgerHarness;
let api: TestApi;
const keys: Record<string, string> = {};

type Item = { index: number; status: string; id?: string; accountId?: string; operationId?: string; error?: { code: string; message: string } };
const send = async (method: 'GET' | 'POST', url: string, key: string, payload?: unknown, contentType?: string) => {
  const res = await api.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}`, ...(contentType ? { 'content-type': contentType } : {}) },
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : (payload as object) }),
  });
  return { status: res.statusCode, body: JSON.parse(res.body) as { batchId: string; done: boolean; counts: Record<string, number>; items: Item[]; error?: { code: string } } };
};
const cashOf = async (id: string) => loadBalances((await h.stores.journal.head(id))!.after).cash.toFixed(2);
const plus = (a: string, b: string) => new Decimal(a).plus(b).toFixed(2);
const journalSize = () => h.stores.journal.model.countDocuments();
const expectVerified = async () => {
  const report = await verifyLedger(h.stores, { idle: true });
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
};

beforeAll(async () => {
  h = await startLedger('bulk');
  api = await startApi(h, { adminKey: ADMIN, api: { rateLimitMax: 100_000 } });
  keys['admin'] = ADMIN;
  keys['alice'] = await makeKey(api.keys, 'operator', 'alice');
  keys['alice-viewer'] = await makeKey(api.keys, 'viewer', 'alice');
  keys['bob'] = await makeKey(api.keys, 'operator', 'bob');
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

describe('bulk accounts and transactions', () => {
  let accounts: string[] = [];

  it('opens 50 accounts in one request, and the same request again changes nothing', async () => {
    const items = Array.from({ length: 50 }, (_, i) => ({ type: 'GEN', name: `bulk-${i}`, initialDeposit: '1000.00', idempotencyKey: `bulk-open-${i}` }));
    const first = await send('POST', '/api/v1/bulk/accounts?wait=true', keys['alice']!, { items });
    expect(first.status).toBe(200);
    expect(first.body.items.map((i) => i.status)).toEqual(items.map(() => 'applied'));
    expect(first.body.items.map((i) => i.index)).toEqual(items.map((_, i) => i));
    accounts = first.body.items.map((i) => i.id!);
    expect(new Set(accounts).size).toBe(50);
    const entries = await journalSize();

    const again = await send('POST', '/api/v1/bulk/accounts?wait=true', keys['alice']!, { items });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await journalSize()).toBe(entries);
    for (const id of accounts) expect(await cashOf(id)).toBe('1000.00');
  });

  it('posts 500 deposits as NDJSON, twice, and every balance is exact', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ accountId: accounts[i % 50], kind: 'deposit', amount: `${(i % 7) + 1}.${String(i % 100).padStart(2, '0')}`, idempotencyKey: `bulk-dep-${i}` }));
    const expected = new Map(accounts.map((id) => [id, new Decimal('1000.00')]));
    lines.forEach((l, i) => {
      const item = JSON.parse(l) as { amount: string };
      expected.set(accounts[i % 50]!, expected.get(accounts[i % 50]!)!.plus(item.amount));
    });
    const first = await send('POST', '/api/v1/bulk/transactions?wait=true', keys['alice']!, lines.join('\n'), 'application/x-ndjson');
    expect(first.status).toBe(200);
    expect(first.body.counts).toEqual({ total: 500, queued: 0, running: 0, applied: 500, refused: 0 });
    const entries = await journalSize();
    const again = await send('POST', '/api/v1/bulk/transactions?wait=true', keys['alice']!, `${lines.join('\n')}\n`, 'application/x-ndjson');
    expect(again.body.batchId).toBe(first.body.batchId);
    expect(again.body.items).toEqual(first.body.items);
    expect(await journalSize()).toBe(entries);
    for (const [id, cash] of expected) expect(await cashOf(id)).toBe(cash.toFixed(2));
    await expectVerified();
  });

  it('refuses a bad item alone: its neighbours are applied', async () => {
    await h.run('deposit', { accountId: accounts[0], idempotencyKey: 'taken-key-1', actor: 'test', amount: '5.00' }, `op.${accounts[0]}.taken-key-1`);
    const lines = [
      JSON.stringify({ accountId: accounts[1], kind: 'deposit', amount: '10.00', idempotencyKey: 'mixed-ok-1' }),
      JSON.stringify({ accountId: accounts[1], kind: 'deposit', amount: '10.001', idempotencyKey: 'mixed-bad-amount' }),
      '{not json',
      JSON.stringify({ accountId: 'acc_nosuchaccount', kind: 'deposit', amount: '10.00', idempotencyKey: 'mixed-no-account' }),
      JSON.stringify({ accountId: accounts[2], kind: 'withdrawal', amount: '99999.00', idempotencyKey: 'mixed-overdraw' }),
      JSON.stringify({ accountId: accounts[0], kind: 'deposit', amount: '6.00', idempotencyKey: 'taken-key-1' }),
      JSON.stringify({ accountId: accounts[1], kind: 'dividend', amount: '1.00', symbol: 'ACME', idempotencyKey: 'mixed-dividend' }),
      JSON.stringify({ accountId: accounts[3], kind: 'deposit', amount: '10.00', idempotencyKey: 'mixed-ok-2' }),
    ];
    const before0 = await cashOf(accounts[0]!);
    const before1 = await cashOf(accounts[1]!);
    const before3 = await cashOf(accounts[3]!);
    const res = await send('POST', '/api/v1/bulk/transactions?wait=true', keys['alice']!, lines.join('\n'), 'application/x-ndjson');
    expect(res.status).toBe(200);
    expect(res.body.items.map((i) => [i.status, i.error?.code ?? null])).toEqual([
      ['applied', null],
      ['refused', 'validation_failed'],
      ['refused', 'validation_failed'],
      ['refused', 'not_found'],
      ['refused', 'insufficient_funds'],
      ['refused', 'idempotency_key_reused'],
      ['refused', 'forbidden'],
      ['applied', null],
    ]);
    expect(await cashOf(accounts[1]!)).toBe(plus(before1, '10.00'));
    expect(await cashOf(accounts[3]!)).toBe(plus(before3, '10.00'));
    // The key taken by another payload keeps its first operation: 5.00, not 6.00.
    expect(await cashOf(accounts[0]!)).toBe(before0);
  });

  it('answers 202 with a status URL, readable by the owner and not by another owner', async () => {
    const items = [{ accountId: accounts[4], kind: 'deposit', amount: '3.00', idempotencyKey: 'async-dep-1' }];
    const res = await send('POST', '/api/v1/bulk/transactions', keys['alice']!, { items });
    expect(res.status).toBe(202);
    const url = `/api/v1/bulk/${res.body.batchId}`;
    const done = await waitFor('batch done', async () => {
      const s = await send('GET', url, keys['alice-viewer']!);
      return s.body.done ? s : null;
    });
    expect(done.body.items[0]!.status).toBe('applied');
    expect((await send('GET', url, keys['bob']!)).status).toBe(404);
    expect((await send('GET', url, ADMIN)).status).toBe(200);
    expect((await send('POST', '/api/v1/bulk/transactions', keys['alice-viewer']!, { items })).status).toBe(403);
  });

  it('refuses a batch over 1,000 items or with none', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ accountId: accounts[0], kind: 'deposit', amount: '1.00', idempotencyKey: `too-many-${i}` }));
    expect((await send('POST', '/api/v1/bulk/transactions', keys['alice']!, { items: many })).status).toBe(400);
    expect((await send('POST', '/api/v1/bulk/transactions', keys['alice']!, { items: [] })).status).toBe(400);
  });

  it('administers many accounts at once: names, configuration, states; a replay writes no audit', async () => {
    const items = accounts.slice(10, 15).map((id, i) => ({ accountId: id, name: `renamed-${i}`, config: { maxPositions: 3 }, state: 'SAFE', reason: 'mass review', idempotencyKey: `mass-safe-${i}` }));
    const res = await send('POST', '/api/v1/bulk/accounts/update?wait=true', keys['alice']!, { items });
    expect(res.status).toBe(200);
    expect(res.body.items.map((i) => i.status)).toEqual(items.map(() => 'applied'));
    for (const [i, id] of accounts.slice(10, 15).entries()) {
      const a = (await h.stores.accounts.get(id))!;
      expect([a.name, a.config.maxPositions]).toEqual([`renamed-${i}`, 3]);
      expect((await h.stores.journal.head(id))!.after.state).toBe('SAFE');
    }
    const audits = await h.stores.audit.model.countDocuments({ action: 'update-profile' });
    expect(audits).toBe(5);
    const again = await send('POST', '/api/v1/bulk/accounts/update?wait=true', keys['alice']!, { items });
    expect(again.body.items).toEqual(res.body.items);
    expect(await h.stores.audit.model.countDocuments({ action: 'update-profile' })).toBe(audits);
    // Another owner's account is not found, item by item.
    const foreign = await send('POST', '/api/v1/bulk/accounts/update?wait=true', keys['bob']!, { items: [{ accountId: accounts[20], name: 'mine now', idempotencyKey: 'steal-1234' }] });
    expect(foreign.body.items[0]!.error?.code).toBe('not_found');
    expect((await h.stores.accounts.get(accounts[20]!))!.name).toBe('bulk-20');
  });
});

describe('a batch under crashes and duplicate runs', () => {
  const principal: Principal = { id: 'test-operator', role: 'operator', ownerId: 'carol' } as Principal;
  let parent: string;

  beforeAll(async () => {
    const open = await submitBatch(api.api, principal, 'accounts', [{ type: 'GEN', name: 'carol-main', initialDeposit: '100.00', idempotencyKey: 'carol-main-1' }]);
    parent = open.items[0]!.accountId!;
    await waitFor('carol open', async () => (await h.stores.journal.head(parent)) !== null);
  });

  /** Deps whose `at`-th write throws once: the batch's store, a profile change, the enqueue, the mark. */
  const failing = (at: 'store' | 'enqueue' | 'mark'): BulkDeps => {
    let armed = true;
    const trip = () => {
      if (!armed) return;
      armed = false;
      throw new Error(`injected failure at ${at}`);
    };
    const batches = Object.create(api.api.batches) as BulkDeps['batches'];
    const operations = Object.create(api.api.operations) as BulkDeps['operations'];
    if (at === 'store') batches.store = async (b) => (trip(), api.api.batches.store(b));
    if (at === 'mark') batches.markEnqueued = async (...a) => (await api.api.batches.markEnqueued(...a), trip());
    if (at === 'enqueue') operations.submitMany = async (plans) => (await api.api.operations.submitMany(plans.slice(0, 1)), trip(), []);
    return { ...api.api, batches, operations };
  };

  for (const at of ['store', 'enqueue', 'mark'] as const) {
    it(`finishes a batch that died at its ${at} when the same request comes again`, async () => {
      const items = Array.from({ length: 4 }, (_, i) => ({ accountId: parent, kind: 'deposit', amount: '1.25', idempotencyKey: `crash-${at}-${i}` }));
      const before = await cashOf(parent);
      await expect(submitBatch(failing(at), principal, 'transactions', items)).rejects.toThrow(/injected failure/);
      const batch = await submitBatch(api.api, principal, 'transactions', items);
      expect(batch.enqueued).toBe(true);
      const view = await waitFor('batch applied', async () => {
        const v = await batchView(api.api, (await api.api.batches.get(batch._id))!);
        return v.done ? v : null;
      });
      expect(view.items.map((i) => i.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
      expect(await cashOf(parent)).toBe(plus(before, '5.00'));
    });
  }

  it("does not undo an operator's change when a failed update batch is sent again", async () => {
    const items = [{ accountId: parent, name: 'from-batch', idempotencyKey: 'rename-once-1' }];
    await expect(submitBatch(failing('enqueue'), principal, 'accounts-update', items)).rejects.toThrow(/injected failure/);
    expect((await h.stores.accounts.get(parent))!.name).toBe('from-batch');
    await h.stores.accounts.updateProfile(parent, { name: 'operator-choice' }, new Date());
    const batch = await submitBatch(api.api, principal, 'accounts-update', items);
    expect(batch.enqueued).toBe(true);
    expect((await h.stores.accounts.get(parent))!.name).toBe('operator-choice');
    expect(await h.stores.audit.model.countDocuments({ chain: parent, ref: `update-profile:${batch._id}:0` })).toBe(1);
  });

  it('runs the same batch twice at once with one effect', async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ accountId: parent, kind: 'deposit', amount: '0.01', idempotencyKey: `twice-at-once-${i}` }));
    const before = await cashOf(parent);
    const [a, b] = await Promise.all([submitBatch(api.api, principal, 'transactions', items), submitBatch(api.api, principal, 'transactions', items)]);
    expect(a._id).toBe(b._id);
    const view = await waitFor('twice applied', async () => {
      const v = await batchView(api.api, (await api.api.batches.get(a._id))!);
      return v.done ? v : null;
    });
    expect(view.items.filter((i) => i.error).map((i) => i.error)).toEqual([]);
    expect(view.counts).toMatchObject({ applied: 20, refused: 0 });
    expect(await cashOf(parent)).toBe(plus(before, '0.20'));
    await expectVerified();
  });
});
