import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../config/load.js';
import { SERVICE_NAMES } from '../../config/schema.js';
import { QUEUE_NAMES } from '../../shared/contracts/queues.js';
import { closeMongo, connectMongo } from '../../shared/db/connection.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import { openLedgerStores } from '../../shared/ledger/stores.js';
import { verifyLedger } from '../../shared/ledger/verify.js';
import { bullPrefix, connectRedis, masters } from '../../shared/queue/connection.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from '../helpers/env.js';
import { portEnv } from '../../scripts/servers/ports.js';
import { DIST, Proc, httpGet } from '../helpers/processes.js';

/**
 * The fleet scaled out on a Redis Cluster (`npm run test:cluster` starts a local three-master one):
 * two processes of every service through `npm run fleet`'s launcher, money moved through both API
 * replicas at once, and the queues' keys spread over the cluster's masters.
 */
const iso = isolatedEnv('scale');
const quiet = pino({ level: 'silent' });
const ADMIN = 'scale-admin-key-0123456789';
let fleet: Proc | undefined;

afterAll(async () => {
  fleet?.kill('SIGKILL');
  const mongo = await connectMongo(iso.mongodbUrl, loadConfig(iso.env).mongo, quiet);
  await mongo.dropDatabase();
  await closeMongo(mongo);
  await dropQueuePrefix(iso, iso.queuePrefix);
});

const cents = (text: string) => BigInt(text.replace('.', ''));
const money = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`;

describe('the fleet on a Redis Cluster with two replicas of every service', () => {
  it('keeps a hundred concurrent deposits and fifty transfers exact, spreads the queues over the masters, and passes verify', async () => {
    expect(iso.redisClusterNodes, 'run with `npm run test:cluster`, which starts a cluster').toBeTruthy();
    // Ports below the kernel's ephemeral range, and the same block STRIDE above for the second replicas.
    const STRIDE = 10;
    const { ports, apiPort, env } = await portEnv({ stride: STRIDE });
    fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), { ...iso.env, ...env, ADMIN_API_KEY: ADMIN, FLEET_REPLICAS: '2', FLEET_REPLICA_PORT_STRIDE: String(STRIDE), FLEET__SHUTDOWN_DEADLINE_MS: '3000' });
    await Promise.all(
      SERVICE_NAMES.flatMap((name) => [0, 1].map((i) => waitFor(() => `${name}#${i} ready; its last lines:\n${fleet!.lines.filter((l) => l.includes(`${name}#${i}`)).slice(-8).join('\n')}`, async () => (await httpGet(`http://127.0.0.1:${ports[name] + i * STRIDE}/readyz`)).status === 200, 60_000, 100))),
    );
    const apis = [apiPort, apiPort + STRIDE].map((p) => `http://127.0.0.1:${p}`);
    const call = async (n: number, path: string, body?: unknown) => {
      const res = await fetch(`${apis[n % 2]}${path}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const opened = await call(i, '/api/v1/accounts?wait=true', { type: 'GEN', name: `scale-${i}`, ownerId: 'scale', initialDeposit: '1000.00', idempotencyKey: `scale-open-${i}` });
      expect(opened.status).toBe(201);
      ids.push(opened.body['id'] as string);
    }
    const expected = new Map(ids.map((id) => [id, cents('1000.00')]));
    const deposits = Array.from({ length: 100 }, (_, i) => ({ account: ids[i % 10]!, amount: `${1 + (i % 7)}.${String((i * 13) % 100).padStart(2, '0')}` }));
    const depositAnswers = await Promise.all(deposits.map((d, i) => call(i, `/api/v1/accounts/${d.account}/transactions?wait=true`, { kind: 'deposit', amount: d.amount, idempotencyKey: `scale-dep-${i}` })));
    expect(depositAnswers.map((a) => a.status).filter((s) => s !== 201)).toEqual([]);
    for (const d of deposits) expected.set(d.account, expected.get(d.account)! + cents(d.amount));
    // Transfers in both directions between pairs, all at once: each moves money only once and conserves it.
    const transfers = Array.from({ length: 50 }, (_, i) => ({ from: ids[i % 10]!, to: ids[(i * 3 + 1) % 10]!, amount: `${2 + (i % 5)}.${String((i * 7) % 100).padStart(2, '0')}` }));
    const transferAnswers = await Promise.all(transfers.map((t, i) => call(i + 1, `/api/v1/accounts/${t.from}/transactions?wait=true`, { kind: 'transfer', toAccountId: t.to, amount: t.amount, idempotencyKey: `scale-xfer-${i}` })));
    expect(transferAnswers.map((a) => a.status).filter((s) => s !== 201)).toEqual([]);
    for (const t of transfers) {
      expected.set(t.from, expected.get(t.from)! - cents(t.amount));
      expected.set(t.to, expected.get(t.to)! + cents(t.amount));
    }

    const config = loadConfig(iso.env);
    const mongo = await connectMongo(config.mongodbUrl, config.mongo, quiet);
    const stores = await openLedgerStores(mongo, { skipInit: true });
    try {
      for (const id of ids) {
        // The journal's head is the truth; the API's view follows within its projection batch.
        const head = await stores.journal.head(id);
        expect([id, head && loadBalances(head.after).cash.toFixed(2)]).toEqual([id, money(expected.get(id)!)]);
        await waitFor(`${id} shown with its cash`, async () => (await call(0, `/api/v1/accounts/${id}`)).body['cash'] === money(expected.get(id)!), 15_000);
      }
      const report = await waitFor('verify once idle', async () => {
        const r = await verifyLedger(stores, { idle: true });
        return r.ok ? r : null;
      }, 30_000, 500);
      expect(report.problems).toEqual([]);
    } finally {
      await stores.close();
      await closeMongo(mongo);
    }

    // Every queue's keys are in its own slot, and the queues sit on at least two of the masters.
    const redis = await connectRedis(config, 'producer', 'scale-check', quiet);
    try {
      const holders = new Set<string>();
      for (const node of masters(redis)) {
        for (const queue of QUEUE_NAMES) {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `${bullPrefix(config, queue)}:*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) holders.add(`${node.options.host}:${node.options.port}`);
          } while (cursor !== '0');
        }
      }
      console.log(`queue keys on ${holders.size} of ${masters(redis).length} masters: ${[...holders].join(', ')}`);
      expect(holders.size).toBeGreaterThanOrEqual(2);
    } finally {
      redis.disconnect();
    }

    fleet.kill('SIGTERM');
    const { code } = await fleet.exitWithin(30_000);
    expect(code).toBe(0);
  }, 240_000);
});
