import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'test-admin-key-0123456789';
let h: LedgerHarness;
let api: TestApi;
let app: TestApi['app'];
const keys: Record<string, string> = {};
let aliceAcc: string;
let bobAcc: string;


type Req = { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown; key?: string | undefined };
const call = async (r: Req) => {
  const res = await app.inject({ method: r.method, url: r.url, ...(r.payload !== undefined ? { payload: r.payload as object } : {}), headers: r.key ? { authorization: `Bearer ${r.key}` } : {} });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as any) : null };
};

beforeAll(async () => {
  h = await startLedger('api');
  // Throttles out of the way: every row below presents a wrong key.
  api = await startApi(h, { adminKey: ADMIN, api: { rateLimitMax: 100_000, authFailuresPerIpMax: 100_000, authFailuresPerKeyMax: 100_000 } });
  app = api.app;
  const repo = api.keys;
  keys['admin'] = ADMIN;
  keys['viewer-alice'] = await makeKey(repo, 'viewer', 'alice');
  keys['operator-alice'] = await makeKey(repo, 'operator', 'alice');
  keys['operator-bob'] = await makeKey(repo, 'operator', 'bob');
  const open = async (key: string, name: string, deposit: string) =>
    (await call({ method: 'POST', url: '/api/v1/accounts?wait=true', key, payload: { type: 'GEN', name, initialDeposit: deposit, idempotencyKey: `open-${name}` } })).body.id as string;
  aliceAcc = await open(keys['operator-alice']!, 'alice-main', '50000.00');
  bobAcc = await open(keys['operator-bob']!, 'bob-main', '50000.00');
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

describe('API authentication and roles', () => {
  const who = ['none', 'bad', 'viewer-alice', 'operator-alice', 'operator-bob', 'admin'] as const;
  // Each row: a request, and the status each caller gets. Foreign accounts answer 404 (never probed).
  const rows: Array<[string, () => Req, Record<(typeof who)[number], number>]> = [
    ['list accounts', () => ({ method: 'GET', url: '/api/v1/accounts' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['read an account', () => ({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read its journal', () => ({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/transactions` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read its hierarchy', () => ({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/hierarchy` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['rename it', () => ({ method: 'PUT', url: `/api/v1/accounts/${aliceAcc}`, payload: { name: 'alice-renamed' } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['deposit', () => ({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, payload: { kind: 'deposit', amount: '1.00', idempotencyKey: `rbac-${Math.random().toString(36).slice(2)}` } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 201, 'operator-bob': 404, admin: 201 }],
    ['post a dividend', () => ({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, payload: { kind: 'dividend', amount: '1.00', symbol: 'SPY', idempotencyKey: `div-${Math.random().toString(36).slice(2)}` } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 404, admin: 201 }],
    ['transfer to a foreign account', () => ({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, payload: { kind: 'transfer', amount: '1.00', toAccountId: bobAcc, idempotencyKey: `tr-${Math.random().toString(36).slice(2)}` } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 404, 'operator-bob': 404, admin: 422 }],
    ['create an account', () => ({ method: 'POST', url: '/api/v1/accounts', payload: { type: 'GEN', name: 'x' } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 202, 'operator-bob': 202, admin: 202 }],
    ['load prices', () => ({ method: 'POST', url: '/api/v1/prices', payload: { symbol: 'SPY', date: '2020-01-02', close: '300.00' } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 403, admin: 200 }],
    ['verify the audit chain', () => ({ method: 'GET', url: '/api/v1/audit/verify' }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 403, admin: 200 }],
    ['read an operation', () => ({ method: 'GET', url: `/api/v1/operations/op.${aliceAcc}.open-alice-main` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read its performance', () => ({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/performance` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read its snapshots', () => ({ method: 'GET', url: `/api/v1/performance/snapshots?accountId=${aliceAcc}` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['compare accounts', () => ({ method: 'POST', url: '/api/v1/performance/compare', payload: { accountIds: [aliceAcc, aliceAcc] } }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read a subtree', () => ({ method: 'GET', url: `/api/v1/performance/hierarchy?rootId=${aliceAcc}` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read the dashboard', () => ({ method: 'GET', url: '/api/v1/performance/dashboard' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['run a day of snapshots', () => ({ method: 'POST', url: '/api/v1/performance/snapshots', payload: { date: '2020-01-02' } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 403, admin: 202 }],
    ['read its alerts', () => ({ method: 'GET', url: `/api/v1/alerts?accountId=${aliceAcc}` }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['read all alerts', () => ({ method: 'GET', url: '/api/v1/alerts' }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 403, admin: 200 }],
    ['list fork opportunities', () => ({ method: 'GET', url: '/api/v1/forking/opportunities' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['assess a fork', () => ({ method: 'POST', url: '/api/v1/forking/assess', payload: { accountId: aliceAcc } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 422, 'operator-bob': 404, admin: 422 }],
    ['execute a fork', () => ({ method: 'POST', url: '/api/v1/forking/execute', payload: { accountId: aliceAcc } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 422, 'operator-bob': 404, admin: 422 }],
    ['read fork status', () => ({ method: 'GET', url: '/api/v1/forking/status' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['list consolidation opportunities', () => ({ method: 'GET', url: '/api/v1/consolidation/opportunities' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['assess a consolidation', () => ({ method: 'POST', url: '/api/v1/consolidation/assess', payload: { accountId: aliceAcc } }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['execute a merge into a foreign account', () => ({ method: 'POST', url: '/api/v1/consolidation/execute', payload: { sourceId: aliceAcc, targetId: bobAcc } }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 404, 'operator-bob': 404, admin: 422 }],
    ['read merge status', () => ({ method: 'GET', url: '/api/v1/consolidation/status' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['list reviews', () => ({ method: 'GET', url: '/api/v1/reviews' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['stress its accounts', () => ({ method: 'POST', url: '/api/v1/risk/stress', payload: { accountIds: [aliceAcc], shocks: { SPY: '-0.10' } } }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 404, admin: 200 }],
    ['forecast it (too little history yet)', () => ({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/forecast` }), { none: 401, bad: 401, 'viewer-alice': 422, 'operator-alice': 422, 'operator-bob': 404, admin: 422 }],
    ['read an unknown review', () => ({ method: 'GET', url: '/api/v1/reviews/rev_nothing_here' }), { none: 401, bad: 401, 'viewer-alice': 404, 'operator-alice': 404, 'operator-bob': 404, admin: 404 }],
    ['ask who the key is', () => ({ method: 'GET', url: '/api/v1/session' }), { none: 401, bad: 401, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
    ['open Bull Board', () => ({ method: 'GET', url: '/admin/queues/api/queues' }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 403, 'operator-bob': 403, admin: 200 }],
    ['decide an unknown review', () => ({ method: 'POST', url: '/api/v1/reviews/rev_nothing_here/approve', payload: {} }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 404, 'operator-bob': 404, admin: 404 }],
    // Last: the owner's close is accepted (and refused later by the ledger: the account holds money).
    ['close a foreign account', () => ({ method: 'DELETE', url: `/api/v1/accounts/${bobAcc}` }), { none: 401, bad: 401, 'viewer-alice': 403, 'operator-alice': 404, 'operator-bob': 202, admin: 202 }],
    ['read the OpenAPI document (public)', () => ({ method: 'GET', url: '/api/v1/openapi.json' }), { none: 200, bad: 200, 'viewer-alice': 200, 'operator-alice': 200, 'operator-bob': 200, admin: 200 }],
  ];

  it.each(rows)('%s', async (_, request, expected) => {
    const keyOf = (w: (typeof who)[number]) => (w === 'none' ? undefined : w === 'bad' ? 'fk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' : keys[w]);
    const got: Record<string, number> = {};
    for (const w of who) got[w] = (await call({ ...request(), key: keyOf(w) })).status;
    expect(got).toEqual(expected);
  });

  it('scopes lists to the key owner', async () => {
    const alice = await call({ method: 'GET', url: '/api/v1/accounts?limit=200', key: keys['viewer-alice'] });
    expect(alice.body.items.length).toBeGreaterThan(0);
    expect(alice.body.items.every((a: { ownerId: string }) => a.ownerId === 'alice')).toBe(true);
  });
});

describe('API writes', () => {
  it('answers 202 with a status URL, then the outcome there', async () => {
    const res = await call({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions`, key: keys['operator-alice'], payload: { kind: 'deposit', amount: '10.00', idempotencyKey: 'async-dep-1' } });
    expect(res.status).toBe(202);
    expect(res.body.statusUrl).toBe(`/api/v1/operations/op.${aliceAcc}.async-dep-1`);
    const status = await waitFor('applied', async () => {
      const s = await call({ method: 'GET', url: res.body.statusUrl, key: keys['viewer-alice'] });
      return s.body.status === 'applied' ? s.body : undefined;
    });
    expect(status.outcome.entry.details.amount).toBe('10.00');
  });

  it('replays a key with the same payload and refuses it with another (409)', async () => {
    const body = { kind: 'deposit', amount: '7.00', idempotencyKey: 'replay-dep-1' };
    const first = await call({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, key: keys['operator-alice'], payload: body });
    const again = await call({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, key: keys['operator-alice'], payload: body });
    const other = await call({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, key: keys['operator-alice'], payload: { ...body, amount: '8.00' } });
    expect(first.status).toBe(201);
    expect(again).toEqual(first);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });

  it('answers an open with the account as its journal has it, not as its projection may lag', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await call({ method: 'POST', url: '/api/v1/accounts?wait=true', key: keys['operator-alice'], payload: { type: 'GEN', name: `fresh-${i}`, initialDeposit: '12345.67', idempotencyKey: `fresh-open-${i}` } });
      expect([res.status, res.body.cash, res.body.equity, res.body.seq]).toEqual([201, '12345.67', '12345.67', 1]);
    }
  });

  it('answers a rule refusal with its 4xx and the error shape', async () => {
    const res = await call({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, key: keys['operator-alice'], payload: { kind: 'withdrawal', amount: '49999.00', idempotencyKey: 'too-big-wd-1' } });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'min_capital', details: { operationId: `op.${aliceAcc}.too-big-wd-1` } });
  });

  it('pages the account list and the journal with cursors', async () => {
    const page1 = await call({ method: 'GET', url: '/api/v1/accounts?limit=1', key: keys['admin'] });
    const page2 = await call({ method: 'GET', url: `/api/v1/accounts?limit=1&cursor=${page1.body.nextCursor}`, key: keys['admin'] });
    expect(page1.body.items[0].id < page2.body.items[0].id).toBe(true);
    const j1 = await call({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/transactions?limit=2`, key: keys['admin'] });
    const j2 = await call({ method: 'GET', url: `/api/v1/accounts/${aliceAcc}/transactions?limit=2&cursor=${j1.body.nextCursor}`, key: keys['admin'] });
    expect(j1.body.items.map((e: { seq: number }) => e.seq)).toEqual([j1.body.items[0].seq, j1.body.items[0].seq - 1]);
    expect(j2.body.items[0].seq).toBe(j1.body.items[1].seq - 1);
  });
});

describe('bad input', () => {
  const deposit = (patch: Record<string, unknown>) => ({ kind: 'deposit', amount: '1.00', idempotencyKey: 'bad-input-1', ...patch });
  const cases: Array<[string, Req]> = [
    ['a number amount', { method: 'POST', url: '', payload: deposit({ amount: 100 }) }],
    ['an exponent', { method: 'POST', url: '', payload: deposit({ amount: '1e3' }) }],
    ['NaN', { method: 'POST', url: '', payload: deposit({ amount: 'NaN' }) }],
    ['a negative amount', { method: 'POST', url: '', payload: deposit({ amount: '-5.00' }) }],
    ['zero', { method: 'POST', url: '', payload: deposit({ amount: '0.00' }) }],
    ['three places', { method: 'POST', url: '', payload: deposit({ amount: '1.001' }) }],
    ['a huge amount', { method: 'POST', url: '', payload: deposit({ amount: '99999999999999999999.00' }) }],
    ['an operator object as amount', { method: 'POST', url: '', payload: deposit({ amount: { $ne: null } }) }],
    ['a $where field', { method: 'POST', url: '', payload: deposit({ $where: 'sleep(1000)' }) }],
    ['a missing idempotency key', { method: 'POST', url: '', payload: { kind: 'deposit', amount: '1.00' } }],
    ['an unknown kind', { method: 'POST', url: '', payload: deposit({ kind: 'mint' }) }],
    ['an oversize key', { method: 'POST', url: '', payload: deposit({ idempotencyKey: 'k'.repeat(200) }) }],
    ['unicode in a key', { method: 'POST', url: '', payload: deposit({ idempotencyKey: 'ключ-ключ-1' }) }],
    ['an operator in the account id', { method: 'POST', url: '/api/v1/accounts/%7B%22%24ne%22%3Anull%7D/transactions', payload: deposit({}) }],
    ['an operator in a query', { method: 'GET', url: '/api/v1/accounts?type[$ne]=GEN' }],
    ['an unknown query field', { method: 'GET', url: '/api/v1/accounts?owner=bob' }],
    ['an oversize name', { method: 'POST', url: '/api/v1/accounts', payload: { type: 'GEN', name: 'n'.repeat(500) } }],
  ];

  it.each(cases)('refuses %s with 400 and writes nothing', async (_, req) => {
    const before = [await h.stores.journal.model.countDocuments(), await h.stores.audit.model.countDocuments()];
    const res = await call({ ...req, url: req.url || `/api/v1/accounts/${aliceAcc}/transactions?wait=true`, key: keys['admin'] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect([await h.stores.journal.model.countDocuments(), await h.stores.audit.model.countDocuments()]).toEqual(before);
  });

  it('refuses malformed JSON and unknown accounts cleanly', async () => {
    const bad = await app.inject({ method: 'POST', url: `/api/v1/accounts/${aliceAcc}/transactions`, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, payload: '{"kind":' });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBeDefined();
    expect((await call({ method: 'GET', url: '/api/v1/accounts/acc_missing', key: ADMIN })).status).toBe(404);
  });
});

describe('the OpenAPI document and rate limits', () => {
  it('publishes a valid OpenAPI document generated from the schemas', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    const doc = JSON.parse(res.body);
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeDefined();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/accounts', '/api/v1/accounts/{id}', '/api/v1/accounts/{id}/transactions', '/api/v1/prices', '/api/v1/audit/verify', '/api/v1/bulk/accounts', '/api/v1/bulk/transactions', '/api/v1/bulk/accounts/update', '/api/v1/bulk/{batchId}', '/api/v1/dead-letters', '/api/v1/dead-letters/{id}', '/api/v1/dead-letters/{id}/replay', '/api/v1/accounts/{id}/statement', '/api/v1/export/journal', '/api/v1/session', '/api/v1/reviews/{id}', '/api/v1/risk/stress', '/api/v1/accounts/{id}/forecast']));
  });

  it('publishes the job contracts for producers, without a key', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/contracts' });
    const doc = JSON.parse(res.body);
    expect(res.statusCode).toBe(200);
    expect(doc.prefix).toBe(h.config.queuePrefix);
    expect(Object.keys(doc.queues)).toContain('account-ops');
    expect(doc.queues['account-ops'].jobs.deposit.required).toEqual(['accountId', 'idempotencyKey', 'actor', 'amount']);
  });

  it('limits requests per key with 429 in the error shape', async () => {
    const limitedApi = await startApi(h, { adminKey: ADMIN, api: { rateLimitMax: 3 }, name: 'api-limited' });
    const limited = limitedApi.app;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await limited.inject({ method: 'GET', url: '/api/v1/accounts', headers: { authorization: `Bearer ${keys['viewer-alice']}` } });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) expect(JSON.parse(res.body).error.code).toBe('rate_limited');
    }
    // Another key has its own allowance.
    const other = await limited.inject({ method: 'GET', url: '/api/v1/accounts', headers: { authorization: `Bearer ${keys['operator-bob']}` } });
    await limitedApi.close();
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(other.statusCode).toBe(200);
  });
});
