import { Schema, type Connection } from 'mongoose';
import type { DecisionOutcome, Factor } from '../domain/fork-decision.js';
import { Repository } from './model.js';

/** A fork decision with everything needed to explain it (SPEC §4.2). */
export interface StoredDecision {
  _id: string;
  accountId: string;
  seq: number;
  source: 'check' | 'assess';
  at: Date;
  equity: string;
  forkAmount: string;
  childTier: string;
  inputs: Record<string, unknown>;
  factors: { market: Factor; performance: Factor; systemLoad: Factor; timing: Factor };
  weights: Record<string, number>;
  confidence: number;
  outcome: DecisionOutcome;
  forkId: string;
  reviewId: string | null;
}

const decisionSchema = new Schema<StoredDecision>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    seq: { type: Number, required: true },
    source: { type: String, required: true },
    at: { type: Date, required: true },
    equity: { type: String, required: true },
    forkAmount: { type: String, required: true },
    childTier: { type: String, required: true },
    inputs: { type: Schema.Types.Mixed, default: {} },
    factors: { type: Schema.Types.Mixed, required: true },
    weights: { type: Schema.Types.Mixed, required: true },
    confidence: { type: Number, required: true },
    outcome: { type: String, required: true },
    forkId: { type: String, required: true },
    reviewId: { type: String, default: null },
  },
  { collection: 'forkDecisions', versionKey: false, strict: 'throw', _id: false, minimize: false },
);
decisionSchema.index({ accountId: 1 });

export class DecisionRepository extends Repository<StoredDecision> {
  constructor(connection: Connection) {
    super(connection, 'ForkDecision', decisionSchema);
  }

  /** Stores a decision once per id; a replayed check finds the first one. */
  async store(d: StoredDecision): Promise<{ decision: StoredDecision; created: boolean }> {
    const { stored, created } = await this.insertOnce(d, () => this.model.findById(d._id).lean<StoredDecision>());
    return { decision: stored, created };
  }

  /** Names the review the decision was filed under (an open one refreshed, or a new one). */
  async setReview(id: string, reviewId: string): Promise<void> {
    await this.model.updateOne({ _id: id }, { $set: { reviewId } });
  }

  async get(id: string): Promise<StoredDecision | null> {
    return this.model.findById(id).lean<StoredDecision>();
  }

  async latestFor(accountId: string): Promise<StoredDecision | null> {
    const all = await this.model.find({ accountId }).lean<StoredDecision[]>();
    return all.sort((a, b) => +new Date(b.at) - +new Date(a.at))[0] ?? null;
  }
}
