import { QUEUE } from '../../shared/contracts/queues.js';
import { ReviewRepository } from '../../shared/db/review-repository.js';
import { reviewCounter } from '../../shared/ledger/review-metrics.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { accountOpsHandlers } from './handlers.js';
import { afterPosting } from './after-posting.js';
import { FollowUps } from '../../shared/queue/follow-ups.js';

/** A transfer untouched this long is presumed orphaned by a dead job and finished by recovery. */
const RECOVER_AFTER_SEC = 30;
const RECOVER_EVERY_MS = 60_000;

await runService('account-ops', { depthQueues: [QUEUE.accountOps] }, async (svc) => {
  const stores = await openServiceStores(svc);
  const deps = {
    stores,
    config: svc.config,
    clock: svc.clock,
    afterPosting: afterPosting(new FollowUps(svc.producer), { config: svc.config }),
  };
  const reviews = new ReviewRepository(svc.mongo);
  await reviews.init();
  svc.startWorker(QUEUE.accountOps, accountOpsHandlers(deps, svc.registry, svc.logger, svc.producer, { reviews, onReview: reviewCounter(svc.registry) }));

  // Job schedulers are upserted by id, so restarts and replicas keep exactly one of each.
  const queue = svc.producer.queue(QUEUE.accountOps);
  await queue.upsertJobScheduler('recover-transfers', { every: RECOVER_EVERY_MS }, { name: 'recover-transfers', data: { olderThanSec: RECOVER_AFTER_SEC } });
  const { timezone: tz, reinvestmentCron } = svc.config.schedules;
  await queue.upsertJobScheduler('reinvest-scheduled', { pattern: reinvestmentCron, tz }, { name: 'reinvest-scan', data: {} });
  await queue.upsertJobScheduler('reconcile', { every: svc.config.schedules.reconcileEverySec * 1000 }, { name: 'reconcile', data: { period: 'scheduled' } });
});
