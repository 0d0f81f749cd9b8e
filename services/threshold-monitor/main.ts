import { QUEUE } from '../../shared/contracts/queues.js';
import { TIER_NAMES } from '../../shared/domain/tiers.js';
import { openForkingDeps } from '../../shared/ledger/forking-deps.js';
import { reviewCounter } from '../../shared/ledger/review-metrics.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { thresholdMonitorHandlers } from './handlers.js';

await runService('threshold-monitor', { depthQueues: [QUEUE.thresholdCheck, QUEUE.thresholdScan] }, async (svc) => {
  const stores = await openServiceStores(svc);
  const deps = { ...(await openForkingDeps(svc.mongo, stores, svc.config, svc.clock, svc.producer.queue(QUEUE.fork))), onReview: reviewCounter(svc.registry) };
  const handlers = thresholdMonitorHandlers(deps, svc.producer, svc.registry);
  svc.startWorker(QUEUE.thresholdCheck, { check: handlers.check });
  svc.startWorker(QUEUE.thresholdScan, { scan: handlers.scan });

  // One scheduler per tier at its monitoring frequency, upserted by id: restarts and replicas keep one.
  const scanQueue = svc.producer.queue(QUEUE.thresholdScan);
  for (const tier of TIER_NAMES) {
    await scanQueue.upsertJobScheduler(`threshold-scan-${tier}`, { every: svc.config.tiers[tier].monitoringFrequencySec * 1000 }, { name: 'scan', data: { tier } });
  }
});
