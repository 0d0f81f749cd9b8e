import { Schema, type Connection } from 'mongoose';
import { Repository } from './model.js';

export const BULK_KINDS = ['accounts', 'transactions', 'accounts-update'] as const;
export type BulkKind = (typeof BULK_KINDS)[number];

/** Why an item of a batch was refused before it reached a queue (or found its key taken). */
export interface ItemRefusal {
  status: number;
  code: string;
  message: string;
}

/** One item of a batch as planned: its operation (job name and payload), or why it was refused. */
export interface StoredBatchItem {
  index: number;
  accountId: string | null;
  operationId: string | null;
  job: { name: string; data: Record<string, unknown> } | null;
  /** A name or configuration change of `accounts-update`, applied by the API itself. */
  profile: Record<string, unknown> | null;
  refused: ItemRefusal | null;
}

export interface StoredBatch {
  _id: string;
  kind: BulkKind;
  actor: string;
  /** The submitter's owner (null: an admin's batch): who else may read it. */
  ownerId: string | null;
  createdAt: Date;
  /** Set once every job is in its queue and every profile change is made; until then a replay finishes it. */
  enqueued: boolean;
  /** Set once the profile changes of an `accounts-update` batch are made: a replay does not make them again. */
  profilesApplied?: boolean;
  items: StoredBatchItem[];
}

const refusalSchema = new Schema<ItemRefusal>({ status: { type: Number, required: true }, code: { type: String, required: true }, message: { type: String, required: true } }, { _id: false, strict: 'throw' });
const itemSchema = new Schema<StoredBatchItem>(
  {
    index: { type: Number, required: true },
    accountId: { type: String, default: null },
    operationId: { type: String, default: null },
    job: { type: Schema.Types.Mixed, default: null },
    profile: { type: Schema.Types.Mixed, default: null },
    refused: { type: refusalSchema, default: null },
  },
  { _id: false, strict: 'throw' },
);
const batchSchema = new Schema<StoredBatch>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: BULK_KINDS },
    actor: { type: String, required: true },
    ownerId: { type: String, default: null },
    createdAt: { type: Date, required: true },
    enqueued: { type: Boolean, required: true },
    profilesApplied: { type: Boolean, default: false },
    items: { type: [itemSchema], required: true },
  },
  { collection: 'bulkBatches', versionKey: false, strict: 'throw' },
);
batchSchema.index({ createdAt: -1 });

/** Batches of the bulk endpoints: what each item became when it was planned, kept so a replay answers the same. */
export class BulkBatchRepository extends Repository<StoredBatch> {
  constructor(connection: Connection) {
    super(connection, 'BulkBatch', batchSchema);
  }

  /** The batch as first stored: a replay (or a second run at the same time) gets the first one's plan. */
  async store(batch: StoredBatch): Promise<StoredBatch> {
    return (await this.insertOnce(batch, () => this.get(batch._id))).stored;
  }

  async get(id: string): Promise<StoredBatch | null> {
    return this.model.findById(id).lean<StoredBatch>();
  }

  async markProfilesApplied(id: string): Promise<void> {
    await this.updateLocked(id, {}, { $set: { profilesApplied: true } });
  }

  /**
   * Marks the batch enqueued, with the items whose key turned out to be taken by another payload.
   * Idempotent: a second run sets the same values (it found the same jobs in the queue). Items sit
   * at their index in `items`.
   */
  async markEnqueued(id: string, refusals: Array<{ index: number; refused: ItemRefusal }>): Promise<void> {
    const $set: Record<string, unknown> = { enqueued: true };
    for (const r of refusals) $set[`items.${r.index}.refused`] = r.refused;
    await this.updateLocked(id, {}, { $set });
  }
}
