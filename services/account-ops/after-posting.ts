import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import type { StoredAccount } from '../../shared/db/account-repository.js';
import type { StoredEntry } from '../../shared/db/journal-repository.js';
import type { FollowUps } from '../../shared/queue/follow-ups.js';
import { type ReinvestDeps, reinvestTriggerOf } from './reinvest.js';

/**
 * What follows a new journal entry, enqueued together with the other postings' follow-ups of the same
 * moment (one addBulk per queue): a fork check when the account is at or over its fork line, a
 * reinvestment if the entry triggers one for an opted-in account, an alert if it went into ERROR.
 * Each job is keyed by the entry, so a replay enqueues nothing new.
 */
export function afterPosting(followUps: FollowUps, deps: Pick<ReinvestDeps, 'config'>) {
  return async (entry: StoredEntry, account: StoredAccount, facts: { forkCandidate: boolean }): Promise<void> => {
    const jobs: Array<Promise<void>> = [];
    const trigger = reinvestTriggerOf(entry, account, deps.config.reinvestment);
    if (trigger) jobs.push(followUps.enqueue(QUEUE.accountOps, 'reinvest', { accountId: entry.accountId, trigger, key: `seq-${entry.seq}` }, { jobId: jobId('reinvest', entry.accountId, entry.seq) }));
    // Below the fork line no fork is possible: the threshold monitor is asked only at or over it.
    if (facts.forkCandidate) jobs.push(followUps.enqueue(QUEUE.thresholdCheck, 'check', { accountId: entry.accountId, seq: entry.seq }, { jobId: jobId('threshold', entry.accountId, entry.seq) }));
    // An account put in ERROR needs a person.
    if (entry.kind === 'state-change' && entry.after.state === 'ERROR') {
      jobs.push(
        followUps.enqueue(
          QUEUE.alerts,
          'raise',
          { rule: 'account-error', severity: 'critical', accountId: entry.accountId, period: `seq-${entry.seq}`, message: `account ${entry.accountId} is in ERROR and needs intervention`, details: { seq: entry.seq } },
          { jobId: jobId('alert', 'account-error', entry.accountId, entry.seq) },
        ),
      );
    }
    await Promise.all(jobs);
  };
}
