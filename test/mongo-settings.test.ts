import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mongoose';
import { ConfigError, loadConfig } from '../config/load.js';
import { connectMongo } from '../shared/db/connection.js';
import { type LedgerHarness, openAccount, silentLogger, startLedger } from './helpers/ledger-harness.js';
import { isolatedEnv } from './helpers/env.js';

/** What the driver put on the wire: every command a connection sent, by name, with its body. */
function recordCommands(connection: Connection): Array<{ name: string; command: Record<string, unknown> }> {
  const seen: Array<{ name: string; command: Record<string, unknown> }> = [];
  connection.getClient().on('commandStarted', (e: { commandName: string; command: Record<string, unknown> }) => seen.push({ name: e.commandName, command: e.command }));
  return seen;
}

const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify']);

describe('MongoDB durability settings', () => {
  let h: LedgerHarness;
  beforeAll(async () => {
    h = await startLedger('mongo-settings');
  });
  afterAll(async () => h?.close());

  it("gives the client the configured write concern, retries and read preference", () => {
    const options = h.mongo.getClient().options;
    expect(options.writeConcern).toMatchObject({ w: 'majority', journal: true, wtimeoutMS: 10_000 });
    expect(options.retryWrites).toBe(true);
    expect(options.retryReads).toBe(true);
    expect(options.readPreference.mode).toBe('primary');
  });

  it("sends every ledger write with w 'majority' and j true, and the server accepts them", async () => {
    const seen = recordCommands(h.mongo);
    await openAccount(h, 'acc-durable', '25000.00');
    const deposit = await h.run('deposit', { accountId: 'acc-durable', idempotencyKey: 'durable-1', actor: 'test', amount: '10.00' });
    // A replay under the same key: its write is a duplicate key, answered from the entry.
    const replay = await h.run('deposit', { accountId: 'acc-durable', idempotencyKey: 'durable-1', actor: 'test', amount: '10.00' }, 'durable-1-replay');
    expect(deposit.status).toBe('applied');
    expect(replay).toEqual(deposit);

    const writes = seen.filter((c) => WRITES.has(c.name));
    // The account's document, its open and deposit entries, the projection: at least one of each kind.
    expect(writes.map((w) => w.name)).toEqual(expect.arrayContaining(['insert', 'update']));
    expect(writes.some((w) => w.command['insert'] === 'journal')).toBe(true);
    for (const w of writes) {
      expect({ command: w.name, collection: w.command[w.name], writeConcern: w.command['writeConcern'] }).toEqual({
        command: w.name,
        collection: w.command[w.name],
        writeConcern: { w: 'majority', j: true, wtimeout: 10_000 },
      });
    }
    // And what was written is there, read back from the primary.
    const head = await h.stores.journal.head('acc-durable');
    expect(head?.seq).toBe(2);
  });
});

describe('MongoDB settings from the environment', () => {
  const iso = isolatedEnv('mongo-env');
  let mongo: Connection | null = null;
  afterAll(async () => {
    await mongo?.dropDatabase();
    await mongo?.close();
  });

  it('takes a number of members and no journal from FLEET__MONGO__…, and the writes carry them', async () => {
    const config = loadConfig({ ...iso.env, FLEET__MONGO__WRITE_CONCERN: '1', FLEET__MONGO__JOURNAL: 'false', FLEET__MONGO__WTIMEOUT_MS: '2500' });
    expect(config.mongo).toMatchObject({ writeConcern: 1, journal: false, wtimeoutMs: 2500 });
    mongo = await connectMongo(config.mongodbUrl, config.mongo, silentLogger);
    const seen = recordCommands(mongo);
    await mongo.db!.collection('probe').insertOne({ at: new Date() });
    const insert = seen.find((c) => c.name === 'insert');
    expect(insert?.command['writeConcern']).toEqual({ w: 1, j: false, wtimeout: 2500 });
  });

  it('refuses an unacknowledged write concern, a read from secondaries and no timeout', () => {
    const bad = (env: Record<string, string>) => () => loadConfig({ ...iso.env, ...env });
    expect(bad({ FLEET__MONGO__WRITE_CONCERN: '0' })).toThrow(/mongo\.writeConcern \(from FLEET__MONGO__WRITE_CONCERN\)/);
    expect(bad({ FLEET__MONGO__WRITE_CONCERN: 'all' })).toThrow(ConfigError);
    expect(bad({ FLEET__MONGO__READ_PREFERENCE: 'secondaryPreferred' })).toThrow(/mongo\.readPreference/);
    expect(bad({ FLEET__MONGO__WTIMEOUT_MS: '0' })).toThrow(/mongo\.wtimeoutMs/);
    expect(bad({ FLEET__MONGO__RETRY_WRITES: 'maybe' })).toThrow(/mongo\.retryWrites/);
  });

  it('refuses durability options in the URL, which would override the configured write concern', async () => {
    const config = loadConfig(iso.env);
    const url = `${config.mongodbUrl}?journal=false&w=1`;
    await expect(connectMongo(url, config.mongo, silentLogger)).rejects.toThrow(/journal, w in the URL/);
  });
});
