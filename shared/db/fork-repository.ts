import { Schema, type Connection } from 'mongoose';
import type { ForkMode } from '../domain/fork.js';
import { Repository } from './model.js';
import type { StoredPosition } from './stored-balances.js';

/**
 * A fork's progress through its saga (SPEC §4.4). Forward: REQUESTED → FORKING (parent) → HELD →
 * CHILD_OPENED → MOVED (child credited) → POSTED (parent debited) → COMPLETED. Before MOVED a failure
 * rolls back (ROLLED_BACK); a fork refused before it touched anything is REJECTED.
 */
export const FORK_PHASES = ['REQUESTED', 'FORKING', 'HELD', 'CHILD_OPENED', 'MOVED', 'POSTED', 'COMPLETED', 'ROLLED_BACK', 'REJECTED'] as const;
export type ForkPhase = (typeof FORK_PHASES)[number];
export const FORK_DONE: ForkPhase[] = ['COMPLETED', 'ROLLED_BACK', 'REJECTED'];
export const FORK_IN_FLIGHT: ForkPhase[] = ['FORKING', 'HELD', 'CHILD_OPENED', 'MOVED', 'POSTED'];

export interface StoredForkPlan {
  forkAmountCents: bigint;
  cashCents: bigint;
  positions: StoredPosition[];
}

export interface StoredFork {
  _id: string;
  parentId: string;
  childId: string;
  mode: ForkMode;
  symbols: string[];
  /** The parent's journal seq the fork was decided on: with the parent, the fork's identity. */
  parentSeq: number;
  phase: ForkPhase;
  plan: StoredForkPlan | null;
  decisionId: string | null;
  requestedBy: string;
  requestedAt: Date;
  /** When the saga first changed anything (the attempt the cooldown counts from). */
  startedAt: Date | null;
  completedAt: Date | null;
  error: { code: string; message: string } | null;
  updatedAt: Date;
}

const forkSchema = new Schema<StoredFork>(
  {
    _id: { type: String, required: true },
    parentId: { type: String, required: true },
    childId: { type: String, required: true },
    mode: { type: String, required: true, enum: ['full', 'partial', 'config-only'] },
    symbols: { type: [String], default: [] },
    parentSeq: { type: Number, required: true },
    phase: { type: String, required: true, enum: FORK_PHASES },
    plan: {
      type: new Schema(
        { forkAmountCents: BigInt, cashCents: BigInt, positions: [{ _id: false, symbol: String, quantityUnits: BigInt, costBasisCents: BigInt }] },
        { _id: false },
      ),
      default: null,
    },
    decisionId: { type: String, default: null },
    requestedBy: { type: String, required: true },
    requestedAt: { type: Date, required: true },
    startedAt: { type: Date, default: null },
    completedAt: { type: Date, default: null },
    error: { type: Schema.Types.Mixed, default: null },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'forks', versionKey: false, strict: 'throw', _id: false },
);
forkSchema.index({ parentId: 1 });
forkSchema.index({ childId: 1 });
forkSchema.index({ phase: 1 });
forkSchema.index({ requestedAt: -1 });

const RECENT_MAX = 200;

export class ForkRepository extends Repository<StoredFork> {
  constructor(connection: Connection) {
    super(connection, 'Fork', forkSchema);
  }

  /** The fork record, created on first sight; a second request for the same fork gets the first. */
  async getOrCreate(f: StoredFork): Promise<{ fork: StoredFork; created: boolean }> {
    const { stored, created } = await this.insertOnce(f, () => this.get(f._id));
    return { fork: stored, created };
  }

  async get(id: string): Promise<StoredFork | null> {
    return this.model.findById(id).lean<StoredFork>();
  }

  /**
   * Moves the phase on from the one the caller saw (a compare-and-set); answers whether it did. The
   * phase is a cache of what the saga's journal entries say: a run that loses it re-reads the record.
   */
  async advance(id: string, from: ForkPhase, to: ForkPhase, patch: Partial<StoredFork>, now: Date): Promise<boolean> {
    return this.updateLocked(id, { phase: from }, { $set: { ...patch, phase: to, updatedAt: now } });
  }

  /** Stores the plan once: a replay after a crash moves exactly what the first run planned. */
  async setPlanOnce(id: string, plan: StoredForkPlan): Promise<StoredForkPlan> {
    await this.model.updateOne({ _id: id, plan: null }, { $set: { plan } });
    return (await this.get(id))!.plan!;
  }

  /** Forks of one parent (few per account: found by equality, ordered here). */
  async ofParent(parentId: string): Promise<StoredFork[]> {
    const forks = await this.model.find({ parentId }).lean<StoredFork[]>();
    return forks.sort((a, b) => +new Date(b.requestedAt) - +new Date(a.requestedAt));
  }

  async countIn(phases: readonly ForkPhase[]): Promise<number> {
    return this.model.countDocuments({ phase: { $in: phases } });
  }

  /** The fork that names this child (one at most: the child's id follows from the fork). */
  async ofChild(childId: string): Promise<StoredFork | null> {
    return this.model.findOne({ childId }).lean<StoredFork>();
  }

  /** Forks in flight, of the given parents only when `parentIds` is set (an owner's view). */
  async inFlight(parentIds?: string[]): Promise<number> {
    return this.model.countDocuments({ phase: { $in: FORK_IN_FLIGHT }, ...(parentIds ? { parentId: { $in: parentIds } } : {}) });
  }

  async recent(limit: number, parentIds?: string[]): Promise<StoredFork[]> {
    return this.model.find(parentIds ? { parentId: { $in: parentIds } } : {}).sort({ requestedAt: -1 }).limit(Math.min(limit, RECENT_MAX)).lean<StoredFork[]>();
  }
}
