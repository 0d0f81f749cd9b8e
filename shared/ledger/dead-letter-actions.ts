import { jobSchema } from '../contracts/jobs.js';
import { QUEUE, QUEUE_NAMES, type QueueName } from '../contracts/queues.js';
import type { AuditRepository } from '../db/audit-repository.js';
import type { DeadLetterRepository, StoredDeadLetter } from '../db/dead-letter-repository.js';
import type { Producer } from '../queue/producer.js';
import { deadLetterUrlOf } from '../queue/dead-letter-alert.js';

/** The audit chain of operators' decisions about dead letters. */
export const DEAD_LETTER_CHAIN = 'dead-letters';

export interface DeadLetterActionDeps {
  letters: DeadLetterRepository;
  producer: Producer;
  audit: AuditRepository;
  now: () => Date;
}

/** A refused action, with the HTTP status the API answers (the CLI prints the code and message). */
export class DeadLetterError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type ReplayOutcome = 'requeued' | 'already_succeeded' | 'already_queued';

async function existing(deps: DeadLetterActionDeps, id: string): Promise<StoredDeadLetter> {
  const letter = await deps.letters.get(id);
  if (!letter) throw new DeadLetterError(404, 'not_found', 'no such dead letter');
  return letter;
}

/** The letter's payload if a replay could succeed with it; refused otherwise, before anything is written. */
function replayable(letter: StoredDeadLetter): { queue: QueueName; data: unknown } {
  if (letter.state === 'discarded') throw new DeadLetterError(409, 'dead_letter_discarded', `discarded by ${letter.stateBy ?? 'someone'}: ${letter.discardReason ?? ''}`);
  if (letter.failedReason === 'invalid') throw new DeadLetterError(422, 'not_replayable', "its payload fails the job's contract, so it would fail again; enqueue a corrected job instead");
  if (!(QUEUE_NAMES as readonly string[]).includes(letter.queue)) throw new DeadLetterError(422, 'not_replayable', `no queue named ${letter.queue} in this fleet`);
  const queue = letter.queue as QueueName;
  let data: unknown;
  try {
    data = JSON.parse(letter.dataJson);
  } catch {
    throw new DeadLetterError(422, 'not_replayable', 'its payload was not kept whole (too large or unserialisable)');
  }
  // Checked again: the alerter's sweep records every failed job as exhausted, an invalid one too, and
  // a contract may have changed since. A payload the worker would refuse is refused here, unwritten.
  const checked = jobSchema(queue, letter.name)?.safeParse(data);
  if (!checked) throw new DeadLetterError(422, 'not_replayable', `queue ${queue} has no job named ${letter.name}`);
  if (!checked.success) throw new DeadLetterError(422, 'not_replayable', `its payload fails the job's contract (${checked.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ')}); enqueue a corrected job instead`);
  return { queue, data };
}

/**
 * Puts the letter's job back under its id and says what it found. A retry that throws means the job
 * left the failed set since it was read (another replay retried it, retention removed it): read once
 * more and decide again; a job still failed after that is an error (the replay is undone, 503).
 */
async function requeue(producer: Producer, queueName: QueueName, letter: StoredDeadLetter, data: unknown): Promise<ReplayOutcome> {
  const queue = producer.queue(queueName);
  for (let look = 1; ; look++) {
    const job = await queue.getJob(letter.jobId);
    if (!job) {
      // Added under its id through the producer (its contract checked); one added meanwhile is kept.
      await producer.enqueue(queueName, letter.name as never, data as never, { jobId: letter.jobId });
      return 'requeued';
    }
    const state = await job.getState();
    if (state === 'completed') return 'already_succeeded';
    if (state !== 'failed') return 'already_queued';
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'requeued';
    } catch (err) {
      if (look >= 2) throw err;
    }
  }
}

/**
 * Runs a dead letter's job again under its original job id, so the handler's idempotency applies:
 * a job still failed is retried with fresh attempts; one completed meanwhile, or queued again by
 * someone else, is left alone; one BullMQ no longer holds is added again under the same id (an
 * operation that meanwhile succeeded is then answered from its journal entry, and nothing changes).
 *
 * - The mark comes first, conditional on the letter not being discarded: a discard at the same time
 *   either wins (and nothing is enqueued) or comes after (and finds it replayed).
 * - Dies after the mark, before the enqueue: the letter says replayed while its job is still failed;
 *   replaying again is allowed from `replayed` and does the rest. A failed enqueue undoes the mark.
 * - Two replays at once: both mark (each counted); BullMQ keeps one job per id, and retrying a job
 *   no longer in the failed set throws; read again, it is queued (`already_queued`) or done.
 * - The audit record's ref holds the replay's count, so a record is written once per replay.
 */
export async function replayDeadLetter(deps: DeadLetterActionDeps, id: string, actor: string): Promise<{ letter: StoredDeadLetter; outcome: ReplayOutcome }> {
  const before = await existing(deps, id);
  const { queue: queueName, data } = replayable(before);
  // Replayed before and gone from BullMQ: it may have run and been removed after it completed. Only
  // account operations are safe to add again then (their journal key answers a repeat); any other job
  // (a webhook, a day's snapshot page) could run twice, so that replay is refused before any write.
  if (before.state === 'replayed' && queueName !== QUEUE.accountOps && !(await deps.producer.queue(queueName).getJob(before.jobId))) {
    throw new DeadLetterError(409, 'replayed_job_gone', 'it was replayed before and BullMQ no longer holds its job, which may have run since; check its effect, then discard it or enqueue a new job');
  }
  const marked = await deps.letters.markReplayed(id, actor, deps.now());
  if (!marked) throw new DeadLetterError(409, 'dead_letter_discarded', 'it was discarded meanwhile');
  let outcome: ReplayOutcome;
  try {
    outcome = await requeue(deps.producer, queueName, before, data);
  } catch (err) {
    await deps.letters.unmarkReplayed(marked, before);
    throw new DeadLetterError(503, 'queue_unavailable', `the job could not be queued again (${(err as Error).message}); replay again`);
  }
  await deps.audit.append(
    { chain: DEAD_LETTER_CHAIN, ref: `dead-letter-replay:${id}:${marked.replayCount}`, actor, action: 'dead-letter-replay', jobId: before.jobId, before: { id, queue: before.queue, state: before.state }, after: { id, state: marked.state, replayCount: marked.replayCount, outcome }, outcome },
    deps.now(),
  );
  return { letter: marked, outcome };
}

/**
 * Discards a dead letter for good, with the reason. Conditional on it not being discarded already:
 * a second discard (or one racing it) answers 409 and writes nothing; the audit record is written
 * once, after the change it records.
 */
export async function discardDeadLetter(deps: DeadLetterActionDeps, id: string, actor: string, reason: string): Promise<StoredDeadLetter> {
  const before = await existing(deps, id);
  if (!(await deps.letters.discard(id, actor, reason, deps.now()))) throw new DeadLetterError(409, 'dead_letter_discarded', `already discarded by ${before.stateBy ?? 'someone'}`);
  await deps.audit.append(
    { chain: DEAD_LETTER_CHAIN, ref: `dead-letter-discard:${id}`, actor, action: 'dead-letter-discard', jobId: before.jobId, before: { id, queue: before.queue, state: before.state }, after: { id, state: 'discarded', reason }, outcome: 'applied' },
    deps.now(),
  );
  return (await deps.letters.get(id)) ?? before;
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
/** A dead letter as the API and the CLI show it. */
export function deadLetterView(l: StoredDeadLetter) {
  return {
    id: l.id,
    queue: l.queue,
    jobId: l.jobId,
    name: l.name,
    failedReason: l.failedReason,
    reason: l.reason,
    attemptsMade: l.attemptsMade,
    failedAt: iso(l.failedAt)!,
    recordedAt: iso(l.recordedAt)!,
    state: l.state,
    stateAt: iso(l.stateAt),
    stateBy: l.stateBy,
    discardReason: l.discardReason,
    replayCount: l.replayCount,
    url: deadLetterUrlOf(l.id),
  };
}
/** With its payload (null when it was not kept whole). */
export function deadLetterDetail(l: StoredDeadLetter) {
  let data: unknown = null;
  try {
    data = JSON.parse(l.dataJson);
  } catch {
    // Kept as text only (truncated or unserialisable): `dataJson` shows what there is.
  }
  return { ...deadLetterView(l), data, dataJson: l.dataJson };
}
