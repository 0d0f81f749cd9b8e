import { Schema, type Connection } from 'mongoose';
import type { DeadLetter, DeadLetterSink } from '../queue/dead-letter.js';
import { isDuplicateKeyError } from './connection.js';
import { Repository } from './model.js';

const deadLetterSchema = new Schema<DeadLetter & { recordedAt: Date }>(
  {
    queue: { type: String, required: true },
    jobId: { type: String, required: true },
    name: { type: String, required: true },
    dataJson: { type: String, required: true },
    reason: { type: String, required: true },
    failedReason: { type: String, required: true, enum: ['invalid', 'permanent', 'exhausted', 'stalled'] },
    attemptsMade: { type: Number, required: true },
    failedAt: { type: Date, required: true },
    recordedAt: { type: Date, required: true },
  },
  { collection: 'deadLetters', versionKey: false, strict: 'throw' },
);
deadLetterSchema.index({ queue: 1, jobId: 1 }, { unique: true });
deadLetterSchema.index({ recordedAt: -1 });

/** Called once per new dead letter, e.g. to raise an alert. */
export type OnDeadLetter = (letter: DeadLetter) => Promise<void>;

/** The dead-letter store: jobs that exhausted their attempts or were refused for good. */
export class DeadLetterRepository extends Repository<DeadLetter & { recordedAt: Date }> implements DeadLetterSink {
  constructor(
    connection: Connection,
    private readonly onNew: OnDeadLetter = async () => undefined,
  ) {
    super(connection, 'DeadLetter', deadLetterSchema);
  }

  async record(letter: DeadLetter): Promise<void> {
    try {
      await this.model.create({ ...letter, recordedAt: new Date() });
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
    // Also on a duplicate: the first recorder may have died before raising it; the alert is deduplicated.
    await this.onNew(letter);
  }

  async list(limit = 100): Promise<DeadLetter[]> {
    return this.model.find({}, { _id: 0 }).sort({ recordedAt: -1 }).limit(Math.min(limit, 1000)).lean<DeadLetter[]>();
  }
}
