import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ForkRepository, StoredFork } from '../../shared/db/fork-repository.js';
import { FORK_DONE, FORK_IN_FLIGHT } from '../../shared/db/fork-repository.js';
import { resumeStuck, settleSagaJob } from '../../shared/ledger/saga-job.js';
import { type ForkDeps, abortFork, requestFork, runFork } from '../../shared/ledger/fork-saga.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';
import type { Logger } from '../../shared/runtime/logger.js';

export function createForkMetrics(registry: Registry, forks: ForkRepository) {
  return {
    inFlight: new Gauge({
      name: 'fleet_forks_in_flight',
      help: 'Forks between their start and their end, across the fleet (read from MongoDB at scrape time)',
      registers: [registry],
      async collect() {
        this.set(await forks.inFlight());
      },
    }),
    outcomes: new Counter({ name: 'fleet_forks_total', help: 'Forks finished by this process, by outcome (COMPLETED, ROLLED_BACK, REJECTED)', labelNames: ['outcome'] as const, registers: [registry] }),
    duration: new Histogram({ name: 'fleet_fork_duration_seconds', help: 'Time one fork job took, by outcome', labelNames: ['outcome'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
  };
}

export interface ForkExecutorHooks {
  /** Raises the 'fork-rolled-back' alert, and checks a new child (it may be large enough to fork itself). */
  onFinished: (fork: StoredFork) => Promise<void>;
  /** A fork that failed past its point of no return (its child credited): recovery retries it; a person is told. */
  onStuck: (forkId: string, message: string) => Promise<void>;
}

const summary = (f: StoredFork) => ({ forkId: f._id, phase: f.phase, parentId: f.parentId, childId: f.phase === 'COMPLETED' ? f.childId : null, error: f.error });

export function forkExecutorHandlers(deps: ForkDeps, metrics: ReturnType<typeof createForkMetrics>, hooks: ForkExecutorHooks, logger: Logger): Handlers<'fork'> {
  return {
    execute: async (d, { job }) => {
      const stop = metrics.duration.startTimer();
      await requestFork(deps, { parentId: d.accountId, parentSeq: d.parentSeq, mode: d.mode, symbols: d.symbols, requestedBy: d.requestedBy, decisionId: d.decisionId });
      const fork = await settleSagaJob(job, {
        run: () => runFork(deps, d.forkId, job.id ?? null),
        get: async () => (await deps.forks.get(d.forkId))!,
        abort: async (current, reason) => ({ committed: (await abortFork(deps, current, reason, job.id ?? null)).committed }),
        done: FORK_DONE,
        onStuck: (current, err) => hooks.onStuck(current._id, err.message),
      });
      stop({ outcome: fork.phase });
      metrics.outcomes.inc({ outcome: fork.phase });
      await hooks.onFinished(fork);
      logger.info(summary(fork), 'fork finished');
      return summary(fork);
    },
    resume: async (d, { job }) => {
      const fork = await runFork(deps, d.forkId, job.id ?? null);
      metrics.outcomes.inc({ outcome: fork.phase });
      await hooks.onFinished(fork);
      logger.info({ ...summary(fork), resumedBy: d.requestedBy }, 'fork resumed');
      return summary(fork);
    },
    recover: (d, { job }) =>
      resumeStuck(
        deps.forks.model,
        FORK_IN_FLIGHT,
        new Date(deps.clock.now().getTime() - d.olderThanSec * 1000),
        (id) => runFork(deps, id, job.id ?? null),
        async (done) => {
          metrics.outcomes.inc({ outcome: done.phase });
          await hooks.onFinished(done);
          logger.warn(summary(done), 'recovered a stuck fork');
          return summary(done);
        },
        (id, err) => hooks.onStuck(id, err.message),
        async (id) => (await deps.stores.journal.byKey(`${id}:start`))?.kind === 'fork-start',
      ),
  };
}
