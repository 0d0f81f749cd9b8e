/**
 * The chaos run that came up 1.00 short: a confirmed deposit missing from GET /accounts while the
 * journal was right. FerretDB v1 runs an update as a read, then a write of the whole document in its
 * own transaction, without checking the filter again; so a projection write that read the document
 * before a newer one landed still lands after it, replacing seq 4 by seq 3. Reproduced here on the
 * real FerretDB-on-PostgreSQL server, deterministically: a BEFORE UPDATE trigger on this database's
 * accounts table parks the first UPDATE on an advisory lock the test holds (the test only polls
 * pg_locks to see it parked). Two sets of stores stand for two processes (their own caches, writers
 * and projectors) sharing Redis, as the fleet does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { deposit, openAccount } from '../services/account-ops/postings.js';
import { viewOf, type ApiDeps } from '../services/api/context.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { sagaSteps } from '../shared/ledger/saga-steps.js';
import { type LedgerStores, openLedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Decimal } from '../shared/money/decimal.js';
import { systemClock } from '../shared/runtime/clock.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, silentLogger, startLedger } from './helpers/ledger-harness.js';

const PG_URL = process.env['FLEET_POSTGRES_URL'];
let h: LedgerHarness;
let forkExecutor: LedgerStores;
let accountOps: LedgerStores;

beforeAll(async () => {
  h = await startLedger('projrace', { worker: false });
  const redis = await connectRedis(h.config, 'worker', 'projrace', silentLogger);
  const asProcess = () => openLedgerStores(h.mongo, { skipInit: true, locks: new RedisDocLocks(redis, h.config.queuePrefix), settings: { ...h.config.ledger, projectionFlushMs: 5 } });
  [forkExecutor, accountOps] = [await asProcess(), await asProcess()];
});
afterAll(async () => {
  await forkExecutor?.close();
  await accountOps?.close();
  await h?.close();
});

const deps = (stores: LedgerStores) => ({ stores, config: h.config, clock: systemClock });
async function open(id: string, amount: string): Promise<string> {
  const o = await openAccount(deps(h.stores), { accountId: id, idempotencyKey: `open-${id}`, actor: 'test', tier: 'GEN', name: id, ownerId: 'o', parentId: null, config: {}, initialDeposit: amount }, null);
  expect(o.status).toBe('applied');
  return id;
}
/** What GET /api/v1/accounts shows: each open account's view of its projection. */
async function listedEquity(): Promise<string> {
  const page = await h.stores.accounts.list({}, { limit: 500 });
  const views = await Promise.all(page.map((a) => viewOf({ stores: h.stores, clock: systemClock } as unknown as ApiDeps, a)));
  return views.filter((v) => v.state !== 'CLOSED').reduce((s, v) => s.plus(v.equity), new Decimal(0)).toFixed(2);
}

describe.runIf(PG_URL)('projections written by two processes on FerretDB', () => {
  it('keep a confirmed deposit: an older projection write cannot land over a newer one', async () => {
    const accountId = await open('acc-parent', '100.00'); // seq 1: open with its first deposit
    await h.stores.projector.flush();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const schema = new URL(h.config.mongodbUrl).pathname.slice(1);
    const table = (await client.query(`SELECT _jsonb->>'table' AS t FROM "${schema}"._ferretdb_database_metadata WHERE _jsonb->>'_id' = 'accounts'`)).rows[0].t as string;
    const park = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
    await client.query(`CREATE FUNCTION "${schema}".park_first_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_try_advisory_xact_lock(${park + 1}) THEN PERFORM pg_advisory_xact_lock_shared(${park}); END IF;
        RETURN NULL;
      END $$`);
    await client.query(`CREATE TRIGGER park_first_update BEFORE UPDATE ON "${schema}"."${table}" FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".park_first_update()`);
    await client.query('SELECT pg_advisory_lock($1)', [park]);
    try {
      // 1. The fork executor appends a hold (seq 2); its projection write reads the document, then parks.
      const held = await sagaSteps(deps(forkExecutor), 'fork-1', 'fork', 'fork-executor', null).post(accountId, 'hold', () => ({ kind: 'hold', amount: new Decimal('10.00'), transferId: 'fork-1' }));
      expect(held.status).toBe('applied');
      const flushing = forkExecutor.projector.flush();
      await waitFor('the projection write parked', async () => (await client.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, [park])).rows[0].n === 1, 10_000, 5);
      // 2. account-ops applies a client's deposit of 1.00 (seq 3) and tries to write its projection:
      //    the document is locked by the parked write, so it waits for its next batch.
      const dep = await deposit(deps(accountOps), { accountId, idempotencyKey: 'dep-1', actor: 'client', amount: '1.00' }, null);
      expect(dep.status === 'applied' && dep.seq).toBe(3);
      await accountOps.projector.flush();
      expect((await h.stores.accounts.get(accountId))!.headSeq).toBe(1);
      // 3. The parked write lands (seq 2) and gives the lock back; then seq 3 is written over it, not under.
      await client.query('SELECT pg_advisory_unlock($1)', [park]);
      await flushing;
    } finally {
      await client.query('SELECT pg_advisory_unlock_all()');
      await client.query(`DROP TRIGGER IF EXISTS park_first_update ON "${schema}"."${table}"`);
      await client.end();
    }
    await waitFor('the newest projection', async () => (await h.stores.accounts.get(accountId))!.headSeq === 3, 10_000, 20);
    const account = (await h.stores.accounts.get(accountId))!;
    expect([loadBalances(account.head).cash.toFixed(2), account.equityCents]).toEqual(['101.00', 10100n]);
    expect(await listedEquity()).toBe('101.00');
    const report = await verifyLedger(h.stores, { idle: false });
    expect([report.problems, report.driftAccounts]).toEqual([[], 0]);
  });
});

describe('a projection repaired by the reconciler', () => {
  it('is valued at its head, not left at the equity of the seq it lagged at', async () => {
    const accountId = await open('acc-lagging', '50.00');
    await h.stores.projector.flush();
    // A deposit whose projection is lost (its process died before the batch was written).
    await deposit(deps(accountOps), { accountId, idempotencyKey: 'dep-lost', actor: 'client', amount: '1.00' }, null);
    (accountOps.projector as unknown as { pending: Map<string, unknown> }).pending.clear();
    expect((await h.stores.accounts.get(accountId))!.headSeq).toBe(1);
    const report = await verifyLedger(h.stores, { idle: false, repairProjections: true, config: h.config, today: systemClock.today() });
    expect(report.driftAccounts).toBeGreaterThanOrEqual(1);
    const repaired = (await h.stores.accounts.get(accountId))!;
    expect([repaired.headSeq, loadBalances(repaired.head).cash.toFixed(2), repaired.equityCents]).toEqual([2, '51.00', 5100n]);
  });
});
