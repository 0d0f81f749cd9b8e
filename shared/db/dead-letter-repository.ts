import { Schema, type Connection } from 'mongoose';
import { type DeadLetter, type DeadLetterSink, deadLetterKey } from '../queue/dead-letter.js';
import { isDuplicateKeyError } from './connection.js';
import { withDocLocks } from './doc-locks.js';
import { Repository } from './model.js';

export const DEAD_LETTER_STATES = ['open', 'replayed', 'discarded'] as const;
export type DeadLetterState = (typeof DEAD_LETTER_STATES)[number];

/** A dead letter as stored: the failed job, and what an operator has done about it. */
export interface StoredDeadLetter extends DeadLetter {
  /** Public id, from the queue and the job id (`deadLetterKey`). */
  id: string;
  recordedAt: Date;
  state: DeadLetterState;
  stateAt: Date | null;
  stateBy: string | null;
  discardReason: string | null;
  /** How many times it was replayed; a replay that fails again reopens it. */
  replayCount: number;
}

export interface DeadLetterFilter {
  queue?: string | undefined;
  name?: string | undefined;
  /** Failed at or after. */
  since?: Date | undefined;
  state?: DeadLetterState | undefined;
}

const deadLetterSchema = new Schema<StoredDeadLetter>(
  {
    id: { type: String, required: true },
    queue: { type: String, required: true },
    jobId: { type: String, required: true },
    name: { type: String, required: true },
    dataJson: { type: String, required: true },
    reason: { type: String, required: true },
    failedReason: { type: String, required: true, enum: ['invalid', 'permanent', 'exhausted', 'stalled'] },
    attemptsMade: { type: Number, required: true },
    failedAt: { type: Date, required: true },
    recordedAt: { type: Date, required: true },
    state: { type: String, required: true, enum: DEAD_LETTER_STATES },
    stateAt: { type: Date, default: null },
    stateBy: { type: String, default: null },
    discardReason: { type: String, default: null },
    replayCount: { type: Number, required: true },
  },
  { collection: 'deadLetters', versionKey: false, strict: 'throw' },
);
deadLetterSchema.index({ queue: 1, jobId: 1 }, { unique: true });
deadLetterSchema.index({ id: 1 }, { unique: true });
deadLetterSchema.index({ recordedAt: -1 });

/** Called once per new dead letter (and once per failure after a replay), e.g. to raise an alert. */
export type OnDeadLetter = (letter: DeadLetter & { id: string; replayCount: number }) => Promise<void>;

const LIST_MAX = 500;
const BACKFILL_BATCH = 500;

/** The dead-letter store: jobs that exhausted their attempts or were refused for good. */
export class DeadLetterRepository extends Repository<StoredDeadLetter> implements DeadLetterSink {
  constructor(
    connection: Connection,
    private readonly onNew: OnDeadLetter = async () => undefined,
  ) {
    super(connection, 'DeadLetter', deadLetterSchema);
  }

  /** Letters recorded before they had an id and a state get them before the unique index is built. */
  override async init(): Promise<void> {
    for (;;) {
      const old = await this.model.find({ id: { $exists: false } }, { queue: 1, jobId: 1 }).limit(BACKFILL_BATCH).lean<Array<{ _id: unknown; queue: string; jobId: string }>>();
      if (old.length === 0) break;
      for (const l of old) await this.model.collection.updateOne({ _id: l._id as never, id: { $exists: false } }, { $set: { id: deadLetterKey(l), state: 'open', stateAt: null, stateBy: null, discardReason: null, replayCount: 0 } });
    }
    await super.init();
  }

  async record(letter: DeadLetter): Promise<void> {
    const { queue, jobId, name, dataJson, reason, failedReason, attemptsMade, failedAt } = letter;
    const fields = { queue, jobId, name, dataJson, reason, failedReason, attemptsMade, failedAt };
    const id = deadLetterKey(letter);
    try {
      await this.model.create({ ...fields, id, recordedAt: new Date(), state: 'open', stateAt: null, stateBy: null, discardReason: null, replayCount: 0 });
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      // Failed again after a replay: open again, with the new failure. Only a failure later than the one
      // the letter holds counts: the alerter's sweep re-records jobs still in the failed set, and the
      // failure that was replayed, swept just before its retry started, must not reopen it. Both times
      // are the job's own (BullMQ's finishedOn), never compared with another process's clock. A
      // discarded letter stays discarded (someone decided about it). Conditional on the state, so a
      // concurrent discard wins.
      await this.setIf(id, { state: 'replayed', failedAt: { $lt: failedAt } }, { $set: { reason, failedReason, attemptsMade, failedAt, state: 'open', stateAt: new Date(), stateBy: 'worker' } });
    }
    // Also on a duplicate: the first recorder may have died before raising it; the alert is deduplicated.
    // Raised under the replay this failure belongs to: the failure a replay is still running for is
    // the previous count's (its alert exists), not news that the replay failed.
    const stored = await this.get(id);
    const replayedOne = stored?.state === 'replayed' && failedAt.getTime() <= new Date(stored.failedAt).getTime();
    await this.onNew({ ...fields, id, replayCount: Math.max(0, (stored?.replayCount ?? 0) - (replayedOne ? 1 : 0)) });
  }

  /**
   * A compare-and-set on one letter by its public id, under its lock (FerretDB's updates read, then
   * write); answers whether it matched and changed.
   */
  private async setIf(id: string, filter: Record<string, unknown>, update: Record<string, unknown>): Promise<boolean> {
    return withDocLocks(this.locks, [`dead-letter:${id}`], async () => (await this.model.updateOne({ id, ...filter } as never, update as never)).modifiedCount === 1);
  }

  async get(id: string): Promise<StoredDeadLetter | null> {
    return this.model.findOne({ id }, { _id: 0 }).lean<StoredDeadLetter>();
  }

  /** Newest first, in pages: the cursor is the last letter's position (its recorded time and id). */
  async list(filter: DeadLetterFilter, page: { after?: { recordedAt: Date; id: string } | undefined; limit: number }): Promise<StoredDeadLetter[]> {
    const q: Record<string, unknown> = {};
    if (filter.queue) q['queue'] = filter.queue;
    if (filter.name) q['name'] = filter.name;
    if (filter.since) q['failedAt'] = { $gte: filter.since };
    if (filter.state) q['state'] = filter.state;
    if (page.after) q['$or'] = [{ recordedAt: { $lt: page.after.recordedAt } }, { recordedAt: page.after.recordedAt, id: { $lt: page.after.id } }];
    return this.model.find(q, { _id: 0 }).sort({ recordedAt: -1, id: -1 }).limit(Math.min(page.limit, LIST_MAX)).lean<StoredDeadLetter[]>();
  }

  /**
   * Marks a replay: any state but discarded, counted. Answers the letter as it now is, or null when it
   * was discarded (or is gone) first.
   */
  async markReplayed(id: string, by: string, now: Date): Promise<StoredDeadLetter | null> {
    // The letter as this write left it, read in the same command and under the same lock: two replays
    // at once each get their own count (their audit refs and undo conditions depend on it).
    return withDocLocks(this.locks, [`dead-letter:${id}`], () =>
      this.model.findOneAndUpdate({ id, state: { $ne: 'discarded' } }, { $set: { state: 'replayed', stateAt: now, stateBy: by }, $inc: { replayCount: 1 } }, { new: true }).lean<StoredDeadLetter>(),
    );
  }

  /** Undoes a replay mark whose enqueue failed, back to the letter as it was (only if nothing changed it since). */
  async unmarkReplayed(marked: StoredDeadLetter, before: StoredDeadLetter): Promise<void> {
    await this.setIf(marked.id, { state: 'replayed', replayCount: marked.replayCount }, { $set: { state: before.state, stateAt: before.stateAt, stateBy: before.stateBy }, $inc: { replayCount: -1 } });
  }

  /** Discards an open or replayed letter; answers whether this call discarded it. */
  async discard(id: string, by: string, reason: string, now: Date): Promise<boolean> {
    return this.setIf(id, { state: { $ne: 'discarded' } }, { $set: { state: 'discarded', stateAt: now, stateBy: by, discardReason: reason } });
  }
}
