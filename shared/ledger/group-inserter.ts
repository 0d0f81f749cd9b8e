import type { InsertResult } from '../db/model.js';
import { withDeadline } from '../runtime/deadline.js';

interface Pending<T> {
  entry: T;
  resolve: (r: InsertResult) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitOptions {
  /** Entries written by one insert at most. */
  batchMax: number;
  /** Inserts in flight at once; appends arriving meanwhile wait and go together in the next one. */
  inFlightMax: number;
  /**
   * How long an insert may go unanswered before its appends are failed as unknown (their jobs retry
   * and the unique keys decide what landed) and its slot is freed: a command lost with its connection
   * would otherwise hold every posting of its accounts, and the slot, for good.
   */
  deadlineMs: number;
}

/**
 * Group commit (as TigerBeetle batches): inserts that arrive together (journal entries for different
 * accounts, transfer records) go to their collection in one unordered insert. Each entry gets its own answer: inserted, or a duplicate key
 * (its seq was taken, or its key was decided before). A batch that fails otherwise fails each of its
 * appends; every entry has a unique key, so a retry finds what did land.
 */
export class GroupInserter<T> {
  private queue: Array<Pending<T>> = [];
  private inFlight = 0;
  private scheduled = false;
  /** Entries written and batches sent, for the bench and metrics. */
  readonly counts = { entries: 0, batches: 0 };

  constructor(
    private readonly insertBatch: (docs: T[]) => Promise<InsertResult[]>,
    private readonly opts: GroupCommitOptions,
  ) {}

  append(entry: T): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      // Wait for the end of this turn of the event loop: appends made in it share the insert.
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.inFlightMax && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.batchMax);
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(batch: Array<Pending<T>>): Promise<void> {
    try {
      const results = await withDeadline(this.insertBatch(batch.map((p) => p.entry)), this.opts.deadlineMs, `an insert of ${batch.length} entries`);
      this.counts.batches++;
      this.counts.entries += results.filter((r) => r === 'inserted').length;
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
