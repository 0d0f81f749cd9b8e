import type { Logger } from './logger.js';
import { flushLogger } from './logger.js';
import type { HealthState } from './health-server.js';

/** Something a worker-like resource offers: a graceful close and a forced one. */
export interface Drainable {
  name: string;
  close(force: boolean): Promise<void>;
}
export interface Closable {
  name: string;
  close(): Promise<void>;
}

/**
 * How a shutdown deadline is spent. The deadline bounds the whole shutdown, signal to exit, not just
 * the drain: a process manager (or scripts/fleet.ts) waits about that long before it kills, and a
 * close that hangs (mongoose on a MongoDB that stopped answering waits for replies that never come)
 * must not decide when we exit. Workers drain until `drainMs`, which leaves a slice for the closes;
 * at `hardStopMs` whatever is still closing is abandoned and the logs get the rest to flush.
 */
export function shutdownBudget(deadlineMs: number): { drainMs: number; hardStopMs: number; flushMs: number } {
  const flushMs = Math.min(200, Math.floor(deadlineMs / 20));
  const drainMs = deadlineMs - Math.min(2000, Math.floor(deadlineMs / 4));
  return { drainMs, hardStopMs: deadlineMs - flushMs, flushMs };
}

/** Waits for the promise at most `ms`: true if it settled in time (either way), false if not; never rejects. */
function settleWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The fixed shutdown order of every process (STYLE habit 5): readiness fails → workers drain
 * (forced once the drain budget is spent) → producers → connections → HTTP → logs flush → exit 0.
 * The whole of it fits in the deadline (shutdownBudget): a close still pending then is given up on,
 * named in the log, and the process exits 1. Resources register as they are created; signals and
 * fatal errors all end here, once.
 */
export class Lifecycle {
  private readonly workers: Drainable[] = [];
  private readonly producers: Closable[] = [];
  private readonly connections: Closable[] = [];
  private readonly http: Closable[] = [];
  /** What is being closed right now, to name it if the deadline passes first. */
  private readonly pending = new Set<string>();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs: number,
    private readonly health: HealthState,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {}

  addWorker(w: Drainable): void {
    this.workers.push(w);
  }
  addProducer(p: Closable): void {
    this.producers.push(p);
  }
  addConnection(c: Closable): void {
    this.connections.push(c);
  }
  addHttp(h: Closable): void {
    this.http.push(h);
  }

  installSignalHandlers(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => void this.shutdown(signal));
    }
  }

  /** Idempotent: a second signal while stopping waits for the same shutdown. */
  shutdown(reason: string, exitCode = 0): Promise<void> {
    this.stopping ??= this.run(reason, exitCode);
    return this.stopping;
  }

  private async run(reason: string, exitCode: number): Promise<void> {
    const startedAt = Date.now();
    const budget = shutdownBudget(this.deadlineMs);
    this.logger.info({ reason, deadlineMs: this.deadlineMs }, 'shutting down');
    // The deadline is a promise to whoever sent the signal: if a close hangs, leave anyway
    // (non-zero: it was not clean). Kept ref'd so that the exit is always this explicit one.
    let hardTimer: NodeJS.Timeout | undefined;
    const hardStop = new Promise<'hard-stop'>((resolve) => {
      hardTimer = setTimeout(() => resolve('hard-stop'), budget.hardStopMs);
    });

    const steps = async () => {
      this.health.ready = false;
      // The forced close gets half of what is left after the drain, the other closes the rest.
      await this.drainWorkers(startedAt + budget.drainMs, startedAt + (budget.drainMs + budget.hardStopMs) / 2);
      await this.closeAll('producer', this.producers);
      await this.closeAll('connection', this.connections);
      await this.closeAll('http', this.http);
      return 'done' as const;
    };
    const outcome = await Promise.race([steps(), hardStop]);
    clearTimeout(hardTimer);
    if (outcome === 'hard-stop') {
      this.logger.error({ deadlineMs: this.deadlineMs, pending: [...this.pending] }, 'shutdown deadline reached with closes still pending; exiting');
      await settleWithin(flushLogger(this.logger), budget.flushMs);
      this.exit(1);
      return;
    }
    this.logger.info({ tookMs: Date.now() - startedAt }, 'shutdown complete');
    await settleWithin(flushLogger(this.logger), Math.max(budget.flushMs, startedAt + this.deadlineMs - Date.now()));
    this.exit(exitCode);
  }

  /**
   * Lets in-flight jobs finish until `drainUntil`; then forces close so their locks lapse and they
   * are retried. The forced close is waited for only briefly: BullMQ 6 memoises a worker's first
   * close, so close(true) after close(false) returns the same graceful promise, still waiting on the
   * job (one stuck on a MongoDB that stopped answering waits as long as the driver does). Moving on
   * is what forces it: the connections close under the job and the process exits; its lock lapses
   * and the stalled-job check hands it to another worker.
   */
  private async drainWorkers(drainUntil: number, forceUntil: number): Promise<void> {
    if (this.workers.length === 0) return;
    const graceful = Promise.allSettled(this.workers.map((w) => this.track(`worker ${w.name}`, w.close(false))));
    if (await settleWithin(graceful, drainUntil - Date.now())) return;
    this.logger.warn({ drainMs: shutdownBudget(this.deadlineMs).drainMs, deadlineMs: this.deadlineMs }, 'workers still busy at the drain deadline; forcing close');
    await settleWithin(Promise.allSettled(this.workers.map((w) => this.track(`worker ${w.name} (forced)`, w.close(true)))), forceUntil - Date.now());
  }

  private async closeAll(kind: string, items: Closable[]): Promise<void> {
    const results = await Promise.allSettled(items.map((i) => this.track(`${kind} ${i.name}`, i.close())));
    results.forEach((r, idx) => {
      if (r.status === 'rejected') this.logger.warn({ err: r.reason, [kind]: items[idx]!.name }, `closing ${kind} failed`);
    });
  }

  /** Keeps the name in `pending` while the close runs (the graceful drain's entry stays until it settles). */
  private track<T>(name: string, p: Promise<T>): Promise<T> {
    this.pending.add(name);
    return p.finally(() => this.pending.delete(name));
  }
}
