import { Schema, type Connection } from 'mongoose';
import { isDuplicateKeyError } from './connection.js';
import { Repository } from './model.js';

/** The first outcome of an operation, kept under its key, so a replay answers the same (SPEC §3.4). */
export interface StoredIdempotency<O = unknown> {
  _id: string;
  payloadHash: string;
  outcome: O;
  createdAt: Date;
}

const idempotencySchema = new Schema<StoredIdempotency>(
  {
    _id: { type: String, required: true },
    payloadHash: { type: String, required: true },
    outcome: { type: Schema.Types.Mixed, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'idempotency', versionKey: false, strict: 'throw', _id: false, minimize: false },
);

export class IdempotencyRepository extends Repository<StoredIdempotency> {
  constructor(connection: Connection) {
    super(connection, 'Idempotency', idempotencySchema);
  }

  async get<O>(key: string): Promise<StoredIdempotency<O> | null> {
    return this.model.findById(key).lean<StoredIdempotency<O>>();
  }

  /**
   * Claims the key for this payload before anything is done, so a concurrent reuse with another
   * payload is refused rather than racing. Returns the record now under the key: this claim (outcome
   * null), an earlier unfinished claim (outcome null: finish it, the steps are idempotent), or a
   * finished one.
   */
  async claim<O>(key: string, payloadHash: string, now: Date): Promise<StoredIdempotency<O | null>> {
    try {
      await this.model.create({ _id: key, payloadHash, outcome: null, createdAt: now });
      return { _id: key, payloadHash, outcome: null, createdAt: now };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      return (await this.get<O | null>(key))!;
    }
  }

  /** Records the outcome of a claimed key and answers the one that stands: only an open claim is completed, so the first outcome stays. */
  async complete<O>(key: string, outcome: O): Promise<O> {
    const result = await this.model.updateOne({ _id: key, outcome: null }, { $set: { outcome } });
    if (result.modifiedCount === 1) return outcome;
    return ((await this.get<O>(key))?.outcome ?? outcome) as O;
  }
}
