import type { Connection, Model, Schema } from 'mongoose';
import { isDuplicateKeyError } from './connection.js';
import { type DocLocks, LocalDocLocks, withDocLocks } from './doc-locks.js';

/** The connection's model of that name, compiled on first use (a second repository reuses it). */
export function modelOn<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? (connection.model<T>(name, schema) as unknown as Model<T>);
}

/** A repository over one model: the model compiled on the connection, and its indexes built on init. */
export abstract class Repository<T> {
  readonly model: Model<T>;
  protected locks: DocLocks = new LocalDocLocks();

  protected constructor(connection: Connection, name: string, schema: Schema<T>) {
    this.model = modelOn<T>(connection, name, schema);
  }

  /** The locks every update of a document shared by several processes takes (Redis when there are several). */
  useLocks(locks: DocLocks): void {
    this.locks = locks;
  }

  /**
   * A compare-and-set on one document, made under its lock: on FerretDB an update reads and then
   * writes the whole document, so only one writer at a time makes the filter mean what it says.
   * Answers whether the document matched and was changed.
   */
  protected async updateLocked(id: string, filter: Record<string, unknown>, update: Record<string, unknown>): Promise<boolean> {
    return withDocLocks(this.locks, [id], async () => (await this.model.updateOne({ _id: id, ...filter } as never, update as never)).modifiedCount === 1);
  }

  /** Builds the indexes the repository relies on (unique ones included); idempotent. */
  async init(): Promise<void> {
    await this.model.createIndexes();
  }

  /**
   * Inserts the document unless its unique key is taken: the insert-once that makes a replay safe.
   * Answers the document now stored (this one, or the one that was first) and whether this call made it.
   */
  protected async insertOnce(doc: T, storedOne: () => Promise<T | null>): Promise<{ stored: T; created: boolean }> {
    try {
      await this.model.create(doc);
      return { stored: doc, created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      return { stored: (await storedOne()) ?? doc, created: false };
    }
  }
}

/** What became of one document of a batch insert. */
export type InsertResult = 'inserted' | 'duplicate';

/**
 * Inserts a batch in one command, unordered: each document stands or falls alone. A duplicate key is
 * that document's answer. A batch error is trusted per document only when every failure is a duplicate
 * key and the rest were counted inserted: anything else (a lost connection, a timeout) leaves the
 * outcome unknown and is thrown (every document has a unique key, so a retry finds what landed).
 */
export async function insertBatch(model: Model<never> | Model<unknown>, docs: unknown[]): Promise<InsertResult[]> {
  const results: InsertResult[] = docs.map(() => 'inserted');
  if (docs.length === 0) return results;
  try {
    await model.collection.insertMany(docs as never[], { ordered: false });
  } catch (err) {
    const e = err as { writeErrors?: Array<{ index: number; code: number }> | { index: number; code: number }; result?: { insertedCount?: number; getWriteConcernError?: () => unknown } };
    const list = Array.isArray(e.writeErrors) ? e.writeErrors : e.writeErrors ? [e.writeErrors] : [];
    const insertedCount = e.result?.insertedCount;
    // A write-concern error (a majority not reached in wtimeout) beside the duplicates leaves the other
    // documents' fate unknown: the whole batch fails, and its retry decides each one from the unique keys.
    const concernFailed = !!e.result?.getWriteConcernError?.();
    const consistent = !concernFailed && list.length > 0 && list.every((w) => w.code === 11000) && (insertedCount === undefined || insertedCount === docs.length - list.length);
    if (!consistent) throw err;
    for (const w of list) results[w.index] = 'duplicate';
  }
  return results;
}
