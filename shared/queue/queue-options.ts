import type { DefaultJobOptions } from 'bullmq';
import type { QueueConfig } from '../../config/schema.js';

/** Attempts, backoff and retention set explicitly on every queue (STYLE habit 3), from config. */
export function defaultJobOptions(q: QueueConfig): DefaultJobOptions {
  return {
    attempts: q.attempts,
    backoff: { type: q.backoffType, delay: q.backoffDelayMs },
    removeOnComplete: { age: q.removeOnCompleteAgeSec, count: q.removeOnCompleteCountMax },
    removeOnFail: { age: q.removeOnFailAgeSec, count: q.removeOnFailCountMax },
  };
}
