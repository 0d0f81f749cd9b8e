import type { AccountRepository, Projection } from '../db/account-repository.js';
import { withDeadline } from '../runtime/deadline.js';

export interface ProjectorOptions {
  /** How long a projection waits for others to share its write. */
  flushMs: number;
  /** Accounts written by one batch at most. */
  batchMax: number;
  /** How long a batch may go unanswered before it counts as failed (and is written again), so the projector never stalls. */
  deadlineMs: number;
}

/** Rounds a final flush (shutdown, tests) makes at most before giving up on what is still locked. */
const FLUSH_ROUNDS_MAX = 50;
/** After a failed batch (the database away), the next waits this much longer, up to the cap. */
const FAILURE_BACKOFF_MS_MAX = 5000;
/**
 * A batch is followed by a pause of this many times its own length: on FerretDB an update costs
 * several times an insert, so under load the projector takes at most a quarter of the server and the
 * projections trail (coalescing more) instead of slowing the postings they follow.
 */
const DUTY_PAUSE_FACTOR = 3;

/**
 * Writes account projections off the hot path: a posting marks its account's new head here and goes
 * on; marks are coalesced per account (only the newest seq is written) and written in batches, at
 * most one batch in flight. A projection lost to a crash is written again by the replay of its job or
 * repaired by the reconciler, which compares projections with the journal.
 */
export class Projector {
  private readonly pending = new Map<string, Projection>();
  private timer: NodeJS.Timeout | null = null;
  private failuresInRow = 0;
  private lastBatchMs = 0;
  private running: Promise<void> | null = null;
  /** Projections written, for the bench and metrics. */
  readonly counts = { written: 0, batches: 0, failures: 0 };

  constructor(
    private readonly accounts: AccountRepository,
    private readonly opts: ProjectorOptions,
    private readonly now: () => Date,
    private readonly onError: (err: unknown) => void,
  ) {}

  mark(p: Projection): void {
    const known = this.pending.get(p.id);
    if (!known || known.seq < p.seq) this.pending.set(p.id, p);
    this.schedule();
  }

  /** Writes everything marked so far (bounded rounds): before a process stops, and in tests. */
  async flush(): Promise<void> {
    for (let round = 0; round < FLUSH_ROUNDS_MAX && (this.pending.size > 0 || this.running); round++) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      await (this.running ?? this.run());
    }
  }

  private schedule(): void {
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, this.failuresInRow === 0 ? Math.max(this.opts.flushMs, this.lastBatchMs * DUTY_PAUSE_FACTOR) : Math.min(FAILURE_BACKOFF_MS_MAX, this.opts.flushMs * 2 ** this.failuresInRow));
    this.timer.unref();
  }

  private run(): Promise<void> {
    this.running = this.writeBatch().finally(() => {
      this.running = null;
      if (this.pending.size > 0) this.schedule();
    });
    return this.running;
  }

  private async writeBatch(): Promise<void> {
    const batch = [...this.pending.values()].slice(0, this.opts.batchMax);
    for (const p of batch) this.pending.delete(p.id);
    let retry: Projection[] = [];
    const started = Date.now();
    try {
      const locked = new Set(await withDeadline(this.accounts.project(batch, this.now()), this.opts.deadlineMs, `a batch of ${batch.length} projections`));
      retry = batch.filter((p) => locked.has(p.id));
      this.counts.written += batch.length - retry.length;
      this.counts.batches++;
      this.failuresInRow = 0;
      this.lastBatchMs = Date.now() - started;
    } catch (err) {
      this.counts.failures++;
      retry = batch;
      if (this.failuresInRow++ === 0) this.onError(err);
    }
    // Held elsewhere (or failed): tried again with the next batch, unless a newer head was marked meanwhile.
    for (const p of retry) if (!this.pending.has(p.id)) this.pending.set(p.id, p);
  }
}
