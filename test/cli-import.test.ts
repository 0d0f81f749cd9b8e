import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../services/api/auth.js';
import { Decimal } from '../shared/money/decimal.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { importCommand, importItems, itemsFromCsv } from '../scripts/cli-import.js';
import { startApi, type TestApi } from './helpers/api.js';
import { type LedgerHarness, silentLogger, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let api: TestApi;
const admin: Principal = { id: 'cli:test', role: 'admin', ownerId: null };
const cashOf = async (id: string) => loadBalances((await h.stores.journal.head(id))!.after).cash.toFixed(2);

beforeAll(async () => {
  h = await startLedger('cli-import');
  api = await startApi(h, { adminKey: 'test-admin-key-cli-import-0123' });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

describe('itemsFromCsv', () => {
  it('turns rows into bulk items: empty cells absent, close a boolean, config JSON, keys from line and content', () => {
    const items = itemsFromCsv('transactions', 'accountId,kind,amount,close,idempotencyKey\nacc_a,withdrawal,5.00,true,\nacc_a,withdrawal,5.00,true,\nacc_b,deposit,1.00,,my-key-0001\n');
    expect(items.map((i) => i.line)).toEqual([2, 3, 4]);
    expect(items[0]!.item).toMatchObject({ accountId: 'acc_a', kind: 'withdrawal', amount: '5.00', close: true });
    expect(items[2]!.item).toEqual({ accountId: 'acc_b', kind: 'deposit', amount: '1.00', idempotencyKey: 'my-key-0001' });
    // Two equal rows are two operations, and the same rows give the same keys, wherever they sit.
    const edited = itemsFromCsv('transactions', 'accountId,kind,amount,close,idempotencyKey\nacc_b,deposit,9.00,,\nacc_a,withdrawal,5.00,true,\nacc_a,withdrawal,5.00,true,\n');
    expect(edited.slice(1).map((i) => i.item['idempotencyKey'])).toEqual(items.slice(0, 2).map((i) => i.item['idempotencyKey']));
    expect(items[0]!.item['idempotencyKey']).not.toBe(items[1]!.item['idempotencyKey']);
    expect(itemsFromCsv('transactions', 'accountId,kind,amount,close,idempotencyKey\nacc_a,withdrawal,5.00,true,\n')[0]!.item['idempotencyKey']).toBe(items[0]!.item['idempotencyKey']);
    const accounts = itemsFromCsv('accounts', 'type,name,config\nGEN,x,"{""maxPositions"":2}"\n', { ownerId: 'olga' });
    expect(accounts[0]!.item).toMatchObject({ type: 'GEN', name: 'x', ownerId: 'olga', config: { maxPositions: 2 } });
  });
});

describe('import accounts and transactions', () => {
  it('imports accounts then deposits with progress, and a second import of the same files changes nothing', async () => {
    const accountsCsv = `type,name,initialDeposit,idempotencyKey\n${Array.from({ length: 30 }, (_, i) => `GEN,imported-${i},100.00,imported-acc-${i}`).join('\n')}\n`;
    const progress: number[] = [];
    const opened = await importItems(api.api, admin, 'accounts', itemsFromCsv('accounts', accountsCsv, { ownerId: 'olga' }), (d) => progress.push(d));
    expect(opened).toMatchObject({ rows: 30, applied: 30, refused: 0 });
    expect(progress.at(-1)).toBe(30);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const ids = (await h.stores.accounts.list({ ownerId: 'olga' }, { limit: 100 })).map((a) => a._id);
    expect(ids).toHaveLength(30);

    // 1,250 rows: two batches; one bad row refused alone, with its line.
    const rows = Array.from({ length: 1250 }, (_, i) => `${ids[i % 30]},deposit,${i === 7 ? '1.001' : '0.10'}`);
    const depositsCsv = `accountId,kind,amount\n${rows.join('\n')}\n`;
    const first = await importItems(api.api, admin, 'transactions', itemsFromCsv('transactions', depositsCsv));
    expect(first).toMatchObject({ rows: 1250, applied: 1249, refused: 1 });
    expect(first.batches).toHaveLength(2);
    expect(first.refusals).toEqual([{ line: 9, code: 'validation_failed', message: expect.stringContaining('amount') }]);
    const entries = await h.stores.journal.model.countDocuments();
    const again = await importItems(api.api, admin, 'transactions', itemsFromCsv('transactions', depositsCsv));
    expect(again).toEqual(first);
    expect(await h.stores.journal.model.countDocuments()).toBe(entries);
    // Account i%30 got one 0.10 per row (row 7 refused): 1250 rows over 30 accounts.
    for (const [n, id] of ids.entries()) {
      const count = rows.filter((_, i) => i % 30 === n && i !== 7).length;
      expect(await cashOf(id), `account ${n}`).toBe(new Decimal('100.00').plus(new Decimal('0.10').times(count)).toFixed(2));
    }
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });

  it('runs as the CLI command: exit 0 when every row applies, 1 when one is refused', async () => {
    const open = `type,name,initialDeposit,idempotencyKey\nGEN,cmd-main,10.00,cmd-open-0001\n`;
    expect(await importCommand(h.config, silentLogger, h.mongo, 'accounts', open, 'pete')).toBe(0);
    const [acc] = await h.stores.accounts.ids({ ownerId: 'pete' }, { limit: 1 });
    expect(await importCommand(h.config, silentLogger, h.mongo, 'transactions', `accountId,kind,amount\n${acc},withdrawal,20.00\n`, undefined)).toBe(1);
    expect(await cashOf(acc!)).toBe('10.00');
  });
});
