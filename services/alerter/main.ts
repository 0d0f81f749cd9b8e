import { QUEUE } from '../../shared/contracts/queues.js';
import { AlertRepository } from '../../shared/db/alert-repository.js';
import { runService } from '../../shared/runtime/service.js';
import { alerterHandlers, createAlertCounter } from './handlers.js';

await runService('alerter', { depthQueues: [QUEUE.alerts] }, async (svc) => {
  const alerts = new AlertRepository(svc.mongo);
  await alerts.init();
  svc.startWorker(QUEUE.alerts, alerterHandlers({ alerts, raised: createAlertCounter(svc.registry), now: () => new Date() }));
});
