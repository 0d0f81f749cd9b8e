/**
 * `npm run cli -- <command>` against the fleet's MongoDB (MONGODB_URL):
 *   verify                                  every ledger invariant and the audit chain; exit 1 on the first problem
 *   apikey create --role <role> [--owner <id>] [--expires <ISO time>] [--label <text>]   prints a new key once (only its hash is stored)
 *   apikey list [--owner <id>]              every key without its secret: state, expiry, last use
 *   apikey revoke <keyId>                   refused at once by every API replica (published over REDIS_URL)
 *   apikey rotate <keyId>                   a new secret; the old one works for api.keyRotationGraceMs
 *   prices load <csv> --symbol <S>          `date,close` or `date,open,high,low,close,volume` (any column order);
 *                                           queues the loss-limit check of the accounts holding S (REDIS_URL)
 *   import accounts|transactions <csv> [--owner <id>]   bulk batches of ≤1,000 rows with a progress bar (REDIS_URL);
 *                                           the same file again is a replay; exit 1 when a row was refused
 *   dead-letters list|show|replay|discard   the API's /dead-letters (REDIS_URL for replays); audited as cli:<user>
 *   stress (--accounts a,b | --root id) (--scenario name | --shock S=-0.25 | --market -0.3 | --window from..to)
 *                                           positions revalued under a scenario, with what the fleet's rules would do
 *   metrics --values <csv> [--benchmark <csv>] [--rf 0.02]   SPEC §7.2 figures of a `date,value` series (no database)
 *   forecast --values <csv> [--horizon 21] [--paths 2000] [--seed 1] [--fork-line X] [--min-capital X] [--drawdown-limit 0.2]
 *                                           the value's bootstrap quantiles and line probabilities (no database)
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { pino } from 'pino';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../config/load.js';
import { userInfo } from 'node:os';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { ROLES } from '../shared/auth/api-keys.js';
import { KeyError, type KeyDeps, createKey, keyChangesChannel, listKeys, revokeKey, rotateKey } from '../shared/auth/key-lifecycle.js';
import { SecurityEvents } from '../shared/auth/security-events.js';
import { id, isoDate, symbol as symbolSchema } from '../shared/contracts/fields.js';
import { ApiKeyRepository } from '../shared/db/api-key-repository.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { closeMongo, connectMongo } from '../shared/db/connection.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { Decimal } from '../shared/money/decimal.js';
import { parseDecimal } from '../shared/money/parse.js';
import { alignOnDates, benchmarkMetrics, returnMetrics, returnsFrom, type Point } from '../shared/analytics/metrics.js';
import { roundTo } from '../shared/money/units.js';
import { createLogger, type Logger } from '../shared/runtime/logger.js';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { connectRedis, type RedisClient } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { importCommand } from './cli-import.js';
import { DEAD_LETTERS_USAGE, deadLetterCommand } from './cli-dead-letters.js';
import { FORECAST_USAGE, forecastCommand } from './cli-forecast.js';
import { STRESS_USAGE, stressCommand } from './cli-stress.js';

const USAGE = `usage:
  npm run cli -- metrics --values <date,value csv> [--benchmark <date,value csv>] [--rf 0.02]
${FORECAST_USAGE}
  npm run cli -- verify
  npm run cli -- apikey create --role <${ROLES.join('|')}> [--owner <ownerId>] [--expires <ISO time>] [--label <text>]
  npm run cli -- apikey list [--owner <ownerId>]
  npm run cli -- apikey revoke <keyId>
  npm run cli -- apikey rotate <keyId>
  npm run cli -- prices load <file.csv> --symbol <SYMBOL>
  npm run cli -- import accounts <file.csv> [--owner <ownerId>]      columns: type,name,ownerId,parentId,initialDeposit,config,idempotencyKey
  npm run cli -- import transactions <file.csv>                       columns: accountId,kind,amount,toAccountId,side,symbol,quantity,price,fees,reason,close,idempotencyKey
${DEAD_LETTERS_USAGE}
${STRESS_USAGE}`;

class UsageError extends Error {}

/** A CSV row → a close: any header spelling of date/close; US dates (M/D/YYYY) are normalised. */
export function priceRowsFromCsv(text: string, symbol: string): Array<{ date: string; close: Decimal }> {
  const rows = parse(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true }) as Array<Record<string, string>>;
  return rows.map((row, i) => {
    const rawDate = row['date'];
    // A per-symbol file has a close column; a multi-symbol file has a column named after the symbol.
    const rawClose = row['close'] ?? row[symbol.toLowerCase()];
    if (!rawDate || !rawClose) throw new UsageError(`row ${i + 2}: needs a date column and a close (or ${symbol}) column`);
    const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(rawDate);
    const date = us ? `${us[3]}-${us[1]!.padStart(2, '0')}-${us[2]!.padStart(2, '0')}` : rawDate;
    if (!isoDate.safeParse(date).success) throw new UsageError(`row ${i + 2}: not a date: ${rawDate}`);
    const close = new Decimal(rawClose);
    if (!close.isFinite() || !close.isPositive() || close.isZero()) throw new UsageError(`row ${i + 2}: not a positive close: ${rawClose}`);
    // Stored prices keep 6 places (SPEC §3.1); longer closes are rounded here, once.
    return { date, close: roundTo('price', close) };
  });
}

/** A `date,value` CSV → points in date order; values are decimals, refused if not plain positive numbers. */
export function seriesFromCsv(text: string, name: string): Point[] {
  const rows = parse(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true }) as Array<Record<string, string>>;
  const points = rows.map((row, i) => {
    if (!row['date'] || !row['value']) throw new UsageError(`${name} row ${i + 2}: needs date and value columns`);
    if (!isoDate.safeParse(row['date']).success) throw new UsageError(`${name} row ${i + 2}: not a date: ${row['date']}`);
    let value: Decimal;
    try {
      value = parseDecimal(row['value']);
    } catch {
      throw new UsageError(`${name} row ${i + 2}: not a plain decimal value: ${row['value']}`);
    }
    if (!value.isPositive() || value.isZero()) throw new UsageError(`${name} row ${i + 2}: values must be positive`);
    return { date: row['date'], value };
  });
  return points.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

/** Every figure of SPEC §7.2 for a series, and against a benchmark aligned to its dates when one is given. */
export function seriesMetrics(series: Point[], benchmark: Point[] | undefined, rf: number) {
  if (!benchmark) return returnMetrics(returnsFrom(series), series.map((p) => p.value.toNumber()), rf);
  const aligned = alignOnDates(series, benchmark);
  const r = returnsFrom(aligned.account);
  return {
    ...returnMetrics(r, aligned.account.map((p) => p.value.toNumber()), rf),
    ...benchmarkMetrics(r, returnsFrom(aligned.benchmark), rf),
    alignedPoints: aligned.account.length,
  };
}

async function main(argv: string[]): Promise<number> {
  // Before the shared flags: the command parses its own, and needs no database.
  if (argv[0] === 'forecast') return forecastCommand(argv.slice(1), seriesFromCsv);
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { queue: { type: 'string' }, name: { type: 'string' }, since: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' }, role: { type: 'string' }, owner: { type: 'string' }, expires: { type: 'string' }, label: { type: 'string' }, symbol: { type: 'string' }, values: { type: 'string' }, benchmark: { type: 'string' }, rf: { type: 'string' }, accounts: { type: 'string' }, root: { type: 'string' }, scenario: { type: 'string' }, shock: { type: 'string', multiple: true }, market: { type: 'string' }, window: { type: 'string' } },
  });
  const [command, sub, arg] = positionals;
  if (command === 'metrics') {
    if (!values.values) throw new UsageError(USAGE);
    const rf = values.rf === undefined ? 0.02 : Number(values.rf);
    if (!Number.isFinite(rf) || rf < -0.5 || rf > 1) throw new UsageError('--rf must be an annual rate such as 0.02');
    const series = seriesFromCsv(readFileSync(values.values, 'utf8'), values.values);
    const benchmark = values.benchmark ? seriesFromCsv(readFileSync(values.benchmark, 'utf8'), values.benchmark) : undefined;
    process.stdout.write(`${JSON.stringify(seriesMetrics(series, benchmark, rf))}\n`);
    return 0;
  }
  const config = loadConfig();
  // stdout carries the command's JSON answer; logs go to stderr.
  const logger = createLogger({ service: 'cli', level: 'warn' }, pino.destination(2));
  const mongo = await connectMongo(config.mongodbUrl, config.mongo, logger);
  try {
    if (command === 'verify') {
      const report = await verifyLedger(await openLedgerStores(mongo), { idle: true });
      process.stdout.write(`${JSON.stringify({ ok: report.ok, accounts: report.accounts, entries: report.entries, violations: report.violations, driftAccounts: report.driftAccounts, openTransfers: report.openTransfers, sagaConservationViolations: report.sagaConservationViolations, auditRecords: report.audit.records, auditBreaks: report.audit.breaks.length, totals: report.totals })}\n`);
      if (!report.ok) {
        process.stderr.write(`verify failed: ${report.problems[0] ?? 'unknown problem'}\n`);
        for (const p of report.problems.slice(1, 10)) process.stderr.write(`  also: ${p}\n`);
        return 1;
      }
      return 0;
    }
    if (command === 'apikey' && sub) return await apiKeyCommand(config, logger, mongo, sub, arg, values);
    if (command === 'stress') return await stressCommand(config, logger, mongo, values);
    if (command === 'dead-letters' && sub) return await deadLetterCommand(config, logger, mongo, sub, arg, values, () => new UsageError(USAGE));
    if (command === 'import' && (sub === 'accounts' || sub === 'transactions') && arg) {
      const owner = values.owner === undefined ? undefined : id.parse(values.owner);
      return await importCommand(config, logger, mongo, sub, readFileSync(arg, 'utf8'), owner);
    }
    if (command === 'prices' && sub === 'load' && arg) {
      const sym = symbolSchema.safeParse(values.symbol);
      if (!sym.success) throw new UsageError('--symbol must be an upper-case ticker such as SPY');
      const rows = priceRowsFromCsv(readFileSync(arg, 'utf8'), sym.data);
      const stores = await openLedgerStores(mongo);
      const written = await stores.prices.upsert(rows.map((r) => ({ symbol: sym.data, ...r })));
      // As after POST /prices: the loss limits of the accounts holding the symbol act on the new closes now.
      const limitsCheck = await queueLimitsCheck(config, logger, sym.data);
      process.stdout.write(`${JSON.stringify({ symbol: sym.data, rows: rows.length, written, from: rows[0]?.date ?? null, to: rows.at(-1)?.date ?? null, limitsCheck })}\n`);
      return 0;
    }
    throw new UsageError(USAGE);
  } finally {
    await closeMongo(mongo);
  }
}

/** `apikey create|list|revoke|rotate`: the same lifecycle as the API's /keys routes, acting as `cli:<user>`. */
async function apiKeyCommand(config: Config, logger: Logger, mongo: Connection, sub: string, arg: string | undefined, values: { role?: string | undefined; owner?: string | undefined; expires?: string | undefined; label?: string | undefined }): Promise<number> {
  const keys = new ApiKeyRepository(mongo);
  const stores = await openLedgerStores(mongo);
  await keys.init();
  const actor = `cli:${userInfo().username}`;
  const out = (x: unknown) => void process.stdout.write(`${JSON.stringify(x)}\n`);
  const withKeys = async (publisher: RedisClient | null) => {
    // With Redis, the CLI takes the same document locks as the API (FerretDB's updates read, then write).
    if (publisher) keys.useLocks(new RedisDocLocks(publisher, config.queuePrefix));
    const deps: KeyDeps = { keys, events: new SecurityEvents(stores.audit, () => new Date(), logger, new Registry()), publisher, channel: keyChangesChannel(config.queuePrefix), now: () => new Date() };
    try {
      if (sub === 'create') {
        const role = z.enum(ROLES).safeParse(values.role);
        if (!role.success) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
        const owner = values.owner === undefined ? null : id.parse(values.owner);
        if (role.data !== 'admin' && !owner) throw new UsageError('viewer and operator keys need --owner <ownerId>');
        const expires = values.expires === undefined ? null : z.iso.datetime({ offset: true }).safeParse(values.expires);
        if (expires && !expires.success) throw new UsageError('--expires must be an ISO time such as 2027-01-31T00:00:00Z');
        const made = await createKey(deps, { role: role.data, ownerId: owner, expiresAt: expires ? new Date(expires.data!) : null, label: values.label ?? null }, actor);
        out({ key: made.key, ...made.view });
      } else if (sub === 'list') {
        const all = [];
        for (let page = await listKeys(deps, { ownerId: values.owner }, { limit: 200 }); ; page = await listKeys(deps, { ownerId: values.owner }, { afterId: page.nextCursor!, limit: 200 })) {
          all.push(...page.items);
          if (!page.nextCursor) break;
        }
        out({ items: all });
      } else if ((sub === 'revoke' || sub === 'rotate') && arg) {
        if (!/^[a-f0-9]{16}$/.test(arg)) throw new UsageError('a key id is 16 hex digits (the part after fk_)');
        out(sub === 'revoke' ? await revokeKey(deps, arg, actor) : await rotateKey(deps, arg, config.api.keyRotationGraceMs, actor).then((m) => ({ key: m.key, ...m.view })));
        if (!publisher) process.stderr.write('Redis not reachable: API replicas learn of the change within api.authCacheMs\n');
      } else throw new UsageError(USAGE);
      return 0;
    } catch (err) {
      if (err instanceof KeyError) {
        process.stderr.write(`${err.code}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  };
  if (sub !== 'revoke' && sub !== 'rotate') return withKeys(null);
  // Revocations and rotations are published to the API replicas; without Redis they still apply within the cache time.
  const redis = await connectRedis(config, 'producer', 'cli', logger, 3000).catch(() => null);
  try {
    return await withKeys(redis);
  } finally {
    await redis?.quit().catch(() => undefined);
  }
}

/** Enqueues the limits check of a price load; 'skipped' (with the reason on stderr) when Redis cannot be reached: the next snapshot checks them. */
async function queueLimitsCheck(config: ReturnType<typeof loadConfig>, logger: ReturnType<typeof createLogger>, symbol: string): Promise<'queued' | 'skipped'> {
  let producer: Producer | null = null;
  let redis: Awaited<ReturnType<typeof connectRedis>> | null = null;
  try {
    redis = await connectRedis(config, 'producer', 'cli', logger, 3000);
    producer = new Producer(redis, config);
    await producer.enqueue(QUEUE.snapshot, 'limits', { symbols: [symbol] }, { jobId: jobId('limits', randomUUID()) });
    return 'queued';
  } catch (err) {
    process.stderr.write(`loss limits not checked now (${(err as Error).message}); the next snapshot checks them\n`);
    return 'skipped';
  } finally {
    await producer?.close().catch(() => undefined);
    await redis?.quit().catch(() => undefined);
  }
}

if (process.argv[1]?.endsWith('cli.js')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof UsageError || err instanceof ConfigError ? err.message : (err as Error).stack ?? String(err)}\n`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
