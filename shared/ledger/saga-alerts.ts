import { jobId } from '../contracts/jobs.js';
import { QUEUE } from '../contracts/queues.js';
import type { Producer } from '../queue/producer.js';
import type { LedgerStores } from './stores.js';

/**
 * Tells a person that a saga failed past its point of no return: it cannot be rolled back, the recovery
 * job keeps trying to finish it, and its accounts stay held by it meanwhile. One alert per saga.
 */
export async function raiseSagaStuck(producer: Producer, saga: { kind: 'fork' | 'merge'; id: string; accountId: string }, message: string): Promise<void> {
  await producer.enqueue(
    QUEUE.alerts,
    'raise',
    {
      rule: 'saga-stuck',
      severity: 'critical',
      accountId: saga.accountId,
      period: saga.id.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 128),
      message: `${saga.kind} ${saga.id} failed after its point of no return and is being retried: ${message}`.slice(0, 1000),
      details: { sagaId: saga.id, kind: saga.kind },
    },
    { jobId: jobId('alert', 'saga-stuck', saga.id.replace(/[^A-Za-z0-9_-]/g, '-')) },
  );
}

/** After a saga grew an account (a fork's child, a merge's target): check whether it may fork, on its journal head. */
export async function checkThreshold(producer: Producer, stores: LedgerStores, accountId: string): Promise<void> {
  const head = await stores.journal.head(accountId);
  if (head) await producer.enqueue(QUEUE.thresholdCheck, 'check', { accountId, seq: head.seq }, { jobId: jobId('threshold', accountId, head.seq) });
}
