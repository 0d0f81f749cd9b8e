import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forecastCommand } from '../scripts/cli-forecast.js';
import { seriesFromCsv } from '../scripts/cli.js';
import { SnapshotRepository } from '../shared/db/snapshot-repository.js';
import { snapshotPage } from '../shared/ledger/snapshot.js';
import { tierRules } from '../shared/domain/tiers.js';
import { Decimal } from '../shared/money/decimal.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'forecast-admin-key-0123456';
const clock = new FixedClock(new Date('2026-10-30T22:00:00Z'));
let h: LedgerHarness;
let testApi: TestApi;
let ownerKey: string;
let strangerKey: string;

/** 60 business days from Monday 2026-08-03. */
const days: string[] = [];
for (let d = Date.UTC(2026, 7, 3); days.length < 60; d += 86_400_000) {
  const day = new Date(d).getUTCDay();
  if (day !== 0 && day !== 6) days.push(new Date(d).toISOString().slice(0, 10));
}
/** A stock that moves up to ±3 % a day, deterministically. */
const closes = days.reduce<number[]>((xs, _, i) => [...xs, i === 0 ? 100 : xs[i - 1]! * (1 + 0.03 * Math.sin(i * 2.39) + 0.001)], []);

const get = async (url: string, key = ADMIN) => {
  const res = await testApi.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, body: JSON.parse(res.body) };
};

beforeAll(async () => {
  h = await startLedger('forecast');
  const snapshots = new SnapshotRepository(h.mongo);
  await snapshots.init();
  testApi = await startApi(h, { adminKey: ADMIN, clock });
  [ownerKey, strangerKey] = await Promise.all([makeKey(testApi.keys, 'viewer', 'owner-1'), makeKey(testApi.keys, 'viewer', 'owner-2')]);
  await h.stores.prices.upsert(days.map((date, i) => ({ symbol: 'WAVE', date, close: new Decimal(closes[i]!).toDecimalPlaces(6) })));
  await openAccount(h, 'fc-main', '100000.00');
  await openAccount(h, 'fc-strict', '100000.00', { config: { drawdownLimit: '0.10' } });
  for (const id of ['fc-main', 'fc-strict']) await h.run('trade', { accountId: id, idempotencyKey: `fc-buy-${id}`, actor: 'test', side: 'buy', symbol: 'WAVE', quantity: '190', price: '100.00' });
  const snapshotDay = async (date: string) => {
    await snapshots.markDay(date, clock.now());
    await snapshotPage({ stores: h.stores, snapshots, clock }, date, null);
  };
  for (const date of days.slice(0, 50)) await snapshotDay(date);
  // Opened late: ten points, nine returns.
  await openAccount(h, 'fc-new', '20000.00');
  for (const date of days.slice(50)) await snapshotDay(date);
});
afterAll(async () => {
  await testApi?.close();
  await h?.close();
});

describe('GET /api/v1/accounts/{id}/forecast', () => {
  it('answers quantiles, line probabilities and the method, from the account\'s points and rules', async () => {
    const { status, body } = await get('/api/v1/accounts/fc-main/forecast?horizon=21&paths=2000&seed=7', ownerKey);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      accountId: 'fc-main',
      asOf: days.at(-1),
      horizon: 21,
      paths: 2000,
      startValue: expect.stringMatching(/^\d+\.\d{2}$/),
      // GEN's rules; the fleet's drawdown alert when neither account nor tier sets one.
      forkLine: tierRules(h.config, 'GEN').forkLine!.toFixed(2),
      minCapital: tierRules(h.config, 'GEN').minCapital.toFixed(2),
      drawdownLimit: h.config.alerts.drawdownMax,
      method: { method: 'stationary-bootstrap', paths: 2000, horizon: 21, seed: 7, sampleSize: 59 },
    });
    const q = ['p05', 'p25', 'p50', 'p75', 'p95'].map((k) => new Decimal(body.quantiles[k]));
    for (let i = 1; i < q.length; i++) expect(q[i]!.gte(q[i - 1]!)).toBe(true);
    expect(q[0]!.lt(q[4]!)).toBe(true);
    for (const p of Object.values(body.probabilities)) expect(p).toBeGreaterThanOrEqual(0);
    expect(body.probabilities.reachForkLine).toBeLessThanOrEqual(1);
    expect(body.expectedForkDate === null || body.expectedForkDate > body.asOf).toBe(true);
  });

  it('answers the same forecast for the same seed, and the fixed default seed without one', async () => {
    const a = await get('/api/v1/accounts/fc-main/forecast?seed=42');
    const b = await get('/api/v1/accounts/fc-main/forecast?seed=42');
    expect(b.body).toEqual(a.body);
    expect((await get('/api/v1/accounts/fc-main/forecast?seed=43')).body.quantiles).not.toEqual(a.body.quantiles);
    const byDefault = await get('/api/v1/accounts/fc-main/forecast');
    expect(byDefault.body).toMatchObject({ horizon: 21, paths: 2000, method: { seed: 1 } });
    expect((await get('/api/v1/accounts/fc-main/forecast?seed=1')).body).toEqual(byDefault.body);
  });

  it('uses the account\'s own drawdown limit', async () => {
    const { body } = await get('/api/v1/accounts/fc-strict/forecast', ownerKey);
    expect(body.drawdownLimit).toBe('0.10');
  });

  it('hides another owner\'s account (404) and refuses bad parameters (400)', async () => {
    expect((await get('/api/v1/accounts/fc-main/forecast', strangerKey)).status).toBe(404);
    expect((await get('/api/v1/accounts/no-such/forecast')).status).toBe(404);
    for (const q of ['horizon=0', 'horizon=253', 'paths=99', 'paths=20001', 'seed=-1', 'seed=1.5', 'extra=1']) {
      expect((await get(`/api/v1/accounts/fc-main/forecast?${q}`)).status, q).toBe(400);
    }
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await get('/api/v1/openapi.json')).body;
    expect(Object.keys(doc.paths)).toContain('/api/v1/accounts/{id}/forecast');
    expect(doc.paths['/api/v1/accounts/{id}/forecast'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['horizon', 'paths', 'seed', 'id']));
  });

  it('refuses an account with too little history (422)', async () => {
    const { status, body } = await get('/api/v1/accounts/fc-new/forecast', ownerKey);
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ code: 'insufficient_history', message: expect.stringContaining('9') });
  });
});

describe('npm run cli -- forecast', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forecast-'));
  const csv = (name: string, values: number[]) => {
    const path = join(dir, name);
    writeFileSync(path, `date,value\n${values.map((v, i) => `${days[i]},${v.toFixed(2)}`).join('\n')}\n`);
    return path;
  };
  const run = (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const [write, writeErr] = [process.stdout.write, process.stderr.write];
    process.stdout.write = ((chunk: string) => (out.push(chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => (err.push(chunk), true)) as typeof process.stderr.write;
    try {
      const code = forecastCommand(argv, seriesFromCsv);
      return { code, out: out.length ? JSON.parse(out.join('')) : null, err: err.join('') };
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
  };

  it('prints the API\'s shape for a date,value series, reproducibly', () => {
    const path = csv('values.csv', closes.map((c) => 50_000 + c * 500));
    const r = run('--values', path, '--horizon', '10', '--paths', '500', '--seed', '3', '--fork-line', '115000', '--min-capital', '90000', '--drawdown-limit', '0.2');
    expect(r.code).toBe(0);
    expect(r.out).toMatchObject({ accountId: null, asOf: days.at(-1), horizon: 10, paths: 500, forkLine: '115000.00', minCapital: '90000.00', drawdownLimit: '0.2', method: { seed: 3, sampleSize: 59 } });
    expect(Object.keys(r.out.quantiles)).toEqual(['p05', 'p25', 'p50', 'p75', 'p95']);
    expect(Object.keys(r.out.probabilities)).toEqual(['reachForkLine', 'breachMinCapital', 'breachDrawdown']);
    expect(new Decimal(r.out.quantiles.p05).lte(r.out.quantiles.p95)).toBe(true);
    expect(run('--values', path, '--horizon', '10', '--paths', '500', '--seed', '3', '--fork-line', '115000', '--min-capital', '90000', '--drawdown-limit', '0.2').out).toEqual(r.out);
    // Without lines, no probabilities of them.
    expect(run('--values', path).out).toMatchObject({ horizon: 21, paths: 2000, forkLine: null, probabilities: { reachForkLine: null, breachMinCapital: null, breachDrawdown: null }, expectedForkDate: null, method: { seed: 1 } });
  });

  it('refuses bad flags (2) and a short series (1)', () => {
    expect(run('--horizon', '5')).toMatchObject({ code: 2, err: expect.stringContaining('--values') });
    expect(run('--values', 'x.csv', '--paths', '10').code).toBe(2);
    expect(run('--values', 'x.csv', '--fork-line', '1e5').code).toBe(2);
    expect(run('--values', 'x.csv', '--nope', '1').code).toBe(2);
    const short = run('--values', csv('short.csv', [100, 101, 102, 101, 103]));
    expect(short).toMatchObject({ code: 1, err: expect.stringContaining('insufficient_history') });
  });
});
