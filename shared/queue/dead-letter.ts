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
