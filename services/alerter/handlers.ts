import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import { Counter, type Registry } from 'prom-client';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE, type QueueName } from '../../shared/contracts/queues.js';
import type { AlertRepository } from '../../shared/db/alert-repository.js';
import type { DeadLetterSink } from '../../shared/queue/dead-letter.js';
import type { Producer } from '../../shared/queue/producer.js';
import { PermanentJobError, deadLetterOf, type Handlers } from '../../shared/queue/worker-runner.js';

export function createAlertCounter(registry: Registry) {
  return new Counter({
    name: 'fleet_alerts_total',
    help: 'Alerts raised (deduplicated per account, rule and period), by rule and severity',
    labelNames: ['rule', 'severity'] as const,
    registers: [registry],
  });
}

export interface AlerterDeps {
  alerts: AlertRepository;
  raised: Counter<'rule' | 'severity'>;
  deliveries: Counter<'outcome'>;
  now: () => Date;
  producer: Producer;
  webhookUrls: string[];
  webhookTimeoutMs: number;
  deadLetters: DeadLetterSink;
  /** Queues whose failed jobs the sweep moves into the dead-letter store, and whose backlog it watches. */
  watched: () => Queue[];
  queueBacklogMax: number;
}

export function createDeliveryCounter(registry: Registry) {
  return new Counter({ name: 'fleet_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome (delivered, retry, refused)', labelNames: ['outcome'] as const, registers: [registry] });
}

const SWEEP_JOBS_MAX = 200;

/**
 * Stores each alert once per (account, rule, period), counts and logs it, and queues one delivery per
 * configured webhook (a delivery's id comes from the alert and the URL, so a replay queues none).
 */
export function alerterHandlers(deps: AlerterDeps): Handlers<'alerts'> {
  return {
    raise: async (alert, { logger }) => {
      const raisedAt = deps.now();
      const { created } = await deps.alerts.raise(alert, raisedAt);
      if (created) {
        deps.raised.inc({ rule: alert.rule, severity: alert.severity });
        logger[alert.severity === 'critical' ? 'error' : 'warn']({ alert }, `alert: ${alert.message}`);
      }
      const key = `${alert.accountId ?? '-'}\u0000${alert.rule}\u0000${alert.period}`;
      for (const url of deps.webhookUrls) {
        const id = createHash('sha256').update(`${key}\u0000${url}`).digest('hex').slice(0, 32);
        await deps.producer.enqueue(
          QUEUE.webhooks,
          'deliver',
          { url, alert: { rule: alert.rule, severity: alert.severity, accountId: alert.accountId, period: alert.period, message: alert.message, raisedAt: raisedAt.toISOString() } },
          { jobId: jobId('hook', id) },
        );
      }
      return { created };
    },
    /**
     * Jobs BullMQ failed for good whose dead letter a crash may have lost: recorded again (idempotent).
     * And queues whose backlog is over the limit: a 'queue-backlog' alert, once per queue and hour.
     */
    sweep: async () => {
      let swept = 0;
      const backlogged: string[] = [];
      for (const queue of deps.watched()) {
        for (const job of await queue.getFailed(0, SWEEP_JOBS_MAX - 1)) {
          await deps.deadLetters.record(deadLetterOf(job, queue.name as QueueName, job.failedReason ?? 'failed', 'exhausted'));
          swept++;
        }
        const waiting = (await queue.getJobCounts('waiting', 'prioritized')) as Record<string, number>;
        const backlog = (waiting['waiting'] ?? 0) + (waiting['prioritized'] ?? 0);
        if (backlog > deps.queueBacklogMax) {
          const hour = deps.now().toISOString().slice(0, 13).replace(/[^0-9]/g, '');
          await deps.producer.enqueue(
            QUEUE.alerts,
            'raise',
            { rule: 'queue-backlog', severity: 'warning', accountId: null, period: `${queue.name}-${hour}`, message: `queue ${queue.name} has ${backlog} jobs waiting (limit ${deps.queueBacklogMax})`, details: { queue: queue.name, backlog } },
            { jobId: jobId('alert', 'queue-backlog', queue.name, hour) },
          );
          backlogged.push(queue.name);
        }
      }
      return { swept, backlogged };
    },
  };
}

/** POSTs the alert as JSON; a failure is retried with backoff by the queue, a 4xx refusal is not. */
export function webhookHandlers(deps: Pick<AlerterDeps, 'deliveries' | 'webhookTimeoutMs'>): Handlers<'webhooks'> {
  return {
    deliver: async (d) => {
      let res: Response;
      try {
        res = await fetch(d.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(d.alert), signal: AbortSignal.timeout(deps.webhookTimeoutMs) });
      } catch (err) {
        deps.deliveries.inc({ outcome: 'retry' });
        throw new Error(`webhook ${new URL(d.url).host} unreachable: ${(err as Error).message}`);
      }
      if (res.ok) {
        deps.deliveries.inc({ outcome: 'delivered' });
        return { status: res.status };
      }
      // A receiver that refuses the request (other than asking to slow down) will not change its mind.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        deps.deliveries.inc({ outcome: 'refused' });
        throw new PermanentJobError(`webhook ${new URL(d.url).host} refused the alert with ${res.status}`);
      }
      deps.deliveries.inc({ outcome: 'retry' });
      throw new Error(`webhook ${new URL(d.url).host} answered ${res.status}`);
    },
  };
}
