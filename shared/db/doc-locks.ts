import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { RedisClient } from '../queue/connection.js';

/**
 * Short locks on documents that several processes update. On FerretDB v1 an update reads the document,
 * then writes all of it back without checking its filter again, so two processes updating one account
 * document at once can roll each other back (a projection at seq 3 landing over seq 4). Every writer
 * of a shared document takes its lock first; the update's guard is then read and written by one
 * process at a time. On MongoDB the guard alone is atomic and the lock only costs a round trip.
 */
export interface DocLocks {
  /** Takes the locks that are free among `ids`; the caller writes only those, then releases them. */
  acquire(ids: string[]): Promise<HeldLocks>;
}
export interface HeldLocks {
  ids: Set<string>;
  release(): Promise<void>;
}

/** Far longer than one batch of updates (bounded at a few hundred documents); a holder that dies frees its locks when they expire. */
const LOCK_TTL_MS = 30_000;

const ACQUIRE = `local got = {}
for i, key in ipairs(KEYS) do
  if redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) then got[#got + 1] = i end
end
return got`;
const RELEASE = `for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then redis.call('del', key) end
end
return 1`;

/**
 * Locks in Redis (one key per document), taken and released in one script call for a whole batch.
 * On a Redis Cluster a script may only touch keys of one slot, so the batch is split by slot and the
 * scripts run side by side; the answer is the same (the locks that were free), since taking a set is
 * already allowed to succeed in part.
 */
export class RedisDocLocks implements DocLocks {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** One script call for the whole batch on one Redis; one per slot on a cluster. */
  private groups(keys: string[]): number[][] {
    return this.redis.isCluster ? bySlot(keys) : [keys.map((_, i) => i)];
  }

  async acquire(ids: string[]): Promise<HeldLocks> {
    if (ids.length === 0) return { ids: new Set(), release: async () => undefined };
    const token = randomBytes(12).toString('hex');
    const keys = ids.map((id) => `${this.prefix}:doclock:${id}`);
    const startedAt = Date.now();
    const release = async (held: string[]) => {
      if (held.length > 0) await Promise.all(this.groups(held).map((slot) => this.redis.eval(RELEASE, slot.length, ...slot.map((i) => held[i]!), token)));
    };
    const settled = await Promise.allSettled(
      this.groups(keys).map(async (slot) => {
        const taken = (await this.redis.eval(ACQUIRE, slot.length, ...slot.map((i) => keys[i]!), token, String(LOCK_TTL_MS))) as number[];
        return taken.map((n) => slot[n - 1]!);
      }),
    );
    const got = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []));
    const held = got.map((i) => keys[i]!);
    // One slot's script failing must not leave the others' locks to expire: give them back, then fail.
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await release(held).catch(() => undefined);
      throw failed.reason;
    }
    // Locks taken long ago (a slot's script stalled in a failover) may be about to expire: a miss, not a hold.
    if (Date.now() - startedAt > LOCK_TTL_MS / 3) {
      await release(held).catch(() => undefined);
      return { ids: new Set(), release: async () => undefined };
    }
    return { ids: new Set(got.map((i) => ids[i]!)), release: () => release(held) };
  }
}

/** Indexes of `keys` grouped by cluster slot. */
function bySlot(keys: string[]): number[][] {
  const groups = new Map<number, number[]>();
  keys.forEach((key, i) => {
    const slot = calculateSlot(key);
    const group = groups.get(slot);
    if (group) group.push(i);
    else groups.set(slot, [i]);
  });
  return [...groups.values()];
}

/** Locks inside one process, for tools and tests that run a single writer. */
export class LocalDocLocks implements DocLocks {
  private readonly held = new Set<string>();

  async acquire(ids: string[]): Promise<HeldLocks> {
    const got = new Set(ids.filter((id) => !this.held.has(id)));
    for (const id of got) this.held.add(id);
    return { ids: got, release: async () => void got.forEach((id) => this.held.delete(id)) };
  }
}

const WAIT_STEP_MS = 5;
const WAIT_STEP_MS_MAX = 200;
const WAIT_MS_MAX = 30_000;

/**
 * Runs `task` holding every lock of `ids`: all or none are taken at a time (a partial set is given back
 * and tried again after a short random wait), so two writers never hold half of each other's set.
 */
export async function withDocLocks<T>(locks: DocLocks, ids: string[], task: () => Promise<T>): Promise<T> {
  const wanted = [...new Set(ids)];
  const deadline = Date.now() + WAIT_MS_MAX;
  for (let attempt = 0; ; attempt++) {
    const got = await locks.acquire(wanted);
    if (got.ids.size === wanted.length) {
      try {
        return await task();
      } finally {
        await got.release();
      }
    }
    await got.release();
    if (Date.now() > deadline) throw new Error(`documents ${wanted.slice(0, 5).join(', ')} stayed locked for ${WAIT_MS_MAX} ms`);
    // Backoff with jitter: two writers that each took part of the other's set (one slot each, on a
    // cluster) drift apart instead of retrying in step.
    const step = Math.min(WAIT_STEP_MS * 2 ** Math.min(attempt, 6), WAIT_STEP_MS_MAX);
    await new Promise((r) => setTimeout(r, step * (0.5 + Math.random())));
  }
}
