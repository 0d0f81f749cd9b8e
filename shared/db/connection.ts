import mongoose, { type Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../runtime/logger.js';
import { redactUrl } from '../runtime/logger.js';

/**
 * The durability and routing every operation of the connection inherits (no repository sets its own):
 * writes acknowledged by a majority of members, each with the write in its on-disk journal, retried
 * once by the driver after a failover; reads from the primary only (docs/scaling.md).
 */
export function mongoDurability(opts: Config['mongo']) {
  return {
    writeConcern: { w: opts.writeConcern, journal: opts.journal, wtimeoutMS: opts.wtimeoutMs },
    retryWrites: opts.retryWrites,
    retryReads: opts.retryReads,
    readPreference: opts.readPreference,
  } as const;
}

/**
 * URL options that would weaken the configured write concern behind its back (the driver lets a URL's
 * `journal=false` win over the `writeConcern` option): refused, so the config is the one place.
 */
const DURABILITY_URL_OPTIONS = ['w', 'journal', 'j', 'wtimeoutms', 'wtimeout', 'fsync', 'readpreference', 'retrywrites', 'retryreads'];

function refuseDurabilityInUrl(url: string): void {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const found = [...new URLSearchParams(query).keys()].filter((k) => DURABILITY_URL_OPTIONS.includes(k.toLowerCase()));
  if (found.length > 0) {
    throw new Error(`mongodb at ${redactUrl(url)}: ${found.join(', ')} in the URL; set mongo.writeConcern, journal, wtimeoutMs, retryWrites, retryReads and readPreference in the config instead`);
  }
}

/**
 * One connection per process (not mongoose's global default, so tests and tools can hold several).
 * int64 fields come back as bigint (useBigInt64), never as a lossy number or a Long to convert.
 * Indexes are built on purpose by each repository's init, not implicitly on first use.
 */
export async function connectMongo(url: string, opts: Config['mongo'], logger: Logger): Promise<Connection> {
  refuseDurabilityInUrl(url);
  const connection = mongoose.createConnection(url, {
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs,
    connectTimeoutMS: opts.connectTimeoutMs,
    socketTimeoutMS: opts.socketTimeoutMs,
    maxPoolSize: opts.maxPoolSize,
    ...mongoDurability(opts),
    useBigInt64: true,
    autoIndex: false,
    autoCreate: true,
    // Every command is counted (fleet_db_commands_total): the round trips an operation costs are measured, not guessed.
    monitorCommands: true,
  });
  connection.on('disconnected', () => {
    if (!closing.has(connection)) logger.warn('mongodb disconnected');
  });
  connection.on('reconnected', () => logger.info('mongodb reconnected'));
  try {
    await connection.asPromise();
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw new Error(`mongodb at ${redactUrl(url)} unreachable: ${(err as Error).message}`);
  }
  return connection;
}

const closing = new WeakSet<Connection>();

/** Closes on purpose: the disconnect that follows is not an outage and is not logged as one. */
export async function closeMongo(connection: Connection): Promise<void> {
  closing.add(connection);
  await connection.close();
}

/** Cheap liveness probe for /readyz. */
export async function pingMongo(connection: Connection): Promise<boolean> {
  if (connection.readyState !== 1 || !connection.db) return false;
  await connection.db.admin().command({ ping: 1 });
  return true;
}

/** MongoDB's duplicate-key error: the expected answer of a lost append race or a replayed insert. */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

/** Counts every command the connection sends to the server, by command name. */
export function countCommands(connection: Connection, count: (command: string) => void): void {
  connection.getClient().on('commandStarted', (e: { commandName: string }) => count(e.commandName));
}
