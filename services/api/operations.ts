import type { QueueEvents } from 'bullmq';
import { type JobInput, type JobName, jobId, jobSchema } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { storedOutcome } from '../../shared/ledger/operation.js';
import type { LedgerStores } from '../../shared/ledger/stores.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import type { Producer } from '../../shared/queue/producer.js';
import { canonicalJson } from '../../shared/runtime/canonical-json.js';
import { ApiError } from './errors.js';

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

  async submit<N extends JobName<'account-ops'>>(
    name: N,
    data: JobInput<'account-ops', N> & { accountId: string; idempotencyKey: string },
    wait: boolean,
  ): Promise<Submitted> {
    const operationId = operationIdOf(data.accountId, data.idempotencyKey);
    let job;
    try {
      job = await this.producer.enqueue(QUEUE.accountOps, name, data, { jobId: operationId });
    } catch (err) {
      if ((err as Error).name === 'ContractError') throw new ApiError(400, 'validation_failed', (err as Error).message);
      throw new ApiError(503, 'queue_unavailable', 'the operation could not be queued; retry with the same idempotency key');
    }
    // BullMQ answers an existing id with the existing job: the key was used before. Same payload: a
    // replay (its outcome follows). Other payload: refused here, as the worker would refuse it.
    // add() answers with a Job built from our data even when the id existed: compare what is stored.
    const stored = await this.producer.queue(QUEUE.accountOps).getJob(operationId);
    if (stored && (stored.name !== name || !samePayload(name, stored.data, data))) {
      throw new ApiError(409, 'idempotency_key_reused', `idempotency key ${data.idempotencyKey} was already used with a different payload`, { operationId });
    }
    if (wait) {
      try {
        const outcome = (await job.waitUntilFinished(this.events, this.waitTimeoutMs)) as Outcome;
        return { done: true, operationId, outcome };
      } catch (err) {
        // Only BullMQ's own wait timeout means "not finished yet"; a job that failed (whatever its reason says) is an error.
        if (!/timed out before finishing/i.test((err as Error).message)) throw new ApiError(500, 'operation_failed', `the operation failed: ${(err as Error).message}`);
      }
    }
    const state = await job.getState();
    return { done: false, operationId, status: state === 'active' ? 'running' : 'queued', statusUrl: statusUrlOf(operationId) };
  }

  /** From the job while BullMQ keeps it, then from the journal (the decision under the operation's key, kept for good). */
  async status(operationId: string): Promise<OperationStatus | null> {
    const job = await this.producer.queue(QUEUE.accountOps).getJob(operationId);
    if (job) {
      const state = await job.getState();
      if (state === 'completed') {
        const outcome = job.returnvalue as Outcome;
        return { operationId, status: outcome.status, outcome };
      }
      if (state === 'failed') return { operationId, status: 'failed', error: job.failedReason ?? 'failed' };
      return { operationId, status: state === 'active' ? 'running' : 'queued' };
    }
    const [, accountId, key] = operationId.split('.');
    const stored = await storedOutcome(this.stores, accountId!, key!);
    if (!stored) return null;
    return stored === 'running' ? { operationId, status: 'running' } : { operationId, status: stored.status, outcome: stored };
  }
}
