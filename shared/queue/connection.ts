import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../runtime/logger.js';
import { redactUrl } from '../runtime/logger.js';

/**
 * BullMQ's production advice (docs: going-to-production): workers wait out an outage
 * (maxRetriesPerRequest: null, commands queued while offline); producers fail fast
 * (enableOfflineQueue: false) so an HTTP caller gets an error instead of a hung request.
 */
export type RedisRole = 'worker' | 'producer';

const RECONNECT_DELAY_MS_MAX = 5000;

export function redisOptions(role: RedisRole, name: string): RedisOptions {
  return {
    connectionName: `${name}:${role}`,
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableOfflineQueue: role === 'worker',
    // Reconnect forever with a capped delay: a Redis restart must not kill the process.
    retryStrategy: (times) => Math.min(times * 200, RECONNECT_DELAY_MS_MAX),
    connectTimeout: 10_000,
  };
}

/** Opens a connection and waits until it is ready (a producer cannot queue commands before that). */
export async function connectRedis(url: string, role: RedisRole, name: string, logger: Logger, readyTimeoutMs = 15_000): Promise<Redis> {
  const redis = new Redis(url, { ...redisOptions(role, name), lazyConnect: true });
  redis.on('error', (err: Error) => logger.warn({ err: err.message, role }, 'redis connection error'));
  redis.on('reconnecting', () => logger.info({ role }, 'redis reconnecting'));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`redis at ${redactUrl(url)} not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return redis;
}
