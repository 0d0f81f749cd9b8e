import type { Job } from 'bullmq';
import type { Model } from 'mongoose';

/**
 * Runs one saga job: the saga resumes from its stored phase. Failures are retried while attempts
 * remain (each retry resumes); on the last one the saga rolls back what can still be rolled back, and
 * a saga past its point of no return is left to the recovery job, which can only finish it.
 */
export async function settleSagaJob<T extends { phase: string }>(
  job: Pick<Job, 'attemptsMade' | 'opts'>,
  saga: { run: () => Promise<T>; get: () => Promise<T>; rollBack: (current: T, reason: { code: string; message: string }) => Promise<void>; done: readonly string[] },
): Promise<T> {
  try {
    return await saga.run();
  } catch (err) {
    if (job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw err;
    await saga.rollBack(await saga.get(), { code: 'error', message: (err as Error).message.slice(0, 500) });
    const settled = await saga.get();
    if (!saga.done.includes(settled.phase)) throw err;
    return settled;
  }
}

const RECOVER_BATCH_MAX = 50;

/**
 * The recovery job of a saga: resumes every one in an open phase untouched since `before` (its job
 * died or gave up), at most a batch a run, and reports each through `finished`.
 */
export async function resumeStuck<T extends { _id: string; updatedAt: Date }, S>(
  model: Model<T>,
  openPhases: readonly string[],
  before: Date,
  resume: (id: string) => Promise<T>,
  finished: (saga: T) => Promise<S>,
): Promise<{ resumed: S[] }> {
  const stuck = (await model.find({ phase: { $in: openPhases } }).lean<T[]>()).filter((s) => new Date(s.updatedAt) < before);
  const resumed: S[] = [];
  for (const s of stuck.slice(0, RECOVER_BATCH_MAX)) resumed.push(await finished(await resume(s._id)));
  return { resumed };
}
