import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SERVICE_NAMES } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import type { Connection } from 'mongoose';
import { jobId } from '../shared/contracts/jobs.js';
import { connectMongo } from '../shared/db/connection.js';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { systemClock } from '../shared/runtime/clock.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { silentLogger } from './helpers/ledger-harness.js';
import { DIST, Proc, httpGet } from './helpers/processes.js';

/**
 * The whole fleet: an account with a 10 % drawdown limit holds one symbol; a price load puts it 17 %
 * under its high-water mark (a day's snapshot made the mark). Within seconds it is SAFE (trading
 * stopped), with one alert and one review to reactivate; approving the review puts it back to
 * ACTIVE in the journal under the approver's name. A second load of the same prices changes nothing.
 */
const iso = isolatedEnv('limits');
const ADMIN = 'loss-limits-admin-key-0123456789';
let fleet: Proc;
let api = '';
let producer: Producer;
let mongo: Connection;
let snapshots: SnapshotRepository;

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  const { env, ports, apiPort } = await portEnv();
  api = `http://127.0.0.1:${apiPort}/api/v1`;
  // One symbol may be the whole account here (the tier's 20 % cap would need five).
  const fleetEnv = { ...iso.env, ...env, ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'warn', FLEET__TIERS__GEN__MAX_CAPITAL_PER_POSITION: '1' };
  fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), fleetEnv);
  await Promise.all(SERVICE_NAMES.map((name) => waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 60_000, 100)));
  const config = loadConfig(fleetEnv);
  producer = new Producer(await connectRedis(config, 'producer', 'limits-test', silentLogger), config);
  mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
  snapshots = new SnapshotRepository(mongo);
}, 90_000);

afterAll(async () => {
  fleet?.kill('SIGTERM');
  await fleet?.exitWithin(20_000).catch(() => fleet.kill('SIGKILL'));
  await producer?.close();
  await mongo?.dropDatabase().catch(() => undefined);
  await mongo?.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

describe('a loss limit that acts', () => {
  it('takes an account 17 % under its high-water mark out of trading within seconds, with one alert and a review to reactivate', async () => {
    const today = systemClock.today();
    const yesterday = new Date(Date.parse(`${today}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    const opened = await call('POST', '/accounts?wait=true', { type: 'GEN', name: 'limited', ownerId: 'owner-l', initialDeposit: '100000.00', config: { drawdownLimit: '0.10' }, idempotencyKey: 'open-limited' });
    expect(opened.status).toBe(201);
    const id = opened.body.id as string;
    expect((await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'trade', side: 'buy', symbol: 'LIMX', quantity: '1000', price: '100.00', idempotencyKey: 'buy-limx' })).status).toBe(201);
    // Yesterday's close and snapshot: the high-water mark, at 100,000.00.
    expect((await call('POST', '/prices', [{ symbol: 'LIMX', date: yesterday, close: '100.00' }])).status).toBe(200);
    await producer.enqueue(QUEUE.snapshot, 'day', { date: yesterday }, { jobId: jobId('test-snapshot', yesterday) });
    await waitFor('yesterday\'s point', async () => ((await snapshots.latestBefore(id, today)) ? true : undefined), 20_000, 200);

    expect((await call('POST', '/prices', [{ symbol: 'LIMX', date: today, close: '83.00' }])).status).toBe(200);
    const state = await waitFor(() => `the account out of trading; the fleet said:\n${fleet.lines.filter((l) => /"level":(40|50)|limit/.test(l)).slice(-8).join('\n')}`, async () => {
      const s = (await call('GET', `/accounts/${id}`)).body.state as string;
      return s === 'SAFE' ? s : undefined;
    }, 15_000, 100);
    expect(state).toBe('SAFE');
    const journal = (await call('GET', `/accounts/${id}/transactions?limit=50`)).body.items as Array<{ kind: string; actor: string; details: Record<string, unknown> }>;
    const change = journal.find((e) => e.kind === 'state-change')!;
    expect(change.actor).toBe('risk-limits');
    expect(JSON.stringify(change.details)).toMatch(/17\.00 % below its high-water mark.*drawdown limit of 10\.00 %/);
    // Trading is refused now.
    const refused = await call('POST', `/accounts/${id}/transactions?wait=true`, { kind: 'trade', side: 'buy', symbol: 'LIMX', quantity: '1', price: '83.00', idempotencyKey: 'buy-after' });
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'invalid_state']);

    const alerts = await waitFor('the alert', async () => {
      const items = (await call('GET', `/alerts?accountId=${id}`)).body.items as Array<{ rule: string }>;
      return items.length > 0 ? items : undefined;
    }, 15_000, 100);
    const review = await waitFor('the review', async () => ((await call('GET', '/reviews?state=PENDING')).body.items as Array<{ id: string; kind: string; accountId: string }>).find((r) => r.accountId === id), 15_000, 100);
    expect(review.kind).toBe('reactivate');

    // The same prices again: no second alert, no second change, no second review.
    await call('POST', '/prices', [{ symbol: 'LIMX', date: today, close: '83.00' }]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(((await call('GET', `/alerts?accountId=${id}`)).body.items as unknown[]).length).toBe(1);
    expect(alerts.map((a) => a.rule)).toEqual(['drawdown']);
    // Filtered by rule on the server: the account's drawdown alerts, and none of another rule.
    expect(((await call('GET', `/alerts?accountId=${id}&rule=drawdown`)).body.items as unknown[]).length).toBe(1);
    expect(((await call('GET', `/alerts?accountId=${id}&rule=job-failed`)).body.items as unknown[]).length).toBe(0);
    expect(((await call('GET', '/reviews')).body.items as Array<{ accountId: string }>).filter((r) => r.accountId === id)).toHaveLength(1);

    expect((await call('POST', `/reviews/${review.id}/approve`, { note: 'loss understood' })).status).toBe(200);
    await waitFor('back to trading', async () => ((await call('GET', `/accounts/${id}`)).body.state === 'ACTIVE' ? true : undefined), 15_000, 100);
    // The same person approving again (as after a lost reply, or a crash before the job was queued) re-queues
    // the keyed reactivation: it stands once.
    expect((await call('POST', `/reviews/${review.id}/approve`, { note: 'loss understood' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const after = (await call('GET', `/accounts/${id}/transactions?limit=50`)).body.items as Array<{ kind: string; actor: string }>;
    expect(after.filter((e) => e.kind === 'state-change').map((e) => e.actor).sort()).toEqual(['admin-env', 'risk-limits']);
  }, 120_000);
});
