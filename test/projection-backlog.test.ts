/**
 * The backlog claim that the day's readers (snapshots, consolidation scans, the simulator) wait on:
 * a process that holds unwritten projections is seen as holding them before the posting that made
 * them completes, and stops being seen only after the projections are written. Real Redis and the
 * real MongoDB-protocol server; two sets of stores stand for two processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deposit, openAccount } from '../services/account-ops/postings.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { ProjectionBacklog, projectionsSettled } from '../shared/ledger/projection-backlog.js';
import { type LedgerStores, openLedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { type RedisClient, connectRedis } from '../shared/queue/connection.js';
import { systemClock } from '../shared/runtime/clock.js';
import { type LedgerHarness, silentLogger, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let redis: RedisClient;
let ops: LedgerStores;
let other: LedgerStores;

beforeAll(async () => {
  h = await startLedger('projbacklog', { worker: false });
  redis = await connectRedis(h.config, 'worker', 'projbacklog', silentLogger);
  // A long flush delay: the projection stays pending until the test lets it go (flush).
  const asProcess = () =>
    openLedgerStores(h.mongo, { skipInit: true, locks: new RedisDocLocks(redis, h.config.queuePrefix), backlog: new ProjectionBacklog(redis, h.config.queuePrefix), settings: { ...h.config.ledger, projectionFlushMs: 60_000 } });
  [ops, other] = [await asProcess(), await asProcess()];
});
afterAll(async () => {
  await ops?.close();
  await other?.close();
  await redis?.quit();
  await h?.close();
});

const deps = (stores: LedgerStores) => ({ stores, config: h.config, clock: systemClock });
const settled = () => projectionsSettled(redis, h.config.queuePrefix);

describe('the projection backlog', () => {
  it('is claimed before a posting completes and released only once its projection is written', async () => {
    expect(await settled()).toBe(true);
    const opened = await openAccount(deps(ops), { accountId: 'acc-b1', idempotencyKey: 'open-b1', actor: 'test', tier: 'GEN', name: 'b1', ownerId: 'o', parentId: null, config: {}, initialDeposit: '100.00' }, null);
    expect(opened.status).toBe('applied');
    // The posting has answered; its projection is still pending: the claim is already there.
    expect(await settled()).toBe(false);
    expect((await h.stores.accounts.get('acc-b1'))!.headSeq).toBe(0);
    // A second process's posting while the first still holds its claim: both must write before the backlog settles.
    const dep = await deposit(deps(other), { accountId: 'acc-b1', idempotencyKey: 'dep-b1', actor: 'client', amount: '1.00' }, null);
    expect(dep.status).toBe('applied');
    await ops.projector.flush();
    expect(await settled()).toBe(false);
    await other.projector.flush();
    expect(await settled()).toBe(true);
    const account = (await h.stores.accounts.get('acc-b1'))!;
    expect([account.headSeq, account.equityCents]).toEqual([2, 10100n]);
    const report = await verifyLedger(h.stores, { idle: false });
    expect([report.problems, report.driftAccounts]).toEqual([[], 0]);
  });

  it('is claimed again by the next posting after a release', async () => {
    await deposit(deps(ops), { accountId: 'acc-b1', idempotencyKey: 'dep-b2', actor: 'client', amount: '2.00' }, null);
    expect(await settled()).toBe(false);
    const backlog = new ProjectionBacklog(redis, h.config.queuePrefix);
    expect(await backlog.waitSettled(50)).toBe(false);
    const waiting = backlog.waitSettled(10_000);
    await ops.projector.flush();
    expect(await waiting).toBe(true);
    expect((await h.stores.accounts.get('acc-b1'))!.headSeq).toBe(3);
  });

  it('holds back only readers that started after the oldest unwritten mark', async () => {
    await deposit(deps(ops), { accountId: 'acc-b1', idempotencyKey: 'dep-b3', actor: 'client', amount: '3.00' }, null);
    const markedBy = Date.now();
    // A reader that started before the mark does not wait for it; one that started after does.
    expect(await projectionsSettled(redis, h.config.queuePrefix, markedBy - 60_000)).toBe(true);
    expect(await projectionsSettled(redis, h.config.queuePrefix, markedBy)).toBe(false);
    await ops.projector.flush();
    expect(await projectionsSettled(redis, h.config.queuePrefix, markedBy)).toBe(true);
  });

  it('drops the claim of a process that stopped renewing it', async () => {
    const key = `${h.config.queuePrefix}:projections:backlog`;
    await redis.set(`${h.config.queuePrefix}:projections:alive:a-live-process`, '1', 'PX', 60_000);
    await redis.zadd(key, Date.now() - 1000, 'a-live-process', Date.now() - 1000, 'a-dead-process');
    expect(await settled()).toBe(false);
    // The live one withdraws; the dead one's renewal key has expired (it never had one here): it holds no one back.
    await redis.del(`${h.config.queuePrefix}:projections:alive:a-live-process`);
    expect(await settled()).toBe(true);
    expect(await redis.zcard(key)).toBe(0);
  });
});
