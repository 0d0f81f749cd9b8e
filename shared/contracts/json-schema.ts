import { z } from 'zod';
import { JOBS } from './jobs.js';
import { QUEUE_NAMES, type QueueName } from './queues.js';

export type JsonSchema = Record<string, unknown>;

/**
 * Every job of one queue as JSON Schema, generated from its zod contract by zod itself (the shape a
 * producer sends: fields with defaults are optional). Rules a schema cannot say (decimal places of
 * an amount, for one) are checked by the worker, which fails a job that breaks them for good.
 */
export function queueContracts(queue: QueueName): { jobs: Record<string, JsonSchema> } {
  const jobs = JOBS[queue] as Record<string, z.ZodType>;
  return { jobs: Object.fromEntries(Object.keys(jobs).sort().map((name) => [name, z.toJSONSchema(jobs[name]!, { io: 'input' }) as JsonSchema])) };
}

/**
 * What `GET /api/v1/contracts` answers: the queue prefix of this fleet, and every queue's jobs with
 * the BullMQ prefix to open it with (the fleet's prefix on one Redis; a per-queue hash tag on a cluster).
 */
export function contractsDocument(prefix: string, queuePrefix: (queue: QueueName) => string = () => prefix) {
  return { prefix, queues: Object.fromEntries(QUEUE_NAMES.map((q) => [q, { prefix: queuePrefix(q), ...queueContracts(q) }])) as Record<QueueName, { prefix: string } & ReturnType<typeof queueContracts>> };
}
