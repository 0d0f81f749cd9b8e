import type { Job } from 'bullmq';
import type { Model } from 'mongoose';

export interface SagaJob<T extends { phase: string }> {
  run: () => Promise<T>;
  get: () => Promise<T>;
  /** Rolls back unless the saga is past its point of no return (then `committed`: it can only go forward). */
  abort: (current: T, reason: { code: string; message: string }) => Promise<{ committed: boolean }>;
  done: readonly string[];
  /** A saga that failed past its point of no return: left to the recovery job, and a person is told. */
  onStuck: (current: T, err: Error) => Promise<void>;
}

/**
 * Runs one saga job: the saga resumes from its journal. Failures are retried while attempts remain;
 * on the last one the saga rolls back if it still can. One past its point of no return stays where it
 * is (the recovery job finishes it) and raises an alert.
 */
export async function settleSagaJob<T extends { phase: string }>(job: Pick<Job, 'attemptsMade' | 'opts'>, saga: SagaJob<T>): Promise<T> {
  try {
    return await saga.run();
  } catch (err) {
    if (job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw err;
    const current = await saga.get();
    const { committed } = await saga.abort(current, { code: 'error', message: (err as Error).message.slice(0, 500) });
    if (committed) {
      await saga.onStuck(current, err as Error);
      throw err;
    }
    const settled = await saga.get();
    if (!saga.done.includes(settled.phase)) throw err;
    return settled;
  }
}

const RECOVER_BATCH_MAX = 50;

/**
 * The recovery job of a saga: resumes every one in an open phase untouched since `before` (its job
 * died or gave up), at most a batch a run. A saga that fails again is reported through `stuck` and
 * tried again on the next run; the others go on.
 */
export async function resumeStuck<T extends { _id: string; updatedAt: Date }, S>(
  model: Model<T>,
  openPhases: readonly string[],
  before: Date,
  resume: (id: string) => Promise<T>,
  finished: (saga: T) => Promise<S>,
  stuck: (id: string, err: Error) => Promise<void>,
  /** A saga still REQUESTED whose start entry applied (its process died before the record said so) is resumed too. */
  started: (id: string) => Promise<boolean>,
): Promise<{ resumed: S[]; failed: string[] }> {
  const candidates = (await model.find({ phase: { $in: [...openPhases, 'REQUESTED'] } }).limit(RECOVER_BATCH_MAX * 4).lean<Array<T & { phase: string }>>()).filter((s) => new Date(s.updatedAt) < before);
  const open: T[] = [];
  for (const s of candidates) if (s.phase !== 'REQUESTED' || (await started(s._id))) open.push(s);
  const resumed: S[] = [];
  const failed: string[] = [];
  for (const s of open.slice(0, RECOVER_BATCH_MAX)) {
    try {
      resumed.push(await finished(await resume(s._id)));
    } catch (err) {
      failed.push(s._id);
      await stuck(s._id, err as Error);
    }
  }
  return { resumed, failed };
}
