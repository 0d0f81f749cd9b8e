import { ForecastInputError } from '../../shared/analytics/forecast.js';
import { scenarioNamed } from '../../shared/contracts/stress-scenario.js';
import type { StoredAccount } from '../../shared/db/account-repository.js';
import { LIMIT_RULES } from '../../shared/domain/loss-limits.js';
import { openConsolidationDeps } from '../../shared/ledger/consolidation.js';
import { accountForecast } from '../../shared/ledger/forecast.js';
import { stressTest, stressView } from '../../shared/ledger/stress.js';
import type { Clock } from '../../shared/runtime/clock.js';
import type { ReportData } from './report.js';
import type { SimulationSetup } from './run.js';

const FAN_ACCOUNTS = 5;
const FAN_HORIZON = 21;
const FAN_PATHS = 2000;
const WORST_SHOWN = 10;
const BREACHES_SHOWN = 200;

/**
 * The report's risk section at the end of a run: the fleet under the configured crash scenario
 * (the same stress test as the API's), the forecast fan of the five largest accounts, and every
 * loss-limit breach with what it did (an alert only, or the state change the journal holds).
 */
export async function riskOf(s: SimulationSetup, accounts: StoredAccount[], lastDate: string): Promise<ReportData['risk']> {
  const name = s.config.risk.reportScenario;
  const scenario = scenarioNamed(s.config.risk.scenarios, name);
  if (!scenario) throw new Error(`risk.reportScenario names ${name}, which is not among risk.scenarios (${Object.keys(s.config.risk.scenarios).join(', ')})`);
  // As of the run's last session, after its close.
  const clock: Clock = { now: () => new Date(`${lastDate}T21:00:00Z`), today: () => lastDate };
  const consolidation = await openConsolidationDeps(s.mongo, s.stores, s.config, clock);
  const open = accounts.filter((a) => a.state !== 'CLOSED');
  const result = await stressTest({ consolidation, config: s.config }, open, scenario);
  const stress = stressView(result);
  // Ranked on the Decimals, shown as the view's strings (the same order: one row per account).
  const ranked = (cmp: (a: (typeof result.accounts)[number], b: (typeof result.accounts)[number]) => number) =>
    result.accounts.map((a, i) => ({ a, row: stress.accounts[i]! })).sort((x, y) => cmp(x.a, y.a));
  const worst = ranked((a, b) => a.pnl.cmp(b.pnl)).slice(0, WORST_SHOWN).map((x) => x.row);
  const largest = ranked((a, b) => b.equity.cmp(a.equity)).slice(0, FAN_ACCOUNTS).map((x) => x.a.account);

  const fans: NonNullable<ReportData['risk']>['fans'] = [];
  for (const account of largest) {
    try {
      const f = await accountForecast({ snapshots: consolidation.snapshots, config: s.config }, account, { horizon: FAN_HORIZON, paths: FAN_PATHS, seed: s.seed, fan: true });
      fans.push({ accountId: account._id, tier: account.tier, start: f.startValue, asOf: f.asOf, quantiles: f.quantiles, reachForkLine: f.probabilities.reachForkLine, breachMinCapital: f.probabilities.breachMinCapital, days: f.fan ?? [] });
    } catch (err) {
      if (!(err instanceof ForecastInputError)) throw err;
    }
  }

  // Each limit breach raised one alert; the ones that act changed the state once, under the key limit-<rule>-<period>.
  const limitAlerts = await s.mongo.collection('alerts').find({ rule: { $in: [...LIMIT_RULES] } }).sort({ raisedAt: 1 }).limit(BREACHES_SHOWN).toArray();
  const changes = await s.stores.journal.model.find({ actor: 'risk-limits', kind: 'state-change' }, { _id: 0, accountId: 1, idempotencyKey: 1, after: 1 }).lean<Array<{ accountId: string; idempotencyKey: string; after: { state: string } }>>();
  const breaches = limitAlerts.map((a) => {
    const key = `limit-${String(a['rule'])}-${String(a['period'])}`;
    const change = changes.find((c) => c.accountId === a['accountId'] && c.idempotencyKey.endsWith(key));
    return { raisedAt: new Date(a['raisedAt'] as Date).toISOString(), accountId: String(a['accountId'] ?? ''), rule: String(a['rule']), period: String(a['period']), did: change ? `state → ${change.after.state}` : 'alert only' };
  });
  return { scenario: name, definition: scenario, total: stress.total, counts: countsOf(stress.accounts), worst, fans, breaches };
}

function countsOf(rows: ReturnType<typeof stressView>['accounts']) {
  return {
    accounts: rows.length,
    limitsBreached: rows.filter((r) => r.consequences.limitsBreached.length > 0).length,
    outOfTrading: rows.filter((r) => r.consequences.limitsBreached.some((b) => b.toState !== null)).length,
    minCapitalBroken: rows.filter((r) => r.consequences.minCapitalBroken).length,
    forkEligibilityLost: rows.filter((r) => r.consequences.forkEligibilityLost).length,
    consolidationTriggers: rows.filter((r) => r.consequences.consolidationTriggers.length > 0).length,
  };
}
