import { Counter, Gauge, type Registry } from 'prom-client';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { MERGE_DONE, MERGE_IN_FLIGHT, type StoredMerge } from '../../shared/db/merge-repository.js';
import type { StoredOpportunity } from '../../shared/db/opportunity-repository.js';
import { type Urgency, assessConsolidation } from '../../shared/domain/consolidation.js';
import { PAGE_SIZE_MAX } from '../../shared/db/account-repository.js';
import { PROJECTIONS_SETTLE_WAIT_MS } from '../../shared/ledger/projection-backlog.js';
import { reviewCounter } from '../../shared/ledger/review-metrics.js';
import { type ConsolidationDeps, enqueueMerge, measurePage, orderOf, recordOpportunities, requestMerges } from '../../shared/ledger/consolidation.js';
import { abortMerge, runMerge } from '../../shared/ledger/merge-saga.js';
import { resumeStuck, settleSagaJob } from '../../shared/ledger/saga-job.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';
import type { Logger } from '../../shared/runtime/logger.js';

/** Reads of account ids one day's scan makes at most, each of this many batch pages. */
const FANOUT_PAGES_MAX = 1_000;
const FANOUT_READ_PAGES = 100;

export function createMergeMetrics(registry: Registry, deps: ConsolidationDeps) {
  return {
    inFlight: new Gauge({
      name: 'fleet_merges_in_flight',
      help: 'Merges between their start and their end, across the fleet (read from MongoDB at scrape time)',
      registers: [registry],
      async collect() {
        this.set(await deps.merges.inFlight());
      },
    }),
    outcomes: new Counter({ name: 'fleet_merges_total', help: 'Merges finished by this process, by outcome (COMPLETED, ROLLED_BACK, REJECTED)', labelNames: ['outcome'] as const, registers: [registry] }),
    review: reviewCounter(registry),
    opportunities: new Counter({ name: 'fleet_consolidation_opportunities_total', help: 'Consolidation opportunities found by the daily scan, by action (execute, review)', labelNames: ['action'] as const, registers: [registry] }),
  };
}

export interface ScannerHooks {
  onMergeFinished: (merge: StoredMerge) => Promise<void>;
  /** A merge that failed past its point of no return (its target credited): recovery retries it; a person is told. */
  onMergeStuck: (mergeId: string, message: string) => Promise<void>;
}

const summary = (m: StoredMerge) => ({ mergeId: m._id, phase: m.phase, sourceId: m.sourceId, targetId: m.targetId, error: m.error });

export function consolidationHandlers(
  deps: ConsolidationDeps,
  producer: Producer,
  metrics: ReturnType<typeof createMergeMetrics>,
  hooks: ScannerHooks,
  logger: Logger,
): Handlers<'consolidation-scan'> & Handlers<'merge'> {
  // A batch reads its page back with `list`, which answers at most PAGE_SIZE_MAX: a larger page would leave a hole.
  const pageSize = Math.min(deps.config.consolidation.scanPageSizeMax, PAGE_SIZE_MAX);

  /**
   * Carries out what an opportunity calls for, once: merges at the auto-execute bar, else the
   * account's one open merge review, opened or refreshed with this opportunity.
   */
  const act = async (o: StoredOpportunity) => {
    if (o.action === 'execute' && o.mergeIds.length === 0) {
      const ids = await requestMerges(deps, orderOf(o, 'consolidation-scanner'));
      for (const id of ids) await enqueueMerge(producer, { _id: id, scheduledFor: null }, deps.clock.now());
      await deps.opportunities.setOutcome(o._id, { mergeIds: ids });
      await expireReview(o.accountId, `carried out by opportunity ${o._id}`);
    } else if (o.action === 'review' && !o.reviewId) {
      const filed = await deps.reviews.file({ kind: 'merge', accountId: o.accountId, ownerId: o.ownerId, decisionId: o._id, urgency: o.urgency as Urgency, day: o.date, now: deps.clock.now(), snoozeDays: deps.config.reviews.snoozeDaysAfterReject });
      metrics.review('merge', filed.event);
      if (filed.review) await deps.opportunities.setOutcome(o._id, { reviewId: filed.review._id });
    }
  };
  /** The account's open merge review, when what it asked about no longer holds. */
  const expireReview = async (accountId: string, reason: string) => {
    if (await deps.reviews.expire('merge', accountId, reason, deps.clock.now())) metrics.review('merge', 'expired');
  };

  return {
    /**
     * The day's fan-out: one batch job per page of account ids, keyed by day and page start. The ids
     * are read in large pages and their jobs enqueued together (a re-run of the day adds nothing new).
     */
    scan: async (d) => {
      const date = d.date ?? deps.clock.today();
      // The batches assess projections: every posting completed before the scan is in them first.
      const projectionsSettled = (await deps.stores.backlog?.waitSettled(PROJECTIONS_SETTLE_WAIT_MS)) ?? true;
      let afterId: string | null = null;
      let batches = 0;
      for (let read = 0; read < FANOUT_PAGES_MAX; read++) {
        const ids = await deps.stores.accounts.ids({ state: 'ACTIVE' }, { afterId: afterId ?? undefined, limit: pageSize * FANOUT_READ_PAGES });
        const jobs = [];
        for (let i = 0; i < ids.length; i += pageSize) {
          jobs.push({ name: 'batch' as const, data: { date, afterAccountId: afterId, limit: pageSize }, opts: { jobId: jobId('consolidation', date, afterId ?? 'first') } });
          afterId = ids[Math.min(i + pageSize, ids.length) - 1]!;
        }
        await producer.enqueueBulk(QUEUE.consolidationScan, jobs);
        batches += jobs.length;
        if (ids.length < pageSize * FANOUT_READ_PAGES) break;
      }
      return { date, batches, projectionsSettled };
    },
    batch: async (d) => {
      const accounts = await deps.stores.accounts.list({ state: 'ACTIVE' }, { afterId: d.afterAccountId ?? undefined, limit: d.limit });
      // One read for the page: only accounts with an open merge review can have one to expire.
      const withOpenReview = await deps.reviews.openAmong('merge', accounts.map((a) => a._id));
      const inputs = await measurePage(deps, accounts, false);
      const assessed = accounts.map((account) => ({ account, inputs: inputs.get(account._id)!, assessment: assessConsolidation(inputs.get(account._id)!, deps.config.consolidation) }));
      const recordedAll = await recordOpportunities(deps, assessed);
      let found = 0;
      for (const account of accounts) {
        const recorded = recordedAll.get(account._id);
        if ((!recorded || recorded.opportunity.action === 'none') && withOpenReview.has(account._id)) await expireReview(account._id, `no trigger fires on ${d.date}`);
        if (!recorded) continue;
        found++;
        if (recorded.created) metrics.opportunities.inc({ action: recorded.opportunity.action });
        await act(recorded.opportunity);
      }
      return { date: d.date, accounts: accounts.length, opportunities: found };
    },
    execute: async (d, { job }) => {
      const merge = await settleSagaJob(job, {
        run: () => runMerge(deps, d.mergeId, job.id ?? null),
        get: async () => (await deps.merges.get(d.mergeId))!,
        abort: async (current, reason) => ({ committed: (await abortMerge(deps, current, reason, job.id ?? null)).committed }),
        done: MERGE_DONE,
        onStuck: (current, err) => hooks.onMergeStuck(current._id, err.message),
      });
      metrics.outcomes.inc({ outcome: merge.phase });
      await hooks.onMergeFinished(merge);
      logger.info(summary(merge), 'merge finished');
      return summary(merge);
    },
    resume: async (d, { job }) => {
      const merge = await runMerge(deps, d.mergeId, job.id ?? null);
      metrics.outcomes.inc({ outcome: merge.phase });
      await hooks.onMergeFinished(merge);
      logger.info({ ...summary(merge), resumedBy: d.requestedBy }, 'merge resumed');
      return summary(merge);
    },
    recover: (d, { job }) =>
      resumeStuck(
        deps.merges.model,
        MERGE_IN_FLIGHT,
        new Date(deps.clock.now().getTime() - d.olderThanSec * 1000),
        (id) => runMerge(deps, id, job.id ?? null),
        async (done) => {
          metrics.outcomes.inc({ outcome: done.phase });
          await hooks.onMergeFinished(done);
          logger.warn(summary(done), 'recovered a stuck merge');
          return summary(done);
        },
        (id, err) => hooks.onMergeStuck(id, err.message),
        async (id) => (await deps.stores.journal.byKey(`${id}:start`))?.kind === 'merge-start',
      ),
  };
}
