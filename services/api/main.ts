import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE, QUEUE_NAMES } from '../../shared/contracts/queues.js';
import { ApiKeyRepository } from '../../shared/db/api-key-repository.js';
import { AlertRepository } from '../../shared/db/alert-repository.js';
import { SnapshotRepository } from '../../shared/db/snapshot-repository.js';
import { openForkingDeps } from '../../shared/ledger/forking-deps.js';
import { reviewCounter } from '../../shared/ledger/review-metrics.js';
import { openConsolidationDeps } from '../../shared/ledger/consolidation.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { connectRedis, redisOptions } from '../../shared/queue/connection.js';
import { runService } from '../../shared/runtime/service.js';
import { buildApp } from './app.js';
import { Authenticator } from './auth.js';
import { Operations } from './operations.js';
import { createAccountGauge } from './fleet-gauges.js';

// The API produces onto every queue, so it reports the depth of all of them.
await runService('api', { depthQueues: QUEUE_NAMES }, async (svc) => {
  const stores = await openServiceStores(svc);
  const keys = new ApiKeyRepository(svc.mongo);
  await keys.init();
  // QueueEvents blocks on its own connection; it tells `?wait=true` when an operation finishes.
  const events = new QueueEvents(QUEUE.accountOps, {
    connection: new Redis(svc.config.redisUrl, redisOptions('worker', 'api-events')),
    prefix: svc.config.queuePrefix,
  });
  await events.waitUntilReady();
  svc.lifecycle.addProducer({ name: 'queue-events', close: () => events.close() });
  const rateLimitRedis = await connectRedis(svc.config.redisUrl, 'producer', 'api-ratelimit', svc.logger);
  svc.lifecycle.addConnection({ name: 'redis-ratelimit', close: async () => void (await rateLimitRedis.quit()) });

  const forking = { ...(await openForkingDeps(svc.mongo, stores, svc.config, svc.clock, svc.producer.queue(QUEUE.fork))), onReview: reviewCounter(svc.registry) };
  const operations = new Operations(svc.producer, events, stores, svc.config.api.waitTimeoutMs);
  const snapshots = new SnapshotRepository(svc.mongo);
  const alerts = new AlertRepository(svc.mongo);
  await Promise.all([snapshots.init(), alerts.init()]);
  const api = { stores, operations, clock: svc.clock, config: svc.config, producer: svc.producer, forking, performance: { snapshots, alerts }, consolidation: await openConsolidationDeps(svc.mongo, stores, svc.config, svc.clock) };
  createAccountGauge(svc.registry, stores.accounts);
  const app = await buildApp({ logger: svc.logger, api, auth: new Authenticator(keys, svc.config.adminApiKey), rateLimitRedis });
  await app.listen({ port: svc.config.apiPort, host: '0.0.0.0' });
  svc.lifecycle.addHttp({ name: 'api', close: () => app.close() });
});
