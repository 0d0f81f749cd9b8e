import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseApiKey, secretMatches } from '../shared/auth/api-keys.js';
import { ApiKeyRepository } from '../shared/db/api-key-repository.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';
import { DIST, ROOT } from './helpers/processes.js';

const MARKET = join(ROOT, 'data', 'market');
let h: LedgerHarness;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(DIST, 'scripts', 'cli.js'), ...args], { env: { ...process.env, ...h.iso.env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  h = await startLedger('cli');
  await openAccount(h, 'acc-a', '20000.00');
  await openAccount(h, 'acc-b', '20000.00');
  await h.run('transfer', { accountId: 'acc-a', toAccountId: 'acc-b', idempotencyKey: 'cli-xfer-1', actor: 'test', amount: '1234.56' });
  await h.run('trade', { accountId: 'acc-b', idempotencyKey: 'cli-trade-1', actor: 'test', side: 'buy', symbol: 'SPY', quantity: '3', price: '100.333333' });
});
afterAll(async () => h?.close());

describe('npm run cli', () => {
  it('verify passes on a consistent ledger and prints its totals', () => {
    const r = cli('verify');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, accounts: 2, violations: 0, openTransfers: 0, auditBreaks: 0 });
    expect(report.totals).toMatchObject({ deposits: '40000.00', transfersIn: '1234.56', transfersOut: '1234.56', costBasis: '301.00' });
  });

  // The journal is the hash chain of money movements: each entry seals the one before it.
  it('verify finds a journal entry whose actor was changed and names it, and recovers once it is restored', async () => {
    const entry = await h.stores.journal.model.findOne({ accountId: 'acc-a', seq: 1 }).lean();
    await h.stores.journal.model.updateOne({ accountId: 'acc-a', seq: 1 }, { $set: { actor: 'someone-else' } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('account acc-a: entry 1 (open): its content does not match its hash (modified)');
    await h.stores.journal.model.updateOne({ accountId: 'acc-a', seq: 1 }, { $set: { actor: entry!.actor } });
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds a deleted journal entry', async () => {
    const entry = await h.stores.journal.model.findOne({ accountId: 'acc-b', seq: 2 }).lean();
    await h.stores.journal.model.deleteOne({ _id: entry!._id });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('account acc-b: journal jumps from seq 1 to 3');
    await h.stores.journal.model.collection.insertOne(entry!);
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds two journal entries swapped in their chain', async () => {
    const [one, two] = await Promise.all([2, 3].map((seq) => h.stores.journal.model.findOne({ accountId: 'acc-b', seq }).lean()));
    // Reorder: each entry takes the other's place (the unique (accountId, seq) index is dodged through a free seq).
    const move = (e: typeof one, seq: number) => h.stores.journal.model.updateOne({ _id: e!._id }, { $set: { seq } });
    await move(one, 999);
    await move(two, 2);
    await move(one, 3);
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/account acc-b: entry [23] \([a-z-]+\) does not link to the entry before it/);
    await move(one, 999);
    await move(two, 3);
    await move(one, 2);
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds a modified audit record outside the journal (an operator changing a name)', async () => {
    await h.stores.audit.append({ chain: 'acc-a', ref: 'cli-test-profile', actor: 'test', action: 'update-profile', jobId: null, before: { name: 'a' }, after: { name: 'b' }, outcome: 'applied' }, new Date());
    const record = await h.stores.audit.model.findOne({ chain: 'acc-a', ref: 'cli-test-profile' }).lean();
    await h.stores.audit.model.updateOne({ _id: record!._id }, { $set: { actor: 'someone-else' } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`audit chain acc-a: record ${record!.seq} its content does not match its hash (modified)`);
    await h.stores.audit.model.updateOne({ _id: record!._id }, { $set: { actor: record!.actor } });
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds a journal entry whose balances were edited', async () => {
    const entry = await h.stores.journal.model.findOne({ accountId: 'acc-a', seq: 2 }).lean();
    await h.stores.journal.model.updateOne({ _id: entry!._id }, { $set: { 'after.cashCents': 2_100_000n } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('account acc-a: entry 2 (hold) does not follow from entry 1');
    await h.stores.journal.model.updateOne({ _id: entry!._id }, { $set: { 'after.cashCents': entry!.after.cashCents } });
    expect(cli('verify').code).toBe(0);
  });

  it('apikey create prints a key once, stored only as a hash that matches it', async () => {
    const r = cli('apikey', 'create', '--role', 'operator', '--owner', 'alice');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout);
    const parsed = parseApiKey(printed.key)!;
    const stored = await new ApiKeyRepository(h.mongo).get(parsed.keyId);
    expect(stored).toMatchObject({ role: 'operator', ownerId: 'alice' });
    expect(JSON.stringify(stored)).not.toContain(parsed.secret);
    expect(await secretMatches(parsed.secret, stored!.salt, stored!.hash)).toBe(true);
    expect(cli('apikey', 'create', '--role', 'viewer').code).toBe(2);
  });

  it('apikey list, rotate and revoke manage a key without ever printing a stored secret', async () => {
    const made = JSON.parse(cli('apikey', 'create', '--role', 'viewer', '--owner', 'carol', '--label', 'carol reports', '--expires', '2099-06-30T00:00:00Z').stdout);
    expect(made).toMatchObject({ role: 'viewer', ownerId: 'carol', label: 'carol reports', state: 'active', expiresAt: '2099-06-30T00:00:00.000Z' });
    expect(made.createdBy).toMatch(/^cli:/);
    const listed = cli('apikey', 'list', '--owner', 'carol');
    expect(JSON.parse(listed.stdout).items).toEqual([expect.objectContaining({ keyId: made.keyId, state: 'active' })]);
    expect(listed.stdout).not.toContain(parseApiKey(made.key)!.secret);
    const rotated = JSON.parse(cli('apikey', 'rotate', made.keyId).stdout);
    expect(rotated.keyId).toBe(made.keyId);
    expect(rotated.key).not.toBe(made.key);
    expect(rotated.previousSecretValidUntil).toEqual(expect.any(String));
    const stored = (await new ApiKeyRepository(h.mongo).get(made.keyId))!;
    expect(await secretMatches(parseApiKey(rotated.key)!.secret, stored.salt, stored.hash)).toBe(true);
    const revoked = cli('apikey', 'revoke', made.keyId);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ keyId: made.keyId, state: 'revoked' });
    const again = cli('apikey', 'rotate', made.keyId);
    expect([again.code, again.stderr.trim()]).toEqual([1, 'key_not_active: the key is revoked; only an active key can be rotated']);
    // Each change is a security event in the audit chain that verify checks.
    const events = await h.stores.audit.model.find({ chain: 'security' }).lean();
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['key-created', 'key-rotated', 'key-revoked']));
    expect(cli('verify').code).toBe(0);
  });

  it('prices load reads both CSV shapes and the per-symbol column file, idempotently', () => {
    const spy = JSON.parse(cli('prices', 'load', join(MARKET, 'SPY_D.csv'), '--symbol', 'SPY').stdout);
    // The loss limits of accounts holding the symbol are checked now, as after POST /prices.
    expect(spy).toMatchObject({ symbol: 'SPY', rows: 5241, from: '1999-11-01', to: '2020-08-28', limitsCheck: 'queued' });
    const gspc = JSON.parse(cli('prices', 'load', join(MARKET, 'sp500.csv'), '--symbol', 'GSPC').stdout);
    expect(gspc).toMatchObject({ rows: 1258, from: '2013-10-30', to: '2018-10-26' });
    const aapl = JSON.parse(cli('prices', 'load', join(MARKET, 'test_data.csv'), '--symbol', 'AAPL').stdout);
    expect(aapl).toMatchObject({ rows: 2517, from: '2004-03-10', to: '2014-03-10' });
    const again = JSON.parse(cli('prices', 'load', join(MARKET, 'sp500.csv'), '--symbol', 'GSPC').stdout);
    expect(again.written).toBe(0);
  });
});
