import type { Config } from '../../config/schema.js';
import { FORECAST_LOOKBACK, forecast } from '../analytics/forecast.js';
import type { StoredAccount } from '../db/account-repository.js';
import type { SnapshotRepository, StoredSnapshot } from '../db/snapshot-repository.js';
import { loadUnits } from '../db/stored-units.js';
import { effectiveLimits } from '../domain/loss-limits.js';
import { tierRules } from '../domain/tiers.js';
import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';

export interface ForecastDeps {
  snapshots: SnapshotRepository;
  config: Pick<Config, 'tiers' | 'alerts'>;
}

export interface ForecastOptions {
  horizon: number;
  paths: number;
  seed: number;
  /** Each day's quantiles too (the report's fan chart). */
  fan?: boolean;
}

/** The value index after the last point and its high-water mark; chained from the returns on points written before the index was kept. */
function indexNow(points: StoredSnapshot[]): { current: number; peak: number } {
  const last = points.at(-1);
  if (last?.index !== undefined && last.indexPeak !== undefined) return { current: last.index, peak: last.indexPeak };
  let current = 1;
  let peak = 1;
  for (const p of points.slice(1)) {
    current *= 1 + (p.dailyReturn ?? 0);
    peak = Math.max(peak, current);
  }
  return { current, peak };
}

/**
 * An account's value forecast from its daily points: the last year of flow-adjusted returns, the last
 * point's equity as the start (its date is `asOf`, so the value, the returns and the drawdown are of
 * the same day), its tier's fork line and minimum capital, and the drawdown limit the loss rules
 * apply to it. Refused with ForecastInputError when the history is too short.
 */
export async function accountForecast(deps: ForecastDeps, account: StoredAccount, opts: ForecastOptions) {
  const points = await deps.snapshots.series(account._id);
  const last = points.at(-1);
  const returns = points.flatMap((p) => (p.dailyReturn === null ? [] : [p.dailyReturn])).slice(-FORECAST_LOOKBACK);
  const startValue = last ? loadUnits('cash', last.equityCents) : new Decimal(0);
  const rules = tierRules(deps.config, account.tier, account.config);
  const drawdownLimit = effectiveLimits(deps.config.tiers[account.tier].lossLimits, account.config, deps.config.alerts).drawdown.max;
  const f = forecast({
    returns,
    startValue,
    ...opts,
    startDate: last?.date ?? '',
    forkLine: rules.forkLine,
    minCapital: rules.minCapital,
    drawdownLimit: Number(drawdownLimit),
    index: indexNow(points),
  });
  return {
    accountId: account._id,
    // forecast() refused an account without points.
    asOf: last!.date,
    horizon: opts.horizon,
    paths: opts.paths,
    startValue: formatUnits('cash', startValue),
    quantiles: f.quantiles,
    probabilities: f.probabilities,
    forkLine: rules.forkLine === null ? null : formatUnits('cash', rules.forkLine),
    minCapital: formatUnits('cash', rules.minCapital),
    drawdownLimit,
    expectedForkDate: f.expectedForkDate,
    method: f.method,
    ...(f.fan ? { fan: f.fan } : {}),
  };
}
