import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { ACCOUNT_BUCKETS } from '../../shared/db/account-repository.js';
import { PROJECTIONS_SETTLE_WAIT_MS } from '../../shared/ledger/projection-backlog.js';
import { checkAfterPriceLoad, checkSnapshotPoints } from '../../shared/ledger/loss-limits-check.js';
import { type SnapshotDeps, pruneSnapshots, snapshotPage } from '../../shared/ledger/snapshot.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';

/** How far back the lag gauge looks for the newest day before it reports that many days. */
const LAG_PROBE_DAYS = 14;
const daysBefore = (date: string, n: number) => new Date(Date.parse(`${date}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);

export function snapshotterHandlers(deps: SnapshotDeps, producer: Producer, config: Pick<Config, 'performance' | 'alerts' | 'tiers'>, registry: Registry): Handlers<'snapshot'> & Handlers<'retention'> {
  const snapshots = new Counter({ name: 'fleet_snapshots_total', help: 'Daily account snapshots written (re-runs of a day write none)', registers: [registry] });
  let lastDay: string | null = null;
  new Gauge({
    name: 'fleet_snapshot_lag_days',
    help: 'Days between the fleet clock\'s date and the newest daily snapshot (probed by date, most recent first)',
    registers: [registry],
    async collect() {
      const today = deps.clock.today();
      if (!lastDay) {
        for (let back = 0; back < LAG_PROBE_DAYS && !lastDay; back++) {
          const day = daysBefore(today, back);
          if (await deps.snapshots.model.exists({ date: day })) lastDay = day;
        }
      }
      this.set(lastDay ? (Date.parse(`${today}T00:00:00Z`) - Date.parse(`${lastDay}T00:00:00Z`)) / 86_400_000 : LAG_PROBE_DAYS);
    },
  });
  const batchSize = config.performance.snapshotBatchSize;
  const limitDeps = { ...deps, config, producer };

  return {
    /**
     * The day's fan-out: a small fleet is one page; a large one a page per bucket of accounts, each
     * a job keyed by day and bucket (a second fan-out of the day enqueues nothing new).
     */
    day: async (d) => {
      const date = d.date ?? deps.clock.today();
      // The pages value projections: every posting completed before the day's snapshot is in them first.
      const projectionsSettled = (await deps.stores.backlog?.waitSettled(PROJECTIONS_SETTLE_WAIT_MS)) ?? true;
      await deps.snapshots.markDay(date, deps.clock.now());
      const pages = (await deps.stores.accounts.estimatedCount()) <= batchSize ? [null] : Array.from({ length: ACCOUNT_BUCKETS }, (_, b) => b);
      await producer.enqueueBulk(QUEUE.snapshot, pages.map((bucket) => ({ name: 'batch' as const, data: { date, bucket }, opts: { jobId: jobId('snapshot', date, bucket ?? 'all') } })));
      return { date, batches: pages.length, projectionsSettled };
    },
    /** One page: its points written at once, then the loss limits on each new point (its index carries what they need). */
    batch: async (d) => {
      const { accounts, written } = await snapshotPage(deps, d.date, d.bucket);
      snapshots.inc(written.length);
      if (written.length > 0 && (!lastDay || d.date > lastDay)) lastDay = d.date;
      // The limits read the page's stored points, not only those this run wrote: a run that died after
      // writing them, or a duplicate run, would otherwise never check them (the actions are keyed).
      const stored = written.length === accounts.length ? written : await deps.snapshots.ofDay(d.date, d.bucket);
      const { breaches, actions } = await checkSnapshotPoints(limitDeps, accounts, stored);
      return { date: d.date, accounts: accounts.length, written: written.length, breaches, actions };
    },
    /** After a price load: the limits of the accounts holding the symbols, on today's values. */
    limits: (d) => checkAfterPriceLoad(limitDeps, d.symbols),
    prune: async (d) => {
      const date = d.date ?? deps.clock.today();
      const cutoff = new Date(Date.parse(`${date}T00:00:00Z`) - config.performance.retentionDays * 86_400_000).toISOString().slice(0, 10);
      return { cutoff, ...(await pruneSnapshots(deps, cutoff)) };
    },
  };
}
