import { Schema, type Connection } from 'mongoose';
import type { AccountConfig } from '../contracts/account-config.js';
import type { AccountState } from '../domain/states.js';
import type { TierName } from '../domain/tiers.js';
import { Repository } from './model.js';
import { canonicalJson, sha256Hex } from '../runtime/canonical-json.js';
import { emptyBalances } from '../domain/balances.js';
import { zeroTotals } from '../domain/totals.js';
import { withDocLocks } from './doc-locks.js';
import { type StoredBalances, type StoredTotals, storeBalances, storeTotals, storedBalancesDefinition, storedTotalsDefinition } from './stored-balances.js';

/**
 * Identity, tier, configuration and hierarchy, plus a projection of the journal head for listing and
 * scans: a derived cache, written in coalesced batches after the entries it copies, never read to
 * authorise anything (the journal head is), repaired from the journal when it lags.
 * Children are found through the parentId index rather than an array here: on FerretDB an array
 * update is read-then-write and two concurrent forks could lose a child.
 */
export interface StoredAccount {
  _id: string;
  tier: TierName;
  name: string;
  ownerId: string | null;
  parentId: string | null;
  mergedInto: string | null;
  config: AccountConfig;
  createdAt: Date;
  updatedAt: Date;
  /** A fixed page of the account (from its id): daily work reads a page of accounts by this equality. */
  bucket: number;
  /** Projection of the journal head. */
  headSeq: number;
  state: AccountState;
  head: StoredBalances;
  /** The head's running totals. */
  totals: StoredTotals;
  /** Equity at the last posting, valued at the last closes then (refreshed by valuations). */
  equityCents: bigint;
  /**
   * Equity at the last posting reached its tier's fork line. Scans select by this flag: an equality
   * that every server answers from an index (FerretDB v1 cannot push an equity range down).
   */
  forkCandidate: boolean;
}

const accountSchema = new Schema<StoredAccount>(
  {
    _id: { type: String, required: true },
    tier: { type: String, required: true, enum: ['GEN', 'REV', 'COM'] },
    name: { type: String, required: true },
    ownerId: { type: String, default: null },
    parentId: { type: String, default: null },
    mergedInto: { type: String, default: null },
    config: { type: Schema.Types.Mixed, default: {} },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    bucket: { type: Number, required: true },
    headSeq: { type: Number, required: true },
    state: { type: String, required: true },
    head: { _id: false, ...storedBalancesDefinition },
    totals: { _id: false, ...storedTotalsDefinition },
    equityCents: { type: BigInt, required: true },
    forkCandidate: { type: Boolean, default: false },
  },
  { collection: 'accounts', versionKey: false, strict: 'throw', minimize: false, _id: false },
);
accountSchema.index({ tier: 1, equityCents: -1 });
accountSchema.index({ tier: 1, forkCandidate: 1 });
accountSchema.index({ parentId: 1 });
accountSchema.index({ state: 1 });
accountSchema.index({ bucket: 1 });
accountSchema.index({ ownerId: 1, _id: 1 });

export interface AccountFilter {
  tier?: TierName | undefined;
  state?: AccountState | undefined;
  parentId?: string | undefined;
  ownerId?: string | undefined;
}

/**
 * Pages of accounts for daily work (snapshots): an account's page follows from its id, and a page is
 * read by equality, which every server filters at the source (FerretDB cannot page by a range of ids).
 */
export const ACCOUNT_BUCKETS = 64;
export const bucketOf = (id: string): number => parseInt(sha256Hex(id).slice(0, 8), 16) % ACCOUNT_BUCKETS;

/** A new account's document: identity, hierarchy and configuration, with an empty projection in its first state. */
export function newAccount(a: Pick<StoredAccount, '_id' | 'tier' | 'name' | 'ownerId' | 'parentId' | 'config' | 'state'>, now: Date): StoredAccount {
  return { ...a, bucket: bucketOf(a._id), mergedInto: null, createdAt: now, updatedAt: now, headSeq: 0, head: storeBalances(emptyBalances(a.state)), totals: storeTotals(zeroTotals()), equityCents: 0n, forkCandidate: false };
}

/** One account's projection as a batch writes it: the journal head it copies, valued. */
export interface Projection {
  id: string;
  seq: number;
  head: StoredBalances;
  totals: StoredTotals;
  equityCents: bigint;
  forkCandidate: boolean;
}

/** The most accounts one `list` answers: a fan-out that cuts pages for `list` to read back must cut no larger. */
export const PAGE_SIZE_MAX = 500;
const HIERARCHY_DEPTH_MAX = 64;

/** A change of an account's name or configuration (each optional). */
export interface ProfilePatch {
  name?: string;
  config?: AccountConfig;
}

export class AccountRepository extends Repository<StoredAccount> {
  constructor(connection: Connection) {
    super(connection, 'Account', accountSchema);
  }

  /** Creates the account once; a replay finds it there. */
  async createIfAbsent(account: StoredAccount): Promise<{ created: boolean }> {
    const { created } = await this.insertOnce(account, () => this.get(account._id));
    return { created };
  }

  async get(id: string): Promise<StoredAccount | null> {
    return this.model.findById(id).lean<StoredAccount>();
  }

  /** Several accounts in one read (a batch's lookups), by id; at most PAGE_SIZE_MAX × 4 ids. */
  async getMany(ids: string[]): Promise<Map<string, StoredAccount>> {
    const unique = [...new Set(ids)];
    if (unique.length > PAGE_SIZE_MAX * 4) throw new Error(`getMany: ${unique.length} ids, at most ${PAGE_SIZE_MAX * 4}`);
    const found = unique.length === 0 ? [] : await this.model.find({ _id: { $in: unique } }).lean<StoredAccount[]>();
    return new Map(found.map((a) => [a._id, a]));
  }

  /** Cursor paging by id: stable under inserts, and the cursor is the last id seen. */
  async list(filter: AccountFilter, opts: { afterId?: string | undefined; limit: number }): Promise<StoredAccount[]> {
    return this.model.find(cursorQuery(filter, opts.afterId)).sort({ _id: 1 }).limit(Math.min(opts.limit, PAGE_SIZE_MAX)).lean<StoredAccount[]>();
  }

  /** The ids alone, paged like `list` but in pages as large as `limit` asks (a fan-out's cursor walk). */
  async ids(filter: AccountFilter, opts: { afterId?: string | undefined; limit: number }): Promise<string[]> {
    return (await this.model.find(cursorQuery(filter, opts.afterId), { _id: 1 }).sort({ _id: 1 }).limit(opts.limit).lean<Array<{ _id: string }>>()).map((a) => a._id);
  }

  /** Open accounts holding any of the symbols, paged by id (a price load's loss-limit check). */
  async holding(symbols: string[], opts: { afterId?: string | undefined; limit: number }): Promise<StoredAccount[]> {
    const query: Record<string, unknown> = { 'head.positions.symbol': { $in: symbols }, state: { $in: ['ACTIVE', 'SAFE'] } };
    if (opts.afterId) query['_id'] = { $gt: opts.afterId };
    return this.model.find(query).sort({ _id: 1 }).limit(Math.min(opts.limit, PAGE_SIZE_MAX)).lean<StoredAccount[]>();
  }

  /** One page of accounts by bucket, or every account (a small fleet is one page). */
  async ofBucket(bucket: number | null): Promise<StoredAccount[]> {
    return this.model.find(bucket === null ? {} : { bucket }).lean<StoredAccount[]>();
  }

  /** The collection's size from its metadata (no scan), to choose between one page and one per bucket. */
  async estimatedCount(): Promise<number> {
    return this.model.estimatedDocumentCount();
  }

  async children(parentId: string, limit = PAGE_SIZE_MAX): Promise<StoredAccount[]> {
    return this.model.find({ parentId }).sort({ _id: 1 }).limit(limit).lean<StoredAccount[]>();
  }

  /**
   * The first `perGroup` accounts by id of each parent (`parentId`) or of each owner's roots
   * (`ownerId`), of one tier if given, for a page of assessments in one read. A read cut short by its limit leaves the
   * groups after its last one unknown; those are read one at a time (each bounded).
   */
  async firstOfGroups(field: 'parentId' | 'ownerId', values: string[], perGroup: number, tier?: TierName): Promise<Map<string, StoredAccount[]>> {
    const keys = [...new Set(values)].sort();
    const out = new Map<string, StoredAccount[]>(keys.map((k) => [k, []]));
    if (keys.length === 0) return out;
    const filterOf = (v: string | { $in: string[] }): Record<string, unknown> => ({ ...(field === 'parentId' ? { parentId: v } : { ownerId: v, parentId: null }), ...(tier ? { tier } : {}) });
    const limit = Math.min(keys.length * perGroup, PAGE_SIZE_MAX * 4);
    const found = await this.model.find(filterOf({ $in: keys })).sort({ [field]: 1, _id: 1 }).limit(limit).lean<StoredAccount[]>();
    for (const a of found) {
      const group = out.get(a[field]!)!;
      if (group.length < perGroup) group.push(a);
    }
    if (found.length < limit) return out;
    const last = found[found.length - 1]![field]!;
    for (const k of keys) {
      if (k < last || out.get(k)!.length >= perGroup) continue;
      out.set(k, await this.model.find(filterOf(k)).sort({ _id: 1 }).limit(perGroup).lean<StoredAccount[]>());
    }
    return out;
  }

  /**
   * Moves projections forward, never back (the seq guard), for the accounts whose locks are free now;
   * answers the ids it could not lock, for the caller's next batch.
   */
  async project(items: Projection[], now: Date): Promise<string[]> {
    if (items.length === 0) return [];
    const held = await this.locks.acquire(items.map((p) => p.id));
    try {
      const mine = items.filter((p) => held.ids.has(p.id));
      if (mine.length > 0) {
        await this.model.bulkWrite(
          mine.map((p) => ({
            updateOne: {
              filter: { _id: p.id, headSeq: { $lt: p.seq } },
              update: { $set: { headSeq: p.seq, state: p.head.state, head: p.head, totals: p.totals, equityCents: p.equityCents, forkCandidate: p.forkCandidate, updatedAt: now } },
            },
          })),
          { ordered: false },
        );
      }
      return items.filter((p) => !held.ids.has(p.id)).map((p) => p.id);
    } finally {
      await held.release();
    }
  }

  /**
   * A merged source names its target, and its children move to the target; a target that was the
   * source's own descendant is lifted to the source's parent (so no parent chain can loop). The
   * source and its children are read under their locks, so a concurrent merge of the source's parent
   * (which moves the source) is seen, not overwritten.
   */
  async recordMerge(sourceId: string, targetId: string, now: Date): Promise<void> {
    await withDocLocks(this.locks, [sourceId, targetId], async () => {
      const source = await this.get(sourceId);
      if (!source) return;
      const children = (await this.model.find({ parentId: sourceId }, { _id: 1 }).lean<Array<{ _id: string }>>()).map((c) => c._id).filter((id) => id !== targetId);
      const lifted = await this.descendsFrom(targetId, sourceId);
      await withDocLocks(this.locks, children, async () => {
        if (children.length > 0) await this.model.updateMany({ _id: { $in: children }, parentId: sourceId }, { $set: { parentId: targetId, updatedAt: now } });
        if (lifted) await this.model.updateOne({ _id: targetId }, { $set: { parentId: source.parentId, updatedAt: now } });
        await this.model.updateOne({ _id: sourceId }, { $set: { mergedInto: targetId, updatedAt: now } });
      });
    });
  }

  /** Whether `ancestorId` is above `id` in the hierarchy (bounded walk up its parents). */
  private async descendsFrom(id: string, ancestorId: string): Promise<boolean> {
    let cursor = (await this.get(id))?.parentId ?? null;
    for (let depth = 0; cursor && depth < HIERARCHY_DEPTH_MAX; depth++) {
      if (cursor === ancestorId) return true;
      cursor = (await this.get(cursor))?.parentId ?? null;
    }
    return false;
  }

  /** A configuration change computed from the configuration as it is under the document's lock (no lost update). */
  async updateConfig(id: string, next: (current: AccountConfig) => AccountConfig, now: Date): Promise<void> {
    await withDocLocks(this.locks, [id], async () => {
      const current = await this.get(id);
      if (current) await this.model.updateOne({ _id: id }, { $set: { config: next(current.config), updatedAt: now } });
    });
  }

  /**
   * Sets the name and configuration asked for, under the document's lock, when they differ from what
   * is stored; answers what was there before, or null when nothing changed (a replay, a repeated
   * request: then nothing is written and nothing is audited).
   */
  async updateProfile(id: string, patch: ProfilePatch, now: Date): Promise<ProfilePatch | null> {
    return withDocLocks(this.locks, [id], async () => {
      const current = await this.get(id);
      if (!current) return null;
      const before = { ...(patch.name !== undefined ? { name: current.name } : {}), ...(patch.config !== undefined ? { config: current.config } : {}) };
      if (canonicalJson(before) === canonicalJson(patch)) return null;
      await this.model.updateOne({ _id: id }, { $set: { ...patch, updatedAt: now } });
      return before;
    });
  }

  /** Deletes the document of an account that never got an entry (a fork child whose open was voided). */
  async deleteUnopened(id: string): Promise<void> {
    await withDocLocks(this.locks, [id], async () => {
      await this.model.deleteOne({ _id: id, headSeq: 0 });
    });
  }
}

/** A filter's defined fields, after the cursor's id. */
function cursorQuery(filter: AccountFilter, afterId: string | undefined): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(filter)) if (v !== undefined) query[k] = v;
  if (afterId) query['_id'] = { $gt: afterId };
  return query;
}
