import { Schema, type Connection } from 'mongoose';
import { Repository, insertBatch } from './model.js';

/**
 * A consolidation opportunity (SPEC §5.2): what the engine found for one account on one day, stored
 * with its inputs and assessment so the decision can be explained; and what was done about it.
 */
export interface StoredOpportunity {
  _id: string;
  accountId: string;
  ownerId: string | null;
  date: string;
  /** The account's journal seq the assessment read. */
  seq: number;
  fired: string[];
  strategy: string;
  targetId: string | null;
  sourceIds: string[];
  amount: string | null;
  urgency: string;
  confidence: number;
  action: 'none' | 'execute' | 'review';
  /** Triggers with their measures, benefits, risk and the summary of the inputs (JSON, decimal strings). */
  assessment: Record<string, unknown>;
  inputs: Record<string, unknown>;
  mergeIds: string[];
  reviewId: string | null;
  createdAt: Date;
}

const opportunitySchema = new Schema<StoredOpportunity>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    ownerId: { type: String, default: null },
    date: { type: String, required: true },
    seq: { type: Number, required: true },
    fired: { type: [String], default: [] },
    strategy: { type: String, required: true },
    targetId: { type: String, default: null },
    sourceIds: { type: [String], default: [] },
    amount: { type: String, default: null },
    urgency: { type: String, required: true },
    confidence: { type: Number, required: true },
    action: { type: String, required: true },
    assessment: { type: Schema.Types.Mixed, required: true },
    inputs: { type: Schema.Types.Mixed, required: true },
    mergeIds: { type: [String], default: [] },
    reviewId: { type: String, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'consolidation_opportunities', versionKey: false, strict: 'throw', minimize: false, _id: false },
);
opportunitySchema.index({ date: 1 });
opportunitySchema.index({ accountId: 1 });
opportunitySchema.index({ createdAt: -1 });

export const opportunityIdOf = (accountId: string, date: string) => `copp_${accountId}_${date}`;

export class OpportunityRepository extends Repository<StoredOpportunity> {
  constructor(connection: Connection) {
    super(connection, 'ConsolidationOpportunity', opportunitySchema);
  }

  /** One opportunity per account and day: a second scan of the day finds the first. */
  async recordOnce(o: StoredOpportunity): Promise<{ stored: StoredOpportunity; created: boolean }> {
    return this.insertOnce(o, () => this.get(o._id));
  }

  /** `recordOnce` for a page in one insert: a duplicate (a re-run of the day) is read back on its own. */
  async recordMany(docs: StoredOpportunity[]): Promise<Array<{ stored: StoredOpportunity; created: boolean }>> {
    const results = await insertBatch(this.model as never, docs);
    return Promise.all(docs.map(async (o, i) => (results[i] === 'inserted' ? { stored: o, created: true } : { stored: (await this.get(o._id)) ?? o, created: false })));
  }

  async get(id: string): Promise<StoredOpportunity | null> {
    return this.model.findById(id).lean<StoredOpportunity>();
  }

  async setOutcome(id: string, patch: { mergeIds?: string[]; reviewId?: string }): Promise<void> {
    await this.model.updateOne({ _id: id }, { $set: patch });
  }

  async recent(filter: { ownerId?: string | undefined; date?: string | undefined }, limit: number): Promise<StoredOpportunity[]> {
    const query: Record<string, unknown> = {};
    if (filter.ownerId !== undefined) query['ownerId'] = filter.ownerId;
    if (filter.date) query['date'] = filter.date;
    return this.model.find(query).sort({ createdAt: -1 }).limit(Math.min(limit, 500)).lean<StoredOpportunity[]>();
  }
}
