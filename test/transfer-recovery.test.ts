import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { QUEUE } from '../shared/contracts/queues.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { scopedKey, storedOutcome } from '../shared/ledger/operation.js';
import { transferIdOf } from '../shared/ledger/transfer.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { recoverTransfers } from '../services/account-ops/maintenance.js';
import { waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';
import { DIST, Proc } from './helpers/processes.js';

let h: LedgerHarness;
beforeAll(async () => {
  h = await startLedger('recovery');
  await openAccount(h, 'acc-src', '60000.00');
  await openAccount(h, 'acc-dst', '10000.00');
  // From here on, the only account-ops worker is the real process each test starts and kills.
  await h.worker!.close();
});
afterAll(async () => h?.close());

const balances = async (id: string) => loadBalances((await h.stores.journal.head(id))!.after);

/** Starts a real account-ops process that SIGKILLs itself at `point`, sends it a transfer, and waits for the crash. */
async function transferUntilCrash(point: string, key: string, amount: string) {
  const { env } = await portEnv();
  const proc = new Proc(join(DIST, 'services', 'account-ops', 'main.js'), { ...h.iso.env, ...env, FLEET_FAULT_POINTS: point });
  await h.producer.enqueue(QUEUE.accountOps, 'transfer', { accountId: 'acc-src', toAccountId: 'acc-dst', idempotencyKey: key, actor: 'test', amount }, { jobId: `op.acc-src.${key}` });
  const exit = await proc.exitWithin(30_000);
  expect(exit.signal).toBe('SIGKILL');
  return transferIdOf(scopedKey('acc-src', key));
}

describe('a transfer interrupted by a killed worker', () => {
  it('is completed by the recovery job when the worker died after the hold', async () => {
    const transferId = await transferUntilCrash('transfer.after-hold', 'xfer-crash-hold', '1000.00');
    expect((await h.stores.transfers.get(transferId))!.phase).toBe('PENDING');
    expect((await balances('acc-src')).reserved.toFixed(2)).toBe('1000.00'); // held, not yet moved

    const result = await recoverTransfers(h.deps, 0, null, silentLogger);
    expect(result.settled).toEqual([{ transferId, outcome: 'applied' }]);
    expect((await h.stores.transfers.get(transferId))!.phase).toBe('POSTED');
    const src = await balances('acc-src');
    expect([src.cash.toFixed(2), src.reserved.toFixed(2)]).toEqual(['59000.00', '0.00']);
    expect((await balances('acc-dst')).cash.toFixed(2)).toBe('11000.00');
    // The client's operation has its outcome even though its job never finished.
    expect(await storedOutcome(h.stores, 'acc-src', 'xfer-crash-hold')).toMatchObject({ status: 'applied', transferId });
  });

  it('is completed by the recovery job when the worker died after crediting the destination', async () => {
    const transferId = await transferUntilCrash('transfer.after-credit', 'xfer-crash-credit', '2500.50');
    expect((await h.stores.transfers.get(transferId))!.phase).toBe('PENDING'); // the record waits for the end; the journal says how far
    expect((await balances('acc-dst')).cash.toFixed(2)).toBe('13500.50'); // credited, source still holds it

    await recoverTransfers(h.deps, 0, null, silentLogger);
    expect((await h.stores.transfers.get(transferId))!.phase).toBe('POSTED');
    const src = await balances('acc-src');
    expect([src.cash.toFixed(2), src.reserved.toFixed(2)]).toEqual(['56499.50', '0.00']);
    // Running recovery again finds nothing left to do and moves nothing.
    expect((await recoverTransfers(h.deps, 0, null, silentLogger)).recovered).toBe(0);
    await waitFor('verify', async () => (await verifyLedger(h.stores, { idle: true })).ok);
  });

  it('voids a transfer whose destination closed while it was held, giving the hold back', async () => {
    const postings = await import('../services/account-ops/postings.js');
    await postings.openAccount(h.deps, { accountId: 'acc-gone', idempotencyKey: 'open-acc-gone', actor: 'test', tier: 'GEN', name: 'gone', ownerId: null, parentId: null, config: {}, initialDeposit: '0.01' }, null);
    const { env } = await portEnv();
    const proc = new Proc(join(DIST, 'services', 'account-ops', 'main.js'), { ...h.iso.env, ...env, FLEET_FAULT_POINTS: 'transfer.after-hold' });
    await h.producer.enqueue(QUEUE.accountOps, 'transfer', { accountId: 'acc-src', toAccountId: 'acc-gone', idempotencyKey: 'xfer-to-gone', actor: 'test', amount: '300.00' }, { jobId: 'op.acc-src.xfer-to-gone' });
    await proc.exitWithin(30_000);
    // While the transfer sits held, the destination is emptied and closed.
    await postings.withdrawal(h.deps, { accountId: 'acc-gone', idempotencyKey: 'close-gone-1', actor: 'test', amount: '0.01', close: true }, null);

    const result = await recoverTransfers(h.deps, 0, null, silentLogger);
    expect(result.settled[0]?.outcome).toBe('refused');
    const src = await balances('acc-src');
    expect([src.cash.toFixed(2), src.reserved.toFixed(2)]).toEqual(['56499.50', '0.00']);
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });
});
