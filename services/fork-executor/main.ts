import { QUEUE } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';

await runService('fork-executor', { depthQueues: [QUEUE.fork] }, async (svc) => {
  // SPEC §4.3: the limit of forks in flight holds across every replica, so it lives on the queue.
  const limit = svc.config.queues.fork.globalConcurrency;
  if (limit !== null) await svc.producer.queue(QUEUE.fork).setGlobalConcurrency(limit);
  svc.logger.info({ globalConcurrency: limit }, 'fork queue global concurrency set');
});
