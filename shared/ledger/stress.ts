import type { Config } from '../../config/schema.js';
import { alignOnDates, benchmarkMetrics, returnsFrom } from '../analytics/metrics.js';
import { type Revalued, type Shock, type StressConsequences, betaShock, revalue, stressConsequences, stressReturn, windowMove } from '../analytics/stress.js';
import type { StressScenario } from '../contracts/stress-scenario.js';
import { PAGE_SIZE_MAX, type StoredAccount } from '../db/account-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { type AccountInputs, evaluateTriggers, type Trigger } from '../domain/consolidation.js';
import { breachTarget, effectiveLimits } from '../domain/loss-limits.js';
import { tierRules } from '../domain/tiers.js';
import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';
import { type ConsolidationDeps, measurePage } from './consolidation.js';
import { atJournalHead } from './journal-head.js';
import { indexStateOf, pointOf } from './snapshot.js';

export interface StressDeps {
  consolidation: ConsolidationDeps;
  config: Pick<Config, 'tiers' | 'alerts' | 'risk' | 'consolidation'> & { fork: Pick<Config['fork'], 'benchmarkSymbol'> };
}

const ZERO_SHOCK: Shock = { shock: new Decimal(0), source: 'none' };

/**
 * Each symbol's shock under a scenario. Per-symbol shocks as given (others do not move). A market
 * shock through each symbol's beta to the benchmark, measured over `risk.betaSessions` daily closes
 * (1 when there are too few: the market's own move). A window: each symbol as its closes moved from
 * the window's first day to its last; a symbol without closes there moves as the benchmark did.
 */
async function shocksFor(deps: StressDeps, scenario: StressScenario, symbols: string[], today: string): Promise<(symbol: string) => Shock> {
  const prices = deps.consolidation.stores.prices;
  const benchmark = deps.config.fork.benchmarkSymbol;
  if ('shocks' in scenario) {
    return (s) => (scenario.shocks[s] !== undefined ? { shock: new Decimal(scenario.shocks[s]), source: 'given' } : ZERO_SHOCK);
  }
  if ('market' in scenario) {
    const market = new Decimal(scenario.market);
    const sessions = deps.config.risk.betaSessions + 1;
    const bench = (await prices.seriesUpTo(benchmark, today, sessions)).map((p) => ({ date: p.date, value: p.close }));
    const betas = new Map<string, number | null>();
    for (const symbol of symbols) {
      if (symbol === benchmark) {
        betas.set(symbol, 1);
        continue;
      }
      const own = (await prices.seriesUpTo(symbol, today, sessions)).map((p) => ({ date: p.date, value: p.close }));
      const aligned = alignOnDates(own, bench);
      betas.set(symbol, aligned.account.length >= 20 ? benchmarkMetrics(returnsFrom(aligned.account), returnsFrom(aligned.benchmark)).beta : null);
    }
    return (s) => {
      const beta = betas.get(s) ?? null;
      return { shock: betaShock(market, beta ?? 1), source: 'beta', beta };
    };
  }
  const { from, to } = scenario.window;
  const wanted = [...new Set([...symbols, benchmark])];
  const [start, end] = await Promise.all([prices.lastClosesDated(wanted, from), prices.lastClosesDated(wanted, to)]);
  // A close from before the window's start counts only if it is within a week of it (a weekend, a holiday).
  const weekBefore = new Date(Date.parse(`${from}T00:00:00Z`) - 7 * 86_400_000).toISOString().slice(0, 10);
  const moveOf = (s: string) => {
    const a = start.get(s);
    const b = end.get(s);
    return a && b && a.date >= weekBefore && b.date > a.date ? windowMove(a.close, b.close) : null;
  };
  const benchMove = moveOf(benchmark);
  return (s) => {
    const own = moveOf(s);
    if (own) return { shock: own, source: 'window' };
    return benchMove ? { shock: benchMove, source: 'benchmark' } : ZERO_SHOCK;
  };
}

export interface StressedAccount extends Revalued {
  account: StoredAccount;
  consequences: StressConsequences & { consolidationTriggers: Trigger[] };
}

export interface StressResult {
  asOf: string;
  accounts: StressedAccount[];
  total: { equity: Decimal; stressedEquity: Decimal; pnl: Decimal };
}

/**
 * Revalues every position of the accounts under the scenario, at today's last closes, and says
 * what the fleet's own rules would draw: limits breached and their action, the tier's floor broken,
 * the fork line lost, and consolidation triggers that would fire on the stressed value. Reads only.
 */
export async function stressTest(deps: StressDeps, accounts: StoredAccount[], scenario: StressScenario): Promise<StressResult> {
  const cd = deps.consolidation;
  const today = cd.clock.today();
  const now = cd.clock.now();
  const fresh = await Promise.all(accounts.map((a) => atJournalHead(cd.stores, a)));
  const symbols = [...new Set(fresh.flatMap((a) => a.head.positions.map((p) => p.symbol)))];
  const [prices, shockOf] = await Promise.all([cd.stores.prices.lastCloses(symbols, today), shocksFor(deps, scenario, symbols, today)]);
  const out: StressedAccount[] = [];
  // A page at a time: the inputs of consolidation and the series are read for the page together.
  for (let i = 0; i < fresh.length; i += PAGE_SIZE_MAX) {
    const page = fresh.slice(i, i + PAGE_SIZE_MAX);
    const inputs = await measurePage(cd, page, false);
    const series = await cd.snapshots.trailingMany(page.map((a) => a._id), today);
    for (const account of page) {
      const revalued = revalue(loadBalances(account.head), prices, shockOf);
      const rules = tierRules(deps.config, account.tier, account.config);
      const limits = effectiveLimits(deps.config.tiers[account.tier].lossLimits, account.config, deps.config.alerts);
      // Today's point of the value index (as a price load's limit check computes it), then the stressed move on top.
      const before = series.get(account._id)!.filter((p) => p.date < today).at(-1) ?? null;
      const point = indexStateOf(pointOf(account, before, prices, today, now));
      const consequences = stressConsequences({ now: point, limits, rules, equity: revalued.equity, stressedEquity: revalued.stressedEquity });
      out.push({ ...revalued, account, consequences: { ...consequences, consolidationTriggers: newTriggers(deps, inputs.get(account._id)!, revalued) } });
    }
  }
  const sum = (f: (a: StressedAccount) => Decimal) => out.reduce((s, a) => s.plus(f(a)), new Decimal(0));
  return { asOf: today, accounts: out, total: { equity: sum((a) => a.equity), stressedEquity: sum((a) => a.stressedEquity), pnl: sum((a) => a.pnl) } };
}

/** Consolidation triggers that fire on the stressed value (as a new day of its history) and do not fire now. */
function newTriggers(deps: StressDeps, inputs: AccountInputs, r: Revalued): Trigger[] {
  const move = stressReturn(r.equity, r.stressedEquity);
  const stressed = {
    ...inputs,
    equity: r.stressedEquity,
    dailyReturns: [...inputs.dailyReturns, move],
    equities: [...inputs.equities, r.stressedEquity],
    cashShares: [...inputs.cashShares, r.stressedEquity.isZero() ? 1 : inputs.cash.dividedBy(r.stressedEquity).toNumber()],
    drawdown: 1 - (1 - inputs.drawdown) * (1 + move),
  };
  const firing = (a: typeof inputs) => new Set(evaluateTriggers(a, deps.config.consolidation).filter((t) => t.fired).map((t) => t.trigger));
  const before = firing(inputs);
  return [...firing(stressed)].filter((t) => !before.has(t));
}

const cents = (d: Decimal) => formatUnits('cash', d);

/** A stress result as JSON: money as decimal strings to the cent, shocks as decimal strings. */
export function stressView(r: StressResult) {
  return {
    asOf: r.asOf,
    accounts: r.accounts.map((a) => ({
      accountId: a.account._id,
      type: a.account.tier,
      state: a.account.state,
      equity: cents(a.equity),
      stressedEquity: cents(a.stressedEquity),
      pnl: cents(a.pnl),
      positions: a.positions.map((p) => ({ symbol: p.symbol, quantity: p.quantity.toFixed(), value: cents(p.value), stressedValue: cents(p.stressedValue), pnl: cents(p.pnl), shock: p.shock.shock.toFixed(), shockSource: p.shock.source, ...(p.shock.beta !== undefined ? { beta: p.shock.beta } : {}) })),
      consequences: {
        limitsBreached: a.consequences.limitsBreached.map((b) => ({ ...b, toState: breachTarget(a.account.state, b.action) })),
        minCapital: cents(a.consequences.minCapital),
        minCapitalBroken: a.consequences.minCapitalBroken,
        forkLine: a.consequences.forkLine ? cents(a.consequences.forkLine) : null,
        forkEligibilityLost: a.consequences.forkEligibilityLost,
        consolidationTriggers: a.consequences.consolidationTriggers,
      },
    })),
    total: { equity: cents(r.total.equity), stressedEquity: cents(r.total.stressedEquity), pnl: cents(r.total.pnl) },
  };
}
