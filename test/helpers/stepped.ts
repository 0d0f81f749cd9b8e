import type { WriteHooks } from '../../shared/ledger/post.js';

/**
 * One run of a saga (or transfer), stopped before each of its writes: a test decides when the next
 * write may happen, so two runs (or a run and an operator) interleave exactly as asked, no sleeps.
 */
export class SteppedRun<T> {
  readonly writes: string[] = [];
  private release: (() => void) | null = null;
  private waiter: ((label: string | null) => void) | null = null;
  private finished = false;
  private outcome: Promise<T> | null = null;

  constructor(private readonly body: (hooks: WriteHooks) => Promise<T>) {}

  private signal(label: string | null): void {
    const w = this.waiter;
    this.waiter = null;
    w?.(label);
  }

  private hooks: WriteHooks = {
    beforeWrite: (label) =>
      new Promise<void>((resolve) => {
        this.writes.push(label);
        this.release = resolve;
        this.signal(label);
      }),
  };

  /** Lets the run go on to its next write (paused before it: its label) or to its end (null). */
  async step(): Promise<string | null> {
    if (this.finished) return null;
    const next = new Promise<string | null>((resolve) => (this.waiter = resolve));
    if (!this.outcome) {
      this.outcome = this.body(this.hooks).finally(() => {
        this.finished = true;
        this.signal(null);
      });
      this.outcome.catch(() => undefined);
    } else {
      const r = this.release;
      this.release = null;
      r?.();
    }
    return next;
  }

  /** Lets `n` writes happen (stops earlier if the run ends); answers the writes done. */
  async advance(n: number): Promise<number> {
    let done = 0;
    if (!this.outcome) await this.step();
    while (done < n && !this.finished) {
      await this.step();
      done++;
    }
    return done;
  }

  /** Lets the run go to its end. */
  async finish(): Promise<T> {
    if (!this.outcome) await this.step();
    while (!this.finished) await this.step();
    return this.outcome!;
  }
}

/** Hooks that fail the k-th write (0-based), before it happens or after it landed (its reply lost). */
export function failingAt(k: number, when: 'before' | 'after'): WriteHooks & { writes: string[] } {
  const writes: string[] = [];
  let seen = 0;
  const fail = async (label: string) => {
    if (seen++ === k) throw new Error(`injected failure ${when} write ${k} (${label})`);
  };
  return when === 'before'
    ? { writes, beforeWrite: async (label) => (writes.push(label), fail(label)) }
    : { writes, beforeWrite: async (label) => void writes.push(label), afterWrite: fail };
}
