import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { Decimal } from '../shared/money/decimal.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { DEAD_LETTER_CHAIN } from '../shared/ledger/dead-letter-actions.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { DeadLetterRepository } from '../shared/db/dead-letter-repository.js';
import { deadLetterKey } from '../shared/queue/dead-letter.js';
import { raiseDeadLetterAlert } from '../shared/queue/dead-letter-alert.js';
import { bullPrefix, openRedis, type RedisClient } from '../shared/queue/connection.js';
import { createWorker, deadLetterOf } from '../shared/queue/worker-runner.js';
import { createQueueMetrics } from '../shared/queue/queue-metrics.js';
import { accountOpsHandlers } from '../services/account-ops/handlers.js';
import { Registry } from 'prom-client';
import { deadLetterCommand } from '../scripts/cli-dead-letters.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'test-admin-key-dead-letters-0123';
let h: LedgerHarness;
let api: TestApi;
let operator: string;
let account: string;

type Res = { status: number; body: any };
const send = async (method: 'GET' | 'POST' | 'DELETE', url: string, key = ADMIN, payload?: object): Promise<Res> => {
  const res = await api.app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, body: JSON.parse(res.body) };
};
const cash = async () => loadBalances((await h.stores.journal.head(account))!.after).cash.toFixed(2);
const plus = (a: string, b: string) => new Decimal(a).plus(b).toFixed(2);
const letters = () => api.api.deadLetters.letters;
const queue = () => h.producer.queue(QUEUE.accountOps);

/**
 * A deposit that failed for good in BullMQ's failed set: the fleet's worker paused, a worker of the
 * test's that refuses it permanently, and its letter recorded as the worker runner records one.
 */
async function failedDeposit(key: string, amount: string): Promise<string> {
  const id = jobId('op', account, key);
  await worker?.close();
  const connection = openRedis(h.config, 'worker', 'dead-letter-test');
  const failing = new Worker(QUEUE.accountOps, async () => {
    throw new UnrecoverableError('downstream refused it');
  }, { connection, prefix: bullPrefix(h.config, QUEUE.accountOps) });
  try {
    await queue().add('deposit', { accountId: account, idempotencyKey: key, actor: 'test', amount }, { jobId: id });
    await waitFor('failed', async () => (await queue().getJobState(id)) === 'failed');
  } finally {
    await failing.close();
    connection.disconnect();
    startWorker();
  }
  await letters().record(deadLetterOf((await queue().getJob(id))!, QUEUE.accountOps, 'downstream refused it', 'permanent'));
  return deadLetterKey({ queue: QUEUE.accountOps, jobId: id });
}

/** The fleet's account-ops worker, as the service runs it (dead letters recorded in the API's store). */
let worker: ReturnType<typeof createWorker> | null = null;
let workerRedis: RedisClient;
function startWorker(): void {
  const registry = new Registry();
  worker = createWorker(QUEUE.accountOps, accountOpsHandlers(h.deps, registry, silentLogger, h.producer), { connection: workerRedis, config: h.config, logger: silentLogger, metrics: createQueueMetrics(registry, () => []), deadLetters: letters() });
  void worker.run();
}

beforeAll(async () => {
  h = await startLedger('dead-letters');
  api = await startApi(h, { adminKey: ADMIN, api: { rateLimitMax: 100_000 } });
  operator = await makeKey(api.keys, 'operator', 'owner-1');
  account = await openAccount(h, 'acc-dl-1', '100.00');
  // Our own worker instead of the harness's: a test stops it to let a failing worker take a job.
  await h.worker!.close();
  workerRedis = openRedis(h.config, 'worker', 'dead-letter-worker');
  startWorker();
});
afterAll(async () => {
  await worker?.close();
  workerRedis?.disconnect();
  await api?.close();
  await h?.close();
});

describe('dead letters', () => {
  it('lists an invalid job with its filters, shows its payload, and refuses to replay it', async () => {
    const id = jobId('op', account, 'bad-amount-1');
    await queue().add('deposit', { accountId: account, idempotencyKey: 'bad-amount-1', actor: 'test', amount: '1.001' }, { jobId: id });
    const letterId = deadLetterKey({ queue: QUEUE.accountOps, jobId: id });
    await waitFor('the letter', () => letters().get(letterId));
    const listed = await send('GET', '/api/v1/dead-letters?queue=account-ops&name=deposit&since=2020-01-01');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((l: { id: string }) => l.id)).toContain(letterId);
    expect((await send('GET', '/api/v1/dead-letters?name=withdrawal')).body.items).toEqual([]);
    expect((await send('GET', `/api/v1/dead-letters?since=${new Date(Date.now() + 60_000).toISOString()}`)).body.items).toEqual([]);
    const shown = await send('GET', `/api/v1/dead-letters/${letterId}`);
    expect(shown.body).toMatchObject({ id: letterId, jobId: id, failedReason: 'invalid', state: 'open', data: { amount: '1.001' }, url: `/api/v1/dead-letters/${letterId}` });
    const replay = await send('POST', `/api/v1/dead-letters/${letterId}/replay`);
    expect([replay.status, replay.body.error.code]).toEqual([422, 'not_replayable']);
    expect((await letters().get(letterId))!.state).toBe('open');
  });

  it('refuses to replay what the worker would refuse, whatever reason it was recorded with', async () => {
    const deposit = (key: string, amount: string) => ({ accountId: account, idempotencyKey: key, actor: 'test', amount });
    const swept = (key: string, name: string, dataJson: string) => ({ queue: QUEUE.accountOps, jobId: jobId('op', account, key), name, dataJson, reason: 'swept', failedReason: 'exhausted' as const, attemptsMade: 3, failedAt: new Date() });
    for (const [letter, why] of [
      // The alerter's sweep records every failed job as exhausted, one whose payload fails its contract too.
      [swept('swept-bad-1', 'deposit', JSON.stringify(deposit('swept-bad-1', '1.001'))), /contract.*amount/],
      [swept('swept-cut-1', 'deposit', JSON.stringify(deposit('swept-cut-1', '1.00')).slice(0, 30)), /not kept whole/],
      [swept('swept-odd-1', 'deposit', '"[unserialisable payload]"'), /contract/],
      [swept('swept-name-1', 'no-such-job', JSON.stringify(deposit('swept-name-1', '1.00'))), /no job named/],
    ] as const) {
      await letters().record(letter);
      const id = deadLetterKey(letter);
      const replay = await send('POST', `/api/v1/dead-letters/${id}/replay`);
      expect([replay.status, replay.body.error.code]).toEqual([422, 'not_replayable']);
      expect(replay.body.error.message).toMatch(why);
      expect(await letters().get(id)).toMatchObject({ state: 'open', replayCount: 0 });
      expect(await queue().getJob(letter.jobId)).toBeUndefined();
    }
  });

  it('replays a failed job under its id once, and a second replay of what succeeded is a no-op', async () => {
    const before = await cash();
    const letterId = await failedDeposit('failed-dep-1', '7.25');
    const first = await send('POST', `/api/v1/dead-letters/${letterId}/replay`);
    expect(first.body).toMatchObject({ id: letterId, outcome: 'requeued', state: 'replayed', letter: { state: 'replayed', replayCount: 1 } });
    const id = jobId('op', account, 'failed-dep-1');
    await waitFor('applied', async () => (await queue().getJobState(id)) === 'completed');
    expect(await cash()).toBe(plus(before, '7.25'));
    const entries = await h.stores.journal.model.countDocuments({ accountId: account });
    const again = await send('POST', `/api/v1/dead-letters/${letterId}/replay`);
    expect(again.body.outcome).toBe('already_succeeded');
    expect(await h.stores.journal.model.countDocuments({ accountId: account })).toBe(entries);
    const audit = await h.stores.audit.model.find({ chain: DEAD_LETTER_CHAIN, action: 'dead-letter-replay', 'after.id': letterId }).lean();
    expect(audit.map((a) => a.outcome).sort()).toEqual(['already_succeeded', 'requeued']);
  });

  it('replays a job BullMQ no longer holds without applying its operation twice', async () => {
    const id = jobId('op', account, 'gone-dep-1');
    await h.run('deposit', { accountId: account, idempotencyKey: 'gone-dep-1', actor: 'test', amount: '2.00' }, id);
    const job = (await queue().getJob(id))!;
    await letters().record(deadLetterOf(job, QUEUE.accountOps, 'recorded by a sweep after a crash', 'stalled'));
    await job.remove();
    const before = await cash();
    const entries = await h.stores.journal.model.countDocuments({ accountId: account });
    const replay = await send('POST', `/api/v1/dead-letters/${deadLetterKey({ queue: QUEUE.accountOps, jobId: id })}/replay`);
    expect(replay.body.outcome).toBe('requeued');
    await waitFor('answered from the journal', async () => (await queue().getJobState(id)) === 'completed');
    expect(await cash()).toBe(before);
    expect(await h.stores.journal.model.countDocuments({ accountId: account })).toBe(entries);
  });

  it('refuses to add again a job of another queue that was replayed before and is gone', async () => {
    const jobIdOf = 'sweep-gone-1';
    await letters().record({ queue: QUEUE.alerts, jobId: jobIdOf, name: 'sweep', dataJson: '{}', reason: 'boom', failedReason: 'exhausted', attemptsMade: 3, failedAt: new Date() });
    const letterId = deadLetterKey({ queue: QUEUE.alerts, jobId: jobIdOf });
    // Open and absent: added under its id.
    expect((await send('POST', `/api/v1/dead-letters/${letterId}/replay`)).body.outcome).toBe('requeued');
    await (await h.producer.queue(QUEUE.alerts).getJob(jobIdOf))!.remove();
    // Replayed and gone again: it may have run; refused, nothing written.
    const again = await send('POST', `/api/v1/dead-letters/${letterId}/replay`);
    expect([again.status, again.body.error.code]).toEqual([409, 'replayed_job_gone']);
    expect(await h.producer.queue(QUEUE.alerts).getJob(jobIdOf)).toBeUndefined();
    expect((await letters().get(letterId))!.replayCount).toBe(1);
  });

  it('lets two replays at once run the job once', async () => {
    const before = await cash();
    const letterId = await failedDeposit('failed-dep-2', '1.10');
    const both = await Promise.all([send('POST', `/api/v1/dead-letters/${letterId}/replay`), send('POST', `/api/v1/dead-letters/${letterId}/replay`)]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.map((r) => r.body.outcome)).toContain('requeued');
    await waitFor('applied', async () => (await queue().getJobState(jobId('op', account, 'failed-dep-2'))) === 'completed');
    expect(await cash()).toBe(plus(before, '1.1'));
    expect((await letters().get(letterId))!.replayCount).toBe(2);
    // Each replay got its own count from its own write, so each has its audit record.
    const refs = (await h.stores.audit.model.find({ chain: DEAD_LETTER_CHAIN, action: 'dead-letter-replay', 'after.id': letterId }).lean()).map((a) => a.ref).sort();
    expect(refs).toEqual([`dead-letter-replay:${letterId}:1`, `dead-letter-replay:${letterId}:2`]);
  });

  it('reopens a replayed letter whose job fails again, and raises its alert again with the link', async () => {
    // Recorded as the services record: each new letter, and each failure after a replay, raises its alert.
    const alerting = new DeadLetterRepository(h.mongo, raiseDeadLetterAlert(h.producer));
    const alertOf = (key: string) => h.producer.queue(QUEUE.alerts).getJob(jobId('alert', 'job-failed', key));
    const letterId = await failedDeposit('failed-dep-3', '0.50');
    // Marked as if by a process whose clock runs ahead: the failures are told apart by the job's own times.
    await letters().markReplayed(letterId, 'test', new Date(Date.now() + 60_000));
    const letter = (await letters().get(letterId))!;
    // The sweep recording the failure it replayed neither reopens it nor says the replay failed; a failure after the replay does both.
    await alerting.record(letter);
    expect((await letters().get(letterId))!.state).toBe('replayed');
    expect((await alertOf(letterId))!.data.details).toMatchObject({ deadLetterId: letterId, link: `/api/v1/dead-letters/${letterId}`, replayCount: 0 });
    expect(await alertOf(`${letterId}-r1`)).toBeUndefined();
    await alerting.record({ ...letter, reason: 'failed again', failedAt: new Date(Date.now() + 1000) });
    expect((await letters().get(letterId))!).toMatchObject({ state: 'open', reason: 'failed again', replayCount: 1 });
    const alertJob = (await alertOf(`${letterId}-r1`))!;
    expect(alertJob.data.details).toMatchObject({ deadLetterId: letterId, link: `/api/v1/dead-letters/${letterId}`, replayCount: 1 });
    expect(alertJob.data.message).toContain(`/api/v1/dead-letters/${letterId}`);
  });

  it('undoes a replay mark back to the letter as it was', async () => {
    const letterId = await failedDeposit('failed-dep-6', '0.25');
    const first = (await letters().markReplayed(letterId, 'first', new Date(Date.now() - 1000)))!;
    const second = (await letters().markReplayed(letterId, 'second', new Date()))!;
    await letters().unmarkReplayed(second, first);
    expect(await letters().get(letterId)).toMatchObject({ state: 'replayed', stateBy: 'first', stateAt: first.stateAt, replayCount: 1 });
    // Only the mark it undoes: once something else changed the letter, an undo changes nothing.
    await letters().markReplayed(letterId, 'third', new Date());
    await letters().unmarkReplayed(first, first);
    expect(await letters().get(letterId)).toMatchObject({ state: 'replayed', stateBy: 'third', replayCount: 2 });
  });

  it('discards with a reason, once; a discarded letter is neither replayed nor reopened', async () => {
    const letterId = await failedDeposit('failed-dep-4', '3.00');
    const before = await cash();
    expect((await send('DELETE', `/api/v1/dead-letters/${letterId}`, ADMIN, {})).status).toBe(400);
    const discarded = await send('DELETE', `/api/v1/dead-letters/${letterId}`, ADMIN, { reason: 'customer cancelled' });
    expect(discarded.body).toMatchObject({ state: 'discarded', discardReason: 'customer cancelled', stateBy: 'admin-env' });
    expect((await send('DELETE', `/api/v1/dead-letters/${letterId}`, ADMIN, { reason: 'again' })).status).toBe(409);
    const replay = await send('POST', `/api/v1/dead-letters/${letterId}/replay`);
    expect([replay.status, replay.body.error.code]).toEqual([409, 'dead_letter_discarded']);
    await letters().record({ ...(await letters().get(letterId))!, reason: 'failed once more' });
    expect((await letters().get(letterId))!.state).toBe('discarded');
    expect((await send('GET', '/api/v1/dead-letters?state=discarded')).body.items.map((l: { id: string }) => l.id)).toEqual([letterId]);
    expect(await cash()).toBe(before);
    expect(await h.stores.audit.model.countDocuments({ chain: DEAD_LETTER_CHAIN, action: 'dead-letter-discard' })).toBe(1);
    expect((await send('GET', '/api/v1/audit/verify')).body.ok).toBe(true);
  });

  it('pages newest first with a cursor', async () => {
    const all = (await send('GET', '/api/v1/dead-letters?limit=500')).body.items.map((l: { id: string }) => l.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Res = await send('GET', `/api/v1/dead-letters?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.items.map((l: { id: string }) => l.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all);
    expect(all.length).toBeGreaterThanOrEqual(5);
  });

  it('is for admins only', async () => {
    const [any] = (await send('GET', '/api/v1/dead-letters')).body.items as Array<{ id: string }>;
    for (const [method, url, body] of [['GET', '/api/v1/dead-letters'], ['GET', `/api/v1/dead-letters/${any!.id}`], ['POST', `/api/v1/dead-letters/${any!.id}/replay`], ['DELETE', `/api/v1/dead-letters/${any!.id}`, { reason: 'x' }]] as const) {
      expect([url, (await send(method, url, operator, body)).status]).toEqual([url, 403]);
    }
  });

  it('does the same through the CLI', async () => {
    const letterId = await failedDeposit('failed-dep-5', '4.00');
    const before = await cash();
    const usage = () => new Error('usage');
    const run = async (sub: string, id?: string, args = {}) => {
      const writes: string[] = [];
      const write = process.stdout.write;
      process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
      try {
        const code = await deadLetterCommand(h.config, silentLogger, h.mongo, sub, id, args, usage);
        return { code, out: writes.join('') ? JSON.parse(writes.join('')) : null };
      } finally {
        process.stdout.write = write;
      }
    };
    expect((await run('list', undefined, { state: 'open', queue: 'account-ops' })).out.items.map((l: { id: string }) => l.id)).toContain(letterId);
    expect((await run('show', letterId)).out.data).toMatchObject({ amount: '4.00' });
    expect((await run('replay', letterId)).out.outcome).toBe('requeued');
    await waitFor('applied', async () => (await queue().getJobState(jobId('op', account, 'failed-dep-5'))) === 'completed');
    expect(await cash()).toBe(plus(before, '4'));
    expect((await run('discard', letterId, { reason: 'done by hand' })).out.state).toBe('discarded');
    expect((await run('discard', letterId, { reason: 'twice' })).code).toBe(1);
    await expect(run('discard', letterId)).rejects.toThrow('usage');
    const audit = await h.stores.audit.model.find({ chain: DEAD_LETTER_CHAIN, 'after.id': letterId }).sort({ seq: 1 }).lean();
    expect(audit.map((a) => [a.action, a.actor.startsWith('cli:')])).toEqual([['dead-letter-replay', true], ['dead-letter-discard', true]]);
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });
});
