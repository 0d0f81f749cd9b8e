import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import { loadConfig } from '../config/load.js';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { connectMongo } from '../shared/db/connection.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { openLedgerStores, type LedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { ensureFerretdb } from '../scripts/servers/install.js';
import { freeLowPort } from '../scripts/servers/ports.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { silentLogger } from './helpers/ledger-harness.js';
import { DIST, Proc } from './helpers/processes.js';

/** SPEC §11: a MongoDB outage loses no job. A private FerretDB (SQLite) is killed under a worker and started again. */
const iso = isolatedEnv('mongo-outage');
const dir = mkdtempSync(join(tmpdir(), 'outage-ferret-'));
let port = 0;
let ferret: ChildProcess | null = null;
let worker: Proc;
let producer: Producer;
let mongo: Connection;
let stores: LedgerStores;

async function startFerret(): Promise<void> {
  ferret = spawn(ensureFerretdb(), ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${port}`, '--telemetry=disable', '--debug-addr=-', `--state-dir=${dir}`, '--log-level=error'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
}

beforeAll(async () => {
  port = await freeLowPort();
  await startFerret();
  // A command sent as the server dies may never be answered (the driver waits on a dead socket):
  // the group insert gives up after the driver's timeouts added up (16 s with a 5 s socket timeout,
  // not the default 41) and its job is tried again, within the test's wait.
  const env = { ...iso.env, MONGODB_URL: `mongodb://127.0.0.1:${port}/outage`, FLEET__MONGO__SOCKET_TIMEOUT_MS: '5000' };
  const config = loadConfig(env);
  mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
  stores = await openLedgerStores(mongo);
  producer = new Producer(await connectRedis(config, 'producer', 'outage', silentLogger), config);
  const { env: ports } = await portEnv();
  worker = new Proc(join(DIST, 'services', 'account-ops', 'main.js'), { ...env, ...ports });
  await worker.waitForLine(/"msg":"service ready"/, 40_000);
}, 60_000);

afterAll(async () => {
  worker?.kill('SIGKILL');
  await producer?.close();
  await mongo?.close().catch(() => undefined);
  ferret?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await dropQueuePrefix(iso, iso.queuePrefix);
});

const deposit = (key: string) =>
  producer.enqueue(QUEUE.accountOps, 'deposit', { accountId: 'acc-o', idempotencyKey: key, actor: 'test', amount: '100.00' }, { jobId: jobId('outage', key) });

describe('a MongoDB outage', () => {
  it('holds the jobs while the database is down and applies each once when it is back', async () => {
    await producer.enqueue(QUEUE.accountOps, 'open-account', { accountId: 'acc-o', idempotencyKey: 'open-acc-o', actor: 'test', tier: 'GEN', name: 'o', ownerId: 'o', parentId: null, initialDeposit: '10000.00' }, { jobId: jobId('outage', 'open') });
    await waitFor('the account', async () => ((await stores.accounts.get('acc-o'))?.headSeq ?? 0) >= 1 || undefined, 20_000, 100);

    ferret!.kill('SIGKILL');
    for (const k of ['during-outage-1', 'during-outage-2', 'during-outage-3']) await deposit(k);
    await new Promise((r) => setTimeout(r, 3000));
    await startFerret();

    let seen = '';
    const cash = await waitFor(() => `the three deposits (${seen}); the worker said:\n${worker.lines.filter((l) => /"level":(40|50|60)/.test(l)).slice(-6).join('\n')}`, async () => {
      const a = await stores.accounts.get('acc-o').catch(() => null);
      const head = a ? await stores.journal.head('acc-o') : null;
      const c = head ? loadBalances(head.after).cash.toFixed(2) : null;
      const jobs = await Promise.all(['during-outage-1', 'during-outage-2', 'during-outage-3'].map(async (k) => {
        const job = await producer.queue(QUEUE.accountOps).getJob(jobId('outage', k));
        return job ? `${k}:${await job.getState()}:${JSON.stringify(job.returnvalue)?.slice(0, 120)}:${job.failedReason ?? ''}` : `${k}:gone`;
      }));
      seen = `jobs ${jobs.join(' | ')}; head ${head?.seq} cash ${c}; entries ${(await stores.journal.pageAsc('acc-o', 1, 20)).map((e) => `${e.seq}:${e.kind}`).join(',')}; all ${JSON.stringify((await stores.journal.model.find({}, { accountId: 1, seq: 1, idempotencyKey: 1, _id: 0 }).lean()))}; db ${mongo.name}`;
      return c === '10300.00' ? c : undefined;
    }, 60_000, 250);
    expect(cash).toBe('10300.00');
    expect((await verifyLedger(stores, { idle: true })).problems).toEqual([]);
    // The worker lived through it: no restart was needed.
    expect(worker.child.exitCode).toBeNull();
  }, 120_000);
});
