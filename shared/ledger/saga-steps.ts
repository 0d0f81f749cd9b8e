import type { StoredEntry } from '../db/journal-repository.js';
import { type Refusal, refuse } from '../domain/refusal.js';
import { type LedgerDeps, type PostRequest, type PostResult, postEntry } from './post.js';

/** A step past a saga's point of no return that the ledger refused: the saga stays where it is, retries, and alerts. */
export class SagaStepRefusedError extends Error {
  override readonly name = 'SagaStepRefusedError';
}

/**
 * The steps of one saga run. Every step is an entry keyed `<sagaId>:<step>` and carrying the saga's id
 * (the only entries an account the saga owns accepts). A key holds one decision for ever, applied or
 * refused, so two runs of the same saga, racing or one after the other, read the same decisions and
 * can only write the same entries: the keys are the fence.
 */
export function sagaSteps(deps: LedgerDeps, sagaId: string, operation: string, actor: string, jobId: string | null) {
  const post = (accountId: string, step: string, build: PostRequest['build'], mustApply = false): Promise<PostResult> =>
    postEntry(deps, { accountId, entryKey: `${sagaId}:${step}`, sagaId, operation, actor, jobId, build, mustApply });
  return {
    post,
    /** A step that must apply (settlement after the point of no return): a refusal is thrown, never ignored. */
    async must(accountId: string, step: string, build: PostRequest['build']): Promise<StoredEntry> {
      const r = await post(accountId, step, build, true);
      if (r.status === 'applied') return r.entry;
      throw new SagaStepRefusedError(`${sagaId}: step ${step} on ${accountId} was refused (${r.refusal.code}: ${r.refusal.message}); it is retried`);
    },
    /**
     * Takes a step's key before the step can run, with a refusal recorded on `accountId` (an account
     * the saga touches whose journal exists): from then on the step can never apply. Answers whether
     * it was claimed (true) or the step had already applied (false, with its entry).
     */
    async claim(accountId: string, step: string, why: string): Promise<{ claimed: true; refusal: Refusal } | { claimed: false; entry: StoredEntry }> {
      const r = await post(accountId, step, () => refuse('aborted', why));
      return r.status === 'applied' ? { claimed: false, entry: r.entry } : { claimed: true, refusal: r.refusal };
    },
    /** A step's recorded decision, read by its key (for steps the saga's record says are done). */
    async recorded(step: string): Promise<PostResult | null> {
      const e = await deps.stores.journal.byKey(`${sagaId}:${step}`);
      if (!e) return null;
      return e.kind === 'refusal' ? { status: 'refused', refusal: refuse(e.op.code ?? 'aborted', e.op.reason ?? ''), entry: e, replayed: true } : { status: 'applied', entry: e, replayed: true };
    },
  };
}
