import { Schema, type Connection } from 'mongoose';
import type { MergeStrategy } from '../domain/merge.js';
import type { TierName } from '../domain/tiers.js';
import { Repository } from './model.js';
import type { StoredPosition } from './stored-balances.js';

/**
 * A merge's progress through its saga (SPEC §5.3). Forward: REQUESTED → MERGING (source) → HELD (plan
 * stored, limits checked, cash held) → MOVED (target credited) → POSTED (source debited) → COMPLETED
 * (source closed or back to ACTIVE, children re-parented, configuration reconciled). Before MOVED a
 * failure rolls back (ROLLED_BACK); a merge refused before it touched anything is REJECTED.
 */
export const MERGE_PHASES = ['REQUESTED', 'MERGING', 'HELD', 'MOVED', 'POSTED', 'COMPLETED', 'ROLLED_BACK', 'REJECTED'] as const;
export type MergePhase = (typeof MERGE_PHASES)[number];
export const MERGE_DONE: MergePhase[] = ['COMPLETED', 'ROLLED_BACK', 'REJECTED'];
export const MERGE_IN_FLIGHT: MergePhase[] = ['MERGING', 'HELD', 'MOVED', 'POSTED'];

export interface StoredMergePlan {
  cashCents: bigint;
  positions: StoredPosition[];
  closesSource: boolean;
}

/** One lot moved by a merge, and where it came from (SPEC §5.3 lineage). */
export interface StoredLot extends StoredPosition {
  fromAccountId: string;
}

/** A target the saga opens itself (strategy `new`): every merge of the group names the same one. */
export interface StoredNewTarget {
  tier: TierName;
  name: string;
  ownerId: string | null;
  parentId: string | null;
}

export interface StoredMerge {
  _id: string;
  /** Merges requested together (several sources into one new account) share a group id. */
  groupId: string | null;
  sourceId: string;
  targetId: string;
  strategy: MergeStrategy;
  /** A partial merge's amount or symbols; null moves everything and closes the source. */
  partial: { amountCents: bigint | null; symbols: string[] } | null;
  newTarget: StoredNewTarget | null;
  /** The source's journal seq the merge was requested on: with the source, the merge's identity. */
  sourceSeq: number;
  phase: MergePhase;
  plan: StoredMergePlan | null;
  lineage: StoredLot[];
  opportunityId: string | null;
  requestedBy: string;
  requestedAt: Date;
  scheduledFor: Date | null;
  startedAt: Date | null;
  completedAt: Date | null;
  error: { code: string; message: string } | null;
  updatedAt: Date;
}

const position = { _id: false, symbol: String, quantityUnits: BigInt, costBasisCents: BigInt };

const mergeSchema = new Schema<StoredMerge>(
  {
    _id: { type: String, required: true },
    groupId: { type: String, default: null },
    sourceId: { type: String, required: true },
    targetId: { type: String, required: true },
    strategy: { type: String, required: true, enum: ['parent', 'sibling', 'new', 'partial'] },
    partial: { type: new Schema({ amountCents: { type: BigInt, default: null }, symbols: { type: [String], default: [] } }, { _id: false }), default: null },
    newTarget: { type: new Schema({ tier: String, name: String, ownerId: { type: String, default: null }, parentId: { type: String, default: null } }, { _id: false }), default: null },
    sourceSeq: { type: Number, required: true },
    phase: { type: String, required: true, enum: MERGE_PHASES },
    plan: { type: new Schema({ cashCents: BigInt, positions: [position], closesSource: Boolean }, { _id: false }), default: null },
    lineage: { type: [{ ...position, fromAccountId: String }], default: [] },
    opportunityId: { type: String, default: null },
    requestedBy: { type: String, required: true },
    requestedAt: { type: Date, required: true },
    scheduledFor: { type: Date, default: null },
    startedAt: { type: Date, default: null },
    completedAt: { type: Date, default: null },
    error: { type: Schema.Types.Mixed, default: null },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'merges', versionKey: false, strict: 'throw', _id: false },
);
mergeSchema.index({ sourceId: 1 });
mergeSchema.index({ targetId: 1 });
mergeSchema.index({ phase: 1 });
mergeSchema.index({ requestedAt: -1 });

const RECENT_MAX = 200;

export class MergeRepository extends Repository<StoredMerge> {
  constructor(connection: Connection) {
    super(connection, 'Merge', mergeSchema);
  }

  /** The merge record, created on first sight; a second request for the same merge gets the first. */
  async getOrCreate(m: StoredMerge): Promise<{ merge: StoredMerge; created: boolean }> {
    const { stored, created } = await this.insertOnce(m, () => this.get(m._id));
    return { merge: stored, created };
  }

  async get(id: string): Promise<StoredMerge | null> {
    return this.model.findById(id).lean<StoredMerge>();
  }

  /**
   * Moves the phase on from the one the caller saw (a compare-and-set); answers whether it did. The
   * phase is a cache of what the saga's journal entries say: a run that loses it re-reads the record.
   */
  async advance(id: string, from: MergePhase, to: MergePhase, patch: Partial<StoredMerge>, now: Date): Promise<boolean> {
    return this.updateLocked(id, { phase: from }, { $set: { ...patch, phase: to, updatedAt: now } });
  }

  /** Stores the plan and its lineage once: a replay after a crash moves exactly what the first run planned. */
  async setPlanOnce(id: string, plan: StoredMergePlan, lineage: StoredLot[]): Promise<StoredMerge> {
    await this.model.updateOne({ _id: id, plan: null }, { $set: { plan, lineage } });
    return (await this.get(id))!;
  }

  async countIn(phases: readonly MergePhase[]): Promise<number> {
    return this.model.countDocuments({ phase: { $in: phases } });
  }

  /** Merges in flight, of the given sources only when `sourceIds` is set (an owner's view). */
  async inFlight(sourceIds?: string[]): Promise<number> {
    return this.model.countDocuments({ phase: { $in: MERGE_IN_FLIGHT }, ...(sourceIds ? { sourceId: { $in: sourceIds } } : {}) });
  }

  async countByPhase(phase: MergePhase): Promise<number> {
    return this.model.countDocuments({ phase });
  }

  /** The merges into one target (for a target a group opened: every merge of the group). */
  async ofTarget(targetId: string): Promise<StoredMerge[]> {
    return this.model.find({ targetId }).lean<StoredMerge[]>();
  }

  async ofGroup(groupId: string): Promise<StoredMerge[]> {
    return this.model.find({ groupId }).lean<StoredMerge[]>();
  }

  async recent(limit: number, filter: { sourceIds?: string[] | undefined } = {}): Promise<StoredMerge[]> {
    const query = filter.sourceIds ? { sourceId: { $in: filter.sourceIds } } : {};
    return this.model.find(query).sort({ requestedAt: -1 }).limit(Math.min(limit, RECENT_MAX)).lean<StoredMerge[]>();
  }
}
