import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../queue/connection.js';

/** A process's claim lapses this long after its last renewal (a process that died drops out by itself). */
const CLAIM_TTL_MS = 120_000;
const SETTLE_POLL_MS = 25;
/** How long the day's fan-outs wait for the fleet's unwritten projections (a burst of postings) before they go on. */
export const PROJECTIONS_SETTLE_WAIT_MS = 120_000;

/**
 * Which processes hold account projections not yet written: one sorted set in Redis (one key, so a
 * cluster is no different), a member per process scored by when its claim lapses. A projector claims
 * before the posting that made it non-empty completes, renews with every batch and withdraws once it
 * has written everything. The day's work that reads projections (snapshots, consolidation scans, the
 * simulator's clients) starts once no live process holds any, so it values every posting made before
 * it started. Without Redis the claim is skipped: the reads are then only as fresh as the projector.
 */
export class ProjectionBacklog {
  private readonly member = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async hold(): Promise<void> {
    await this.redis.zadd(backlogKey(this.prefix), Date.now() + CLAIM_TTL_MS, this.member);
  }

  async release(): Promise<void> {
    await this.redis.zrem(backlogKey(this.prefix), this.member);
  }

  settled(): Promise<boolean> {
    return projectionsSettled(this.redis, this.prefix);
  }

  /** Waits (bounded) until no process holds unwritten projections; answers whether that happened in time. */
  async waitSettled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.settled()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    }
  }
}

const backlogKey = (prefix: string) => `${prefix}:projections:backlog`;

/** No live process holds unwritten projections (lapsed claims are dropped first). */
export async function projectionsSettled(redis: RedisClient, prefix: string): Promise<boolean> {
  await redis.zremrangebyscore(backlogKey(prefix), '-inf', Date.now());
  return (await redis.zcard(backlogKey(prefix))) === 0;
}
