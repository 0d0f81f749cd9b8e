import type { Job, QueueEvents } from 'bullmq';
import { jobId, jobSchema } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { storedOutcome } from '../../shared/ledger/operation.js';
import type { LedgerStores } from '../../shared/ledger/stores.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import type { Producer } from '../../shared/queue/producer.js';
import { canonicalJson } from '../../shared/runtime/canonical-json.js';
import pLimit from 'p-limit';
import { ApiError } from './errors.js';
import type { Plan } from './plans.js';

export type Submitted =
  | { done: true; operationId: string; outcome: Outcome }
  | { done: false; operationId: string; status: 'queued' | 'running'; statusUrl: string };

export type OperationStatus =
  | { operationId: string; status: 'queued' | 'running' }
  | { operationId: string; status: 'applied' | 'refused'; outcome: Outcome }
  | { operationId: string; status: 'failed'; error: string };

/** The job id of a client operation: from the account and the client's key, never random. */
export const operationIdOf = (accountId: string, key: string) => jobId('op', accountId, key);
export const statusUrlOf = (operationId: string) => `/api/v1/operations/${operationId}`;

/** Job state reads in flight at once while a batch is waited for. */
const STATE_READS_AT_ONCE = 64;

function enqueueError(err: unknown): ApiError {
  if ((err as Error).name === 'ContractError') return new ApiError(400, 'validation_failed', (err as Error).message);
  return new ApiError(503, 'queue_unavailable', 'the operation could not be queued; retry with the same idempotency key');
}

/** Who sent it does not change what the operation is; everything else does. */
function samePayload(name: string, stored: unknown, submitted: object): boolean {
  // Compared as the worker sees both: through the contract, defaults applied.
  const parse = (x: unknown) => jobSchema(QUEUE.accountOps, name)?.safeParse(x).data as Record<string, unknown> | undefined;
  const { actor: _a, ...a } = parse(stored) ?? {};
  const { actor: _b, ...b } = parse(submitted) ?? {};
  return canonicalJson(a) === canonicalJson(b);
}

/** Enqueues account operations and, when asked, waits for their outcome (SPEC §8: 202 or the outcome). */
export class Operations {
  constructor(
    private readonly producer: Producer,
    private readonly events: QueueEvents,
    private readonly stores: LedgerStores,
    private readonly waitTimeoutMs: number,
  ) {}

  async submit(plan: Plan, wait: boolean): Promise<Submitted> {
    const operationId = operationIdOf(plan.data.accountId, plan.data.idempotencyKey);
    let job;
    try {
      job = await this.producer.enqueue(QUEUE.accountOps, plan.name, plan.data as never, { jobId: operationId });
    } catch (err) {
      throw enqueueError(err);
    }
    // BullMQ answers an existing id with the existing job: the key was used before. Same payload: a
    // retry, answered with the first outcome. Other payload: refused here, as the worker would refuse it.
    if (await this.reused(plan, operationId)) {
      throw new ApiError(409, 'idempotency_key_reused', `idempotency key ${plan.data.idempotencyKey} was already used with a different payload`, { operationId });
    }
    if (wait) {
      const ended = await this.finished(job, Date.now() + this.waitTimeoutMs);
      if (ended) return { done: true, operationId, outcome: ended };
    }
    const state = await job.getState();
    return { done: false, operationId, status: state === 'active' ? 'running' : 'queued', statusUrl: statusUrlOf(operationId) };
  }

  /**
   * Many operations in one `addBulk` (one round trip to Redis); answers, per plan, whether its key
   * was already used with another payload (then it is refused, and its neighbours are not).
   */
  async submitMany(plans: Plan[]): Promise<boolean[]> {
    if (plans.length === 0) return [];
    try {
      await this.producer.enqueueBulk(QUEUE.accountOps, plans.map((p) => ({ name: p.name, data: p.data, opts: { jobId: operationIdOf(p.data.accountId, p.data.idempotencyKey) } })));
    } catch (err) {
      throw enqueueError(err);
    }
    return Promise.all(plans.map((p) => this.reused(p, operationIdOf(p.data.accountId, p.data.idempotencyKey))));
  }

  /**
   * Waits until every operation's job has ended (completed or failed) or the deadline passes. One
   * listener for the whole set (a thousand per-job waits would each hold listeners); subscribed
   * before the states are read, so a job that ends in between is not missed.
   */
  async waitMany(operationIds: string[], deadline: number): Promise<void> {
    const pending = new Set(operationIds);
    if (pending.size === 0) return;
    let wake = () => undefined as void;
    const allEnded = new Promise<void>((resolve) => (wake = resolve));
    const onEnd = ({ jobId }: { jobId: string }) => {
      if (pending.delete(jobId) && pending.size === 0) wake();
    };
    this.events.on('completed', onEnd);
    this.events.on('failed', onEnd);
    const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
    try {
      const queue = this.producer.queue(QUEUE.accountOps);
      const limit = pLimit(STATE_READS_AT_ONCE);
      await Promise.all(
        [...pending].map((id) =>
          limit(async () => {
            const state = await queue.getJobState(id);
            // Gone from Redis ('unknown'): removed after it ended; its outcome is in the journal.
            if (state === 'completed' || state === 'failed' || state === 'unknown') onEnd({ jobId: id });
          }),
        ),
      );
      await allEnded;
    } finally {
      clearTimeout(timer);
      this.events.off('completed', onEnd);
      this.events.off('failed', onEnd);
    }
  }

  /** The outcome once the job ends within the deadline; null when it has not ended by then. */
  private async finished(job: Job, deadline: number): Promise<Outcome | null> {
    try {
      return (await job.waitUntilFinished(this.events, Math.max(1, deadline - Date.now()))) as Outcome;
    } catch (err) {
      // Only BullMQ's own wait timeout means "not finished yet"; a job that failed (whatever its reason says) is an error.
      if (!/timed out before finishing/i.test((err as Error).message)) throw new ApiError(500, 'operation_failed', `the operation failed: ${(err as Error).message}`);
      return null;
    }
  }

  /** add() answers with a Job built from our data even when the id existed: compare what is stored. */
  private async reused(plan: Plan, operationId: string): Promise<boolean> {
    const stored = await this.producer.queue(QUEUE.accountOps).getJob(operationId);
    return !!stored && (stored.name !== plan.name || !samePayload(plan.name, stored.data, plan.data));
  }

  /** From the job while BullMQ keeps it, then from the journal (the decision under the operation's key, kept for good). */
  async status(operationId: string): Promise<OperationStatus | null> {
    const queue = this.producer.queue(QUEUE.accountOps);
    // The state first, then the job: a job read before it ended and found ended after would have no
    // return value yet (its outcome and its move to completed are one write in Redis).
    const state = await queue.getJobState(operationId);
    if (state === 'active') return { operationId, status: 'running' };
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return { operationId, status: 'queued' };
    const job = state === 'unknown' ? undefined : await queue.getJob(operationId);
    if (job && state === 'failed') return { operationId, status: 'failed', error: job.failedReason ?? 'failed' };
    const outcome = job?.returnvalue as Outcome | null | undefined;
    if (outcome) return { operationId, status: outcome.status, outcome };
    // Gone from Redis (removed after it ended), or removed between the two reads: the journal decides.
    const [, accountId, key] = operationId.split('.');
    const stored = await storedOutcome(this.stores, accountId!, key!);
    if (!stored) return null;
    return stored === 'running' ? { operationId, status: 'running' } : { operationId, status: stored.status, outcome: stored };
  }
}
