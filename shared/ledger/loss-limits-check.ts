import type { Config } from '../../config/schema.js';
import type { StoredAccount } from '../db/account-repository.js';
import { jobId } from '../contracts/jobs.js';
import { QUEUE } from '../contracts/queues.js';
import { breachTarget, effectiveLimits, limitBreaches, strongestBreach } from '../domain/loss-limits.js';
import type { IndexState } from '../domain/value-index.js';
import type { Producer } from '../queue/producer.js';
import type { SnapshotDeps } from './snapshot.js';
import { indexStateOf, pointOf } from './snapshot.js';

export interface LimitCheckDeps extends SnapshotDeps {
  config: Pick<Config, 'tiers' | 'alerts'>;
  producer: Producer;
}

const ACCOUNT_PAGE = 200;

/**
 * The loss limits of accounts at a point of their value index: one alert per account about its
 * strongest breach (keyed by rule, account and period, so a re-check raises nothing new) and, when
 * that breach acts, one state-change job keyed the same way (the journal entry under that key applies it once). Decided on
 * the projection's state only to skip needless jobs: the entry decides on the journal head.
 */
export async function actOnLimits(deps: LimitCheckDeps, items: Array<{ account: StoredAccount; point: IndexState & { dailyReturn: number | null } }>): Promise<{ breaches: number; actions: number }> {
  const alerts = [];
  const actions = [];
  for (const { account, point } of items) {
    const breaches = limitBreaches(point, effectiveLimits(deps.config.tiers[account.tier].lossLimits, account.config, deps.config.alerts));
    const top = strongestBreach(breaches);
    if (!top) continue;
    // One alert per account and check, about the breach that matters most; the others are named in it.
    const others = breaches.filter((b) => b !== top).map((b) => b.rule);
    const message = `account ${account._id} ${top.message}${others.length ? ` (also: ${others.join(', ')})` : ''}`;
    alerts.push({ name: 'raise' as const, data: { rule: top.rule, severity: top.severity, accountId: account._id, period: top.period, message, details: { ...top.details, also: others.join(',') } }, opts: { jobId: jobId('alert', top.rule, account._id, top.period) } });
    const to = breachTarget(account.state, top.action);
    if (to) {
      const key = `limit-${top.rule}-${top.period}`;
      // The job id adds the check's day: a job that failed for good (a saga held the account past its
      // retries) is kept under its id, and must not stop tomorrow's check; the key still applies it once.
      actions.push({ name: 'limit-breach' as const, data: { accountId: account._id, idempotencyKey: key, actor: 'risk-limits', to, rule: top.rule, period: top.period, reason: top.message }, opts: { jobId: jobId('limit', account._id, top.rule, top.period, deps.clock.today()) } });
    }
  }
  await deps.producer.enqueueBulk(QUEUE.alerts, alerts);
  await deps.producer.enqueueBulk(QUEUE.accountOps, actions);
  return { breaches: alerts.length, actions: actions.length };
}

/** The points a day's snapshot page wrote, with their accounts. */
export function checkSnapshotPoints(deps: LimitCheckDeps, accounts: StoredAccount[], points: Parameters<typeof indexStateOf>[0][]) {
  const byId = new Map(accounts.map((a) => [a._id, a]));
  return actOnLimits(deps, points.flatMap((p) => (byId.has(p.accountId) ? [{ account: byId.get(p.accountId)!, point: indexStateOf(p) }] : [])));
}

/**
 * After a price load: every open account holding one of the symbols, valued now at the newest closes
 * and carried on from its last point before today (the same computation as the day's snapshot, not
 * stored), so a limit acts within seconds of the prices, not at the next snapshot.
 */
export async function checkAfterPriceLoad(deps: LimitCheckDeps, symbols: string[]): Promise<{ accounts: number; breaches: number; actions: number }> {
  deps.stores.prices.forget();
  const today = deps.clock.today();
  const now = deps.clock.now();
  const totals = { accounts: 0, breaches: 0, actions: 0 };
  for (let afterId: string | undefined; ; ) {
    const page = await deps.stores.accounts.holding(symbols, { afterId, limit: ACCOUNT_PAGE });
    // The page's closes at once (as a snapshot page reads them), then each account's last point before today.
    const prices = await deps.stores.prices.lastCloses([...new Set(page.flatMap((a) => a.head.positions.map((p) => p.symbol)))], today);
    const items = [];
    for (const account of page) {
      const prev = await deps.snapshots.latestBefore(account._id, today);
      items.push({ account, point: indexStateOf(pointOf(account, prev, prices, today, now)) });
    }
    const r = await actOnLimits(deps, items);
    totals.accounts += page.length;
    totals.breaches += r.breaches;
    totals.actions += r.actions;
    if (page.length < ACCOUNT_PAGE) return totals;
    afterId = page[page.length - 1]!._id;
  }
}
