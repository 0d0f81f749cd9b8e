import type { AccountRepository, Projection } from '../db/account-repository.js';
import { withDeadline } from '../runtime/deadline.js';

/**
 * Where a projector says that it holds projections not yet written (see ProjectionBacklog): `hold`
 * with the time of its oldest unwritten mark (claimed, renewed, or moved forward), `release` when
 * everything is written.
 */
export interface BacklogClaim {
  hold(oldestMarkAt: number): Promise<void>;
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
const FLUSH_ROUNDS_MAX = 50;
const FLUSH_BACKOFF_MS_MAX = 250;
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
/** A held claim is renewed this often even while no batch finishes (a slow batch, a long pause). */
const CLAIM_RENEW_MS = 30_000;

/**
 * Writes account projections off the hot path: a posting marks its account's new head here and goes
 * on; marks are coalesced per account (only the newest seq is written) and written in batches, at
 * most eight in flight. A projection lost to a crash is written again by the replay of its job or
 * repaired by the reconciler, which compares projections with the journal. While anything is pending
 * the process holds a claim on the backlog, stamped with the time of its oldest unwritten mark: the
 * claim is in place before the posting that made the projector non-empty completes (its `mark` is
 * awaited), moves forward as batches write, and is withdrawn only after the last batch wrote. A
 * reader that started at T and waits until no claim is older than T sees every posting completed
 * before T, even while later postings keep the projector busy. Claims and withdrawals run one after
 * another, in the order they were decided.
 */
export class Projector {
  private readonly pending = new Map<string, Projection>();
  /** When each pending account was first marked since its last write (a newer mark keeps the older time). */
  private readonly markedAt = new Map<string, number>();
  /** The oldest mark of each batch in flight. */
  private readonly inFlightOldest = new Map<Promise<void>, number>();
  private renewal: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failuresInRow = 0;
  private lastBatchMs = 0;
  private get inFlight(): Map<Promise<void>, number> {
    return this.inFlightOldest;
  }
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
    if (!this.markedAt.has(p.id)) this.markedAt.set(p.id, Date.now());
    // The first mark after a quiet spell waits the flush delay only; marks after it say postings are coming.
    this.schedule();
    this.contended = true;
    if (!this.claimed) {
      this.claimed = true;
      this.held = this.claim('hold');
      this.renewal = setInterval(() => this.claim('hold'), CLAIM_RENEW_MS);
      this.renewal.unref();
    }
    return this.held;
  }

  /** The oldest mark not yet written: pending, or in a batch in flight. */
  private oldestMark(): number {
    let oldest = Date.now();
    for (const at of this.markedAt.values()) oldest = Math.min(oldest, at);
    for (const at of this.inFlightOldest.values()) oldest = Math.min(oldest, at);
    return oldest;
  }

  private claim(op: 'hold' | 'release'): Promise<void> {
    const backlog = this.backlog;
    if (!backlog) return this.claims;
    // Redis away: the readers only lose their freshness guarantee, never a projection.
    this.claims = this.claims.then(() => (op === 'hold' ? backlog.hold(this.oldestMark()) : backlog.release())).catch(() => undefined);
    return this.claims;
  }

  private unclaim(): void {
    if (!this.claimed) return;
    this.claimed = false;
    if (this.renewal) clearInterval(this.renewal);
    this.renewal = null;
    this.claim('release');
  }

  /** Writes everything marked so far (bounded rounds): before a process stops, and in tests. */
  async flush(): Promise<void> {
    for (let round = 0; round < FLUSH_ROUNDS_MAX && (this.pending.size > 0 || this.inFlight.size > 0); round++) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      while (this.pending.size > 0 && this.inFlight.size < BATCHES_IN_FLIGHT) this.run();
      const written = this.counts.written;
      await Promise.race(this.inFlight.keys());
      // Nothing written this round (its accounts locked by another process's batch): give that batch
      // time to finish instead of spending the rounds at once.
      if (this.counts.written === written) await new Promise((r) => setTimeout(r, Math.min(FLUSH_BACKOFF_MS_MAX, 5 * 2 ** Math.min(round, 6))));
    }
    await this.claims;
  }

  /**
   * Before the process stops: writes what it can, then withdraws the claim whatever is left (what
   * could not be written is lost with the process and repaired by the reconciler).
   */
  async close(): Promise<void> {
    await this.flush();
    this.unclaim();
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
    const contended = this.contended;
    this.contended = false;
    let oldest = Date.now();
    const batch: Promise<void> = this.writeBatch((at) => (oldest = Math.min(oldest, at))).finally(() => {
      this.inFlight.delete(batch);
      if (this.pending.size > 0) {
        this.schedule();
        // Still behind (and writing): the claim moves forward to the oldest mark left. A projector
        // whose batches keep failing stops renewing, so its claim lapses instead of holding readers.
        if (this.failuresInRow === 0) this.claim('hold');
      } else if (this.inFlight.size === 0) {
        this.unclaim();
      }
    });
    this.inFlight.set(batch, oldest);
    // A full batch more waiting and room for it: it starts at once (a backlog is written in parallel)
    // unless postings are still arriving; less than a batch waits for its flush delay, to share the write.
    if (this.pending.size >= this.opts.batchMax && this.inFlight.size < BATCHES_IN_FLIGHT && !this.timer && this.failuresInRow === 0 && !contended) this.run();
    else if (this.pending.size > 0) this.schedule();
  }

  /** Takes a batch from the pending set at once (before its first await), telling `taken` each mark's time. */
  private async writeBatch(taken: (markedAt: number) => void): Promise<void> {
    const batch = [...this.pending.values()].slice(0, this.opts.batchMax);
    const times = new Map(batch.map((p) => [p.id, this.markedAt.get(p.id) ?? Date.now()]));
    for (const p of batch) {
      this.pending.delete(p.id);
      this.markedAt.delete(p.id);
      taken(times.get(p.id)!);
    }
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
    for (const p of retry) {
      if (!this.pending.has(p.id)) this.pending.set(p.id, p);
      this.markedAt.set(p.id, Math.min(this.markedAt.get(p.id) ?? Infinity, times.get(p.id)!));
    }
  }
}
