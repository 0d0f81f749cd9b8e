import type { Queue } from 'bullmq';
import type { Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import { DecisionRepository } from '../db/decision-repository.js';
import { ReviewRepository } from '../db/review-repository.js';
import { SnapshotRepository } from '../db/snapshot-repository.js';
import type { Clock } from '../runtime/clock.js';
import { loadUnits } from '../db/stored-units.js';
import type { AssessDeps } from './fork-assessment.js';
import type { LedgerStores } from './stores.js';

/** What deciding on and requesting forks needs, opened on one connection (threshold monitor and API). */
export async function openForkingDeps(mongo: Connection, stores: LedgerStores, config: Config, clock: Clock, forkQueue: Queue): Promise<AssessDeps> {
  const forks = stores.forks;
  const [decisions, reviews] = [new DecisionRepository(mongo), new ReviewRepository(mongo)];
  await Promise.all([decisions.init(), reviews.init()]);
  return {
    stores,
    forks,
    decisions,
    reviews,
    config,
    clock,
    cooldownHours: config.fork.cooldownHours,
    afterMergeCooldownDays: config.fork.afterMergeCooldownDays,
    // Jobs ready to run and waiting for a slot; delayed ones (a later window, the recovery schedule) are not load yet.
    forkBacklog: async () => {
      const c = await forkQueue.getJobCounts('waiting', 'prioritized');
      return (c['waiting'] ?? 0) + (c['prioritized'] ?? 0);
    },
    dailyValues: flowAdjustedIndex(new SnapshotRepository(mongo), clock),
    benchmarkCloses: cachedBenchmark(stores, config.fork.benchmarkSymbol, clock),
  };
}

/**
 * The account's daily snapshots as a performance index, 1 × ∏(1 + r): built from the flow-adjusted
 * returns, so deposits and withdrawals do not read as performance. Empty until snapshots exist.
 */
function flowAdjustedIndex(snapshots: SnapshotRepository, clock: Clock) {
  return async (accountId: string): Promise<number[]> => {
    const series = (await snapshots.trailing(accountId, clock.today())).slice(-253);
    let index = 1;
    return series.map((s, i) => (i === 0 ? index : (index *= 1 + (s.dailyReturn ?? 0))));
  };
}

const BENCHMARK_CLOSES_MAX = 253;
const BENCHMARK_TTL_MS = 60_000;

/** The benchmark's closes, read once a minute at most: every decision of the day reads the same year. */
function cachedBenchmark(stores: LedgerStores, symbol: string, clock: Clock) {
  let cache: { today: string; closes: Array<{ date: string; close: number }>; until: number } | null = null;
  return async () => {
    const today = clock.today();
    if (cache && cache.today === today && cache.until > Date.now()) return cache.closes;
    const rows = await stores.prices.model
      .find({ symbol, date: { $lte: today } }, { _id: 0, date: 1, closeMicros: 1 })
      .sort({ date: -1 })
      .limit(BENCHMARK_CLOSES_MAX)
      .lean<Array<{ date: string; closeMicros: bigint }>>();
    const closes = rows.reverse().map((r) => ({ date: r.date, close: loadUnits('price', r.closeMicros).toNumber() }));
    cache = { today, closes, until: Date.now() + BENCHMARK_TTL_MS };
    return closes;
  };
}
