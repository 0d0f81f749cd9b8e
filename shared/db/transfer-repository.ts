import { Schema, type Connection } from 'mongoose';
import { type InsertResult, Repository, insertBatch } from './model.js';

/** Two-phase transfer phases: hold on the source → credit the destination → post; or void. */
export const TRANSFER_PHASES = ['PENDING', 'HELD', 'CREDITED', 'POSTED', 'VOIDED'] as const;
export type TransferPhase = (typeof TRANSFER_PHASES)[number];
export const OPEN_PHASES: TransferPhase[] = ['PENDING', 'HELD', 'CREDITED'];

export interface StoredTransfer {
  _id: string;
  fromId: string;
  toId: string;
  amountCents: bigint;
  phase: TransferPhase;
  /** Why it was voided (a refusal code and message), when it was. */
  voidReason: { code: string; message: string } | null;
  /** The client's idempotency key (scoped) and its payload hash, to refuse a reuse with other data. */
  idempotencyKey: string;
  payloadHash: string;
  actor: string;
  createdAt: Date;
  updatedAt: Date;
}

const transferSchema = new Schema<StoredTransfer>(
  {
    _id: { type: String, required: true },
    fromId: { type: String, required: true },
    toId: { type: String, required: true },
    amountCents: { type: BigInt, required: true },
    phase: { type: String, required: true, enum: TRANSFER_PHASES },
    voidReason: { type: Schema.Types.Mixed, default: null },
    idempotencyKey: { type: String, required: true },
    payloadHash: { type: String, required: true },
    actor: { type: String, required: true },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'transfers', versionKey: false, strict: 'throw', _id: false },
);
transferSchema.index({ phase: 1, updatedAt: 1 });
transferSchema.index({ fromId: 1 });

export class TransferRepository extends Repository<StoredTransfer> {
  constructor(connection: Connection) {
    super(connection, 'Transfer', transferSchema);
  }

  /** The transfer record, created on first sight; a replay gets the stored one. */
  async getOrCreate(t: StoredTransfer): Promise<StoredTransfer> {
    return (await this.insertOnce(t, () => this.get(t._id))).stored;
  }

  /** A batch of new records in one insert (see insertBatch). */
  async insertBatch(records: StoredTransfer[]): Promise<InsertResult[]> {
    return insertBatch(this.model as never, records);
  }

  async get(id: string): Promise<StoredTransfer | null> {
    return this.model.findById(id).lean<StoredTransfer>();
  }

  /** Advances the phase only from the phase the caller saw (a cache of what the journal decided); answers whether it did. */
  async advance(id: string, from: TransferPhase, to: TransferPhase, now: Date, voidReason?: StoredTransfer['voidReason']): Promise<boolean> {
    return this.updateLocked(id, { phase: from }, { $set: { phase: to, updatedAt: now, ...(voidReason ? { voidReason } : {}) } });
  }

  /** Transfers left in an open phase since before `before`: what the recovery job finishes. */
  async stuck(before: Date, limit: number): Promise<StoredTransfer[]> {
    return this.model.find({ phase: { $in: OPEN_PHASES }, updatedAt: { $lt: before } }).sort({ updatedAt: 1 }).limit(limit).lean<StoredTransfer[]>();
  }

  async countOpen(): Promise<number> {
    return this.model.countDocuments({ phase: { $in: OPEN_PHASES } });
  }
}
