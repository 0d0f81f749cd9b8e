import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../queue/connection.js';

/** A process's claim lapses this long after its last renewal (a process that died drops out by itself). */
const CLAIM_TTL_MS = 120_000;
const SETTLE_POLL_MS = 25;
/** How long the day's fan-outs wait for the fleet's unwritten projections (a burst of postings) before they go on. */
export const PROJECTIONS_SETTLE_WAIT_MS = 120_000;

/**
 * Which processes hold account projections not yet written, and since when: one sorted set in Redis,
 * a member per process scored by the time of its oldest unwritten mark, and beside it a key per
 * process that expires when the process stops renewing it (a process that died drops out by itself).
 * A projector claims before the posting that made it non-empty completes, moves its score forward as
 * it writes, and withdraws once it has written everything. The day's work that reads projections
 * (snapshots, consolidation scans, the simulator's clients) waits until no live claim is older than
 * its own start, so it sees every posting completed before it started even while later postings keep
 * the projectors busy. Each command names one key, so a Redis Cluster is no different. Without Redis
 * the claim is skipped: the reads are then only as fresh as the projector.
 */
export class ProjectionBacklog {
  private readonly member = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async hold(oldestMarkAt: number): Promise<void> {
    await this.redis.set(aliveKey(this.prefix, this.member), '1', 'PX', CLAIM_TTL_MS);
    await this.redis.zadd(backlogKey(this.prefix), oldestMarkAt, this.member);
  }

  async release(): Promise<void> {
    await this.redis.zrem(backlogKey(this.prefix), this.member);
    await this.redis.del(aliveKey(this.prefix, this.member));
  }

  /** Waits (bounded) until no live process holds a projection marked before now; answers whether that happened in time. */
  async waitSettled(timeoutMs: number): Promise<boolean> {
    const since = Date.now();
    const deadline = since + timeoutMs;
    for (;;) {
      if (await projectionsSettled(this.redis, this.prefix, since)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    }
  }
}

const backlogKey = (prefix: string) => `${prefix}:projections:backlog`;
const aliveKey = (prefix: string, member: string) => `${prefix}:projections:alive:${member}`;

/**
 * No live process holds a projection marked at or before `asOf` (now by default). Claims whose process
 * stopped renewing them are dropped on the way.
 */
export async function projectionsSettled(redis: RedisClient, prefix: string, asOf = Date.now()): Promise<boolean> {
  const older = await redis.zrangebyscore(backlogKey(prefix), '-inf', asOf);
  let live = 0;
  for (const member of older) {
    if ((await redis.exists(aliveKey(prefix, member))) === 1) live++;
    else await redis.zrem(backlogKey(prefix), member);
  }
  return live === 0;
}
