import { QUEUE, QUEUE_NAMES } from '../../shared/contracts/queues.js';
import { reviewCounter } from '../../shared/ledger/review-metrics.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { connectRedis } from '../../shared/queue/connection.js';
import { openQueueEvents } from '../../shared/queue/queue-events.js';
import { runService } from '../../shared/runtime/service.js';
import { createAccountGauge } from './fleet-gauges.js';
import { openApi } from './wiring.js';

// The API produces onto every queue, so it reports the depth of all of them.
await runService('api', { depthQueues: QUEUE_NAMES }, async (svc) => {
  const stores = await openServiceStores(svc);
  // QueueEvents blocks on its own connection; it tells `?wait=true` when an operation finishes.
  const events = await openQueueEvents(svc.config, QUEUE.accountOps, 'api');
  svc.lifecycle.addProducer({ name: 'queue-events', close: () => events.close() });
  const limiter = await connectRedis(svc.config, 'producer', 'api-ratelimit', svc.logger);
  svc.lifecycle.addConnection({ name: 'redis-ratelimit', close: async () => void (await limiter.quit()) });
  // A subscribed connection can do nothing else; it waits out an outage and resubscribes.
  const subscriber = await connectRedis(svc.config, 'worker', 'api-key-changes', svc.logger);
  svc.lifecycle.addConnection({ name: 'redis-key-changes', close: async () => void (await subscriber.quit()) });

  const { app } = await openApi({
    mongo: svc.mongo,
    stores,
    config: svc.config,
    clock: svc.clock,
    producer: svc.producer,
    events,
    logger: svc.logger,
    registry: svc.registry,
    redis: { limiter, subscriber, publisher: limiter },
    onReview: reviewCounter(svc.registry),
  });
  createAccountGauge(svc.registry, stores.accounts);
  await app.listen({ port: svc.config.apiPort, host: '0.0.0.0' });
  svc.lifecycle.addHttp({ name: 'api', close: () => app.close() });
});
