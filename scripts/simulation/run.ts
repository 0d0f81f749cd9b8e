import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { ReviewRepository } from '../../shared/db/review-repository.js';
import type { RedisClient } from '../../shared/queue/connection.js';
import type { Config } from '../../config/schema.js';
import { jobId } from '../../shared/contracts/jobs.js';
import { QUEUE, type QueueName } from '../../shared/contracts/queues.js';
import { projectionsSettled } from '../../shared/ledger/projection-backlog.js';
import type { StoredAccount } from '../../shared/db/account-repository.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import { loadUnits } from '../../shared/db/stored-units.js';
import { TIER_NAMES, tierRules } from '../../shared/domain/tiers.js';
import { valuate } from '../../shared/domain/valuation.js';
import { returnMetrics } from '../../shared/analytics/metrics.js';
import { type LedgerStores } from '../../shared/ledger/stores.js';
import { verifyLedger } from '../../shared/ledger/verify.js';
import { Decimal } from '../../shared/money/decimal.js';
import type { Producer } from '../../shared/queue/producer.js';
import { SIMULATION_POLL_MS, setSimulatedTime } from '../../shared/runtime/clock.js';
import { type FleetProcess, promoteDelayed, waitIdle } from './fleet-control.js';
import type { Market } from './market.js';
import { Rng } from './random.js';
import type { ReportData } from './report.js';
import { riskOf } from './risk.js';
import { type Holding, type Order, contribution, dividendsFor, isDividendSession, isFirstSessionOfMonth, startingCapitals, tradesFor } from './strategy.js';

export interface SimulationSetup {
  seed: number;
  accounts: number;
  market: Market;
  config: Config;
  queuePrefix: string;
  producer: Producer;
  redis: RedisClient;
  mongo: Connection;
  stores: LedgerStores;
  fleet: FleetProcess;
  adminKey: string;
  onDay: (progress: DayProgress) => void;
}

export interface DayProgress {
  index: number;
  total: number;
  date: string;
  tiers: Record<string, number>;
  forks: number;
  merges: number;
  alerts: number;
  operations: number;
}

/**
 * The simulated operator: approves reviews at or above these confidences, rejects the rest, and
 * rejects a consolidation with no account to merge into (a person would have to pick one).
 */
export const OPERATOR_APPROVES = { fork: 0.6, merge: 0.35 } as const;
const SIMULATED_TIME_OF_DAY = 'T17:00:00Z'; // mid-session in New York: the timing factor is neutral-good
const ACCOUNT_PAGE = 500;

/** A stream per (seed, day, account): one account's draws never shift another's. */
const rngFor = (seed: number, ...parts: Array<string | number>) => new Rng(seed, ...parts);

export const simAccountId = (i: number) => `acc-sim-${String(i + 1).padStart(3, '0')}`;

async function allAccounts(stores: LedgerStores): Promise<StoredAccount[]> {
  const out: StoredAccount[] = [];
  for (let after: string | undefined; ; ) {
    const page = await stores.accounts.list({}, { afterId: after, limit: ACCOUNT_PAGE });
    out.push(...page);
    if (page.length < ACCOUNT_PAGE) return out;
    after = page[page.length - 1]!._id;
  }
}

async function counts(s: SimulationSetup) {
  const [forks, merges, alerts] = await Promise.all([
    s.mongo.collection('forks').countDocuments({ phase: 'COMPLETED' }),
    s.mongo.collection('merges').countDocuments({ phase: 'COMPLETED' }),
    s.mongo.collection('alerts').countDocuments({}),
  ]);
  return { forks, merges, alerts };
}

/** A child merged back into its parent within this many days of its fork is churn: the fork was undone. */
const CHURN_DAYS = 60;

/**
 * Forks undone: completed whole merges of a fork's child into that fork's parent within 60 days of
 * the fork, each with what fired (and how urgent) in the opportunity behind it.
 */
async function churnOf(s: SimulationSetup): Promise<ReportData['churn']> {
  const forks = await s.mongo.collection('forks').find({ phase: 'COMPLETED' }, { projection: { childId: 1, parentId: 1, completedAt: 1 } }).toArray();
  const byChild = new Map(forks.map((f) => [f['childId'] as string, f]));
  const merges = await s.mongo.collection('merges').find({ phase: 'COMPLETED', strategy: { $ne: 'partial' } }, { projection: { sourceId: 1, targetId: 1, completedAt: 1, opportunityId: 1 } }).toArray();
  const out: ReportData['churn'] = [];
  for (const m of merges) {
    const f = byChild.get(m['sourceId'] as string);
    if (!f || f['parentId'] !== m['targetId']) continue;
    const days = (new Date(m['completedAt'] as Date).getTime() - new Date(f['completedAt'] as Date).getTime()) / 86_400_000;
    if (days > CHURN_DAYS) continue;
    const o = m['opportunityId'] ? await s.mongo.collection('consolidation_opportunities').findOne({ _id: m['opportunityId'] as never }, { projection: { fired: 1, urgency: 1 } }) : null;
    out.push({ childId: m['sourceId'] as string, parentId: m['targetId'] as string, days: Math.round(days), fired: (o?.['fired'] as string[] | undefined) ?? ['manual'], urgency: (o?.['urgency'] as string | undefined) ?? 'manual' });
  }
  return out;
}

const countBy = <T>(items: T[], key: (x: T) => string): Record<string, number> =>
  items.reduce<Record<string, number>>((acc, x) => ((acc[key(x)] = (acc[key(x)] ?? 0) + 1), acc), {});

function tiersOf(accounts: StoredAccount[]): Record<string, number> {
  const t: Record<string, number> = Object.fromEntries(TIER_NAMES.map((n) => [n, 0]));
  for (const a of accounts) if (a.state !== 'CLOSED') t[a.tier] = (t[a.tier] ?? 0) + 1;
  return t;
}

/** A client's order as its account-ops job, keyed so that a re-run of the day adds nothing. */
function orderJob(o: Order, key: string) {
  const base = { accountId: o.accountId, idempotencyKey: key, actor: 'simulator' };
  const opts = { jobId: jobId('sim', o.accountId, key) };
  if (o.kind === 'deposit') return { name: 'deposit' as const, data: { ...base, amount: o.amount.toFixed(2) }, opts };
  if (o.kind === 'dividend') return { name: 'dividend' as const, data: { ...base, symbol: o.symbol, amount: o.amount.toFixed(2) }, opts };
  return { name: 'trade' as const, data: { ...base, side: o.kind, symbol: o.symbol, quantity: o.quantity.toFixed(8), price: o.price.toFixed(6) }, opts };
}

/** Jobs one addBulk carries at most. */
const ENQUEUE_BATCH = 500;

/** Acts as the operator on the reviews waiting, through the API like a person would. */
async function operate(s: SimulationSetup): Promise<number> {
  const api = `http://127.0.0.1:${s.fleet.apiPort}/api/v1`;
  const headers = { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' };
  const res = await fetch(`${api}/reviews?state=PENDING&limit=200`, { headers });
  if (!res.ok) throw new Error(`reviews: HTTP ${res.status}`);
  const { items } = (await res.json()) as { items: Array<{ id: string; kind: 'fork' | 'merge'; decisionId: string }> };
  let acted = 0;
  for (const r of [...items].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const source = r.kind === 'fork' ? 'decisions' : 'consolidation_opportunities';
    const doc = await s.mongo.collection(source).findOne({ _id: r.decisionId as never }, { projection: { confidence: 1, targetId: 1, strategy: 1 } });
    const actionable = r.kind === 'fork' || doc?.['targetId'] || doc?.['strategy'] === 'new';
    const approve = !!actionable && ((doc?.['confidence'] as number | undefined) ?? 0) >= OPERATOR_APPROVES[r.kind];
    const decided = await fetch(`${api}/reviews/${r.id}/${approve ? 'approve' : 'reject'}`, { method: 'POST', headers, body: JSON.stringify({ note: 'simulated operator' }) });
    if (decided.ok) acted++;
  }
  return acted;
}

/**
 * Creates the population, then replays the market day by day. Each day: the simulated clock moves;
 * clients trade, contribute and receive dividends; fork decisions are made while the fork queue is
 * paused (so each decision sees the same fleet load whatever the timing) and then carried out;
 * the day is snapshotted; the consolidation scan runs; the operator decides reviews; on Mondays the
 * scheduled reinvestment runs. The fleet does the rest on its own.
 */
export async function simulate(s: SimulationSetup): Promise<{ days: ReportData['days']; events: ReportData['events']; operations: number }> {
  const { market, producer } = s;
  // The day's steps read projections: idle means the queues are quiet and every projection is written.
  const idle = (paused: QueueName[] = []) => waitIdle(producer, undefined, paused, () => projectionsSettled(s.redis, s.queuePrefix));
  const days: ReportData['days'] = [];
  const symbols = [...market.closes.keys()].filter((x) => x !== market.benchmark);
  const tradable = symbols.length > 0 ? symbols : [market.benchmark];
  const closesAt = (i: number) => new Map([...market.closes].map(([sym, series]) => [sym, series[i]!]));
  const first = market.warmup;
  let operations = 0;

  // The population: Gen accounts with a spread of capital; every third opts into reinvestment.
  const capitals = startingCapitals(new Rng(s.seed), s.accounts);
  const strategies = ['proportional', 'strategic', 'dynamic'] as const;
  await setSimulatedTime(s.redis, s.queuePrefix, new Date(`${market.sessions[first]}${SIMULATED_TIME_OF_DAY}`));
  await new Promise((r) => setTimeout(r, 3 * SIMULATION_POLL_MS));
  const opens = [];
  for (const [i, capital] of capitals.entries()) {
    const id = simAccountId(i);
    const config =
      i % 3 === 0
        ? {
            reinvestment: { enabled: true, strategy: strategies[(i / 3) % 3]!, universe: tradable.slice(0, 3) },
            targetAllocation: tradable.slice(0, 4).map((symbol) => ({ symbol, weight: '0.18' })),
            cashBuffer: '0.05',
          }
        : {};
    // Each client owns its own hierarchy: merges stay within a client's accounts.
    opens.push({ name: 'open-account' as const, data: { accountId: id, idempotencyKey: `open-${id}`, actor: 'simulator', tier: 'GEN', name: `Client ${i + 1}`, ownerId: `client-${String(i + 1).padStart(3, '0')}`, parentId: null, config, initialDeposit: capital.toFixed(2) }, opts: { jobId: jobId('sim', 'open', id) } });
    operations++;
  }
  for (let j = 0; j < opens.length; j += ENQUEUE_BATCH) await producer.enqueueBulk(QUEUE.accountOps, opens.slice(j, j + ENQUEUE_BATCH));
  await idle();

  const initial = new Map(capitals.map((c, i) => [simAccountId(i), c]));
  const phase: Record<string, number> = {};
  let t0 = Date.now();
  const mark = (name: string) => { phase[name] = (phase[name] ?? 0) + Date.now() - t0; t0 = Date.now(); };
  const forkQueue = producer.queue(QUEUE.fork);
  // SIM_PROFILE=1 reports every 20 days; a larger number is the interval in days.
  const profileEvery = process.env['SIM_PROFILE'] ? (Number(process.env['SIM_PROFILE']) > 1 ? Number(process.env['SIM_PROFILE']) : 20) : 0;
  for (let i = first; i < market.sessions.length; i++) {
    const date = market.sessions[i]!;
    await setSimulatedTime(s.redis, s.queuePrefix, new Date(`${date}${SIMULATED_TIME_OF_DAY}`));
    await new Promise((r) => setTimeout(r, 3 * SIMULATION_POLL_MS));
    await promoteDelayed(forkQueue, 'execute');
    await promoteDelayed(producer.queue(QUEUE.merge), 'execute');
    mark('clock');

    // Clients act on yesterday's books at today's closes.
    await forkQueue.pause();
    const closes = closesAt(i);
    const accounts = (await allAccounts(s.stores)).filter((a) => a.state === 'ACTIVE');
    let n = 0;
    const jobs: Array<ReturnType<typeof orderJob>> = [];
    for (const a of accounts) {
      const b = loadBalances(a.head);
      const rules = tierRules(s.config, a.tier, a.config);
      // Clients keep each holding within the next tier's share too, so a fork's child can take its part.
      const next = rules.nextTier ? tierRules(s.config, rules.nextTier) : rules;
      const h: Holding = { accountId: a._id, available: b.cash.minus(b.reserved), equity: valuate(b, closes).equity, positions: b.positions, maxPositions: rules.maxPositions, maxShare: Decimal.min(rules.maxCapitalPerPosition, next.maxCapitalPerPosition) };
      const orders = tradesFor(rngFor(s.seed, date, a._id), h, closes, tradable);
      if (isFirstSessionOfMonth(market.sessions, i) && initial.has(a._id)) orders.push(contribution(a._id, initial.get(a._id)!));
      if (isDividendSession(market.sessions, i)) orders.push(...dividendsFor(h, closes));
      for (const o of orders) jobs.push(orderJob(o, `sim-${date}-${n++}`));
    }
    for (let j = 0; j < jobs.length; j += ENQUEUE_BATCH) await producer.enqueueBulk(QUEUE.accountOps, jobs.slice(j, j + ENQUEUE_BATCH));
    operations += n;
    // The periodic scans catch accounts that prices alone lifted over the line.
    for (const tier of ['GEN', 'REV'] as const) await producer.enqueue(QUEUE.thresholdScan, 'scan', { tier }, { jobId: jobId('sim-scan', tier, date) });
    mark('orders');
    await waitIdle(producer, undefined, [QUEUE.fork]);
    mark('orders-idle');
    await idle([QUEUE.fork]);
    mark('projections');
    await forkQueue.resume();
    await idle();
    mark('forks');

    await producer.enqueue(QUEUE.snapshot, 'day', { date }, { jobId: jobId('sim-snapshot', date) });
    await idle();
    mark('snapshot');
    await forkQueue.pause();
    await producer.enqueue(QUEUE.consolidationScan, 'scan', { date }, { jobId: jobId('sim-consolidation', date) });
    await idle([QUEUE.fork]);
    mark('consolidation');
    await operate(s);
    await idle([QUEUE.fork]);
    mark('operator');
    await forkQueue.resume();
    if (new Date(`${date}T00:00:00Z`).getUTCDay() === 1) await producer.enqueue(QUEUE.accountOps, 'reinvest-scan', { date }, { jobId: jobId('sim-reinvest', date) });
    await idle();

    mark('reinvest');
    const all = await allAccounts(s.stores);
    const equity = await s.mongo.collection('snapshots').find({ date }, { projection: { equityCents: 1 } }).toArray();
    const c = await counts(s);
    const tiers = tiersOf(all);
    days.push({ date, equity: equity.reduce((sum, x) => sum.plus(loadUnits('cash', BigInt(x['equityCents'] as bigint))), new Decimal(0)).toNumber(), GEN: tiers['GEN']!, REV: tiers['REV']!, COM: tiers['COM']!, ...c });
    mark('stats');
    if (profileEvery > 0 && (i - first + 1) % profileEvery === 0) {
      process.stderr.write(`\nphases (ms, last ${profileEvery} days): ${JSON.stringify(phase)}\n`);
      for (const k of Object.keys(phase)) phase[k] = 0;
    }
    s.onDay({ index: i - first + 1, total: market.sessions.length - first, date, tiers, ...c, operations });
  }
  return { days, events: await eventsOf(s), operations };
}

async function eventsOf(s: SimulationSetup): Promise<ReportData['events']> {
  const forks = await s.mongo.collection('forks').find({ phase: { $in: ['COMPLETED', 'ROLLED_BACK'] } }).toArray();
  const merges = await s.mongo.collection('merges').find({ phase: { $in: ['COMPLETED', 'ROLLED_BACK'] } }).toArray();
  const day = (d: unknown) => (d ? new Date(d as Date).toISOString().slice(0, 10) : '');
  return [
    ...forks.map((f) => ({ date: day(f['completedAt']), kind: f['phase'] === 'COMPLETED' ? 'fork' : 'fork rolled back', detail: `${f['parentId']} → ${f['childId']} (${f['mode']})` })),
    ...merges.map((m) => ({ date: day(m['completedAt']), kind: m['phase'] === 'COMPLETED' ? `merge (${m['strategy']})` : 'merge rolled back', detail: `${m['sourceId']} → ${m['targetId']}` })),
  ].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.detail < b.detail ? -1 : 1));
}

/** The end of the run: every account's measures, the tree, the alerts, and `verify` over the final state. */
export async function finalState(s: SimulationSetup, lastDate: string) {
  const accounts = await allAccounts(s.stores);
  const closes = await s.stores.prices.lastCloses([...s.market.closes.keys()], lastDate);
  const equityOf = (a: StoredAccount) => valuate(loadBalances(a.head), closes).equity;
  const performers: ReportData['performers'] = [];
  for (const a of accounts) {
    const points = await s.mongo.collection('snapshots').find({ accountId: a._id }, { projection: { date: 1, equityCents: 1, dailyReturn: 1 } }).toArray();
    points.sort((x, y) => (x['date'] < y['date'] ? -1 : 1));
    const r = points.map((p) => p['dailyReturn'] as number | null).filter((x): x is number => x !== null);
    let v = 1;
    const index = [1, ...r.map((x) => (v *= 1 + x))];
    const m = r.length >= 5 ? returnMetrics(r, index) : null;
    performers.push({ accountId: a._id, tier: a.tier, state: a.state, equity: equityOf(a).toFixed(2), totalReturn: m?.totalReturn ?? null, cagr: m?.cagr ?? null, volatility: m?.annualVolatility ?? null, sharpe: m?.sharpe ?? null, maxDrawdown: m?.maxDrawdown ?? null });
  }
  performers.sort((a, b) => (b.totalReturn ?? -Infinity) - (a.totalReturn ?? -Infinity) || (a.accountId < b.accountId ? -1 : 1));
  const tree = accounts.map((a) => ({ id: a._id, parentId: a.parentId, tier: a.tier, state: a.state, equity: equityOf(a).toFixed(2), mergedInto: a.mergedInto, name: a.name }));
  const alerts = (await s.mongo.collection('alerts').find({}).sort({ raisedAt: 1 }).limit(500).toArray()).map((a) => ({
    raisedAt: new Date(a['raisedAt'] as Date).toISOString(),
    rule: String(a['rule']),
    severity: String(a['severity']),
    accountId: (a['accountId'] as string | null) ?? null,
    period: String(a['period']),
    message: String(a['message']),
  }));
  const verify = await verifyLedger(s.stores, { idle: true });
  const allAlerts = await s.mongo.collection('alerts').find({}, { projection: { rule: 1 } }).toArray();
  const alertsByRule = countBy(allAlerts, (a) => String(a['rule']));
  const reviews = await new ReviewRepository(s.mongo).countsByState();
  return { tiers: tiersOf(accounts), performers, tree, alerts, verify, counts: await counts(s), opportunities: await opportunitiesOf(s), churn: await churnOf(s), alertsByRule, reviews, risk: await riskOf(s, accounts, lastDate) };
}

/** What the daily consolidation scans found, by trigger: how often, what was done, how confident. */
async function opportunitiesOf(s: SimulationSetup): Promise<ReportData['opportunities']> {
  const rows = await s.mongo.collection('consolidation_opportunities').find({}, { projection: { fired: 1, action: 1, confidence: 1, strategy: 1 } }).toArray();
  const by = new Map<string, { trigger: string; found: number; executed: number; reviewed: number; confidences: number[] }>();
  for (const o of rows) {
    for (const t of o['fired'] as string[]) {
      const e = by.get(t) ?? { trigger: t, found: 0, executed: 0, reviewed: 0, confidences: [] };
      e.found++;
      if (o['action'] === 'execute') e.executed++;
      else e.reviewed++;
      e.confidences.push(o['confidence'] as number);
      by.set(t, e);
    }
  }
  return [...by.values()].sort((a, b) => b.found - a.found).map((e) => {
    const c = e.confidences.sort((a, b) => a - b);
    return { trigger: e.trigger, found: e.found, executed: e.executed, reviewed: e.reviewed, medianConfidence: c[Math.floor(c.length / 2)]!, maxConfidence: c[c.length - 1]! };
  });
}

export const newRunId = (seed: number) => `sim-${seed}-${randomBytes(3).toString('hex')}`;
