import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { parse } from 'csv-parse/sync';
import { SERVICE_NAMES } from '../config/schema.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { DIST, Proc, httpGet, isAlive } from './helpers/processes.js';

const iso = isolatedEnv('fleet');
let fleet: Proc | undefined;

afterAll(async () => {
  fleet?.kill('SIGKILL');
  const conn = await mongoose.createConnection(iso.mongodbUrl).asPromise();
  await conn.dropDatabase();
  await conn.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

function childPids(proc: Proc, name: string): number[] {
  return proc.lines.flatMap((l) => {
    const m = l.match(new RegExp(`^\\[fleet\\] started ${name} \\(pid (\\d+)\\)`));
    return m ? [Number(m[1])] : [];
  });
}

const ADMIN = 'fleet-admin-key-0123456789';

/** Through the real api process: two owners' viewers see nothing of each other, guessing is throttled, revocation is immediate. */
async function securityAsAUserSeesIt(base: string): Promise<void> {
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, text: await res.text() };
  };
  const viewers: Record<string, { key: string; keyId: string }> = {};
  const accounts: Record<string, string> = {};
  for (const owner of ['olga', 'piet']) {
    viewers[owner] = JSON.parse((await call('POST', '/api/v1/keys', ADMIN, { role: 'viewer', ownerId: owner })).text);
    accounts[owner] = JSON.parse((await call('POST', '/api/v1/accounts?wait=true', ADMIN, { type: 'GEN', name: owner, ownerId: owner, initialDeposit: '20000.00', idempotencyKey: `fleet-${owner}` })).text).id;
  }
  for (const [owner, otherOwner] of [['olga', 'piet'], ['piet', 'olga']] as const) {
    for (const path of ['/api/v1/accounts', `/api/v1/accounts/${accounts[owner]}`, '/api/v1/performance/dashboard', '/api/v1/forking/status', '/api/v1/consolidation/status', '/api/v1/reviews']) {
      const res = await call('GET', path, viewers[owner]!.key);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.text).not.toContain(accounts[otherOwner]);
    }
    expect((await call('GET', `/api/v1/accounts/${accounts[otherOwner]}`, viewers[owner]!.key)).status).toBe(404);
  }
  const statuses = [];
  for (let i = 0; i < 60; i++) statuses.push((await call('GET', '/api/v1/accounts', `fk_${viewers['olga']!.keyId}_${'x'.repeat(43)}`)).status);
  expect(statuses.filter((s) => s === 429).length).toBe(50);
  expect((await call('GET', '/api/v1/accounts', viewers['piet']!.key)).status).toBe(200);
  expect((await call('DELETE', `/api/v1/keys/${viewers['piet']!.keyId}`, ADMIN)).status).toBe(200);
  expect((await call('GET', '/api/v1/accounts', viewers['piet']!.key)).status).toBe(401);
}

/** Through the real api process: 50 accounts in one bulk request and 500 deposits in another, each sent twice, exact to the cent. */
async function bulkAsAUserSeesIt(base: string): Promise<void> {
  const post = async (path: string, body: string, contentType: string) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': contentType }, body });
    return { status: res.status, body: (await res.json()) as { batchId: string; items: Array<{ status: string; id: string }> } };
  };
  const accounts = JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ type: 'GEN', name: `bulk-${i}`, ownerId: 'bulk', initialDeposit: '100.00', idempotencyKey: `fleet-bulk-open-${i}` })) });
  const opened = await post('/api/v1/bulk/accounts?wait=true', accounts, 'application/json');
  expect(opened.status).toBe(200);
  expect(await post('/api/v1/bulk/accounts?wait=true', accounts, 'application/json')).toEqual(opened);
  const ids = opened.body.items.map((i) => i.id);
  const deposits = Array.from({ length: 500 }, (_, i) => JSON.stringify({ accountId: ids[i % 50], kind: 'deposit', amount: `0.${String((i % 99) + 1).padStart(2, '0')}`, idempotencyKey: `fleet-bulk-dep-${i}` })).join('\n');
  const first = await post('/api/v1/bulk/transactions?wait=true', deposits, 'application/x-ndjson');
  expect(first.body.items.filter((i) => i.status !== 'applied')).toEqual([]);
  expect(await post('/api/v1/bulk/transactions?wait=true', deposits, 'application/x-ndjson')).toEqual(first);
  for (const [n, id] of ids.entries()) {
    const cents = Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 50 === n).reduce((sum, i) => sum + BigInt((i % 99) + 1), 10_000n);
    const account = (await (await fetch(`${base}/api/v1/accounts/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { cash: string };
    expect([n, account.cash]).toEqual([n, `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`]);
  }
  // The CSV statement ends at the account's cash.
  const csv = await (await fetch(`${base}/api/v1/accounts/${ids[0]}/statement?format=csv`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const rows = parse(csv, { columns: true }) as Array<{ balance: string }>;
  const account = (await (await fetch(`${base}/api/v1/accounts/${ids[0]}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { cash: string };
  expect([rows.length, rows.at(-1)!.balance]).toEqual([11, account.cash]);
}

/** Through the real api process: 90 ACME bought at 100.00, stressed by −25 % on ACME, lose exactly 2250.00. */
async function stressAsAUserSeesIt(base: string): Promise<void> {
  const call = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const id = (await call('/api/v1/accounts?wait=true', { type: 'GEN', name: 'stressed', ownerId: 'olga', initialDeposit: '50000.00', idempotencyKey: 'fleet-stress-open' })).body.id as string;
  const bought = await call(`/api/v1/accounts/${id}/transactions?wait=true`, { kind: 'trade', side: 'buy', symbol: 'ACME', quantity: '90', price: '100.00', idempotencyKey: 'fleet-stress-buy' });
  expect(bought.status).toBe(201);
  const stress = await call('/api/v1/risk/stress', { accountIds: [id], shocks: { ACME: '-0.25' } });
  expect([stress.status, stress.body.accounts[0].pnl, stress.body.accounts[0].stressedEquity]).toEqual([200, '-2250.00', '47750.00']);
}

describe('the fleet launcher', () => {
  it('starts all seven services, restarts a killed one, and stops them all with exit 0', async () => {
    const { env, ports, apiPort } = await portEnv();
    fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), { ...iso.env, ...env, ADMIN_API_KEY: ADMIN, FLEET__SHUTDOWN_DEADLINE_MS: '3000' });
    const ready = (name: (typeof SERVICE_NAMES)[number]) =>
      waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 30_000, 100);
    await Promise.all(SERVICE_NAMES.map(ready));
    expect((await httpGet(`http://127.0.0.1:${apiPort}/api/v1/openapi.json`)).status).toBe(200);
    await securityAsAUserSeesIt(`http://127.0.0.1:${apiPort}`);
    await bulkAsAUserSeesIt(`http://127.0.0.1:${apiPort}`);
    await stressAsAUserSeesIt(`http://127.0.0.1:${apiPort}`);
    // Output is prefixed with the service that wrote it.
    expect(fleet.lines.some((l) => /^\[alerter\]\s+\{.*"service":"alerter"/.test(l))).toBe(true);

    const [firstPid] = childPids(fleet, 'alerter');
    process.kill(firstPid!, 'SIGKILL');
    await fleet.waitForLine(/^\[fleet\] alerter exited \(SIGKILL\); restart 1/);
    const secondPid = await waitFor('a new alerter', () => childPids(fleet!, 'alerter')[1]);
    expect(secondPid).not.toBe(firstPid);
    await ready('alerter');

    const allPids = SERVICE_NAMES.map((n) => childPids(fleet!, n).at(-1)!);
    fleet.kill('SIGINT');
    const { code } = await fleet.exitWithin(15_000);
    expect(code).toBe(0);
    expect(fleet.output()).toContain('[fleet] all services stopped');
    for (const name of SERVICE_NAMES) expect(fleet.output()).toContain(`[fleet] ${name} stopped (code 0)`);
    expect(allPids.filter(isAlive)).toEqual([]);
  });
});
