import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { checkThreshold, raiseSagaStuck } from '../../shared/ledger/saga-alerts.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { createForkMetrics, forkExecutorHandlers } from './handlers.js';

await runService('fork-executor', { depthQueues: [QUEUE.fork] }, async (svc) => {
  // SPEC §4.3: the limit of forks in flight holds across every replica, so it lives on the queue.
  const limit = svc.config.queues.fork.globalConcurrency;
  const queue = svc.producer.queue(QUEUE.fork);
  if (limit !== null) await queue.setGlobalConcurrency(limit);
  svc.logger.info({ globalConcurrency: limit }, 'fork queue global concurrency set');

  const stores = await openServiceStores(svc);
  const forks = stores.forks;
  const deps = { stores, forks, config: svc.config, clock: svc.clock, cooldownHours: svc.config.fork.cooldownHours, afterMergeCooldownDays: svc.config.fork.afterMergeCooldownDays };
  const onFinished = async (fork: { _id: string; phase: string; parentId: string; childId: string; error: { code: string; message: string } | null }) => {
    if (fork.phase === 'ROLLED_BACK') {
      await svc.producer.enqueue(
        QUEUE.alerts,
        'raise',
        { rule: 'fork-rolled-back', severity: 'warning', accountId: fork.parentId, period: fork._id, message: `fork ${fork._id} rolled back: ${fork.error?.message ?? 'unknown reason'}`, details: { forkId: fork._id, code: fork.error?.code ?? null } },
        { jobId: jobId('alert', 'fork-rolled-back', fork._id) },
      );
    }
    if (fork.phase === 'COMPLETED') await checkThreshold(svc.producer, stores, fork.childId);
  };
  const onStuck = async (forkId: string, message: string) => {
    const fork = await forks.get(forkId);
    if (fork) await raiseSagaStuck(svc.producer, { kind: 'fork', id: fork._id, accountId: fork.parentId }, message);
  };
  svc.startWorker(QUEUE.fork, forkExecutorHandlers(deps, createForkMetrics(svc.registry, forks), { onFinished, onStuck }, svc.logger));
  await queue.upsertJobScheduler('recover-forks', { every: 60_000 }, { name: 'recover', data: { olderThanSec: svc.config.fork.recoverAfterSec } });
});
