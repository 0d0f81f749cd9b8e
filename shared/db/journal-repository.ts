import { Schema, type Connection } from 'mongoose';
import type { EntryKind } from '../domain/ledger.js';
import { isDuplicateKeyError } from './connection.js';
import { Repository } from './model.js';
import { type StoredBalances, storedBalancesDefinition } from './stored-balances.js';
import type { StoredOperation } from './stored-operation.js';

/** One journal entry: append-only, numbered per account, holding the balances after it (SPEC §3.4). */
export interface StoredEntry {
  accountId: string;
  seq: number;
  kind: EntryKind;
  /** Globally unique; replaying the same key finds this entry instead of appending again. */
  idempotencyKey: string;
  op: StoredOperation;
  realisedPnlCents: bigint;
  after: StoredBalances;
  actor: string;
  jobId: string | null;
  at: Date;
}

const entrySchema = new Schema<StoredEntry>(
  {
    accountId: { type: String, required: true },
    seq: { type: Number, required: true, min: 1 },
    kind: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
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
      forkId: String,
      mergeId: String,
      positions: { type: [{ _id: false, symbol: String, quantityUnits: BigInt, costBasisCents: BigInt }], default: undefined },
      buys: { type: [{ _id: false, symbol: String, quantityUnits: BigInt, priceMicros: BigInt }], default: undefined },
    },
    realisedPnlCents: { type: BigInt, required: true },
    after: { _id: false, ...storedBalancesDefinition },
    actor: { type: String, required: true },
    jobId: { type: String, default: null },
    at: { type: Date, required: true },
  },
  { collection: 'journal', versionKey: false, strict: 'throw' },
);
entrySchema.index({ accountId: 1, seq: 1 }, { unique: true });
entrySchema.index({ idempotencyKey: 1 }, { unique: true });

export type AppendResult = { appended: true } | { appended: false; reason: 'seq-taken' } | { appended: false; reason: 'key-exists'; existing: StoredEntry };

const PAGE_SIZE_MAX = 1000;
/** Entries a head lookup walks past its hint before it falls back to a sorted query. */
const HEAD_PROBES_MAX = 8;

export class JournalRepository extends Repository<StoredEntry> {
  constructor(connection: Connection) {
    super(connection, 'JournalEntry', entrySchema);
  }

  /**
   * The newest entry. Given a seq known to exist (the projection's), it walks forward by equality
   * lookups, which every server answers from the (accountId, seq) index; FerretDB v1 sorts in memory,
   * so a sorted query costs the whole journal. Without a hint (or if the hint is gone) it sorts.
   */
  async head(accountId: string, knownSeq = 0): Promise<StoredEntry | null> {
    let current = knownSeq > 0 ? await this.at(accountId, knownSeq) : null;
    if (knownSeq > 0 && !current) return this.headBySort(accountId);
    for (let step = 0; step < HEAD_PROBES_MAX; step++) {
      const next = await this.at(accountId, (current?.seq ?? 0) + 1);
      if (!next) return current;
      current = next;
    }
    return this.headBySort(accountId);
  }

  async at(accountId: string, seq: number): Promise<StoredEntry | null> {
    return this.model.findOne({ accountId, seq }, { _id: 0 }).lean<StoredEntry>();
  }

  private async headBySort(accountId: string): Promise<StoredEntry | null> {
    return this.model.findOne({ accountId }, { _id: 0 }).sort({ seq: -1 }).lean<StoredEntry>();
  }

  async byKey(idempotencyKey: string): Promise<StoredEntry | null> {
    return this.model.findOne({ idempotencyKey }, { _id: 0 }).lean<StoredEntry>();
  }

  /**
   * Inserts at the sequence the caller read as next. The unique indexes decide races: a taken seq
   * means someone appended first (re-read the head and retry); a taken key means this very
   * operation was already appended (a replay), and that entry is returned.
   */
  async append(entry: StoredEntry): Promise<AppendResult> {
    try {
      await this.model.create(entry);
      return { appended: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const existing = await this.byKey(entry.idempotencyKey);
      return existing ? { appended: false, reason: 'key-exists', existing } : { appended: false, reason: 'seq-taken' };
    }
  }

  /** Newest first, `beforeSeq` exclusive: the API's journal pages. */
  async pageDesc(accountId: string, opts: { beforeSeq?: number | undefined; limit: number }): Promise<StoredEntry[]> {
    const filter = opts.beforeSeq ? { accountId, seq: { $lt: opts.beforeSeq } } : { accountId };
    return this.model.find(filter, { _id: 0 }).sort({ seq: -1 }).limit(Math.min(opts.limit, PAGE_SIZE_MAX)).lean<StoredEntry[]>();
  }

  /** Oldest first from `fromSeq`: how verify walks a journal in bounded pages. */
  async pageAsc(accountId: string, fromSeq: number, limit: number): Promise<StoredEntry[]> {
    return this.model.find({ accountId, seq: { $gte: fromSeq } }, { _id: 0 }).sort({ seq: 1 }).limit(Math.min(limit, PAGE_SIZE_MAX)).lean<StoredEntry[]>();
  }
}
