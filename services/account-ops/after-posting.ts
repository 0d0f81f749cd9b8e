import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import type { StoredEntry } from '../../shared/db/journal-repository.js';
import type { Producer } from '../../shared/queue/producer.js';
import { type ReinvestDeps, enqueueReinvestIfTriggered } from './reinvest.js';

/**
 * What follows every new journal entry: a fork check for the account, a reinvestment if the entry
 * triggers one for an opted-in account, and an alert if it went into ERROR.
 */
export function afterPosting(producer: Producer, deps: Pick<ReinvestDeps, 'stores' | 'config'>) {
  return async (entry: StoredEntry): Promise<void> => {
    await enqueueReinvestIfTriggered(producer, deps, entry);
    // Every new entry may make the account eligible to fork: the threshold monitor decides.
    await producer.enqueue(QUEUE.thresholdCheck, 'check', { accountId: entry.accountId, seq: entry.seq }, { jobId: jobId('threshold', entry.accountId, entry.seq) });
    // SPEC §7.4: an account put in ERROR needs a person.
    if (entry.kind === 'state-change' && entry.after.state === 'ERROR') {
      await producer.enqueue(
        QUEUE.alerts,
        'raise',
        { rule: 'account-error', severity: 'critical', accountId: entry.accountId, period: `seq-${entry.seq}`, message: `account ${entry.accountId} is in ERROR and needs intervention`, details: { seq: entry.seq } },
        { jobId: jobId('alert', 'account-error', entry.accountId, entry.seq) },
      );
    }
  };
}
