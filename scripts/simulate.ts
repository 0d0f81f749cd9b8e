/**
 * `npm start [-- --accounts N --days D --seed S --prices a.csv[,b.csv]]`: the main job (SPEC §10).
 * Starts the whole fleet as separate processes on a simulated clock, creates a population of Gen
 * accounts, replays a market day by day, and ends with a summary, an HTML report in `reports/` and,
 * as its last line, one JSON object. The servers come from `with-servers` (npm start wraps this).
 * SIM_PROFILE=1 prints where each 20 simulated days spent their wall time, by phase (SIM_PROFILE=N: every N days).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../config/load.js';
import { connectMongo } from '../shared/db/connection.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { FleetProcess, stopFleets } from './simulation/fleet-control.js';
import { csvMarket, syntheticMarket } from './simulation/market.js';
import { renderReport } from './simulation/report.js';
import { type DayProgress, OPERATOR_APPROVES, finalState, newRunId, simulate } from './simulation/run.js';

const argsSchema = z.strictObject({
  accounts: z.coerce.number().int().min(1).max(2000).default(24),
  days: z.coerce.number().int().min(1).max(2500).default(80),
  seed: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(42),
  prices: z.string().min(1).optional(),
  reports: z.string().min(1).default('reports'),
});

const err = (s: string) => process.stderr.write(`${s}\n`);

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { accounts: { type: 'string' }, days: { type: 'string' }, seed: { type: 'string' }, prices: { type: 'string' }, reports: { type: 'string' } }, strict: true });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) {
    err(`usage: npm start -- [--accounts N] [--days D] [--seed S] [--prices a.csv[,b.csv]]\n${parsed.error.issues.map((i) => `  --${i.path.join('.')}: ${i.message}`).join('\n')}`);
    return 2;
  }
  const args = parsed.data;
  const base = loadConfig();
  const runId = newRunId(args.seed);
  const market = args.prices ? csvMarket(args.prices.split(','), args.days) : syntheticMarket(args.seed, args.days, base.fork.benchmarkSymbol);
  const mongoUrl = new URL(base.mongodbUrl);
  mongoUrl.pathname = `/${runId.replace(/-/g, '_')}`;
  const adminKey = `sim-admin-${randomBytes(12).toString('hex')}`;
  const env = {
    MONGODB_URL: mongoUrl.toString(),
    FLEET_QUEUE_PREFIX: runId,
    FLEET__CLOCK__MODE: 'simulation',
    FLEET__FORK__BENCHMARK_SYMBOL: market.benchmark,
    ADMIN_API_KEY: adminKey,
    LOG_LEVEL: 'warn',
    // The reconciler walks every journal: in a run of minutes, verify at the end does its work.
    FLEET__SCHEDULES__RECONCILE_EVERY_SEC: '3600',
  };
  const config = loadConfig({ ...process.env, ...env });
  mkdirSync(args.reports, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const reportFile = join(args.reports, `simulation-seed${args.seed}-${stamp}.html`);
  const logFile = join(args.reports, `simulation-seed${args.seed}-${stamp}.fleet.log`);

  const logger = pino({ level: 'silent' });
  const mongo = await connectMongo(config.mongodbUrl, config.mongo, logger);
  const redis = await connectRedis(config, 'producer', 'simulator', logger);
  const producer = new Producer(redis, config);
  const stores = await openLedgerStores(mongo);
  err(`simulation ${runId}: ${args.accounts} accounts, ${args.days} days, seed ${args.seed}, ${args.prices ? `prices ${args.prices}` : 'synthetic market'}`);
  await stores.prices.upsert([...market.closes].flatMap(([symbol, closes]) => closes.map((close, i) => ({ symbol, date: market.sessions[i]!, close }))));

  // The clock is set before the fleet starts: every service reads it from its first moment.
  const { setSimulatedTime } = await import('../shared/runtime/clock.js');
  await setSimulatedTime(redis, runId, new Date(`${market.sessions[market.warmup]}T17:00:00Z`));
  err(`starting the fleet (log: ${logFile})`);
  const fleet = await FleetProcess.start(env, logFile);
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {value}/{total} days | {date} | GEN {gen} REV {rev} COM {com} | forks {forks} merges {merges} alerts {alerts} | {rate} ops/s',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(args.days, 0, { date: market.sessions[market.warmup], gen: args.accounts, rev: 0, com: 0, forks: 0, merges: 0, alerts: 0, rate: '0' });
  const onDay = (p: DayProgress) =>
    bar.update(p.index, { date: p.date, gen: p.tiers['GEN'], rev: p.tiers['REV'], com: p.tiers['COM'], forks: p.forks, merges: p.merges, alerts: p.alerts, rate: (p.operations / ((Date.now() - started) / 1000)).toFixed(1) });

  let code = 0;
  try {
    const setup = { seed: args.seed, accounts: args.accounts, market, config, queuePrefix: runId, producer, redis, mongo, stores, fleet, adminKey, onDay };
    const run = await simulate(setup);
    bar.stop();
    const lastDate = market.sessions[market.sessions.length - 1]!;
    const end = await finalState(setup, lastDate);
    const verify = end.verify.ok ? 'ok' : 'failed';
    const summary = { accounts: end.tiers, forks: end.counts.forks, merges: end.counts.merges, churn: end.churn.length, alerts: end.counts.alerts, alertsByRule: end.alertsByRule, reviews: end.reviews, verify };
    const html = await renderReport({
      title: 'Account fleet simulation',
      generatedAt: new Date().toISOString(),
      params: { accounts: args.accounts, days: args.days, seed: args.seed, market: args.prices ?? 'synthetic', from: market.sessions[market.warmup]!, to: lastDate, 'operator approves forks at': OPERATOR_APPROVES.fork, 'merges at': OPERATOR_APPROVES.merge },
      summary,
      days: run.days,
      tree: end.tree,
      performers: end.performers,
      alerts: end.alerts,
      events: run.events,
      opportunities: end.opportunities,
      churn: end.churn,
      risk: end.risk,
    });
    writeFileSync(reportFile, html);
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write('\n');
    console.table({
      'Gen-Acc': end.tiers['GEN'],
      'Rev-Acc': end.tiers['REV'],
      'Com-Acc': end.tiers['COM'],
      forks: summary.forks,
      merges: summary.merges,
      churn: summary.churn,
      alerts: summary.alerts,
      'client operations': run.operations,
      'simulated days': args.days,
      'wall time (s)': Number(seconds.toFixed(1)),
      verify: end.verify.ok ? 'ok' : `${end.verify.violations} violations`,
    });
    for (const p of end.verify.problems.slice(0, 10)) err(`verify: ${p}`);
    if (!end.verify.ok) code = 1;
    await stop(fleet, producer, redis, mongo);
    process.stdout.write(`${JSON.stringify({ ...summary, report: relative(process.cwd(), reportFile) })}\n`);
    return code;
  } catch (e) {
    bar.stop();
    await stop(fleet, producer, redis, mongo);
    throw e;
  }
}

async function stop(fleet: FleetProcess, producer: Producer, redis: { quit(): Promise<unknown> }, mongo: { close(): Promise<unknown> }) {
  await fleet.stop();
  await producer.close();
  await redis.quit().catch(() => undefined);
  await mongo.close().catch(() => undefined);
}

// A stop signal (Ctrl-C, kill, npm's forwarded SIGTERM) stops the fleet this run started before
// leaving: by default the simulator would die alone and its fleet, a child outside anyone's reach
// when the simulator runs on its own, would keep running. The run is abandoned, not finished. A
// second signal (a Ctrl-C arrives both from the terminal and through npm) changes nothing: dying
// then would break the pipe the fleet is logging into while it stops (fleet.stop kills it at 30 s).
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    err(`simulation: ${signal}; stopping the fleet`);
    void stopFleets().finally(() => process.exit(128 + (osConstants.signals[signal] ?? 1)));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(e instanceof ConfigError ? e.message : ((e as Error).stack ?? String(e)));
    process.exit(1);
  },
);
