import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseApiKey, secretMatches } from '../shared/auth/api-keys.js';
import { ApiKeyRepository } from '../shared/db/api-key-repository.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';
import { DIST, ROOT } from './helpers/processes.js';

const MARKET = join(ROOT, '..', 'shared', 'data', 'market');
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

  it('verify finds a modified audit record and names it, and recovers once it is restored', async () => {
    const record = await h.stores.audit.model.findOne({ chain: 'acc-a', seq: 2 }).lean();
    await h.stores.audit.model.updateOne({ _id: record!._id }, { $set: { actor: 'someone-else' } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('audit chain acc-a: record 2 its content does not match its hash (modified)');
    await h.stores.audit.model.updateOne({ _id: record!._id }, { $set: { actor: record!.actor } });
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds a deleted audit record', async () => {
    const record = await h.stores.audit.model.findOne({ chain: 'acc-b', seq: 1 }).lean();
    await h.stores.audit.model.deleteOne({ _id: record!._id });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('audit chain acc-b: record 2 expected record 1, found 2');
    await h.stores.audit.model.collection.insertOne(record!);
  });

  it('verify finds two audit records swapped in their chain', async () => {
    const [one, two] = await Promise.all([1, 2].map((seq) => h.stores.audit.model.findOne({ chain: 'acc-a', seq }).lean()));
    // Reorder: each record takes the other's place (the unique (chain, seq) index is dodged through a free seq).
    await h.stores.audit.model.updateOne({ _id: one!._id }, { $set: { seq: 999 } });
    await h.stores.audit.model.updateOne({ _id: two!._id }, { $set: { seq: 1 } });
    await h.stores.audit.model.updateOne({ _id: one!._id }, { $set: { seq: 2 } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit chain acc-a: record [12] /);
    await h.stores.audit.model.updateOne({ _id: one!._id }, { $set: { seq: 999 } });
    await h.stores.audit.model.updateOne({ _id: two!._id }, { $set: { seq: 2 } });
    await h.stores.audit.model.updateOne({ _id: one!._id }, { $set: { seq: 1 } });
    expect(cli('verify').code).toBe(0);
  });

  it('verify finds a journal entry whose balances were edited', async () => {
    const entry = await h.stores.journal.model.findOne({ accountId: 'acc-a', seq: 2 }).lean();
    await h.stores.journal.model.updateOne({ _id: entry!._id }, { $set: { 'after.cashCents': 2_100_000n } });
    const r = cli('verify');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('account acc-a: entry 2 (deposit) does not follow from entry 1');
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

  it('prices load reads both CSV shapes and the per-symbol column file, idempotently', () => {
    const spy = JSON.parse(cli('prices', 'load', join(MARKET, 'SPY_D.csv'), '--symbol', 'SPY').stdout);
    expect(spy).toMatchObject({ symbol: 'SPY', rows: 5241, from: '1999-11-01', to: '2020-08-28' });
    const gspc = JSON.parse(cli('prices', 'load', join(MARKET, 'sp500.csv'), '--symbol', 'GSPC').stdout);
    expect(gspc).toMatchObject({ rows: 1258, from: '2013-10-30', to: '2018-10-26' });
    const aapl = JSON.parse(cli('prices', 'load', join(MARKET, 'test_data.csv'), '--symbol', 'AAPL').stdout);
    expect(aapl).toMatchObject({ rows: 2517, from: '2004-03-10', to: '2014-03-10' });
    const again = JSON.parse(cli('prices', 'load', join(MARKET, 'sp500.csv'), '--symbol', 'GSPC').stdout);
    expect(again.written).toBe(0);
  });
});
