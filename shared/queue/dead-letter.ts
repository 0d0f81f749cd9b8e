import { createHash } from 'node:crypto';

/** A job that failed for good, kept with its reason so an operator can inspect and replay it. */
export interface DeadLetter {
  queue: string;
  jobId: string;
  name: string;
  /** The payload as JSON text: a bad payload may hold keys MongoDB cannot store ('$', '.'). */
  dataJson: string;
  reason: string;
  failedReason: 'invalid' | 'permanent' | 'exhausted' | 'stalled';
  attemptsMade: number;
  failedAt: Date;
}

export interface DeadLetterSink {
  /** Idempotent by (queue, jobId): recording one job twice keeps one record. */
  record(letter: DeadLetter): Promise<void>;
}

/** A dead letter's public id: stable per job, and safe in a URL and a job id whatever the job id holds. */
export function deadLetterKey(letter: Pick<DeadLetter, 'queue' | 'jobId'>): string {
  return createHash('sha256').update(`${letter.queue}\u0000${letter.jobId}`).digest('hex').slice(0, 32);
}
