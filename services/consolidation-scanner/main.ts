import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import type { StoredMerge } from '../../shared/db/merge-repository.js';
import { openConsolidationDeps } from '../../shared/ledger/consolidation.js';
import { openLedgerStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { consolidationHandlers, createMergeMetrics } from './handlers.js';

await runService('consolidation-scanner', { depthQueues: [QUEUE.consolidationScan, QUEUE.merge] }, async (svc) => {
  const stores = await openLedgerStores(svc.mongo);
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
    if (m.phase === 'COMPLETED') {
      // The target grew: it may now be large enough to fork.
      const target = await stores.accounts.get(m.targetId);
      if (target) await svc.producer.enqueue(QUEUE.thresholdCheck, 'check', { accountId: target._id, seq: target.headSeq }, { jobId: jobId('threshold', target._id, target.headSeq) });
    }
  };
  const h = consolidationHandlers(deps, svc.producer, createMergeMetrics(svc.registry, deps), { onMergeFinished }, svc.logger);
  svc.startWorker(QUEUE.consolidationScan, { scan: h.scan, batch: h.batch });
  svc.startWorker(QUEUE.merge, { execute: h.execute, recover: h.recover });
  // Upserted by id: restarts and replicas keep one. A second firing for a day finds each account's
  // opportunity of the day already recorded and acted on.
  const { timezone: tz, consolidationScanCron } = svc.config.schedules;
  await svc.producer.queue(QUEUE.consolidationScan).upsertJobScheduler('consolidation-daily', { pattern: consolidationScanCron, tz }, { name: 'scan', data: {} });
  await svc.producer.queue(QUEUE.merge).upsertJobScheduler('recover-merges', { every: 60_000 }, { name: 'recover', data: { olderThanSec: svc.config.fork.recoverAfterSec } });
});
