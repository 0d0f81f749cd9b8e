/**
 * `npm run cli -- forecast --values <csv>`: the API's GET /api/v1/accounts/{id}/forecast on a
 * `date,value` series, without a database. The series has no flows, so its returns are simply
 * value_t / value_{t−1} − 1 and its drawdown is from its own highest value.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { FORECAST_LOOKBACK, ForecastInputError, forecast } from '../shared/analytics/forecast.js';
import { type Point, returnsFrom } from '../shared/analytics/metrics.js';
import { Decimal } from '../shared/money/decimal.js';
import { parseDecimal } from '../shared/money/parse.js';
import { formatUnits } from '../shared/money/units.js';

export const FORECAST_USAGE = `  npm run cli -- forecast --values <date,value csv> [--horizon 21] [--paths 2000] [--seed 1] [--fork-line <amount>] [--min-capital <amount>] [--drawdown-limit 0.20]`;

const decimalArg = (name: string) =>
  z.string().transform((s, ctx) => {
    try {
      return parseDecimal(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `--${name} must be a plain decimal such as 115000.00` });
      return z.NEVER;
    }
  });

/** The API's bounds and defaults. */
const argsSchema = z.strictObject({
  values: z.string({ error: 'required: a date,value CSV' }),
  horizon: z.coerce.number().int().min(1).max(252).default(21),
  paths: z.coerce.number().int().min(100).max(20_000).default(2000),
  seed: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(1),
  'fork-line': decimalArg('fork-line').optional(),
  'min-capital': decimalArg('min-capital').optional(),
  'drawdown-limit': z.coerce.number().min(0).max(1).optional(),
});
export type ForecastArgs = z.infer<typeof argsSchema>;

/** The forecast of a series of values, in the API's shape (no account: `accountId` is null). */
export function seriesForecast(series: Point[], args: Omit<ForecastArgs, 'values'>) {
  const last = series.at(-1);
  const startValue = last?.value ?? new Decimal(0);
  const peak = series.reduce((m, p) => Decimal.max(m, p.value), startValue);
  const forkLine = args['fork-line'] ?? null;
  const minCapital = args['min-capital'] ?? null;
  const drawdownLimit = args['drawdown-limit'] ?? null;
  const f = forecast({
    returns: returnsFrom(series).slice(-FORECAST_LOOKBACK),
    startValue,
    horizon: args.horizon,
    paths: args.paths,
    seed: args.seed,
    startDate: last?.date ?? '',
    forkLine,
    minCapital,
    drawdownLimit,
    // The values are the index: now is 1, the peak its highest value over now.
    index: { current: 1, peak: startValue.isZero() ? 1 : peak.dividedBy(startValue).toNumber() },
  });
  return {
    accountId: null,
    asOf: last!.date,
    horizon: args.horizon,
    paths: args.paths,
    startValue: formatUnits('cash', startValue),
    quantiles: f.quantiles,
    probabilities: f.probabilities,
    forkLine: forkLine === null ? null : formatUnits('cash', forkLine),
    minCapital: minCapital === null ? null : formatUnits('cash', minCapital),
    drawdownLimit: drawdownLimit === null ? null : String(drawdownLimit),
    expectedForkDate: f.expectedForkDate,
    method: f.method,
  };
}

/**
 * Answers the exit code; writes the JSON answer to stdout, a refusal to stderr (2: bad flags, 1: a
 * series too short). `readSeries` is the `metrics` command's CSV reader.
 */
export function forecastCommand(argv: string[], readSeries: (text: string, name: string) => Point[]): number {
  let args: ForecastArgs;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { values: { type: 'string' }, horizon: { type: 'string' }, paths: { type: 'string' }, seed: { type: 'string' }, 'fork-line': { type: 'string' }, 'min-capital': { type: 'string' }, 'drawdown-limit': { type: 'string' } },
    });
    const parsed = argsSchema.safeParse(values);
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.length ? `--${i.path.join('.')}: ` : ''}${i.message}`).join('; '));
    args = parsed.data;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage:\n${FORECAST_USAGE}\n`);
    return 2;
  }
  try {
    process.stdout.write(`${JSON.stringify(seriesForecast(readSeries(readFileSync(args.values, 'utf8'), args.values), args))}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ForecastInputError)) throw err;
    process.stderr.write(`${err.code}: ${err.message}\n`);
    return 1;
  }
}
