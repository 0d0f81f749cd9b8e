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
 * The fixed shutdown order of every process (STYLE habit 5): readiness fails → workers drain
 * (forced once the deadline passes) → producers → connections → HTTP → logs flush → exit 0.
 * Resources register as they are created; signals and fatal errors all end here, once.
 */
export class Lifecycle {
  private readonly workers: Drainable[] = [];
  private readonly producers: Closable[] = [];
  private readonly connections: Closable[] = [];
  private readonly http: Closable[] = [];
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
    this.logger.info({ reason, deadlineMs: this.deadlineMs }, 'shutting down');
    // Last resort: if a close hangs past twice the deadline, leave anyway (non-zero: it was not clean).
    const hardStop = setTimeout(() => {
      this.logger.error('shutdown hung past twice the deadline; exiting');
      void flushLogger(this.logger).finally(() => this.exit(1));
    }, this.deadlineMs * 2);
    hardStop.unref();

    this.health.ready = false;
    await this.drainWorkers();
    await this.closeAll('producer', this.producers);
    await this.closeAll('connection', this.connections);
    await this.closeAll('http', this.http);
    this.logger.info({ tookMs: Date.now() - startedAt }, 'shutdown complete');
    await flushLogger(this.logger);
    clearTimeout(hardStop);
    this.exit(exitCode);
  }

  /** Lets in-flight jobs finish until the deadline; then forces close so their locks lapse and they are retried. */
  private async drainWorkers(): Promise<void> {
    if (this.workers.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), this.deadlineMs);
    });
    const graceful = Promise.allSettled(this.workers.map((w) => w.close(false))).then(() => 'drained' as const);
    const outcome = await Promise.race([graceful, deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      this.logger.warn({ deadlineMs: this.deadlineMs }, 'workers still busy at the deadline; forcing close');
      await Promise.allSettled(this.workers.map((w) => w.close(true)));
    }
  }

  private async closeAll(kind: string, items: Closable[]): Promise<void> {
    const results = await Promise.allSettled(items.map((i) => i.close()));
    results.forEach((r, idx) => {
      if (r.status === 'rejected') this.logger.warn({ err: r.reason, [kind]: items[idx]!.name }, `closing ${kind} failed`);
    });
  }
}
