import { QUEUE, QUEUE_NAMES } from '../../shared/contracts/queues.js';
import { AlertRepository } from '../../shared/db/alert-repository.js';
import { runService } from '../../shared/runtime/service.js';
import { alerterHandlers, createAlertCounter, createDeliveryCounter, webhookHandlers } from './handlers.js';

const SWEEP_EVERY_MS = 60_000;

await runService('alerter', { depthQueues: [QUEUE.alerts, QUEUE.webhooks] }, async (svc) => {
  const alerts = new AlertRepository(svc.mongo);
  await alerts.init();
  const deliveries = createDeliveryCounter(svc.registry);
  svc.startWorker(
    QUEUE.alerts,
    alerterHandlers({
      alerts,
      raised: createAlertCounter(svc.registry),
      deliveries,
      now: () => svc.clock.now(),
      producer: svc.producer,
      webhookUrls: svc.config.alerts.webhookUrls,
      webhookTimeoutMs: svc.config.alerts.webhookTimeoutMs,
      deadLetters: svc.deadLetters,
      watched: () => QUEUE_NAMES.map((q) => svc.producer.queue(q)),
      queueBacklogMax: svc.config.alerts.queueBacklogMax,
    }),
  );
  svc.startWorker(QUEUE.webhooks, webhookHandlers({ deliveries, webhookTimeoutMs: svc.config.alerts.webhookTimeoutMs }));
  await svc.producer.queue(QUEUE.alerts).upsertJobScheduler('sweep-dead-letters', { every: SWEEP_EVERY_MS }, { name: 'sweep', data: {} });
});
