import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';
import { ROOT } from './helpers/processes.js';

let h: LedgerHarness;
beforeAll(async () => {
  h = await startLedger('producer');
  await openAccount(h, 'acc-producer', '1000.00');
});
afterAll(async () => h?.close());

describe('docs/producers.md: the plain JavaScript producer', () => {
  it('enqueues a deposit that applies once, and a malformed one that fails for good and writes nothing', async () => {
    const before = await h.stores.journal.model.countDocuments({ accountId: 'acc-producer' });
    // Asynchronously: the account-ops worker that answers it runs in this process.
    const r = await promisify(execFile)(process.execPath, [join(ROOT, 'examples', 'producer.mjs')], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: h.config.redisUrl, FLEET_QUEUE_PREFIX: h.config.queuePrefix, ACCOUNT_ID: 'acc-producer', IDEMPOTENCY_KEY: 'producer-example-1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    const [first, replay, bad] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(first).toMatchObject({ jobId: 'op.acc-producer.producer-example-1', result: { status: 'applied', operation: 'deposit', accountId: 'acc-producer' } });
    expect(replay.result).toEqual(first.result);
    expect(bad.failed).toMatch(/amount/);
    // One deposit entry, whatever was sent twice or malformed.
    expect(await h.stores.journal.model.countDocuments({ accountId: 'acc-producer' })).toBe(before + 1);
    const failed = await h.producer.queue('account-ops').getJob('op.acc-producer.producer-example-1-bad');
    expect(failed?.attemptsMade).toBe(1);
    expect(await failed?.getState()).toBe('failed');
  });
});
