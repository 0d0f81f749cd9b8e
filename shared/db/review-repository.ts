import { Schema, type Connection } from 'mongoose';
import { Repository } from './model.js';

/**
 * A proposal waiting for an operator: a low-confidence fork decision (SPEC §4.2) or a consolidation
 * opportunity below the auto-execute bar (SPEC §5.2). `decisionId` names the decision or opportunity.
 */
export interface StoredReview {
  _id: string;
  kind: 'fork' | 'merge';
  accountId: string;
  ownerId: string | null;
  decisionId: string;
  forkId: string | null;
  state: 'PENDING' | 'APPROVED' | 'REJECTED';
  createdAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  note: string | null;
}

const reviewSchema = new Schema<StoredReview>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: ['fork', 'merge'] },
    accountId: { type: String, required: true },
    ownerId: { type: String, default: null },
    decisionId: { type: String, required: true },
    forkId: { type: String, default: null },
    state: { type: String, required: true, enum: ['PENDING', 'APPROVED', 'REJECTED'] },
    createdAt: { type: Date, required: true },
    decidedAt: { type: Date, default: null },
    decidedBy: { type: String, default: null },
    note: { type: String, default: null },
  },
  { collection: 'reviews', versionKey: false, strict: 'throw', _id: false },
);
reviewSchema.index({ state: 1 });

export class ReviewRepository extends Repository<StoredReview> {
  constructor(connection: Connection) {
    super(connection, 'Review', reviewSchema);
  }

  async createOnce(r: StoredReview): Promise<StoredReview> {
    return (await this.insertOnce(r, () => this.get(r._id))).stored;
  }

  async get(id: string): Promise<StoredReview | null> {
    return this.model.findById(id).lean<StoredReview>();
  }

  /** Decides a pending review once; answers the review as it stands afterwards. */
  async decide(id: string, state: 'APPROVED' | 'REJECTED', by: string, note: string | null, now: Date): Promise<StoredReview | null> {
    await this.model.updateOne({ _id: id, state: 'PENDING' }, { $set: { state, decidedBy: by, decidedAt: now, note } });
    return this.get(id);
  }

  async list(filter: { state?: StoredReview['state'] | undefined; ownerId?: string | undefined }, limit: number): Promise<StoredReview[]> {
    const query: Record<string, unknown> = {};
    if (filter.state) query['state'] = filter.state;
    if (filter.ownerId !== undefined) query['ownerId'] = filter.ownerId;
    return this.model.find(query).sort({ createdAt: -1 }).limit(Math.min(limit, 500)).lean<StoredReview[]>();
  }
}
