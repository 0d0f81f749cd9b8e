import { Schema, type Connection } from 'mongoose';
import type { AccountConfig } from '../contracts/account-config.js';
import type { AccountState } from '../domain/states.js';
import type { TierName } from '../domain/tiers.js';
import { Repository } from './model.js';
import { emptyBalances } from '../domain/balances.js';
import { type StoredBalances, storeBalances, storedBalancesDefinition } from './stored-balances.js';

/**
 * Identity, tier, configuration and hierarchy, plus a projection of the journal head for listing and
 * scans. The projection is never used to authorise a debit; the journal head is (SPEC §3.4).
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
  /** Projection of the journal head. */
  headSeq: number;
  state: AccountState;
  head: StoredBalances;
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
    headSeq: { type: Number, required: true },
    state: { type: String, required: true },
    head: { _id: false, ...storedBalancesDefinition },
    equityCents: { type: BigInt, required: true },
    forkCandidate: { type: Boolean, default: false },
  },
  { collection: 'accounts', versionKey: false, strict: 'throw', minimize: false, _id: false },
);
accountSchema.index({ tier: 1, equityCents: -1 });
accountSchema.index({ tier: 1, forkCandidate: 1 });
accountSchema.index({ parentId: 1 });
accountSchema.index({ state: 1 });
accountSchema.index({ ownerId: 1, _id: 1 });

export interface AccountFilter {
  tier?: TierName | undefined;
  state?: AccountState | undefined;
  parentId?: string | undefined;
  ownerId?: string | undefined;
}

/** A new account's document: identity, hierarchy and configuration, with an empty projection in its first state. */
export function newAccount(a: Pick<StoredAccount, '_id' | 'tier' | 'name' | 'ownerId' | 'parentId' | 'config' | 'state'>, now: Date): StoredAccount {
  return { ...a, mergedInto: null, createdAt: now, updatedAt: now, headSeq: 0, head: storeBalances(emptyBalances(a.state)), equityCents: 0n, forkCandidate: false };
}

const PAGE_SIZE_MAX = 500;
const PROJECTION_RETRIES_MAX = 5;

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

  /** Cursor paging by id: stable under inserts, and the cursor is the last id seen. */
  async list(filter: AccountFilter, opts: { afterId?: string | undefined; limit: number }): Promise<StoredAccount[]> {
    const query: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) query[k] = v;
    if (opts.afterId) query['_id'] = { $gt: opts.afterId };
    return this.model.find(query).sort({ _id: 1 }).limit(Math.min(opts.limit, PAGE_SIZE_MAX)).lean<StoredAccount[]>();
  }

  async children(parentId: string, limit = PAGE_SIZE_MAX): Promise<StoredAccount[]> {
    return this.model.find({ parentId }).sort({ _id: 1 }).limit(limit).lean<StoredAccount[]>();
  }

  /**
   * Moves the projection forward to `seq`, never back. The seq guard keeps an older update from
   * overwriting a newer one; on FerretDB an update is read-then-write, so the result is read back
   * and the write repeated (bounded) if a concurrent update overtook it.
   */
  async project(id: string, seq: number, head: StoredBalances, equityCents: bigint, now: Date, forkCandidate?: boolean): Promise<void> {
    for (let attempt = 0; attempt < PROJECTION_RETRIES_MAX; attempt++) {
      await this.model.updateOne(
        { _id: id, headSeq: { $lt: seq } },
        { $set: { headSeq: seq, state: head.state, head, equityCents, updatedAt: now, ...(forkCandidate === undefined ? {} : { forkCandidate }) } },
      );
      const current = await this.model.findById(id, { headSeq: 1 }).lean<{ headSeq: number }>();
      if (!current || current.headSeq >= seq) return;
    }
  }

  /** A merged source names its target; its children move to the target (a merge into a child lifts it). */
  async recordMerge(sourceId: string, targetId: string, sourceParentId: string | null, now: Date): Promise<void> {
    await this.model.updateMany({ parentId: sourceId, _id: { $ne: targetId } }, { $set: { parentId: targetId, updatedAt: now } });
    await this.model.updateOne({ _id: targetId, parentId: sourceId }, { $set: { parentId: sourceParentId, updatedAt: now } });
    await this.model.updateOne({ _id: sourceId }, { $set: { mergedInto: targetId, updatedAt: now } });
  }

  async updateProfile(id: string, patch: { name?: string; config?: AccountConfig }, now: Date): Promise<void> {
    await this.model.updateOne({ _id: id }, { $set: { ...patch, updatedAt: now } });
  }
}
