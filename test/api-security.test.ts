import { request as httpsRequest } from 'node:https';
import { parseApiKey } from '../shared/auth/api-keys.js';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECURITY_CHAIN } from '../shared/auth/security-events.js';
import { requestFork } from '../shared/ledger/fork-saga.js';
import { requestMerges } from '../shared/ledger/consolidation.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'security-admin-key-0123456789';
const OWNERS = ['alice', 'bob'] as const;
type Owner = (typeof OWNERS)[number];
const other = (o: Owner): Owner => (o === 'alice' ? 'bob' : 'alice');

let h: LedgerHarness;
/** Two replicas of the API on the same Redis and MongoDB, as `npm run fleet` runs them. */
let a: TestApi;
let b: TestApi;

type Req = { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown };
const send = async (api: TestApi, r: Req, key?: string, headers: Record<string, string> = {}, remoteAddress?: string) => {
  const res = await api.app.inject({ method: r.method, url: r.url, ...(remoteAddress ? { remoteAddress } : {}), ...(r.payload !== undefined ? { payload: r.payload as object } : {}), headers: { ...headers, ...(key ? { authorization: `Bearer ${key}` } : {}) } });
  return { status: res.statusCode, text: res.body, headers: res.headers, json: () => JSON.parse(res.body) as any };
};
const asAdmin = async (r: Req) => (await send(a, r, ADMIN)).json();

/** What each owner has: every id of it that must never reach the other owner. */
interface OwnerWorld {
  root: string;
  child: string;
  forkId: string;
  mergeIds: string[];
  reviewId: string;
  keys: { viewer: string; operator: string };
  keyIds: string[];
  jobId: string;
  batchId: string;
}
const world = {} as Record<Owner, OwnerWorld>;
const foreignIds = (o: Owner) => {
  const w = world[other(o)];
  return [w.root, w.child, w.forkId, ...w.mergeIds, w.reviewId, ...w.keyIds, w.jobId];
};

beforeAll(async () => {
  h = await startLedger('apisec');
  a = await startApi(h, { adminKey: ADMIN, redis: true, name: 'api-a' });
  b = await startApi(h, { adminKey: ADMIN, redis: true, name: 'api-b' });
  const fk = a.api.forking;
  for (const owner of OWNERS) {
    const key = async (role: 'viewer' | 'operator') => asAdmin({ method: 'POST', url: '/api/v1/keys', payload: { role, ownerId: owner, label: `${owner} ${role}` } });
    const viewer = await key('viewer');
    const operator = await key('operator');
    const root = (await asAdmin({ method: 'POST', url: '/api/v1/accounts?wait=true', payload: { type: 'GEN', name: `${owner}-root`, ownerId: owner, initialDeposit: '50000.00', idempotencyKey: `root-${owner}` } })).id as string;
    // No ownerId: the child takes its parent's owner.
    const child = (await asAdmin({ method: 'POST', url: '/api/v1/accounts?wait=true', payload: { type: 'GEN', name: `${owner}-child`, parentId: root, initialDeposit: '20000.00', idempotencyKey: `child-${owner}` } })).id as string;
    const { fork } = await requestFork(fk, { parentId: root, parentSeq: 1, mode: 'full', symbols: [], requestedBy: 'test', decisionId: null });
    const mergeIds = await requestMerges(a.api.consolidation, { sourceIds: [child], targetId: root, strategy: 'parent', amount: null, symbols: [], requestedBy: 'test', opportunityId: null, scheduledFor: null });
    // As if its job had started (no merge worker runs here): it counts as in flight.
    await a.api.consolidation.merges.model.updateMany({ _id: { $in: mergeIds } }, { $set: { phase: 'MERGING' } });
    const { review } = await fk.reviews.file({ kind: 'fork', accountId: root, ownerId: owner, decisionId: `dec-${owner}`, forkId: fork._id, urgency: 'medium', day: '2026-12-01', now: new Date(), snoozeDays: 10 });
    const jobId = `op.${root}.some-key-${owner}`;
    await a.api.performance.alerts.raise({ rule: 'drawdown', severity: 'warning', accountId: root, period: '2026-12-01', message: `${owner} drawdown`, details: {} }, new Date());
    // An alert of no account, naming the owner's job: admins only.
    await a.api.performance.alerts.raise({ rule: 'job-failed', severity: 'critical', accountId: null, period: jobId, message: `job ${jobId} failed`, details: { jobId } }, new Date());
    await send(a, { method: 'PUT', url: `/api/v1/accounts/${root}`, payload: { name: `${owner}-root-renamed` } }, operator.key);
    const batchId = (await send(a, { method: 'POST', url: '/api/v1/bulk/transactions', payload: { items: [{ accountId: root, kind: 'deposit', amount: '1.00', idempotencyKey: `batch-${owner}-1` }] } }, operator.key)).json().batchId as string;
    world[owner] = { root, child, forkId: fork._id, mergeIds, reviewId: review!._id, keys: { viewer: viewer.key, operator: operator.key }, keyIds: [viewer.keyId, operator.keyId], jobId, batchId };
  }
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await h?.close();
});

describe('owner scoping: nothing of one owner reaches another', () => {
  // Each row: a read (or an assessment) of the caller's own account `acc`, its status, and the status
  // of the same request about the other owner's account (null: the request names no account).
  /** The status each role gets; a list where either answer is right (a merge on unchanged heads answers the one it started). */
  type Statuses = { viewer: number; operator: number | number[] };
  const both = (status: number) => ({ viewer: status, operator: status });
  const rows: Array<[string, (w: OwnerWorld) => Req, Statuses, Statuses | null]> = [
    ['list accounts', () => ({ method: 'GET', url: '/api/v1/accounts?limit=200' }), both(200), null],
    ['list accounts by parent', (w) => ({ method: 'GET', url: `/api/v1/accounts?parentId=${w.root}` }), both(200), both(200)],
    ['read an account', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}` }), both(200), both(404)],
    ['read its journal', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}/transactions` }), both(200), both(404)],
    ['read its hierarchy', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}/hierarchy` }), both(200), both(404)],
    ['read its performance', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}/performance` }), both(200), both(404)],
    ['read its snapshots', (w) => ({ method: 'GET', url: `/api/v1/performance/snapshots?accountId=${w.root}` }), both(200), both(404)],
    ['compare accounts', (w) => ({ method: 'POST', url: '/api/v1/performance/compare', payload: { accountIds: [w.root, w.root] } }), both(200), both(404)],
    ['read a subtree', (w) => ({ method: 'GET', url: `/api/v1/performance/hierarchy?rootId=${w.root}` }), both(200), both(404)],
    ['read the dashboard', () => ({ method: 'GET', url: '/api/v1/performance/dashboard' }), both(200), null],
    ['read its alerts', (w) => ({ method: 'GET', url: `/api/v1/alerts?accountId=${w.root}` }), both(200), both(404)],
    ['list fork opportunities', () => ({ method: 'GET', url: '/api/v1/forking/opportunities' }), both(200), null],
    ['read fork status', () => ({ method: 'GET', url: '/api/v1/forking/status' }), both(200), null],
    ['list consolidation opportunities', () => ({ method: 'GET', url: '/api/v1/consolidation/opportunities' }), both(200), null],
    ['read merge status', () => ({ method: 'GET', url: '/api/v1/consolidation/status' }), both(200), null],
    ['read merge status of an account', (w) => ({ method: 'GET', url: `/api/v1/consolidation/status?accountId=${w.root}` }), both(200), both(404)],
    ['assess a consolidation', (w) => ({ method: 'POST', url: '/api/v1/consolidation/assess', payload: { accountId: w.root } }), both(200), both(404)],
    ['list reviews', () => ({ method: 'GET', url: '/api/v1/reviews' }), both(200), null],
    ['read an operation', (w) => ({ method: 'GET', url: `/api/v1/operations/op.${w.root}.${w === world.alice ? 'root-alice' : 'root-bob'}` }), both(200), both(404)],
    ['read its audit', (w) => ({ method: 'GET', url: `/api/v1/audit?accountId=${w.root}` }), both(200), both(404)],
    ['export its audit', (w) => ({ method: 'GET', url: `/api/v1/audit/export?accountId=${w.root}` }), both(200), both(404)],
    ['read its statement', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}/statement` }), both(200), both(404)],
    ['read its statement as CSV', (w) => ({ method: 'GET', url: `/api/v1/accounts/${w.root}/statement?format=csv` }), both(200), both(404)],
    ['export its journal', (w) => ({ method: 'GET', url: `/api/v1/export/journal?accountId=${w.root}` }), both(200), both(404)],
    ['export the journal', () => ({ method: 'GET', url: '/api/v1/export/journal' }), both(200), null],
    ['read a batch', (w) => ({ method: 'GET', url: `/api/v1/bulk/${w.batchId}` }), both(200), both(404)],
    ['read the fleet audit', () => ({ method: 'GET', url: '/api/v1/audit' }), both(403), null],
    ['read the security chain', () => ({ method: 'GET', url: `/api/v1/audit?chain=${SECURITY_CHAIN}` }), both(403), null],
    ['list dead letters', () => ({ method: 'GET', url: '/api/v1/dead-letters' }), both(403), null],
    ['read a dead letter', () => ({ method: 'GET', url: `/api/v1/dead-letters/${'0'.repeat(32)}` }), both(403), null],
    ['replay a dead letter', () => ({ method: 'POST', url: `/api/v1/dead-letters/${'0'.repeat(32)}/replay` }), both(403), null],
    ['discard a dead letter', () => ({ method: 'DELETE', url: `/api/v1/dead-letters/${'0'.repeat(32)}`, payload: { reason: 'no' } }), both(403), null],
    ['list keys', () => ({ method: 'GET', url: '/api/v1/keys' }), both(403), null],
    // Writes: a viewer is refused by role (403) before anything is looked up; an operator of another owner finds nothing (404).
    ['rename an account', (w) => ({ method: 'PUT', url: `/api/v1/accounts/${w.root}`, payload: { name: 'renamed-again' } }), { viewer: 403, operator: 200 }, { viewer: 403, operator: 404 }],
    ['deposit', (w) => ({ method: 'POST', url: `/api/v1/accounts/${w.root}/transactions?wait=true`, payload: { kind: 'deposit', amount: '1.00', idempotencyKey: `scoped-dep-${w.root}` } }), { viewer: 403, operator: 201 }, { viewer: 403, operator: 404 }],
    ['execute a fork (answers the one on this head)', (w) => ({ method: 'POST', url: '/api/v1/forking/execute', payload: { accountId: w.child } }), { viewer: 403, operator: 422 }, { viewer: 403, operator: 404 }],
    ['resume a fork', (w) => ({ method: 'POST', url: `/api/v1/forking/${w.forkId}/resume` }), { viewer: 403, operator: 202 }, { viewer: 403, operator: 404 }],
    ['request a merge', (w) => ({ method: 'POST', url: '/api/v1/consolidation/execute', payload: { sourceId: w.child, targetId: w.root } }), { viewer: 403, operator: [200, 202] }, { viewer: 403, operator: 404 }],
    // A bulk request is answered as a whole; an item naming another owner's account is refused alone as not found.
    ['bulk deposits', (w) => ({ method: 'POST', url: '/api/v1/bulk/transactions', payload: { items: [{ accountId: w.root, kind: 'deposit', amount: '1.00', idempotencyKey: `bulk-${w.root}` }] } }), { viewer: 403, operator: 202 }, { viewer: 403, operator: 202 }],
    ['bulk account updates', (w) => ({ method: 'POST', url: '/api/v1/bulk/accounts/update', payload: { items: [{ accountId: w.root, name: 'renamed-again', idempotencyKey: `bulk-update-${w.root}` }] } }), { viewer: 403, operator: 202 }, { viewer: 403, operator: 202 }],
    ['bulk account opening', () => ({ method: 'POST', url: '/api/v1/bulk/accounts', payload: { items: [{ type: 'GEN', name: 'bulk-opened', idempotencyKey: 'bulk-opened-1' }] } }), { viewer: 403, operator: 202 }, null],
    ['reject a review', (w) => ({ method: 'POST', url: `/api/v1/reviews/${w.reviewId}/reject`, payload: { note: 'no' } }), { viewer: 403, operator: 200 }, { viewer: 403, operator: 404 }],
  ];
  it.each(rows)('%s', async (_, request, ownStatus, foreignStatus) => {
    for (const owner of OWNERS) {
      // The operator asks first: a write it makes (a rejected review) is then what the viewer reads again.
      for (const role of ['operator', 'viewer'] as const) {
        const key = world[owner].keys[role];
        const own = await send(role === 'viewer' ? a : b, request(world[owner]), key);
        const expected = ownStatus[role];
        expect({ owner, role, status: own.status }).toEqual({ owner, role, status: Array.isArray(expected) && expected.includes(own.status) ? own.status : expected });
        for (const id of foreignIds(owner)) expect(own.text, `${owner} ${role} sees ${id}`).not.toContain(id);
        if (foreignStatus !== null) {
          const foreign = await send(a, request(world[other(owner)]), key);
          expect({ owner, role, status: foreign.status }).toEqual({ owner, role, status: foreignStatus[role] });
          for (const id of foreignIds(owner)) expect(foreign.text).not.toContain(id);
        }
      }
    }
  });

  it('shows admins both owners (so the checks above could fail)', async () => {
    const bodies = await Promise.all(['/api/v1/forking/status', '/api/v1/consolidation/status', '/api/v1/reviews', '/api/v1/performance/dashboard', '/api/v1/keys'].map(async (url) => (await send(a, { method: 'GET', url }, ADMIN)).text));
    const [forks, merges, reviews, dashboard, keys] = bodies as [string, string, string, string, string];
    for (const owner of OWNERS) {
      expect(forks).toContain(world[owner].forkId);
      expect(merges).toContain(world[owner].mergeIds[0]);
      expect(reviews).toContain(world[owner].reviewId);
      expect(dashboard).toContain(world[owner].jobId);
      expect(keys).toContain(world[owner].keyIds[0]);
    }
    // Fleet-wide counts for admins, the owner's own for others.
    expect(JSON.parse(merges).inFlight).toBe(2);
    expect((await send(a, { method: 'GET', url: '/api/v1/consolidation/status' }, world.alice.keys.viewer)).json().inFlight).toBe(1);
  });

  it('refuses a tree or a transfer across owners with 422, and keeps trees whole', async () => {
    const cross = await send(a, { method: 'POST', url: '/api/v1/accounts?wait=true', payload: { type: 'GEN', name: 'cross', ownerId: 'bob', parentId: world.alice.root, idempotencyKey: 'cross-owner-1' } }, ADMIN);
    expect([cross.status, cross.json().error.code]).toEqual([422, 'owner_mismatch']);
    // A producer enqueueing the same directly is refused by the ledger itself.
    const direct = await h.run('open-account', { accountId: 'acc_cross_direct', idempotencyKey: 'cross-direct-1', actor: 'test', tier: 'GEN', name: 'cross', ownerId: 'bob', parentId: world.alice.root, config: {} });
    expect(direct).toMatchObject({ status: 'refused', code: 'owner_mismatch' });
    // The refusal is one keyed entry. A rerun after a crash answers it from the entry; two runs at
    // once write it once (the unique key decides, the loser answers what the winner wrote).
    const job = { accountId: 'acc_cross_twice', idempotencyKey: 'cross-twice-1', actor: 'test', tier: 'GEN', name: 'cross', ownerId: 'bob', parentId: world.alice.root, config: {} };
    const both = await Promise.all([h.run('open-account', job, 'op.acc_cross_twice.run-a'), h.run('open-account', job, 'op.acc_cross_twice.run-b')]);
    expect(both.map((o) => (o.status === 'refused' ? o.code : o.status))).toEqual(['owner_mismatch', 'owner_mismatch']);
    const again = await h.run('open-account', job, 'op.acc_cross_twice.rerun');
    expect(again).toMatchObject({ status: 'refused', code: 'owner_mismatch' });
    expect(await h.stores.journal.model.countDocuments({ idempotencyKey: 'acc_cross_twice/cross-twice-1' })).toBe(1);
    expect(await h.stores.accounts.get('acc_cross_twice')).toBeNull();
    const transfer = await send(a, { method: 'POST', url: `/api/v1/accounts/${world.alice.root}/transactions?wait=true`, payload: { kind: 'transfer', amount: '1.00', toAccountId: world.bob.root, idempotencyKey: 'cross-transfer-1' } }, ADMIN);
    expect([transfer.status, transfer.json().error.code]).toEqual([422, 'owner_mismatch']);
    const child = (await send(a, { method: 'GET', url: `/api/v1/accounts/${world.alice.child}` }, ADMIN)).json();
    expect(child.ownerId).toBe('alice');
  });
});

describe('throttled authentication', () => {
  it('answers sixty wrong secrets for one key id with 401 up to the limit, then 429 before any scrypt, in every replica', async () => {
    const victim = world.bob.keys.viewer;
    // The owner's key is in use (cached) on replica b before the attack.
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, victim)).status).toBe(200);
    const keyId = victim.split('_')[1]!;
    const wrong = `fk_${keyId}_${'A'.repeat(43)}`;
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 60; i++) {
      const res = await send(a, { method: 'GET', url: '/api/v1/accounts' }, wrong, { 'x-test': String(i) });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = String(res.headers['retry-after']);
    }
    const limit = h.config.api.authFailuresPerKeyMax;
    expect(statuses.slice(0, limit)).toEqual(Array(limit).fill(401));
    expect(statuses.slice(limit)).toEqual(Array(60 - limit).fill(429));
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(h.config.api.authFailureWindowMs / 1000);
    // The counts are shared: the other replica throttles the key id too.
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, wrong)).status).toBe(429);
    // The owner, already authenticated, goes on working.
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, victim)).status).toBe(200);
    const metrics = await a.registry.getSingleMetricAsString('fleet_api_auth_failures_total');
    expect(metrics).toContain(`reason="wrong_secret"} ${limit}`);
    expect(metrics).toMatch(/reason="throttled"} (\d+)/);
    expect(Number(/reason="throttled"} (\d+)/.exec(metrics)![1])).toBe(60 - limit);
  });

  it('stores each failure and the start of each throttle as a security event', async () => {
    await waitUntilStored(a);
    const events = (await send(a, { method: 'GET', url: `/api/v1/audit?chain=${SECURITY_CHAIN}&limit=500` }, ADMIN)).json().items as Array<{ action: string; after: { keyId: string | null } }>;
    const keyId = world.bob.keys.viewer.split('_')[1]!;
    expect(events.filter((e) => e.action === 'auth-failure' && e.after.keyId === keyId)).toHaveLength(h.config.api.authFailuresPerKeyMax);
    expect(events.filter((e) => e.action === 'auth-throttled' && e.after.keyId === keyId)).toHaveLength(1);
    expect(events.filter((e) => e.action === 'key-created').length).toBeGreaterThanOrEqual(4);
    const verify = (await send(a, { method: 'GET', url: '/api/v1/audit/verify' }, ADMIN)).json();
    expect(verify).toMatchObject({ ok: true, breaks: [] });
  });

  it('locks a key out for one window at most, and bounds scrypt work', async () => {
    const c = await startApi(h, { adminKey: ADMIN, name: 'api-c', api: { authFailureWindowMs: 1000, authFailuresPerKeyMax: 3, authKdfConcurrency: 1, authKdfQueueMax: 2 } });
    try {
      const key = await makeKey(c.keys, 'viewer', 'carol');
      const wrong = `fk_${key.split('_')[1]}_${'B'.repeat(43)}`;
      for (let i = 0; i < 3; i++) expect((await send(c, { method: 'GET', url: '/api/v1/accounts' }, wrong)).status).toBe(401);
      const locked = await send(c, { method: 'GET', url: '/api/v1/accounts' }, key);
      expect(locked.status).toBe(429);
      // Only that address is locked out of that key: its owner, elsewhere, signs in.
      expect((await send(c, { method: 'GET', url: '/api/v1/accounts' }, key, {}, '10.9.9.9')).status).toBe(200);
      // The lock ends with its window: Retry-After says when, and then the right secret works.
      await new Promise((r) => setTimeout(r, Number(locked.headers['retry-after']) * 1000 + 50));
      expect((await send(c, { method: 'GET', url: '/api/v1/accounts' }, key)).status).toBe(200);

      // Twenty guesses at once, for twenty key ids: one scrypt at a time, two waiting, the rest 429 auth_busy.
      const others = await Promise.all(Array.from({ length: 20 }, () => makeKey(c.keys, 'viewer', 'carol')));
      const answers = await Promise.all(others.map((k) => send(c, { method: 'GET', url: '/api/v1/accounts' }, `fk_${k.split('_')[1]}_${'C'.repeat(43)}`)));
      const busy = answers.filter((x) => x.status === 429);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy.every((x) => x.json().error.code === 'auth_busy' && x.headers['retry-after'] === '1')).toBe(true);
      expect(answers.filter((x) => x.status === 401).length).toBeGreaterThanOrEqual(3);
    } finally {
      await c.close();
    }
  });
});

describe('throttled authentication, the edges', () => {
  let f: TestApi;
  beforeAll(async () => {
    f = await startApi(h, { adminKey: ADMIN, name: 'api-f', api: { authFailuresPerIpMax: 5, authFailuresPerKeyMax: 3 } });
  });
  afterAll(async () => f?.close());

  it('throttles requests without a key by address too', async () => {
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await send(f, { method: 'GET', url: '/api/v1/accounts' }, undefined, {}, '10.5.5.5')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
  });

  it('lets thirty guesses at once run no more scrypt than the limit allows', async () => {
    const key = await makeKey(f.keys, 'viewer', 'erin');
    const wrong = `fk_${key.split('_')[1]}_${'D'.repeat(43)}`;
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => send(f, { method: 'GET', url: '/api/v1/accounts' }, wrong, {}, `10.6.0.${i}`)));
    // Thirty addresses, one key id: the per-address limit never bites; the key id's total (100) neither.
    expect(answers.filter((x) => x.status === 401).length).toBe(30);
    const sameAddress = await Promise.all(Array.from({ length: 30 }, () => send(f, { method: 'GET', url: '/api/v1/accounts' }, wrong, {}, '10.6.1.1')));
    expect(sameAddress.filter((x) => x.status === 401).length).toBe(3);
    expect(sameAddress.filter((x) => x.status === 429).every((x) => x.json().error.code === 'auth_throttled')).toBe(true);
  });

  it('authenticates a percent-encoded path like the plain one', async () => {
    const res = await send(f, { method: 'GET', url: '/%61pi/v1/accounts' }, undefined, {}, '10.5.5.6');
    expect([res.status, res.json().error.code]).toEqual([401, 'unauthenticated']);
  });
});

/** Security events are written in the background; a test reads them once they are stored. */
async function waitUntilStored(api: TestApi): Promise<void> {
  for (let i = 0; i < 200 && api.security.inFlight > 0; i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 100 && api.security.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('key lifecycle', () => {
  it('creates a key whose secret is shown once and lists keys without secrets', async () => {
    const made = await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'operator', ownerId: 'dora', label: 'dora ops', expiresAt: '2099-01-01T00:00:00Z' } }, ADMIN);
    expect(made.status).toBe(201);
    const key = made.json();
    expect(key).toMatchObject({ role: 'operator', ownerId: 'dora', label: 'dora ops', state: 'active', expiresAt: '2099-01-01T00:00:00.000Z', createdBy: 'admin-env', lastUsedAt: null });
    expect(key.key).toMatch(/^fk_[a-f0-9]{16}_/);
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, key.key)).status).toBe(200);
    await waitUntilLastUsed(key.keyId);
    const list = await send(a, { method: 'GET', url: '/api/v1/keys?ownerId=dora' }, ADMIN);
    expect(list.json().items).toEqual([expect.objectContaining({ keyId: key.keyId, state: 'active', lastUsedAt: expect.any(String) })]);
    // The whole secret (43 base64url characters, which may hold '_'), not a split's piece.
    const secret = parseApiKey(key.key)!.secret;
    expect(list.text).not.toContain(secret);
    expect(list.text).not.toMatch(/"(hash|salt|key)"/);
    // Refusals: no owner for a viewer, an owner for an admin, an expiry in the past, a non-admin creating.
    expect((await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer' } }, ADMIN)).json().error.code).toBe('owner_required');
    expect((await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'admin', ownerId: 'x' } }, ADMIN)).json().error.code).toBe('owner_not_allowed');
    expect((await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer', ownerId: 'x', expiresAt: '2020-01-01T00:00:00Z' } }, ADMIN)).json().error.code).toBe('expiry_in_past');
    expect((await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer', ownerId: 'alice' } }, world.alice.keys.operator)).status).toBe(403);
  });

  it('refuses an expired key with 401', async () => {
    const expired = await makeKey(a.keys, 'viewer', 'alice', { expiresAt: new Date(Date.now() - 1000) });
    const res = await send(a, { method: 'GET', url: '/api/v1/accounts' }, expired);
    expect([res.status, res.json().error.message]).toEqual([401, 'the api key is expired']);
  });

  it('revokes a key at once on every replica, the one that cached it included', async () => {
    const made = (await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer', ownerId: 'alice' } }, ADMIN)).json();
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, made.key)).status).toBe(200); // cached on b
    const heard = new Promise<void>((resolve) => {
      b.auth.onForget = (id) => id === made.keyId && resolve();
    });
    const revoked = await send(a, { method: 'DELETE', url: `/api/v1/keys/${made.keyId}` }, ADMIN);
    expect(revoked.json()).toMatchObject({ keyId: made.keyId, state: 'revoked', revokedAt: expect.any(String) });
    expect((await send(a, { method: 'GET', url: '/api/v1/accounts' }, made.key)).status).toBe(401);
    await heard;
    b.auth.onForget = null;
    const onB = await send(b, { method: 'GET', url: '/api/v1/accounts' }, made.key);
    expect([onB.status, onB.json().error.message]).toEqual([401, 'the api key is revoked']);
    // Revoking again answers the key unchanged; an unknown key id is 404.
    expect((await send(a, { method: 'DELETE', url: `/api/v1/keys/${made.keyId}` }, ADMIN)).json().revokedAt).toBe(revoked.json().revokedAt);
    expect((await send(a, { method: 'DELETE', url: '/api/v1/keys/0000000000000000' }, ADMIN)).status).toBe(404);
  });

  it('does not trust its cache while it cannot hear key changes', async () => {
    const d = await startApi(h, { adminKey: ADMIN, redis: true, name: 'api-d' });
    try {
      const key = await makeKey(d.keys, 'viewer', 'alice');
      expect((await send(d, { method: 'GET', url: '/api/v1/accounts' }, key)).status).toBe(200);
      // The subscription drops, and a revocation is made whose message this replica never hears.
      d.redis!.subscriber.disconnect();
      await d.keys.revoke(key.split('_')[1]!, new Date());
      expect((await send(d, { method: 'GET', url: '/api/v1/accounts' }, key)).status).toBe(401);
    } finally {
      await d.close().catch(() => undefined);
    }
  });

  it('rotates a key: the new secret works, the old one until its grace ends', async () => {
    const made = (await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer', ownerId: 'alice' } }, ADMIN)).json();
    const rotated = await send(a, { method: 'POST', url: `/api/v1/keys/${made.keyId}/rotate` }, ADMIN);
    expect(rotated.status).toBe(200);
    const next = rotated.json();
    expect(next.keyId).toBe(made.keyId);
    expect(next.key).not.toBe(made.key);
    expect(next.previousSecretValidUntil).toEqual(expect.any(String));
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, next.key)).status).toBe(200);
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, made.key)).status).toBe(200);
    // With no grace, the old secret stops at once, on the replica that rotated and on one that had it cached.
    const e = await startApi(h, { adminKey: ADMIN, redis: true, name: 'api-e', api: { keyRotationGraceMs: 0 } });
    try {
      const heard = new Promise<void>((resolve) => {
        b.auth.onForget = (id) => id === made.keyId && resolve();
      });
      const third = (await send(e, { method: 'POST', url: `/api/v1/keys/${made.keyId}/rotate` }, ADMIN)).json();
      await heard;
      b.auth.onForget = null;
      expect((await send(e, { method: 'GET', url: '/api/v1/accounts' }, next.key)).status).toBe(401);
      expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, next.key)).status).toBe(401);
      expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, made.key)).status).toBe(401);
      expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, third.key)).status).toBe(200);
    } finally {
      await e.close();
    }
    await send(a, { method: 'DELETE', url: `/api/v1/keys/${made.keyId}` }, ADMIN);
    expect((await send(a, { method: 'POST', url: `/api/v1/keys/${made.keyId}/rotate` }, ADMIN)).json().error.code).toBe('key_not_active');
  });

  it('lets one of two rotations from the same secret win, and survives a rotation whose answer was lost', async () => {
    const made = (await send(a, { method: 'POST', url: '/api/v1/keys', payload: { role: 'viewer', ownerId: 'alice' } }, ADMIN)).json();
    const current = (await a.keys.get(made.keyId))!;
    const grace = new Date(Date.now() + 60_000);
    // Both read the same secret; the write is conditional on it, so the second finds it changed.
    const first = await a.keys.rotate(made.keyId, current, { hash: 'h1', salt: 's1' }, new Date(), grace);
    const second = await a.keys.rotate(made.keyId, current, { hash: 'h2', salt: 's2' }, new Date(), grace);
    expect([first, second]).toEqual([true, false]);
    // The first rotation's secret was never shown (as if the process died after the write): the old
    // secret still works through its grace, and rotating again issues a secret that works.
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, made.key)).status).toBe(200);
    const again = (await send(a, { method: 'POST', url: `/api/v1/keys/${made.keyId}/rotate` }, ADMIN)).json();
    expect((await send(b, { method: 'GET', url: '/api/v1/accounts' }, again.key)).status).toBe(200);
    // A revocation racing a rotation: the rotation is conditional on an unrevoked key, so it loses.
    const live = (await a.keys.get(made.keyId))!;
    expect(await a.keys.revoke(made.keyId, new Date())).toBe(true);
    expect(await a.keys.rotate(made.keyId, live, { hash: 'h3', salt: 's3' }, new Date(), grace)).toBe(false);
    expect(await a.keys.revoke(made.keyId, new Date())).toBe(false);
  });
});

async function waitUntilLastUsed(keyId: string): Promise<void> {
  for (let i = 0; i < 100 && !(await a.keys.lastUsed(keyId)); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('audit you can read', () => {
  it('pages an account audit for its owner and exports it as NDJSON', async () => {
    const owner = world.alice;
    const page = (await send(a, { method: 'GET', url: `/api/v1/audit?accountId=${owner.root}&limit=1` }, owner.keys.viewer)).json();
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toMatchObject({ chain: owner.root, seq: 1, action: 'update-profile', actor: owner.keyIds[1] });
    const byActor = (await send(a, { method: 'GET', url: `/api/v1/audit?actor=${owner.keyIds[1]}` }, ADMIN)).json();
    expect(byActor.items.every((x: { actor: string }) => x.actor === owner.keyIds[1])).toBe(true);
    const future = (await send(a, { method: 'GET', url: `/api/v1/audit?accountId=${owner.root}&from=2099-01-01` }, ADMIN)).json();
    expect(future.items).toEqual([]);
    const exported = await send(a, { method: 'GET', url: `/api/v1/audit/export?chain=${SECURITY_CHAIN}` }, ADMIN);
    expect(exported.headers['content-type']).toContain('application/x-ndjson');
    const lines = exported.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(4); // the keys made in beforeAll, at least
    expect(lines.every((l) => l.chain === SECURITY_CHAIN)).toBe(true);
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
    const asNdjson = await send(a, { method: 'GET', url: `/api/v1/audit?accountId=${owner.root}` }, owner.keys.viewer, { accept: 'application/x-ndjson' });
    const all = (await send(a, { method: 'GET', url: `/api/v1/audit?accountId=${owner.root}&limit=500` }, owner.keys.viewer)).json().items;
    expect(asNdjson.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual(all);
    expect(all.length).toBeGreaterThan(1);
  });
});

describe('transport and headers', () => {
  it('speaks HTTPS with the configured certificate, sends security headers, and allows only configured origins', async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] });
    const dir = mkdtempSync(join(tmpdir(), 'api-tls-'));
    writeFileSync(join(dir, 'cert.pem'), pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.private);
    const t = await startApi(h, { adminKey: ADMIN, name: 'api-tls', config: { apiTlsCert: join(dir, 'cert.pem'), apiTlsKey: join(dir, 'key.pem') }, api: { corsOrigins: ['https://console.example.com'] } });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (t.app.server.address() as AddressInfo).port;
      const got = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/api/v1/accounts', ca: pems.cert, headers: { authorization: `Bearer ${ADMIN}`, origin: 'https://console.example.com' } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(got.status).toBe(200);
      expect(got.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'SAMEORIGIN', 'access-control-allow-origin': 'https://console.example.com' });
      expect(String(got.headers['strict-transport-security'])).toContain('max-age=');
      // Plain HTTP on the TLS port is not answered as HTTP.
      const plain = await new Promise<string>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/api/v1/openapi.json' }, (res) => resolve(String(res.statusCode)));
        req.setTimeout(5000, () => req.destroy(new Error('no answer')));
        req.on('error', (err) => resolve(err.message));
        req.end();
      });
      expect(plain).not.toBe('200');
      const foreignOrigin = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { origin: 'https://evil.example.com' } });
      expect(foreignOrigin.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
