import type { Config } from '../../config/schema.js';
import type { AccountConfig } from '../../shared/contracts/account-config.js';
import { jobId, type JobData } from '../../shared/contracts/jobs.js';
import { QUEUE } from '../../shared/contracts/queues.js';
import type { StoredAccount } from '../../shared/db/account-repository.js';
import type { StoredEntry } from '../../shared/db/journal-repository.js';
import { loadUnits } from '../../shared/db/stored-units.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import { holdingsAtCost } from '../../shared/domain/totals.js';
import { refuse } from '../../shared/domain/refusal.js';
import { type ReinvestSettings, type ReinvestTrigger, type Trend, planReinvestment, trendOf } from '../../shared/domain/reinvestment.js';
import { tierRules } from '../../shared/domain/tiers.js';
import { Decimal } from '../../shared/money/decimal.js';
import type { LedgerDeps } from '../../shared/ledger/post.js';
import type { Producer } from '../../shared/queue/producer.js';
import { singleEntry } from './postings.js';

export type ReinvestDeps = LedgerDeps & { config: Pick<Config, 'tiers' | 'reinvestment'> };

export function reinvestSettings(config: AccountConfig, defaults: Config['reinvestment']): ReinvestSettings | null {
  const r = config.reinvestment;
  if (!r?.enabled) return null;
  return {
    strategy: r.strategy,
    cashBuffer: new Decimal(config.cashBuffer ?? defaults.defaultCashBuffer),
    targetAllocation: (config.targetAllocation ?? []).map((t) => ({ symbol: t.symbol, weight: new Decimal(t.weight) })),
    universe: r.universe ?? [],
  };
}

/**
 * Which reinvestment trigger a new entry fires, if the account opted in: a dividend; a sell that
 * closed its position; a sell that realised a profit of at least the threshold share of the account's
 * holdings at cost after it (read from the entry itself, so deciding costs no read).
 */
export function reinvestTriggerOf(entry: StoredEntry, account: StoredAccount, defaults: Config['reinvestment']): ReinvestTrigger | null {
  const r = account.config.reinvestment;
  if (!r?.enabled) return null;
  if (entry.kind === 'dividend') return 'dividend';
  if (entry.kind !== 'trade' || entry.op.side !== 'sell') return null;
  if (!entry.after.positions.some((p) => p.symbol === entry.op.symbol)) return 'position-closed';
  const threshold = new Decimal(r.profitThreshold ?? defaults.defaultProfitThreshold);
  const realised = loadUnits('cash', entry.realisedPnlCents);
  return realised.isPositive() && realised.gte(holdingsAtCost(loadBalances(entry.after)).times(threshold)) ? 'profit-threshold' : null;
}

/**
 * One reinvestment: buys at the last closes planned on the journal head, posted as one entry under a
 * key from the trigger, so a replay finds it. Nothing to invest (or opted out) is a refusal, not an entry.
 */
export function reinvest(deps: ReinvestDeps, d: JobData<'account-ops', 'reinvest'>, jobId: string | null) {
  const data = { accountId: d.accountId, idempotencyKey: `reinvest-${d.trigger}-${d.key}`, actor: 'reinvestment', trigger: d.trigger };
  return singleEntry(deps, 'reinvestment', data, jobId, async (head, account) => {
    const settings = reinvestSettings(account.config, deps.config.reinvestment);
    if (!settings) return refuse('invalid_state', 'reinvestment is not enabled for this account');
    if (head.state !== 'ACTIVE') return refuse('invalid_state', `a ${head.state} account does not reinvest`);
    const today = deps.clock.today();
    const symbols = [...new Set([...head.positions.map((p) => p.symbol), ...settings.targetAllocation.map((t) => t.symbol), ...settings.universe])];
    const prices = await deps.stores.prices.lastCloses(symbols, today);
    const trends = new Map<string, Trend>();
    if (settings.strategy === 'dynamic') {
      for (const s of symbols) {
        const t = trendOf((await deps.stores.prices.closesUpTo(s, today, deps.config.reinvestment.momentumSessions)).map((c) => c.toNumber()));
        if (t) trends.set(s, t);
      }
    }
    const buys = planReinvestment(head, prices, tierRules(deps.config, account.tier, account.config), settings, trends);
    return buys.length > 0 ? { kind: 'reinvestment', trigger: d.trigger, buys } : refuse('insufficient_funds', 'no cash above the buffer to reinvest within the limits');
  }, { waitWhileLocked: true });
}

/** The scheduled trigger: every opted-in ACTIVE account, once per date (jobs keyed by account and date). */
export async function reinvestScan(deps: ReinvestDeps, producer: Producer, date: string, pageSize: number): Promise<{ date: string; enqueued: number }> {
  let afterId: string | undefined;
  let enqueued = 0;
  for (;;) {
    const page = await deps.stores.accounts.list({ state: 'ACTIVE' }, { afterId, limit: pageSize });
    for (const a of page) {
      if (!a.config.reinvestment?.enabled || a.config.reinvestment.onSchedule === false) continue;
      await producer.enqueue(QUEUE.accountOps, 'reinvest', { accountId: a._id, trigger: 'schedule', key: date }, { jobId: jobId('reinvest', a._id, date) });
      enqueued++;
    }
    if (page.length < pageSize) break;
    afterId = page[page.length - 1]!._id;
  }
  return { date, enqueued };
}
