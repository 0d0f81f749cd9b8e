import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Queue } from 'bullmq';

const DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

/** Job outcome, duration, invalid-payload and dead-letter series, recorded by the shared worker runner. */
export interface QueueMetrics {
  duration: Histogram<'queue' | 'name' | 'outcome'>;
  failedFinal: Counter<'queue' | 'name' | 'reason'>;
  invalid: Counter<'queue' | 'name'>;
  deadLetters: Counter<'queue'>;
  depth: Gauge<'queue' | 'state'>;
}

/**
 * Registers the queue series. Depth is read from Redis at scrape time for the queues given, so
 * the gauge is never stale and costs nothing between scrapes.
 */
export function createQueueMetrics(registry: Registry, depthQueues: () => Queue[]): QueueMetrics {
  const duration = new Histogram({
    name: 'fleet_job_duration_seconds',
    help: 'Time a handler took, by queue, job name and outcome (completed or error)',
    labelNames: ['queue', 'name', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const failedFinal = new Counter({
    name: 'fleet_jobs_failed_total',
    help: 'Jobs failed for good (no retry left), by reason: invalid, permanent, exhausted, stalled',
    labelNames: ['queue', 'name', 'reason'] as const,
    registers: [registry],
  });
  const invalid = new Counter({
    name: 'fleet_jobs_invalid_total',
    help: 'Jobs whose payload failed its contract; failed at once, never retried',
    labelNames: ['queue', 'name'] as const,
    registers: [registry],
  });
  const deadLetters = new Counter({
    name: 'fleet_dead_letters_total',
    help: 'Jobs recorded in the dead-letter store by this process',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  const depth = new Gauge({
    name: 'fleet_queue_jobs',
    help: 'Jobs in each queue by state, read from Redis at scrape time',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      await Promise.all(
        depthQueues().map(async (q) => {
          const counts = await q.getJobCounts(...DEPTH_STATES);
          for (const state of DEPTH_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
        }),
      );
    },
  });
  return { duration, failedFinal, invalid, deadLetters, depth };
}
