import { QUEUE } from '../../shared/contracts/queues.js';
import { SnapshotRepository } from '../../shared/db/snapshot-repository.js';
import { openServiceStores } from '../../shared/ledger/stores.js';
import { runService } from '../../shared/runtime/service.js';
import { snapshotterHandlers } from './handlers.js';

await runService('performance-snapshotter', { depthQueues: [QUEUE.snapshot, QUEUE.retention] }, async (svc) => {
  const stores = await openServiceStores(svc);
  const snapshots = new SnapshotRepository(svc.mongo);
  await snapshots.init();
  const handlers = snapshotterHandlers({ stores, snapshots, clock: svc.clock }, svc.producer, svc.config, svc.registry);
  svc.startWorker(QUEUE.snapshot, { day: handlers.day, batch: handlers.batch, limits: handlers.limits });
  svc.startWorker(QUEUE.retention, { prune: handlers.prune });
  // Upserted by id: restarts and replicas keep one of each. A second firing for a day is a no-op,
  // since every point is keyed by account and date.
  const { timezone: tz, snapshotCron, retentionCron } = svc.config.schedules;
  await svc.producer.queue(QUEUE.snapshot).upsertJobScheduler('snapshot-daily', { pattern: snapshotCron, tz }, { name: 'day', data: {} });
  await svc.producer.queue(QUEUE.retention).upsertJobScheduler('retention-daily', { pattern: retentionCron, tz }, { name: 'prune', data: {} });
});
