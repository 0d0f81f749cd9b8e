/**
 * Runs tasks one at a time per key within this process. Appends to one account's journal (or audit
 * chain) would otherwise race each other only to lose on the unique index and retry, which grows with
 * the square of the concurrency. Across processes the unique index still decides; this only
 * removes the contention a process would cause itself.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      // The last waiter cleans up, so the map holds only keys with work queued.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  get size(): number {
    return this.tails.size;
  }
}
