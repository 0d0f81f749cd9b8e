import { Schema, Types, type Connection } from 'mongoose';
import { canonicalJson, sha256Hex } from '../runtime/canonical-json.js';
import { KeyedMutex } from '../runtime/keyed-mutex.js';
import { isDuplicateKeyError } from './connection.js';
import { Repository } from './model.js';

/** What was done, by whom, to what, with the state before and after (SPEC §8 audit trail). */
export interface AuditInput {
  /** The chain it joins: the account it concerns, or 'system'. One chain per account keeps appends parallel. */
  chain: string;
  /** Unique per recorded fact, so recording it again (a replayed job) adds nothing. */
  ref: string;
  actor: string;
  action: string;
  jobId: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  outcome: string;
}
export interface StoredAudit extends AuditInput {
  seq: number;
  at: Date;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

const auditSchema = new Schema<StoredAudit>(
  {
    chain: { type: String, required: true },
    seq: { type: Number, required: true },
    ref: { type: String, required: true },
    at: { type: Date, required: true },
    actor: { type: String, required: true },
    action: { type: String, required: true },
    jobId: { type: String, default: null },
    before: { type: Schema.Types.Mixed, default: null },
    after: { type: Schema.Types.Mixed, default: null },
    outcome: { type: String, required: true },
    prevHash: { type: String, required: true },
    hash: { type: String, required: true },
  },
  { collection: 'audit', versionKey: false, strict: 'throw', minimize: false },
);
auditSchema.index({ chain: 1, seq: 1 }, { unique: true });
auditSchema.index({ ref: 1 }, { unique: true });

/** The hash of a record covers every field but the hash itself, and links to the previous record's hash. */
export function auditHash(r: Omit<StoredAudit, 'hash'>): string {
  const { prevHash, ...fields } = r;
  return sha256Hex(`${prevHash}\n${canonicalJson(fields)}`);
}

export interface ChainBreak {
  chain: string;
  seq: number;
  problem: string;
}

const APPEND_RETRIES_MAX = 50;
const chainLocks = new KeyedMutex();
const CHAIN_PROBES_MAX = 16;
const CHAIN_CACHE_MAX = 50_000;
const VERIFY_BATCH = 500;

export class AuditRepository extends Repository<StoredAudit> {
  constructor(connection: Connection) {
    super(connection, 'Audit', auditSchema);
  }

  /** Last known end of each chain in this process, so an append costs equality lookups, not a sort. */
  private readonly heads = new Map<string, { seq: number; hash: string }>();

  private async chainHead(chain: string): Promise<{ seq: number; hash: string } | null> {
    let head = this.heads.get(chain) ?? (await this.model.findOne({ chain }, { seq: 1, hash: 1 }).sort({ seq: -1 }).lean<{ seq: number; hash: string }>());
    // Walk forward past records other processes added since (equality lookups on the unique index).
    for (let step = 0; head && step < CHAIN_PROBES_MAX; step++) {
      const next = await this.model.findOne({ chain, seq: head.seq + 1 }, { seq: 1, hash: 1 }).lean<{ seq: number; hash: string }>();
      if (!next) break;
      head = next;
    }
    if (this.heads.size >= CHAIN_CACHE_MAX) this.heads.clear();
    if (head) this.heads.set(chain, head);
    return head;
  }

  /** Appends to the chain's end; races between processes are settled by the unique (chain, seq) index and retried. */
  append(input: AuditInput, now: Date): Promise<void> {
    return chainLocks.run(input.chain, () => this.appendWithRetry(input, now));
  }

  private async appendWithRetry(input: AuditInput, now: Date): Promise<void> {
    for (let attempt = 0; attempt < APPEND_RETRIES_MAX; attempt++) {
      const last = await this.chainHead(input.chain);
      const record = { ...input, seq: (last?.seq ?? 0) + 1, at: now, prevHash: last?.hash ?? GENESIS_HASH };
      const hash = auditHash(record);
      try {
        await this.model.create({ ...record, hash });
        this.heads.set(input.chain, { seq: record.seq, hash });
        return;
      } catch (err) {
        if (!isDuplicateKeyError(err)) throw err;
        if (await this.model.exists({ ref: input.ref })) return; // recorded already
        this.heads.delete(input.chain); // another process appended: find the new end
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new Error(`audit chain ${input.chain}: no free position after ${APPEND_RETRIES_MAX} attempts`);
  }

  /**
   * Walks every chain in order, recomputing each hash: a modified record breaks its hash, a deleted
   * one leaves a gap in seq, a reordered one breaks the link to its predecessor. Reports the first
   * break of each chain, up to `breaksMax`.
   */
  async verify(breaksMax = 100): Promise<{ records: number; chains: number; breaks: ChainBreak[] }> {
    const breaks: ChainBreak[] = [];
    let records = 0;
    let chains = 0;
    let chain: string | null = null;
    let expectSeq = 1;
    let prevHash = GENESIS_HASH;
    let broken = false;
    const cursor = this.model.find({}, { _id: 0 }).sort({ chain: 1, seq: 1 }).batchSize(VERIFY_BATCH).lean<StoredAudit>().cursor();
    for await (const r of cursor as AsyncIterable<StoredAudit>) {
      records++;
      if (r.chain !== chain) {
        chain = r.chain;
        chains++;
        expectSeq = 1;
        prevHash = GENESIS_HASH;
        broken = false;
      }
      if (broken) continue;
      const { hash, ...rest } = r;
      const problem =
        r.seq !== expectSeq ? `expected record ${expectSeq}, found ${r.seq} (a record is missing or out of place)`
        : r.prevHash !== prevHash ? 'does not link to the record before it'
        : auditHash(rest) !== hash ? 'its content does not match its hash (modified)'
        : null;
      if (problem) {
        breaks.push({ chain: r.chain, seq: r.seq, problem });
        broken = true;
        if (breaks.length >= breaksMax) break;
      }
      expectSeq = r.seq + 1;
      prevHash = hash;
    }
    return { records, chains, breaks };
  }

  /** Records matching a filter, oldest first, after the cursor (a record's id): a page, or (`limit` null) a stream for export. */
  find(filter: AuditFilter, page: { afterId?: string | undefined; limit: number | null }): AsyncIterable<StoredAudit & { _id: unknown }> {
    const query: Record<string, unknown> = {};
    if (filter.chain !== undefined) query['chain'] = filter.chain;
    if (filter.actor !== undefined) query['actor'] = filter.actor;
    if (filter.from || filter.to) query['at'] = { ...(filter.from ? { $gte: filter.from } : {}), ...(filter.to ? { $lt: filter.to } : {}) };
    if (page.afterId) query['_id'] = { $gt: new Types.ObjectId(page.afterId) };
    const q = this.model.find(query).sort({ _id: 1 });
    if (page.limit !== null) q.limit(page.limit);
    return q.batchSize(VERIFY_BATCH).lean<StoredAudit & { _id: unknown }>().cursor() as AsyncIterable<StoredAudit & { _id: unknown }>;
  }
}

export interface AuditFilter {
  chain?: string | undefined;
  actor?: string | undefined;
  from?: Date | undefined;
  /** Exclusive. */
  to?: Date | undefined;
}
