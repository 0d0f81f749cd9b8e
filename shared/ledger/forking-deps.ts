import type { Queue } from 'bullmq';
import type { Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import { DecisionRepository } from '../db/decision-repository.js';
import { ForkRepository } from '../db/fork-repository.js';
import { ReviewRepository } from '../db/review-repository.js';
import type { Clock } from '../runtime/clock.js';
import type { AssessDeps } from './fork-assessment.js';
import type { LedgerStores } from './stores.js';

/** What deciding on and requesting forks needs, opened on one connection (threshold monitor and API). */
export async function openForkingDeps(mongo: Connection, stores: LedgerStores, config: Config, clock: Clock, forkQueue: Queue): Promise<AssessDeps> {
  const [forks, decisions, reviews] = [new ForkRepository(mongo), new DecisionRepository(mongo), new ReviewRepository(mongo)];
  await Promise.all([forks.init(), decisions.init(), reviews.init()]);
  return {
    stores,
    forks,
    decisions,
    reviews,
    config,
    clock,
    cooldownHours: config.fork.cooldownHours,
    forkBacklog: async () => {
      const c = await forkQueue.getJobCounts('waiting', 'delayed', 'prioritized');
      return (c['waiting'] ?? 0) + (c['delayed'] ?? 0) + (c['prioritized'] ?? 0);
    },
    // Daily values come from the performance snapshots; until an account has them the factor is neutral.
    dailyValues: async () => [],
  };
}
