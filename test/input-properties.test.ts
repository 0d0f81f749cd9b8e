import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Writable } from 'node:stream';
import type { z } from 'zod';
import { parseApiKey } from '../shared/auth/api-keys.js';
import { JOBS, jobSchema } from '../shared/contracts/jobs.js';
import { QUEUE, type QueueName } from '../shared/contracts/queues.js';
import { createLogger } from '../shared/runtime/logger.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { waitFor } from './helpers/env.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

// Runs are replayable: FC_SEED picks the inputs (fixed by default so a run can be repeated; any
// other seed explores further, and fast-check prints the seed and the counterexample when one fails).
fc.configureGlobal({ seed: Number(process.env['FC_SEED'] ?? 20261121) });

/** A valid payload of every job of every queue: the base each property mutates. */
const ACC = 'acc-prop';
const posting = { accountId: ACC, idempotencyKey: 'prop-key-0001', actor: 'test' };
const SAMPLES: { [Q in QueueName]: Record<string, Record<string, unknown>> } = {
  'account-ops': {
    'open-account': { ...posting, tier: 'GEN', name: 'n', ownerId: 'o', parentId: null },
    deposit: { ...posting, amount: '10.00' },
    withdrawal: { ...posting, amount: '10.00' },
    transfer: { ...posting, toAccountId: 'acc-other', amount: '10.00' },
    trade: { ...posting, side: 'buy', symbol: 'SPY', quantity: '1.5', price: '100.00' },
    dividend: { ...posting, symbol: 'SPY', amount: '1.00' },
    fee: { ...posting, amount: '1.00', reason: 'monthly' },
    'state-change': { ...posting, to: 'SAFE', reason: 'r' },
    'limit-breach': { ...posting, to: 'SAFE', rule: 'drawdown', period: '2026-01', reason: 'r' },
    reactivate: { ...posting, from: 'SAFE', reason: 'r' },
    reinvest: { accountId: ACC, trigger: 'dividend', key: 'seq-3' },
    'reinvest-scan': { date: '2026-01-02' },
    'recover-transfers': { olderThanSec: 30 },
    reconcile: { period: 'p' },
  },
  'threshold-check': { check: { accountId: ACC, seq: 1 } },
  'threshold-scan': { scan: { tier: 'GEN' } },
  fork: {
    execute: { forkId: 'fork_x_1', accountId: ACC, parentSeq: 1, mode: 'full', requestedBy: 'test' },
    recover: { olderThanSec: 60 },
    resume: { forkId: 'fork_x_1', requestedBy: 'test' },
  },
  merge: { execute: { mergeId: 'merge_x_1_ab' }, recover: { olderThanSec: 60 }, resume: { mergeId: 'merge_x_1_ab', requestedBy: 'test' } },
  'consolidation-scan': { scan: { date: '2026-01-02' }, batch: { date: '2026-01-02', afterAccountId: null, limit: 10 } },
  snapshot: { day: { date: '2026-01-02' }, batch: { date: '2026-01-02', bucket: 7 }, limits: { symbols: ['ACME'] } },
  retention: { prune: { date: '2026-01-02' } },
  alerts: { raise: { rule: 'daily-loss', severity: 'warning', accountId: null, period: '2026-01-02', message: 'm' }, sweep: {} },
  webhooks: { deliver: { url: 'https://example.com/h', alert: { rule: 'r', severity: 'warning', accountId: null, period: 'p', message: 'm', raisedAt: '2026-01-02T00:00:00Z' } } },
};
const CONTRACTS = Object.entries(SAMPLES).flatMap(([q, jobs]) => Object.entries(jobs).map(([name, sample]) => ({ q: q as QueueName, name, sample, schema: jobSchema(q as QueueName, name)! })));

/** Values no field of any contract takes where the sample has a string. */
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string(), fc.string()), fc.array(fc.anything(), { maxLength: 3 }), fc.constant({ $ne: null }), fc.constant({ $where: 'sleep(1000)' }), fc.constant({ $gt: '' }));
/** Strings that are not an amount with `places` decimals: signs, zero, exponents, too many places, non-finite, huge, odd digits. */
const notAnAmount = (places: number) =>
  fc.oneof(
    fc.constantFrom('-1.00', '0', '0.00', '1e3', '1E-2', 'NaN', 'Infinity', '-Infinity', ' 1.00', '1.00 ', '１２.００', '1,00', '0x10', '99999999999999999999.00', '', '.5', '+1.00'),
    fc.double({ noNaN: false }).map((x) => x.toExponential()),
    fc.integer({ min: places + 1, max: places + 8 }).chain((n) => fc.bigInt({ min: 1n, max: 9n }).map((d) => `1.${d.toString().padStart(n, '0')}`)),
  );
const PLACES: Record<string, number> = { amount: 2, price: 6, quantity: 8 };
const injectedKey = fc.oneof(fc.constantFrom('$where', '$ne', '$set', 'a.b', '__proto__', 'constructor', '\u0000'), fc.string({ minLength: 1, maxLength: 30 }));

describe('job contracts refuse what they were not written for (fast-check)', () => {
  it('has a sample for every job of every queue, and each sample passes', () => {
    expect(CONTRACTS.map((c) => `${c.q}/${c.name}`).sort()).toEqual(Object.entries(JOBS).flatMap(([q, jobs]) => Object.keys(jobs).map((n) => `${q}/${n}`)).sort());
    for (const c of CONTRACTS) expect(c.schema.safeParse(c.sample).success, `${c.q}/${c.name}`).toBe(true);
  });

  it('refuses any extra key, operator-looking keys included', () => {
    fc.assert(fc.property(fc.constantFrom(...CONTRACTS), injectedKey, (c, key) => {
      fc.pre(!Object.hasOwn(c.sample, key) && !Object.hasOwn((c.schema as z.ZodObject).shape ?? {}, key));
      expect(c.schema.safeParse({ ...c.sample, [key]: 'x' }).success).toBe(false);
    }), { numRuns: 400 });
  });

  it('refuses a wrong type in any field that takes a string, and a missing required field', () => {
    fc.assert(fc.property(fc.constantFrom(...CONTRACTS.filter((c) => Object.values(c.sample).some((v) => typeof v === 'string'))), notAString, fc.nat(), (c, value, pick) => {
      const keys = Object.keys(c.sample).filter((k) => typeof c.sample[k] === 'string');
      const key = keys[pick % keys.length]!;
      const field = (c.schema as z.ZodObject).shape[key] as z.ZodType;
      fc.pre(!field.safeParse(value).success); // e.g. null where the field is nullable
      expect(c.schema.safeParse({ ...c.sample, [key]: value }).success).toBe(false);
      const { [key]: _gone, ...missing } = c.sample;
      const optional = field.safeParse(undefined).success;
      if (!optional) expect(c.schema.safeParse(missing).success).toBe(false);
    }), { numRuns: 400 });
  });

  it('refuses every malformed amount, price and quantity', () => {
    const money = CONTRACTS.flatMap((c) => ['amount', 'price', 'quantity'].filter((k) => typeof c.sample[k] === 'string').map((k) => ({ c, k })));
    fc.assert(fc.property(fc.constantFrom(...money).chain((m) => fc.tuple(fc.constant(m), notAnAmount(PLACES[m.k]!))), ([{ c, k }, bad]) => {
      expect(c.schema.safeParse({ ...c.sample, [k]: bad }).success).toBe(false);
    }), { numRuns: 500 });
  });
});

describe('the API refuses bad input with a 4xx and writes nothing (fast-check, real servers)', () => {
  const ADMIN = 'props-admin-key-0123456789abcdef';
  let h: LedgerHarness;
  let testApi: TestApi;
  let app: TestApi['app'];
  const logLines: string[] = [];
  let operatorKey = '';

  const writes = async () => ({ journal: await h.stores.journal.model.countDocuments({}), audit: await h.stores.audit.model.countDocuments({}) });
  const call = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, key = ADMIN) => {
    const res = await app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}), headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });
    return { status: res.statusCode, body: res.body };
  };

  beforeAll(async () => {
    h = await startLedger('props');
    // The app logs into a buffer, so the test can look for secrets in what it wrote.
    const sink = new Writable({ write: (chunk, _enc, done) => void (logLines.push(String(chunk)), done()) });
    const logger = createLogger({ service: 'api', level: 'info' }, sink);
    testApi = await startApi(h, { adminKey: ADMIN, logger });
    app = testApi.app;
    operatorKey = await makeKey(testApi.keys, 'operator', 'owner-1');
    await openAccount(h, ACC, '1000.00');
  });
  afterAll(async () => {
    await testApi?.close();
    await h?.close();
  });

  const deposit = { kind: 'deposit', amount: '5.00', idempotencyKey: 'prop-deposit-0001' };

  it('transactions: any malformed field, extra key or operator gets 400 and no entry', async () => {
    const before = await writes();
    const body = fc.oneof(
      fc.oneof(notAString, notAnAmount(2)).map((v) => ({ ...deposit, amount: v })),
      fc.oneof(notAString, fc.string().filter((k) => !['deposit', 'withdrawal', 'transfer', 'trade', 'dividend', 'fee'].includes(k))).map((v) => ({ ...deposit, kind: v })),
      fc.oneof(notAString, fc.string().filter((k) => !/^[A-Za-z0-9_-]{8,128}$/.test(k))).map((v) => ({ ...deposit, idempotencyKey: v })),
      injectedKey.filter((k) => !['kind', 'amount', 'idempotencyKey'].includes(k)).map((k) => ({ ...deposit, [k]: { $ne: null } })),
      fc.string({ minLength: 129, maxLength: 400 }).map((k) => ({ ...deposit, idempotencyKey: k })),
      fc.constantFrom({}, [], 'deposit', null),
    );
    await fc.assert(fc.asyncProperty(body, async (b) => {
      const res = await call('POST', `/api/v1/accounts/${ACC}/transactions?wait=true`, b);
      expect(res.status, res.body).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }), { numRuns: 120 });
    expect(await writes()).toEqual(before);
  });

  it('ids and queries: operators, paths and odd unicode are refused or find nothing', async () => {
    const before = await writes();
    const oddId = fc.oneof(fc.constantFrom('{"$ne":null}', '$where', 'a.b', '..', '%00', 'acc\u0000x', '𝔞𝔠𝔠', 'ä'.repeat(70), 'x'.repeat(65)), fc.string({ maxLength: 80 }));
    await fc.assert(fc.asyncProperty(oddId, async (id) => {
      const enc = encodeURIComponent(id);
      const read = await call('GET', `/api/v1/accounts/${enc}`);
      expect([400, 404]).toContain(read.status);
      const write = await call('POST', `/api/v1/accounts/${enc}/transactions`, deposit);
      expect([400, 404]).toContain(write.status);
      const list = await call('GET', `/api/v1/accounts?parentId=${enc}&state=${enc}`);
      expect([200, 400]).toContain(list.status);
      if (list.status === 200) expect(JSON.parse(list.body).items).toEqual([]);
    }), { numRuns: 80 });
    expect(await writes()).toEqual(before);
  });

  it('refuses a body over the size limit with 413', async () => {
    const res = await call('POST', `/api/v1/accounts/${ACC}/transactions`, { ...deposit, note: 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(413);
  });

  it('a malformed job fails for good at once, counted, and writes nothing', async () => {
    const before = await writes();
    const queue = h.producer.queue(QUEUE.accountOps);
    const bad = [{ ...posting, amount: '-1.00' }, { ...posting, amount: { $ne: null } }, { accountId: ACC }, { ...posting, amount: '1.00', $where: 'x' }];
    const jobs = await Promise.all(bad.map((data, i) => queue.add('deposit', data, { jobId: `prop.bad.${i}`, attempts: 5 })));
    for (const job of jobs) {
      await waitFor(`job ${job.id} failed`, async () => ((await job.getState()) === 'failed' ? true : undefined), 15_000, 50);
      const done = (await queue.getJob(job.id!))!;
      expect([done.attemptsMade, done.failedReason]).toEqual([1, expect.stringMatching(/invalid|payload/i)]);
    }
    expect(await writes()).toEqual(before);
  });

  it('never writes a key or secret to the logs', async () => {
    await call('GET', '/api/v1/accounts', undefined, operatorKey);
    await call('GET', '/api/v1/accounts', undefined, `${operatorKey}tampered`);
    await call('GET', '/api/v1/accounts', undefined, ADMIN);
    // The secret itself (43 base64url characters, which may hold '_' too), not a split's last piece.
    const secret = parseApiKey(operatorKey)!.secret;
    const text = logLines.join('');
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(ADMIN);
  });
});
