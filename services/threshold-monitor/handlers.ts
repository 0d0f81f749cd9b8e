import { Counter, type Registry } from 'prom-client';
import type { Producer } from '../../shared/queue/producer.js';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { delayToNextWindowMs } from '../../shared/domain/fork-decision.js';
import { tierRules } from '../../shared/domain/tiers.js';
import { actOnDecision, assessFork, type AssessDeps } from '../../shared/ledger/fork-assessment.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';

/** Pages a scan reads at most, so one scan of a huge tier stays bounded (the next scan goes on). */
const SCAN_PAGES_MAX = 1000;

export function thresholdMonitorHandlers(deps: AssessDeps, producer: Producer, registry: Registry): Handlers<'threshold-check'> & Handlers<'threshold-scan'> {
  const decisions = new Counter({ name: 'fleet_fork_decisions_total', help: 'Fork decisions by outcome (execute, scheduled, review) and skips', labelNames: ['outcome'] as const, registers: [registry] });
  const enqueueFork = async (f: { forkId: string; accountId: string; parentSeq: number; mode: 'full' | 'partial' | 'config-only'; decisionId: string }, delayMs: number) => {
    await producer.enqueue(QUEUE.fork, 'execute', { ...f, symbols: [], requestedBy: 'threshold-monitor' }, { jobId: jobId('fork', f.accountId, f.parentSeq), delayMs });
  };
  return {
    /** One account, after a posting: decide on its head, then act (fork now, later, or a review). */
    check: async (d) => {
      const a = await assessFork(deps, d.accountId, 'check');
      if (a.status === 'skipped') {
        decisions.inc({ outcome: 'skipped' });
        return a;
      }
      await actOnDecision(deps, a.decision, enqueueFork, () => delayToNextWindowMs(deps.clock.now(), deps.config.schedules.timezone));
      decisions.inc({ outcome: a.decision.outcome });
      return { status: 'decided', decisionId: a.decision._id, outcome: a.decision.outcome, confidence: a.decision.confidence };
    },
    /**
     * A tier's periodic scan: pages (bounded) through accounts whose projection is a fork candidate,
     * by the (tier, forkCandidate) index, and enqueues a check per account keyed by its journal
     * seq, so a scan and an event for the same head make one check, and two scans make one too.
     */
    scan: async (d) => {
      const rules = tierRules(deps.config, d.tier);
      if (rules.forkThreshold === null) return { tier: d.tier, enqueued: 0 };
      let afterId: string | undefined;
      let enqueued = 0;
      for (let page = 0; page < SCAN_PAGES_MAX; page++) {
        const query: Record<string, unknown> = { tier: d.tier, state: 'ACTIVE', forkCandidate: true };
        if (afterId) query['_id'] = { $gt: afterId };
        const batch = await deps.stores.accounts.model.find(query, { _id: 1, headSeq: 1 }).sort({ _id: 1 }).limit(deps.config.fork.scanPageSizeMax).lean<Array<{ _id: string; headSeq: number }>>();
        for (const a of batch) {
          await producer.enqueue(QUEUE.thresholdCheck, 'check', { accountId: a._id, seq: Math.max(a.headSeq, 1) }, { jobId: jobId('threshold', a._id, Math.max(a.headSeq, 1)) });
          enqueued++;
        }
        if (batch.length < deps.config.fork.scanPageSizeMax) break;
        afterId = batch[batch.length - 1]!._id;
      }
      return { tier: d.tier, enqueued };
    },
  };
}
