import { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import { type Role, newApiKey } from '../../shared/auth/api-keys.js';
import type { ApiKeyRepository } from '../../shared/db/api-key-repository.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { connectRedis, type RedisClient } from '../../shared/queue/connection.js';
import { openQueueEvents } from '../../shared/queue/queue-events.js';
import type { Clock } from '../../shared/runtime/clock.js';
import type { Logger } from '../../shared/runtime/logger.js';
import { openApi } from '../../services/api/wiring.js';
import { type LedgerHarness, silentLogger } from './ledger-harness.js';

export type TestApi = Awaited<ReturnType<typeof openApi>> & { registry: Registry; redis: { limiter: RedisClient; subscriber: RedisClient } | null; close(): Promise<void> };

/**
 * The API of the service, wired as `services/api/main.ts` wires it, on a test's ledger harness.
 * `redis: true` gives it the shared Redis state of a real replica (throttles, key-change messages).
 */
export async function startApi(h: LedgerHarness, opts: { adminKey: string; clock?: Clock; api?: Partial<Config['api']>; config?: Partial<Config>; logger?: Logger; redis?: boolean; name?: string }): Promise<TestApi> {
  const config: Config = { ...h.config, ...opts.config, adminApiKey: opts.adminKey, api: { ...h.config.api, ...opts.api } };
  const name = opts.name ?? 'api-test';
  const events = await openQueueEvents(config, QUEUE.accountOps, name);
  const redis = opts.redis
    ? { limiter: await connectRedis(config, 'producer', `${name}-limiter`, silentLogger), subscriber: await connectRedis(config, 'worker', `${name}-sub`, silentLogger) }
    : null;
  const registry = new Registry();
  const api = await openApi({
    mongo: h.mongo,
    stores: h.stores,
    config,
    clock: opts.clock ?? h.deps.clock,
    producer: h.producer,
    events,
    logger: opts.logger ?? silentLogger,
    registry,
    redis: redis ? { ...redis, publisher: redis.limiter } : null,
  });
  return {
    ...api,
    registry,
    redis,
    async close() {
      await api.app.close();
      await events.close();
      if (redis) await Promise.all([redis.limiter.quit(), redis.subscriber.quit().catch(() => redis.subscriber.disconnect())]);
    },
  };
}

/** A key stored directly (as the CLI would make it), answered with its secret. */
export async function makeKey(keys: ApiKeyRepository, role: Role, ownerId: string | null, extra: { expiresAt?: Date } = {}): Promise<string> {
  const k = await newApiKey();
  await keys.insert({ _id: k.keyId, hash: k.hash, salt: k.salt, role, ownerId, label: null, createdAt: new Date(), createdBy: 'test', expiresAt: extra.expiresAt ?? null, revokedAt: null, rotatedAt: null, previous: null });
  return k.key;
}
