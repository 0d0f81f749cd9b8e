import type { AccountRepository, Projection } from '../db/account-repository.js';
import { withDeadline } from '../runtime/deadline.js';

/** Where a projector says that it holds projections not yet written (see ProjectionBacklog). */
export interface BacklogClaim {
  hold(): Promise<void>;
  release(): Promise<void>;
}

export interface ProjectorOptions {
  /** How long a projection waits for others to share its write. */
  flushMs: number;
  /** Accounts written by one batch at most. */
  batchMax: number;
  /** How long a batch may go unanswered before it counts as failed (and is written again), so the projector never stalls. */
  deadlineMs: number;
}

/** Rounds a final flush (shutdown, tests) makes at most before giving up on what is still locked. */
const FLUSH_ROUNDS_MAX = 200;
/** After a failed batch (the database away), the next waits this much longer, up to the cap. */
const FAILURE_BACKOFF_MS_MAX = 5000;
/**
 * While postings keep arriving, a batch is followed by a pause of this many times its own length: on
 * FerretDB an update costs many times an insert, so under load the projector takes at most a quarter
 * of the server and the projections trail (coalescing more) instead of slowing the postings they
 * follow. Once no posting arrived during a batch, the backlog is written without pauses.
 */
const DUTY_PAUSE_FACTOR = 3;
/**
 * Batches written at once (of `batchMax` each, 25 by default): FerretDB runs the updates of one
 * command one after another, each in its own transaction, so one command of 200 writes about 180 a
 * second here and eight commands of 25 about 550. Two batches never write the same account: a batch
 * locks its accounts, and one held by another batch is written by a later one.
 */
const BATCHES_IN_FLIGHT = 8;

/**
 * Writes account projections off the hot path: a posting marks its account's new head here and goes
 * on; marks are coalesced per account (only the newest seq is written) and written in batches, at
 * most eight in flight. A projection lost to a crash is written again by the replay of its job or
 * repaired by the reconciler, which compares projections with the journal. While anything is pending
 * the process holds a claim on the backlog: the claim is in place before the posting that made the
 * projector non-empty completes (its `mark` is awaited) and withdrawn only after the last batch wrote,
 * so readers that wait for no claims see every posting completed before they started. Claims and
 * withdrawals run one after another, in the order they were decided.
 */
export class Projector {
  private readonly pending = new Map<string, Projection>();
  private timer: NodeJS.Timeout | null = null;
  private failuresInRow = 0;
  private lastBatchMs = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** A posting was marked since the last batch started: the postings are still coming. */
  private contended = false;
  /** A claim on the backlog is held (or on its way). */
  private claimed = false;
  private claims: Promise<void> = Promise.resolve();
  /** The claim the current backlog stands on: what a marking posting waits for (a renewal is not waited for). */
  private held: Promise<void> = Promise.resolve();
  /** Projections written, for the bench and metrics. */
  readonly counts = { written: 0, batches: 0, failures: 0 };

  constructor(
    private readonly accounts: AccountRepository,
    private readonly opts: ProjectorOptions,
    private readonly now: () => Date,
    private readonly onError: (err: unknown) => void,
    private readonly backlog: BacklogClaim | null = null,
  ) {}

  /** Marks a head to project; resolves once this process's claim on the backlog is in place. */
  mark(p: Projection): Promise<void> {
    const known = this.pending.get(p.id);
    if (!known || known.seq < p.seq) this.pending.set(p.id, p);
    this.contended = true;
    this.schedule();
    if (!this.claimed) {
      this.claimed = true;
      this.held = this.claim('hold');
    }
    return this.held;
  }

  private claim(op: 'hold' | 'release'): Promise<void> {
    const backlog = this.backlog;
    if (!backlog) return this.claims;
    // Redis away: the readers only lose their freshness guarantee, never a projection.
    this.claims = this.claims.then(() => backlog[op]()).catch(() => undefined);
    return this.claims;
  }

  /** Writes everything marked so far (bounded rounds): before a process stops, and in tests. */
  async flush(): Promise<void> {
    for (let round = 0; round < FLUSH_ROUNDS_MAX && (this.pending.size > 0 || this.inFlight.size > 0); round++) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      while (this.pending.size > 0 && this.inFlight.size < BATCHES_IN_FLIGHT) this.run();
      await Promise.race(this.inFlight);
    }
    await this.claims;
  }

  private schedule(): void {
    if (this.timer || this.inFlight.size >= BATCHES_IN_FLIGHT || this.pending.size === 0) return;
    const pause = this.failuresInRow > 0 ? Math.min(FAILURE_BACKOFF_MS_MAX, this.opts.flushMs * 2 ** this.failuresInRow) : this.contended ? Math.max(this.opts.flushMs, this.lastBatchMs * DUTY_PAUSE_FACTOR) : this.opts.flushMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run();
    }, pause);
    this.timer.unref();
  }

  private run(): void {
    this.contended = false;
    const batch = this.writeBatch().finally(() => {
      this.inFlight.delete(batch);
      if (this.pending.size > 0) {
        this.schedule();
        // Still behind: the claim is renewed, so it does not lapse while the backlog drains.
        this.claim('hold');
      } else if (this.inFlight.size === 0 && this.claimed) {
        this.claimed = false;
        this.claim('release');
      }
    });
    this.inFlight.add(batch);
    // A full batch more waiting and room for it: it starts at once (a backlog is written in parallel);
    // less than a batch waits for its flush delay, to share the write with what comes.
    if (this.pending.size >= this.opts.batchMax && this.inFlight.size < BATCHES_IN_FLIGHT && !this.timer && this.failuresInRow === 0 && !this.contended) this.run();
    else if (this.pending.size > 0) this.schedule();
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
