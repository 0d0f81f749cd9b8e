import mongoose, { type Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../runtime/logger.js';
import { redactUrl } from '../runtime/logger.js';

/**
 * One connection per process (not mongoose's global default, so tests and tools can hold several).
 * int64 fields come back as bigint (useBigInt64), never as a lossy number or a Long to convert.
 * Indexes are built on purpose by each repository's init, not implicitly on first use.
 */
export async function connectMongo(url: string, opts: Config['mongo'], logger: Logger): Promise<Connection> {
  const connection = mongoose.createConnection(url, {
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs,
    connectTimeoutMS: opts.connectTimeoutMs,
    socketTimeoutMS: opts.socketTimeoutMs,
    maxPoolSize: opts.maxPoolSize,
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
