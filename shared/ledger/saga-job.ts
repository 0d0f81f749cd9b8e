import type { Job } from 'bullmq';

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
