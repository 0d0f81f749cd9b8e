import { jobId } from '../contracts/jobs.js';
import { QUEUE } from '../contracts/queues.js';
import { type DeadLetter, deadLetterKey } from './dead-letter.js';
import type { Producer } from './producer.js';

/** Where an operator inspects a dead letter (`GET`), replays it (`POST …/replay`) or discards it (`DELETE`). */
export const deadLetterUrlOf = (id: string) => `/api/v1/dead-letters/${id}`;

/** A dead letter becomes a `job-failed` alert; the job id comes from the letter, so it is raised once. */
export function raiseDeadLetterAlert(producer: Producer) {
  return async (letter: DeadLetter & { replayCount?: number }): Promise<void> => {
    const id = deadLetterKey(letter);
    // One alert per letter, and one more each time a replay of it fails again.
    const key = letter.replayCount ? `${id}-r${letter.replayCount}` : id;
    const link = deadLetterUrlOf(id);
    await producer.enqueue(
      QUEUE.alerts,
      'raise',
      {
        rule: 'job-failed',
        severity: 'warning',
        accountId: null,
        period: key,
        message: `${letter.queue}/${letter.name} job ${letter.jobId} failed for good (${letter.failedReason}): ${letter.reason.slice(0, 300)}; inspect, replay or discard it at ${link}`,
        details: { queue: letter.queue, jobId: letter.jobId, job: letter.name, failedReason: letter.failedReason, deadLetterId: id, link, replayCount: letter.replayCount ?? 0 },
      },
      { jobId: jobId('alert', 'job-failed', key) },
    );
  };
}
