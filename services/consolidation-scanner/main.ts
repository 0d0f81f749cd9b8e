import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import type { StoredMerge } from '../../shared/db/merge-repository.js';
import { openConsolidationDeps } from '../../shared/ledger/consolidation.js';
import { checkThreshold, raiseSagaStuck } from '../../shared/ledger/saga-alerts.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { consolidationHandlers, createMergeMetrics } from './handlers.js';

await runService('consolidation-scanner', { depthQueues: [QUEUE.consolidationScan, QUEUE.merge] }, async (svc) => {
  const stores = await openServiceStores(svc);
  const deps = await openConsolidationDeps(svc.mongo, stores, svc.config, svc.clock);

  const onMergeFinished = async (m: StoredMerge) => {
    if (m.phase === 'ROLLED_BACK') {
      await svc.producer.enqueue(
        QUEUE.alerts,
        'raise',
        { rule: 'merge-rolled-back', severity: 'warning', accountId: m.sourceId, period: m._id, message: `merge ${m._id} into ${m.targetId} rolled back: ${m.error?.message ?? 'unknown reason'}`, details: { mergeId: m._id, code: m.error?.code ?? null } },
        { jobId: jobId('alert', 'merge-rolled-back', m._id) },
      );
    }
    // The target grew: it may now be large enough to fork.
    if (m.phase === 'COMPLETED') await checkThreshold(svc.producer, stores, m.targetId);
  };
  const onMergeStuck = async (mergeId: string, message: string) => {
    const m = await deps.merges.get(mergeId);
    if (m) await raiseSagaStuck(svc.producer, { kind: 'merge', id: m._id, accountId: m.sourceId }, message);
  };
  const h = consolidationHandlers(deps, svc.producer, createMergeMetrics(svc.registry, deps), { onMergeFinished, onMergeStuck }, svc.logger);
  svc.startWorker(QUEUE.consolidationScan, { scan: h.scan, batch: h.batch });
  svc.startWorker(QUEUE.merge, { execute: h.execute, recover: h.recover, resume: h.resume });
  // Upserted by id: restarts and replicas keep one. A second firing for a day finds each account's
  // opportunity of the day already recorded and acted on.
  const { timezone: tz, consolidationScanCron } = svc.config.schedules;
  await svc.producer.queue(QUEUE.consolidationScan).upsertJobScheduler('consolidation-daily', { pattern: consolidationScanCron, tz }, { name: 'scan', data: {} });
  await svc.producer.queue(QUEUE.merge).upsertJobScheduler('recover-merges', { every: 60_000 }, { name: 'recover', data: { olderThanSec: svc.config.fork.recoverAfterSec } });
});
