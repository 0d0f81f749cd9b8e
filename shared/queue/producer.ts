import { Queue, type Job, type JobsOptions } from 'bullmq';
import { bullPrefix, type RedisClient } from './connection.js';
import type { Config } from '../../config/schema.js';
import { type JobInput, type JobName, jobSchema } from '../contracts/jobs.js';
import type { QueueName } from '../contracts/queues.js';
import { defaultJobOptions } from './queue-options.js';

export class ContractError extends Error {
  override readonly name = 'ContractError';
  constructor(
    message: string,
    readonly issues: unknown[] = [],
  ) {
    super(message);
  }
}

export interface EnqueueOptions {
  /** From the business key (contracts/jobs.ts jobId), so a second enqueue of one operation is a no-op. */
  jobId: string;
  delayMs?: number;
  priority?: number;
}

/**
 * Validates every payload against its contract before it reaches Redis, so a bad job is refused
 * at the source with the reason, and applies each queue's configured options.
 */
function checked<Q extends QueueName, N extends JobName<Q>>(queue: Q, name: N, data: JobInput<Q, N>, opts: EnqueueOptions): { data: unknown; opts: JobsOptions } {
  const schema = jobSchema(queue, name);
  if (!schema) throw new ContractError(`queue ${queue} has no job named ${name}`);
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new ContractError(`invalid ${queue}/${name} payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, parsed.error.issues);
  }
  const jobOpts: JobsOptions = { jobId: opts.jobId };
  if (opts.delayMs !== undefined) jobOpts.delay = opts.delayMs;
  if (opts.priority !== undefined) jobOpts.priority = opts.priority;
  return { data: parsed.data, opts: jobOpts };
}

export class Producer {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: RedisClient,
    private readonly config: Pick<Config, 'queues' | 'queuePrefix' | 'redisClusterNodes'>,
  ) {}

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.connection,
        prefix: bullPrefix(this.config, name),
        defaultJobOptions: defaultJobOptions(this.config.queues[name]),
      });
      this.queues.set(name, q);
    }
    return q;
  }

  async enqueue<Q extends QueueName, N extends JobName<Q>>(
    queue: Q,
    name: N,
    data: JobInput<Q, N>,
    opts: EnqueueOptions,
  ): Promise<Job> {
    const { data: valid, opts: jobOpts } = checked(queue, name, data, opts);
    return this.queue(queue).add(name, valid, jobOpts);
  }

  /** Several jobs of one queue in one round trip (BullMQ's addBulk), each validated first. */
  async enqueueBulk<Q extends QueueName>(queue: Q, jobs: Array<{ name: JobName<Q>; data: unknown; opts: EnqueueOptions }>): Promise<void> {
    if (jobs.length === 0) return;
    const valid = jobs.map((j) => {
      const c = checked(queue, j.name, j.data as JobInput<Q, JobName<Q>>, j.opts);
      return { name: j.name, data: c.data, opts: c.opts };
    });
    await this.queue(queue).addBulk(valid);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
  }
}
