import { Schema, type Connection } from 'mongoose';
import type { EntryKind } from '../domain/ledger.js';
import { type InsertResult, Repository, insertBatch } from './model.js';
export type { InsertResult } from './model.js';
import { type StoredBalances, type StoredTotals, storedBalancesDefinition, storedTotalsDefinition } from './stored-balances.js';
import type { StoredOperation } from './stored-operation.js';

/**
 * One journal entry: append-only, numbered per account, holding the balances and running totals after
 * it. It is the posting's one write: it carries the scoped idempotency key and the payload hash (a
 * replay, or a reuse with other data, is answered from the entry), who asked, the saga it belongs to,
 * and the link of the account's hash chain (the previous entry's hash).
 */
export interface StoredEntry {
  accountId: string;
  seq: number;
  kind: EntryKind;
  /** Globally unique: the one decision (applied or refused) ever taken under this key. */
  idempotencyKey: string;
  /** Hash of what the client asked, for client operations; null for saga steps. */
  payloadHash: string | null;
  /** The fork, merge or transfer this entry is a step of; null for a client's own operation. */
  sagaId: string | null;
  op: StoredOperation;
  realisedPnlCents: bigint;
  after: StoredBalances;
  totals: StoredTotals;
  actor: string;
  jobId: string | null;
  /** The fleet's business date when it was appended. */
  day: string;
  at: Date;
  prevHash: string;
  hash: string;
}

const entrySchema = new Schema<StoredEntry>(
  {
    accountId: { type: String, required: true },
    seq: { type: Number, required: true, min: 1 },
    kind: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
    payloadHash: { type: String, default: null },
    sagaId: { type: String, default: null },
    op: {
      _id: false,
      amountCents: BigInt,
      close: Boolean,
      transferId: String,
      counterpartyId: String,
      side: String,
      symbol: String,
      quantityUnits: BigInt,
      priceMicros: BigInt,
      feesCents: BigInt,
      reason: String,
      toState: String,
      owner: String,
      forkId: String,
      mergeId: String,
      positions: { type: [{ _id: false, symbol: String, quantityUnits: BigInt, costBasisCents: BigInt }], default: undefined },
      valueCents: BigInt,
      closesSource: Boolean,
      buys: { type: [{ _id: false, symbol: String, quantityUnits: BigInt, priceMicros: BigInt }], default: undefined },
      code: String,
      operation: String,
    },
    realisedPnlCents: { type: BigInt, required: true },
    after: { _id: false, ...storedBalancesDefinition },
    totals: { _id: false, ...storedTotalsDefinition },
    actor: { type: String, required: true },
    jobId: { type: String, default: null },
    day: { type: String, required: true },
    at: { type: Date, required: true },
    prevHash: { type: String, required: true },
    hash: { type: String, required: true },
  },
  { collection: 'journal', versionKey: false, strict: 'throw' },
);
entrySchema.index({ accountId: 1, seq: 1 }, { unique: true });
entrySchema.index({ idempotencyKey: 1 }, { unique: true });
entrySchema.index({ day: 1 });


/** Where a journal export resumes: after this entry (accounts in id order, each one's entries by seq). */
export interface ExportPosition {
  accountId: string;
  seq: number;
}

const PAGE_SIZE_MAX = 1000;
const NEWER_MAX = 1000;
/** Documents per round trip of an export's cursor. */
const EXPORT_BATCH = 500;

export class JournalRepository extends Repository<StoredEntry> {
  constructor(connection: Connection) {
    super(connection, 'JournalEntry', entrySchema);
  }

  /** A batch of entries in one insert (see insertBatch): each document's own answer. */
  async insertBatch(entries: StoredEntry[]): Promise<InsertResult[]> {
    return insertBatch(this.model as never, entries);
  }

  /** The newest entry of an account: one query (an index walk on MongoDB). */
  async head(accountId: string): Promise<StoredEntry | null> {
    return this.model.findOne({ accountId }, { _id: 0 }).sort({ seq: -1 }).lean<StoredEntry>();
  }

  /** Entries after `seq`, oldest first: what a process that knew `seq` has not seen (a lost race). */
  async newerThan(accountId: string, seq: number): Promise<StoredEntry[]> {
    const found = await this.model.find({ accountId, seq: { $gt: seq } }, { _id: 0 }).limit(NEWER_MAX).lean<StoredEntry[]>();
    return found.sort((a, b) => a.seq - b.seq);
  }

  async at(accountId: string, seq: number): Promise<StoredEntry | null> {
    return this.model.findOne({ accountId, seq }, { _id: 0 }).lean<StoredEntry>();
  }

  async byKey(idempotencyKey: string): Promise<StoredEntry | null> {
    return this.model.findOne({ idempotencyKey }, { _id: 0 }).lean<StoredEntry>();
  }

  /** Newest first, `beforeSeq` exclusive: the API's journal pages. */
  async pageDesc(accountId: string, opts: { beforeSeq?: number | undefined; limit: number }): Promise<StoredEntry[]> {
    const filter = opts.beforeSeq ? { accountId, seq: { $lt: opts.beforeSeq } } : { accountId };
    return this.model.find(filter, { _id: 0 }).sort({ seq: -1 }).limit(Math.min(opts.limit, PAGE_SIZE_MAX)).lean<StoredEntry[]>();
  }

  /** Oldest first from `fromSeq`: one account's journal in bounded pages. */
  async pageAsc(accountId: string, fromSeq: number, limit: number): Promise<StoredEntry[]> {
    return this.model.find({ accountId, seq: { $gte: fromSeq } }, { _id: 0 }).sort({ seq: 1 }).limit(Math.min(limit, PAGE_SIZE_MAX)).lean<StoredEntry[]>();
  }

  /** The entries appended on one business date (an equality every server filters at the source). */
  async ofDay(day: string, batchSize: number): Promise<AsyncIterable<StoredEntry>> {
    return this.model.find({ day }, { _id: 0 }).batchSize(batchSize).lean<StoredEntry>().cursor() as AsyncIterable<StoredEntry>;
  }

  /**
   * The account's last entry of a business date before `day` (null: none): where a statement from
   * `day` opens. Business dates grow with seq, so this is the newest entry of the account walked
   * back to `day`: an index walk on MongoDB over the entries since.
   */
  async lastBefore(accountId: string, day: string): Promise<StoredEntry | null> {
    return this.model.findOne({ accountId, day: { $lt: day } }, { _id: 0 }).sort({ seq: -1 }).lean<StoredEntry>();
  }

  /** The account's entries [fromSeq, toSeq], oldest first: a bounded range of the (accountId, seq) index; callers bound its size. */
  async seqRange(accountId: string, fromSeq: number, toSeq: number): Promise<StoredEntry[]> {
    return this.model.find({ accountId, seq: { $gte: fromSeq, $lte: toSeq } }, { _id: 0 }).sort({ seq: 1 }).lean<StoredEntry[]>();
  }

  /**
   * Entries in (accountId, seq) order after a position (the last entry a previous page gave), of some
   * accounts (undefined: all) and appended within [from, to); streamed from database cursors, at most
   * `limit`. Two walks of the (accountId, seq) index, so a page reads its own entries (and those `at`
   * filters out), never the rest of the journal: the rest of the position's account, then the accounts after it.
   */
  async *exportFrom(filter: { accountIds?: string[] | undefined; from?: Date | undefined; to?: Date | undefined }, page: { after?: ExportPosition | undefined; limit: number }): AsyncIterable<StoredEntry> {
    const at = filter.from || filter.to ? { at: { ...(filter.from ? { $gte: filter.from } : {}), ...(filter.to ? { $lt: filter.to } : {}) } } : {};
    const walk = (q: Record<string, unknown>, sort: Record<string, 1>, limit: number) =>
      this.model.find({ ...q, ...at }, { _id: 0 }).sort(sort).limit(limit).batchSize(EXPORT_BATCH).lean<StoredEntry>().cursor() as AsyncIterable<StoredEntry>;
    const after = page.after;
    let left = page.limit;
    if (after && (!filter.accountIds || filter.accountIds.includes(after.accountId))) {
      for await (const e of walk({ accountId: after.accountId, seq: { $gt: after.seq } }, { seq: 1 }, left)) {
        yield e;
        left--;
      }
    }
    // The accounts still to come (ids are ASCII: JavaScript and the server order them alike); one is an
    // equality, which FerretDB filters at the source. limit(0) would mean no limit.
    const ids = filter.accountIds?.filter((id) => !after || id > after.accountId);
    if (left <= 0 || ids?.length === 0) return;
    const accountId = ids === undefined ? (after ? { $gt: after.accountId } : undefined) : ids.length === 1 ? ids[0] : { $in: ids };
    yield* walk(accountId === undefined ? {} : { accountId }, { accountId: 1, seq: 1 }, left);
  }

  /** Every entry, in the server's order, streamed in batches: verify reads the journal once, not once per account. */
  all(batchSize: number): AsyncIterable<StoredEntry> {
    return this.model.find({}, { _id: 0 }).batchSize(batchSize).lean<StoredEntry>().cursor() as AsyncIterable<StoredEntry>;
  }
}
