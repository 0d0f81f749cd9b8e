import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import calculateSlot from 'cluster-key-slot';
import { RedisDocLocks, withDocLocks } from '../shared/db/doc-locks.js';
import { connectRedis, type RedisClient } from '../shared/queue/connection.js';
import { dropQueuePrefix, isolatedEnv } from './helpers/env.js';

/**
 * Document locks between "processes" (each its own connection), on the Redis the run gives: one Redis
 * under `npm test`, a three-master cluster under `npm run test:cluster`, where a set of documents is
 * spread over several slots and taken with one script per slot.
 */
const iso = isolatedEnv('doclocks');
const quiet = pino({ level: 'silent' });
let clients: RedisClient[] = [];

beforeAll(async () => {
  clients = await Promise.all([0, 1, 2].map((i) => connectRedis(iso, 'worker', `doclocks-${i}`, quiet)));
});

afterAll(async () => {
  clients.forEach((c) => c.disconnect());
  await dropQueuePrefix(iso, iso.queuePrefix);
});

describe('document locks', () => {
  it('never let two writers hold one document, and let overlapping sets all finish', async () => {
    const docs = Array.from({ length: 12 }, (_, i) => `acc-${i}`);
    // The sets span many slots on a cluster (the keys carry no hash tag).
    expect(new Set(docs.map((d) => calculateSlot(`${iso.queuePrefix}:doclock:${d}`))).size).toBeGreaterThan(6);
    const holders = new Map<string, number>();
    const overlaps: string[] = [];
    let finished = 0;
    const writer = (n: number) => async () => {
      const locks = new RedisDocLocks(clients[n % clients.length]!, iso.queuePrefix);
      for (let round = 0; round < 8; round++) {
        // Each writer wants a different, overlapping window of the documents.
        const want = docs.filter((_, i) => (i + n + round) % 3 !== 0).slice(0, 5);
        await withDocLocks(locks, want, async () => {
          for (const d of want) {
            if (holders.has(d)) overlaps.push(`${d}: ${holders.get(d)} and ${n}`);
            holders.set(d, n);
          }
          await new Promise((r) => setImmediate(r));
          for (const d of want) holders.delete(d);
        });
      }
      finished += 1;
    };
    await Promise.all(Array.from({ length: 6 }, (_, n) => writer(n)()));
    expect(overlaps).toEqual([]);
    expect(finished).toBe(6);
  });

  it('takes a set whole or gives back what it took: one held document keeps the rest free', async () => {
    const [a, b] = [new RedisDocLocks(clients[0]!, iso.queuePrefix), new RedisDocLocks(clients[1]!, iso.queuePrefix)];
    const first = await a.acquire(['x-1']);
    const second = await b.acquire(['x-1', 'x-2', 'x-3', 'x-4']);
    expect([...second.ids].sort()).toEqual(['x-2', 'x-3', 'x-4']);
    await second.release();
    // What the partial taker gave back is free again; what the first holds is not.
    const third = await b.acquire(['x-1', 'x-2', 'x-3', 'x-4']);
    expect([...third.ids].sort()).toEqual(['x-2', 'x-3', 'x-4']);
    await third.release();
    await first.release();
    const all = await b.acquire(['x-1', 'x-2', 'x-3', 'x-4']);
    expect(all.ids.size).toBe(4);
    await all.release();
  });
});
