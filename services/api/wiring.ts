import { readFileSync } from 'node:fs';
import type { QueueEvents } from 'bullmq';
import type { RedisClient } from '../../shared/queue/connection.js';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import { ConfigError } from '../../config/load.js';
import { keyChangesChannel } from '../../shared/auth/key-lifecycle.js';
import { SecurityEvents } from '../../shared/auth/security-events.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { AlertRepository } from '../../shared/db/alert-repository.js';
import { BulkBatchRepository } from '../../shared/db/bulk-batch-repository.js';
import { DeadLetterRepository } from '../../shared/db/dead-letter-repository.js';
import { ApiKeyRepository } from '../../shared/db/api-key-repository.js';
import { RedisDocLocks } from '../../shared/db/doc-locks.js';
import { SnapshotRepository } from '../../shared/db/snapshot-repository.js';
import { openConsolidationDeps } from '../../shared/ledger/consolidation.js';
import { openForkingDeps } from '../../shared/ledger/forking-deps.js';
import type { LedgerStores } from '../../shared/ledger/stores.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { Clock } from '../../shared/runtime/clock.js';
import type { Logger } from '../../shared/runtime/logger.js';
import { buildApp } from './app.js';
import { Authenticator } from './auth.js';
import type { ApiDeps } from './context.js';
import { Operations } from './operations.js';

export interface ApiParts {
  mongo: Connection;
  stores: LedgerStores;
  config: Config;
  clock: Clock;
  producer: Producer;
  /** Tells `?wait=true` when an account operation finishes. */
  events: QueueEvents;
  logger: Logger;
  registry: Registry;
  /**
   * Shared state of the API's replicas: failure counts and request limits (`limiter`), key changes
   * heard (`subscriber`, a connection of its own) and published (`publisher`). Null: this process only.
   */
  redis: { limiter: RedisClient; subscriber: RedisClient; publisher: RedisClient } | null;
  onReview?: ApiDeps['forking']['onReview'];
}

/** PEM files named by API_TLS_CERT and API_TLS_KEY, read once at start (both or neither). */
export function tlsOptions(config: Pick<Config, 'apiTlsCert' | 'apiTlsKey'>): { cert: Buffer; key: Buffer } | null {
  if (!config.apiTlsCert && !config.apiTlsKey) return null;
  if (!config.apiTlsCert || !config.apiTlsKey) throw new ConfigError('API_TLS_CERT and API_TLS_KEY go together: set both (PEM files) or neither');
  try {
    return { cert: readFileSync(config.apiTlsCert), key: readFileSync(config.apiTlsKey) };
  } catch (err) {
    throw new ConfigError(`API_TLS_CERT/API_TLS_KEY: ${(err as Error).message}`);
  }
}

/** The API app with everything it needs: the one wiring of the service and of every test that drives it. */
export async function openApi(parts: ApiParts) {
  const { mongo, stores, config, clock, producer, logger, registry, redis } = parts;
  const keys = new ApiKeyRepository(mongo);
  if (redis) keys.useLocks(new RedisDocLocks(redis.limiter, config.queuePrefix));
  const snapshots = new SnapshotRepository(mongo);
  const alerts = new AlertRepository(mongo);
  const batches = new BulkBatchRepository(mongo);
  const letters = new DeadLetterRepository(mongo);
  if (redis) for (const r of [batches, letters]) r.useLocks(new RedisDocLocks(redis.limiter, config.queuePrefix));
  await Promise.all([keys.init(), snapshots.init(), alerts.init(), batches.init(), letters.init()]);
  // Key expiry, rotation grace and security events are about people's time: wall clock, never simulated.
  const security = new SecurityEvents(stores.audit, () => new Date(), logger, registry);
  const channel = keyChangesChannel(config.queuePrefix);
  const auth = new Authenticator({ keys, adminApiKey: config.adminApiKey, config: config.api, events: security, registry, logger, limiterRedis: redis?.limiter ?? null, limiterPrefix: config.queuePrefix, subscriber: redis?.subscriber ?? null, channel });
  await auth.start();
  const forking = { ...(await openForkingDeps(mongo, stores, config, clock, producer.queue(QUEUE.fork))), ...(parts.onReview ? { onReview: parts.onReview } : {}) };
  const api: ApiDeps = {
    stores,
    operations: new Operations(producer, parts.events, stores, config.api.waitTimeoutMs),
    clock,
    config,
    producer,
    forking,
    performance: { snapshots, alerts },
    consolidation: await openConsolidationDeps(mongo, stores, config, clock),
    batches,
    deadLetters: { letters, producer, audit: stores.audit, now: () => new Date() },
    keyAdmin: { keys, events: security, publisher: redis?.publisher ?? null, channel, now: () => new Date(), forget: (id) => auth.forget(id) },
  };
  const app = await buildApp({ logger, api, auth, security, rateLimitRedis: redis?.limiter ?? null, tls: tlsOptions(config) });
  return { app, auth, security, keys, api };
}
