import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import { SERVICE_NAMES } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import { connectMongo } from '../shared/db/connection.js';
import { childIdOf } from '../shared/ledger/fork-saga.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { silentLogger } from './helpers/ledger-harness.js';
import { DIST, Proc, httpGet } from './helpers/processes.js';

/**
 * The whole fleet, with a fork frozen after its child was credited (a fault that fails the step for
 * as long as the fault file names it): both accounts belong to the fork and refuse every manual state
 * change and money operation; abort is refused, since money has moved; once the fault is lifted,
 * resume finishes the fork.
 */
const iso = isolatedEnv('sagactl');
const ADMIN = 'saga-control-admin-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'faults-'));
const faults = join(dir, 'faults');
let fleet: Proc;
let api = '';
let mongo: Connection;

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: object) {
  const res = await fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  writeFileSync(faults, 'fork.after-fork-in throw\n');
  const { env, ports, apiPort } = await portEnv();
  api = `http://127.0.0.1:${apiPort}/api/v1`;
  fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), { ...iso.env, ...env, ADMIN_API_KEY: ADMIN, FLEET_FAULT_FILE: faults, LOG_LEVEL: 'warn' });
  await Promise.all(SERVICE_NAMES.map((name) => waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 60_000, 100)));
  mongo = await connectMongo(iso.mongodbUrl, loadConfig(iso.env).mongo, silentLogger);
}, 90_000);

afterAll(async () => {
  fleet?.kill('SIGTERM');
  await fleet?.exitWithin(20_000).catch(() => fleet.kill('SIGKILL'));
  await mongo?.dropDatabase().catch(() => undefined);
  await mongo?.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
  rmSync(dir, { recursive: true, force: true });
});

describe('a fork frozen after its child was credited', () => {
  it('holds both accounts, refuses abort, and finishes on resume once the fault is lifted', async () => {
    const opened = await call('POST', '/accounts?wait=true', { type: 'GEN', name: 'frozen parent', ownerId: 'owner-f', initialDeposit: '112000.00', idempotencyKey: 'open-frozen' });
    expect(opened.status).toBe(201);
    const parent = opened.body.id as string;
    const other = (await call('POST', '/accounts?wait=true', { type: 'GEN', name: 'other', ownerId: 'owner-f', initialDeposit: '20000.00', idempotencyKey: 'open-other' })).body.id as string;
    const started = await call('POST', '/forking/execute', { accountId: parent });
    expect(started.status).toBe(202);
    const forkId = started.body.id as string;
    const child = childIdOf(forkId);
    // The child is credited, then the step after it fails (and keeps failing while the fault stands).
    await waitFor('the child credited', async () => (await call('GET', `/accounts/${child}`)).body.cash === '102000.00', 30_000, 100);

    for (const id of [parent, child]) {
      const refused = [
        await call('PUT', `/accounts/${id}?wait=true`, { state: 'ACTIVE', idempotencyKey: `state-${id}` }),
        await call('PUT', `/accounts/${id}?wait=true`, { state: 'SAFE', idempotencyKey: `safe-${id}` }),
        await call('DELETE', `/accounts/${id}?wait=true`),
        await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'deposit', amount: '1.00', idempotencyKey: `dep-${id}` }),
        await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'withdrawal', amount: '1.00', idempotencyKey: `wd-${id}` }),
        await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'trade', side: 'buy', symbol: 'ACME', quantity: '1', price: '10.00', idempotencyKey: `buy-${id}` }),
        await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'transfer', toAccountId: other, amount: '1.00', idempotencyKey: `tr-${id}` }),
      ];
      expect(refused.map((r) => [r.status, r.body.error?.code])).toEqual(Array.from({ length: 7 }, () => [409, 'account_locked']));
      expect(refused[0]!.body.error.message).toContain(forkId);
    }
    const abort = await call('POST', `/forking/${forkId}/abort`, { reason: 'operator gives up' });
    expect([abort.status, abort.body.error?.code]).toEqual([409, 'saga_committed']);

    rmSync(faults);
    const resumed = await call('POST', `/forking/${forkId}/resume?wait=true`);
    expect([resumed.status, resumed.body.state]).toEqual([200, 'COMPLETED']);
    const [p, c] = [(await call('GET', `/accounts/${parent}`)).body, (await call('GET', `/accounts/${child}`)).body];
    expect([p.state, p.cash, c.state, c.cash]).toEqual(['ACTIVE', '10000.00', 'ACTIVE', '102000.00']);
    // Both operator actions are in the parent's audit chain.
    const audit = await mongo.collection('audit').find({ chain: parent }).toArray();
    expect(audit.map((r) => r['action']).sort()).toEqual(expect.arrayContaining(['fork-abort', 'fork-execute', 'fork-resume']));
    await waitFor('the fleet idle and verified', async () => (await verifyLedger(await openLedgerStores(mongo, { skipInit: true }), { idle: true })).ok, 30_000, 500);
  });
});
