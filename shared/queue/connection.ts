import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../runtime/logger.js';
import { redactUrl } from '../runtime/logger.js';

/**
 * BullMQ's production advice (docs: going-to-production): workers wait out an outage
 * (maxRetriesPerRequest: null, commands queued while offline); producers fail fast
 * (enableOfflineQueue: false) so an HTTP caller gets an error instead of a hung request.
 */
export type RedisRole = 'worker' | 'producer';

/** One Redis, or a Redis Cluster: every caller speaks to either through the same commands. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: `REDIS_CLUSTER_NODES` (host:port,…) takes precedence over `REDIS_URL`. */
export type RedisTarget = Pick<Config, 'redisUrl' | 'redisClusterNodes'>;

const RECONNECT_DELAY_MS_MAX = 5000;

/** Reconnect forever with a capped delay: a Redis restart (or a cluster failover) must not kill the process. */
const retry = (times: number) => Math.min(times * 200, RECONNECT_DELAY_MS_MAX);

export function redisOptions(role: RedisRole, name: string): RedisOptions {
  return {
    connectionName: `${name}:${role}`,
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableOfflineQueue: role === 'worker',
    retryStrategy: retry,
    connectTimeout: 10_000,
  };
}

export const isClusterTarget = (target: RedisTarget): boolean => !!target.redisClusterNodes;

export function clusterNodes(text: string): Array<{ host: string; port: number }> {
  return text.split(',').map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });
}

/**
 * The cluster's seed nodes with the options every node connection gets. Credentials and TLS, when
 * set, come from REDIS_URL (`rediss://user:pass@…`): a managed cluster has one password for all nodes.
 */
function clusterOptions(target: RedisTarget, role: RedisRole, name: string, lazyConnect: boolean): ClusterOptions {
  const { retryStrategy: _perNode, enableOfflineQueue, ...perNode } = redisOptions(role, name);
  const url = new URL(target.redisUrl);
  return {
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retry,
    // A failover moves slots; a command answered MOVED/TRYAGAIN is retried on the new owner.
    retryDelayOnFailover: 200,
    retryDelayOnTryAgain: 200,
    redisOptions: {
      ...perNode,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
}

/** A client that connects in the background (for BullMQ's QueueEvents and workers, which wait for ready themselves). */
export function openRedis(target: RedisTarget, role: RedisRole, name: string, opts: { lazyConnect?: boolean } = {}): RedisClient {
  const lazyConnect = opts.lazyConnect ?? false;
  if (target.redisClusterNodes) return new Cluster(clusterNodes(target.redisClusterNodes), clusterOptions(target, role, name, lazyConnect));
  return new Redis(target.redisUrl, { ...redisOptions(role, name), lazyConnect });
}

const describe = (target: RedisTarget) => (target.redisClusterNodes ? `redis cluster ${target.redisClusterNodes}` : `redis at ${redactUrl(target.redisUrl)}`);

/** Opens a connection and waits until it is ready (a producer cannot queue commands before that). */
export async function connectRedis(target: RedisTarget, role: RedisRole, name: string, logger: Logger, readyTimeoutMs = 15_000): Promise<RedisClient> {
  const redis = openRedis(target, role, name, { lazyConnect: true });
  redis.on('error', (err: Error) => logger.warn({ err: err.message, role }, 'redis connection error'));
  redis.on('reconnecting', () => logger.info({ role }, 'redis reconnecting'));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${describe(target)} not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
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

/**
 * The BullMQ prefix of one queue. On one Redis it is the fleet's prefix, as producers know it. On a
 * cluster every key a BullMQ script touches must hash to one slot, so the prefix becomes a hash tag
 * holding the queue's name: each queue sits in one slot, and different queues land on different
 * slots (spread over the masters instead of all on the one that owns `{fleet}`).
 */
export function bullPrefix(config: Pick<Config, 'queuePrefix' | 'redisClusterNodes'>, queue: string): string {
  return config.redisClusterNodes ? `{${config.queuePrefix}:${queue}}` : config.queuePrefix;
}

/** Every master of the target (one Redis is its own master): for work that must see every key. */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/**
 * Removes every key of a fleet prefix (its queues, locks, heads, clock) with bounded SCAN batches on
 * every master, like BullMQ's obliterate for all queues at once. Keys are deleted one by one: on a
 * cluster a multi-key DEL must stay inside one slot.
 */
export async function dropPrefixKeys(redis: RedisClient, queuePrefix: string): Promise<void> {
  for (const node of masters(redis)) {
    for (const pattern of [`${queuePrefix}:*`, `{${queuePrefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await keys.reduce((p, key) => p.del(key), node.pipeline()).exec();
      } while (cursor !== '0');
    }
  }
}
