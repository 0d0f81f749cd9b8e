import { createHash } from 'node:crypto';
import { jobId } from '../contracts/jobs.js';
import { QUEUE } from '../contracts/queues.js';
import type { DeadLetter } from './dead-letter.js';
import type { Producer } from './producer.js';

/** Period key of a dead letter's alert: stable per job, and safe in a job id whatever the job id holds. */
export function deadLetterKey(letter: Pick<DeadLetter, 'queue' | 'jobId'>): string {
  return createHash('sha256').update(`${letter.queue}\u0000${letter.jobId}`).digest('hex').slice(0, 32);
}

/** A dead letter becomes a `job-failed` alert; the job id comes from the letter, so it is raised once. */
export function raiseDeadLetterAlert(producer: Producer) {
  return async (letter: DeadLetter): Promise<void> => {
    const key = deadLetterKey(letter);
    await producer.enqueue(
      QUEUE.alerts,
      'raise',
      {
        rule: 'job-failed',
        severity: 'warning',
        accountId: null,
        period: key,
        message: `${letter.queue}/${letter.name} job ${letter.jobId} failed for good (${letter.failedReason}): ${letter.reason.slice(0, 300)}`,
        details: { queue: letter.queue, jobId: letter.jobId, job: letter.name, failedReason: letter.failedReason },
      },
      { jobId: jobId('alert', 'job-failed', key) },
    );
  };
}
