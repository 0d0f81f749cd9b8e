import { randomBytes } from 'node:crypto';
import { connectRedis, dropPrefixKeys } from '../../shared/queue/connection.js';
import { pino } from 'pino';

/**
 * Integration tests run against the real servers that scripts/with-servers.ts starts for `npm test`.
 * Each test file gets its own database and queue prefix, so files run in parallel without sharing state.
 */
export function isolatedEnv(tag: string): { mongodbUrl: string; redisUrl: string; redisClusterNodes: string | null; queuePrefix: string; env: Record<string, string> } {
  const mongo = process.env['MONGODB_URL'];
  const redisClusterNodes = process.env['REDIS_CLUSTER_NODES'] || null;
  // On a cluster (npm run test:cluster) REDIS_URL only carries credentials, if any.
  const redisUrl = process.env['REDIS_URL'] ?? (redisClusterNodes ? 'redis://127.0.0.1:6379' : undefined);
  if (!mongo || !redisUrl) {
    throw new Error('integration tests need MONGODB_URL and REDIS_URL: run them with `npm test`, which starts local servers');
  }
  const suffix = `${tag}_${randomBytes(4).toString('hex')}`;
  const url = new URL(mongo);
  url.pathname = `/t_${suffix}`;
  const queuePrefix = `t-${suffix}`;
  const mongodbUrl = url.toString();
  return {
    mongodbUrl,
    redisUrl,
    redisClusterNodes,
    queuePrefix,
    env: {
      MONGODB_URL: mongodbUrl,
      REDIS_URL: redisUrl,
      ...(redisClusterNodes ? { REDIS_CLUSTER_NODES: redisClusterNodes } : {}),
      FLEET_QUEUE_PREFIX: queuePrefix,
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
      // Fork mechanics are tested on the plain line (threshold + minimum: a Gen forks at 110,000.00);
      // the margin above it has its own tests (shared/domain/fork.test.ts, test/loss-limits.test.ts).
      FLEET__TIERS__GEN__FORK_MARGIN: '0',
      FLEET__TIERS__REV__FORK_MARGIN: '0',
    },
  };
}

/** Removes every key of a queue prefix (bounded SCAN batches), like BullMQ's obliterate for all queues at once. */
export async function dropQueuePrefix(target: { redisUrl: string; redisClusterNodes: string | null }, prefix: string): Promise<void> {
  const redis = await connectRedis(target, 'producer', 'drop-prefix', pino({ level: 'silent' }));
  try {
    await dropPrefixKeys(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/** Polls until the check returns a value (not null/undefined/false), or fails with what it waited for. */
export async function waitFor<T>(what: string | (() => string), check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${lastError ? `: ${String(lastError)}` : ''}`);
}
