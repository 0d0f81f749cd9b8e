import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { bullPrefix, type RedisClient } from './connection.js';
import type { Config } from '../../config/schema.js';
import { type JobData, type JobName, jobSchema } from '../contracts/jobs.js';
import type { QueueName } from '../contracts/queues.js';
import type { Logger } from '../runtime/logger.js';
import type { Drainable } from '../runtime/shutdown.js';
import type { DeadLetter, DeadLetterSink } from './dead-letter.js';
import type { QueueMetrics } from './queue-metrics.js';

export interface JobContext {
  job: Job;
  logger: Logger;
}
export type Handler<Q extends QueueName, N extends JobName<Q>> = (data: JobData<Q, N>, ctx: JobContext) => Promise<unknown>;
/** Every job of the queue must have a handler: a missing one is a type error, not a runtime surprise. */
export type Handlers<Q extends QueueName> = { [N in JobName<Q>]: Handler<Q, N> };

/** A refusal that no retry can change (a rule, not an outage): fails the job at once. */
export class PermanentJobError extends UnrecoverableError {
  override readonly name = 'PermanentJobError';
}
class InvalidPayloadError extends UnrecoverableError {
  override readonly name = 'InvalidPayloadError';
}

export interface WorkerDeps {
  connection: RedisClient;
  config: Pick<Config, 'queues' | 'queuePrefix' | 'redisClusterNodes'>;
  logger: Logger;
  metrics: QueueMetrics;
  deadLetters: DeadLetterSink;
}

/** Text of a payload for the dead-letter store, bounded so a huge bad payload cannot bloat it. */
const DATA_JSON_CHARS_MAX = 16_384;

/**
 * Runs one queue's handlers: validates every payload again (a bad one fails permanently, counted,
 * never retried, never crashing the worker), times each job, logs with job context and records
 * jobs that failed for good in the dead-letter store. Starts paused: call run() once ready.
 */
export function createWorker<Q extends QueueName>(queue: Q, handlers: Handlers<Q>, deps: WorkerDeps): Worker {
  const { metrics, logger: baseLogger } = deps;
  const qc = deps.config.queues[queue];
  const handlerMap = handlers as Record<string, Handler<Q, JobName<Q>>>;
  const logger = baseLogger.child({ queue });

  const processor = async (job: Job): Promise<unknown> => {
    const log = logger.child({ jobId: job.id, job: job.name, attempt: job.attemptsMade + 1 });
    const stopTimer = metrics.duration.startTimer({ queue, name: job.name });
    try {
      const handler = Object.hasOwn(handlerMap, job.name) ? handlerMap[job.name] : undefined;
      const schema = jobSchema(queue, job.name);
      if (!handler || !schema) throw new InvalidPayloadError(`queue ${queue} has no job named ${JSON.stringify(job.name)}`);
      const parsed = schema.safeParse(job.data);
      if (!parsed.success) {
        metrics.invalid.inc({ queue, name: job.name });
        const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
        throw new InvalidPayloadError(`invalid payload: ${detail}`);
      }
      const result = await handler(parsed.data as JobData<Q, JobName<Q>>, { job, logger: log });
      stopTimer({ outcome: 'completed' });
      log.debug('job completed');
      return result;
    } catch (err) {
      stopTimer({ outcome: 'error' });
      const permanent = err instanceof UnrecoverableError;
      log[permanent ? 'error' : 'warn']({ err }, permanent ? 'job failed permanently' : 'job failed; will retry if attempts remain');
      throw err;
    }
  };

  const worker = new Worker(queue, processor, {
    connection: deps.connection,
    prefix: bullPrefix(deps.config, queue),
    concurrency: qc.workerConcurrency,
    lockDuration: qc.lockDurationMs,
    stalledInterval: qc.stalledIntervalMs,
    maxStalledCount: qc.maxStalledCount,
    autorun: false,
  });

  // The 'failed' event also fires for jobs that stalled too often, which never reach the processor.
  worker.on('failed', (job, err) => {
    if (!job) return;
    void recordIfFinal(job, err, queue, deps).catch((e: unknown) =>
      logger.error({ err: e, jobId: job.id }, 'could not record dead letter; the failed job stays in the failed set'),
    );
  });
  worker.on('error', (err) => logger.error({ err }, 'worker error'));

  return worker;
}

/** The worker as the shutdown sequence sees it: a graceful close, or a forced one after the deadline. */
export function drainableOf(worker: Worker): Drainable {
  return { name: `worker:${worker.name}`, close: (force) => worker.close(force) };
}

function failedReasonOf(err: Error): DeadLetter['failedReason'] {
  if (err instanceof InvalidPayloadError || err.name === 'InvalidPayloadError') return 'invalid';
  if (err instanceof UnrecoverableError) return 'permanent';
  if (/stalled/i.test(err.message)) return 'stalled';
  return 'exhausted';
}

/** A job is dead once BullMQ has put it in the failed set: no retry is scheduled. */
async function recordIfFinal(job: Job, err: Error, queue: QueueName, deps: WorkerDeps): Promise<void> {
  const state = await job.getState();
  if (state !== 'failed') return;
  const failedReason = failedReasonOf(err);
  deps.metrics.failedFinal.inc({ queue, name: job.name, reason: failedReason });
  await deps.deadLetters.record(deadLetterOf(job, queue, err.message, failedReason));
  deps.metrics.deadLetters.inc({ queue });
}

export function deadLetterOf(job: Job, queue: string, reason: string, failedReason: DeadLetter['failedReason']): DeadLetter {
  let dataJson: string;
  try {
    dataJson = JSON.stringify(job.data) ?? 'undefined';
  } catch {
    dataJson = '"[unserialisable payload]"';
  }
  return {
    queue,
    jobId: String(job.id),
    name: job.name,
    dataJson: dataJson.slice(0, DATA_JSON_CHARS_MAX),
    reason: reason.slice(0, 2000),
    failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: new Date(job.finishedOn ?? Date.now()),
  };
}
