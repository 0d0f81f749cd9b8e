import type { JobInput, JobName } from '../contracts/jobs.js';
import type { QueueName } from '../contracts/queues.js';
import type { EnqueueOptions, Producer } from './producer.js';

interface Pending {
  queue: QueueName;
  name: string;
  data: unknown;
  opts: EnqueueOptions;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Follow-up jobs (a fork check, a reinvestment, an alert) enqueued in the same turn of the event loop
 * go to Redis together, one addBulk per queue, instead of one round trip each. Each caller still waits
 * for its job to be accepted, so a posting's follow-ups are in Redis before its job completes.
 */
export class FollowUps {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly producer: Producer) {}

  enqueue<Q extends QueueName, N extends JobName<Q>>(queue: Q, name: N, data: JobInput<Q, N>, opts: EnqueueOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ queue, name, data, opts, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const byQueue = new Map<QueueName, Pending[]>();
    for (const p of batch) byQueue.set(p.queue, [...(byQueue.get(p.queue) ?? []), p]);
    await Promise.all(
      [...byQueue].map(async ([queue, jobs]) => {
        try {
          await this.producer.enqueueBulk(queue, jobs.map((j) => ({ name: j.name as JobName<typeof queue>, data: j.data, opts: j.opts })));
          jobs.forEach((j) => j.resolve());
        } catch (err) {
          jobs.forEach((j) => j.reject(err));
        }
      }),
    );
  }
}
