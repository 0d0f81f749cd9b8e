import { Counter, type Registry } from 'prom-client';
import type { Handlers } from '../../shared/queue/worker-runner.js';
import type { ReviewRepository } from '../../shared/db/review-repository.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import type { ReviewEvent } from '../../shared/ledger/review-metrics.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import type { Logger } from '../../shared/runtime/logger.js';
import { createReconcileGauges, reconcile, recoverTransfers } from './maintenance.js';
import * as postings from './postings.js';
import { type ReinvestDeps, reinvest, reinvestScan } from './reinvest.js';

const REINVEST_PAGE = 500;

export function createPostingCounter(registry: Registry) {
  return new Counter({
    name: 'fleet_operations_total',
    help: 'Client ledger operations by operation and outcome (applied, or the refusal code)',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
}

/** Job name → handler for the account-ops queue; each returns the operation's outcome as the job result. */
export interface AccountOpsExtras {
  /** Where a limit breach files its review to reactivate (absent: no review, e.g. in tests of postings alone). */
  reviews?: ReviewRepository;
  onReview?: (kind: string, event: ReviewEvent) => void;
}

export function accountOpsHandlers(deps: ReinvestDeps, registry: Registry, logger: Logger, producer: Producer, extras: AccountOpsExtras = {}): Handlers<'account-ops'> {
  const counter = createPostingCounter(registry);
  const gauges = createReconcileGauges(registry);
  const counted = async (p: Promise<Outcome>) => {
    const outcome = await p;
    counter.inc({ operation: outcome.operation, outcome: outcome.status === 'applied' ? 'applied' : outcome.code });
    return outcome;
  };
  return {
    'open-account': (d, { job }) => counted(postings.openAccount(deps, d, job.id ?? null)),
    deposit: (d, { job }) => counted(postings.deposit(deps, d, job.id ?? null)),
    withdrawal: (d, { job }) => counted(postings.withdrawal(deps, d, job.id ?? null)),
    transfer: (d, { job }) => counted(postings.transferOp(deps, d, job.id ?? null)),
    trade: (d, { job }) => counted(postings.trade(deps, d, job.id ?? null)),
    dividend: (d, { job }) => counted(postings.dividend(deps, d, job.id ?? null)),
    fee: (d, { job }) => counted(postings.fee(deps, d, job.id ?? null)),
    'state-change': (d, { job }) => counted(postings.stateChange(deps, d, job.id ?? null)),
    reactivate: (d, { job }) => counted(postings.reactivate(deps, d, job.id ?? null)),
    'limit-breach': async (d, { job }) => {
      const outcome = await counted(postings.limitBreach(deps, d, job.id ?? null));
      // Only a change that applied and still stands asks for a person (a replay after a reactivation does not).
      const standing = outcome.status === 'applied' && loadBalances((await deps.stores.journal.head(d.accountId))!.after).state === d.to;
      if (standing && extras.reviews) {
        const account = await deps.stores.accounts.get(d.accountId);
        const filed = await extras.reviews.file({ kind: 'reactivate', accountId: d.accountId, ownerId: account?.ownerId ?? null, decisionId: d.idempotencyKey, urgency: d.to === 'SUSPENDED' ? 'critical' : 'high', day: deps.clock.today(), now: deps.clock.now(), snoozeDays: 0 });
        extras.onReview?.('reactivate', filed.event);
      }
      return outcome;
    },
    reinvest: (d, { job }) => counted(reinvest(deps, d, job.id ?? null)),
    'reinvest-scan': (d) => reinvestScan(deps, producer, d.date ?? deps.clock.today(), REINVEST_PAGE),
    'recover-transfers': (d, { job }) => recoverTransfers(deps, d.olderThanSec, job.id ?? null, logger),
    reconcile: () => reconcile(deps, gauges, logger),
  };
}
