import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import { loadUnits } from '../../shared/db/stored-units.js';
import type { StoredSnapshot } from '../../shared/db/snapshot-repository.js';
import { lossBreaches } from '../../shared/domain/loss-rules.js';
import { type SnapshotDeps, pruneSnapshots, snapshotAccount } from '../../shared/ledger/snapshot.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';

/** Pages of account ids one day's fan-out reads at most. */
const FANOUT_PAGES_MAX = 10_000;
/** How far back the lag gauge looks for the newest day before it reports that many days. */
const LAG_PROBE_DAYS = 14;
const daysBefore = (date: string, n: number) => new Date(Date.parse(`${date}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);

/** Points the loss rules look back over: a month and a bit, enough for the monthly rule. */
const RULE_WINDOW_DAYS = 40;

export function snapshotterHandlers(deps: SnapshotDeps, producer: Producer, config: Pick<Config, 'performance' | 'alerts'>, registry: Registry): Handlers<'snapshot'> & Handlers<'retention'> {
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

  /** After a point: the loss rules on the account's recent series; each breach once per account, rule and period. */
  const checkLosses = async (accountId: string, date: string, known: StoredSnapshot[] | null) => {
    const from = new Date(Date.parse(`${date}T00:00:00Z`) - RULE_WINDOW_DAYS * 86_400_000).toISOString().slice(0, 10);
    // The points the snapshot just read are reused; a day already snapshotted reads them again.
    const points = (known ?? (await deps.snapshots.trailing(accountId, date))).filter((s) => s.date >= from && s.date <= date);
    const series = points.map((s) => ({ date: s.date, value: loadUnits('cash', s.equityCents).toNumber(), dailyReturn: s.dailyReturn }));
    for (const b of lossBreaches(series, config.alerts)) {
      await producer.enqueue(
        QUEUE.alerts,
        'raise',
        { rule: b.rule, severity: b.severity, accountId, period: b.period, message: `account ${accountId} ${b.message}`, details: b.details },
        { jobId: jobId('alert', b.rule, accountId, b.period) },
      );
    }
  };

  return {
    /** The day's fan-out: one batch job per page of account ids, keyed by day and page start. */
    day: async (d) => {
      const date = d.date ?? deps.clock.today();
      let afterId: string | null = null;
      let batches = 0;
      for (let page = 0; page < FANOUT_PAGES_MAX; page++) {
        const ids = await deps.stores.accounts.list({}, { afterId: afterId ?? undefined, limit: batchSize });
        if (ids.length === 0) break;
        await producer.enqueue(QUEUE.snapshot, 'batch', { date, afterAccountId: afterId, limit: batchSize }, { jobId: jobId('snapshot', date, afterId ?? 'first') });
        batches++;
        afterId = ids[ids.length - 1]!._id;
        if (ids.length < batchSize) break;
      }
      return { date, batches };
    },
    batch: async (d) => {
      const accounts = await deps.stores.accounts.list({}, { afterId: d.afterAccountId ?? undefined, limit: d.limit });
      let written = 0;
      for (const a of accounts) {
        const r = await snapshotAccount(deps, a, d.date);
        if (!r) continue;
        if (r.created) {
          written++;
          snapshots.inc();
          if (!lastDay || d.date > lastDay) lastDay = d.date;
        }
        await checkLosses(a._id, d.date, r.history);
      }
      return { date: d.date, accounts: accounts.length, written };
    },
    prune: async (d) => {
      const date = d.date ?? deps.clock.today();
      const cutoff = new Date(Date.parse(`${date}T00:00:00Z`) - config.performance.retentionDays * 86_400_000).toISOString().slice(0, 10);
      return { cutoff, ...(await pruneSnapshots(deps, cutoff)) };
    },
  };
}
