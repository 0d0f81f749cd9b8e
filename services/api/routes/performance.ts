import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { contributions, correlationMatrix, valueWeightedReturns, welchTest, type MemberSeries } from '../../../shared/analytics/hierarchy.js';
import { PERIODS } from '../../../shared/analytics/periods.js';
import { accountId as accountIdSchema, isoDate } from '../../../shared/contracts/fields.js';
import { loadUnits } from '../../../shared/db/stored-units.js';
import { performanceReport } from '../../../shared/ledger/performance-report.js';
import { formatUnits } from '../../../shared/money/units.js';
import { jobId } from '../../../shared/contracts/jobs.js';
import { QUEUE } from '../../../shared/contracts/queues.js';
import { mayRead, ownerScope, requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { errorResponse } from '../schemas.js';

const SUBTREE_MAX = 50;
const loose = z.looseObject({});

export const performanceRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse };
  const perf = deps.performance;
  const report = (accountId: string, period: (typeof PERIODS)[number], attribution = true) =>
    performanceReport({ stores: deps.stores, snapshots: perf.snapshots, benchmarkSymbol: deps.config.fork.benchmarkSymbol }, accountId, period, { attribution });
  const memberSeries = async (accountId: string): Promise<MemberSeries> => ({
    accountId,
    points: (await perf.snapshots.series(accountId)).map((s) => ({ date: s.date, value: loadUnits('cash', s.equityCents).toNumber(), dailyReturn: s.dailyReturn })),
  });

  r.get('/api/v1/accounts/:id/performance', { schema: { params: z.strictObject({ id: accountIdSchema }), querystring: z.strictObject({ period: z.enum(PERIODS).default('inception') }), response: { 200: loose, ...errors } } }, async (req) => {
    requireAccess(principalOf(req), await deps.stores.accounts.get(req.params.id), 'read');
    return report(req.params.id, req.query.period);
  });

  r.get(
    '/api/v1/performance/snapshots',
    { schema: { querystring: z.strictObject({ accountId: accountIdSchema, from: isoDate.optional(), to: isoDate.optional() }), response: { 200: loose, ...errors } } },
    async (req) => {
      requireAccess(principalOf(req), await deps.stores.accounts.get(req.query.accountId), 'read');
      const points = await perf.snapshots.series(req.query.accountId, req.query.from, req.query.to);
      return {
        accountId: req.query.accountId,
        items: points.map((s) => ({
          date: s.date,
          equity: formatUnits('cash', loadUnits('cash', s.equityCents)),
          cash: formatUnits('cash', loadUnits('cash', s.cashCents)),
          positionsValue: formatUnits('cash', loadUnits('cash', s.positionsValueCents)),
          netFlow: formatUnits('cash', loadUnits('cash', s.netFlowCents)),
          dailyReturn: s.dailyReturn,
        })),
      };
    },
  );

  /** Runs a day's snapshot now (an operator's re-run, a late day); the points are keyed, so a re-run is a no-op. */
  r.post('/api/v1/performance/snapshots', { schema: { body: z.strictObject({ date: isoDate.optional() }).nullish(), response: { 202: loose, ...errors } } }, async (req, reply) => {
    requireRole(principalOf(req), 'admin');
    const date = req.body?.date ?? deps.clock.today();
    const id = jobId('snapshot-day', date, String(deps.clock.now().getTime()));
    await deps.producer.enqueue(QUEUE.snapshot, 'day', { date }, { jobId: id });
    return reply.status(202).send({ date, jobId: id });
  });

  r.get('/api/v1/performance/dashboard', { schema: { response: { 200: loose, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const accounts = await deps.stores.accounts.model.find(ownerScope(p) === undefined ? {} : { ownerId: ownerScope(p) }, { _id: 1, tier: 1, state: 1, equityCents: 1 }).lean<Array<{ _id: string; tier: string; state: string; equityCents: bigint }>>();
    const byTier: Record<string, number> = {};
    const byState: Record<string, number> = {};
    let equity = 0n;
    for (const a of accounts) {
      byTier[a.tier] = (byTier[a.tier] ?? 0) + 1;
      byState[a.state] = (byState[a.state] ?? 0) + 1;
      if (a.state !== 'CLOSED') equity += BigInt(a.equityCents);
    }
    const ids = new Set(accounts.map((a) => a._id));
    const latest = await perf.snapshots.model.findOne({}, { date: 1 }).sort({ date: -1 }).lean<{ date: string }>();
    const day = latest ? (await perf.snapshots.model.find({ date: latest.date, ...(p.role === 'admin' ? {} : { accountId: { $in: [...ids] } }) }).lean()).filter((s) => ids.has(s.accountId)) : [];
    const ranked = day.filter((s) => s.dailyReturn !== null).sort((a, b) => b.dailyReturn! - a.dailyReturn!);
    const prevTotal = ranked.reduce((s, x) => s + loadUnits('cash', x.equityCents).toNumber() / (1 + x.dailyReturn!), 0);
    const gain = ranked.reduce((s, x) => s + (loadUnits('cash', x.equityCents).toNumber() / (1 + x.dailyReturn!)) * x.dailyReturn!, 0);
    // Alerts of no account (a failed job, a stuck saga) name other owners' jobs: admins only.
    const alerts = await perf.alerts.list({ limit: 10, ...(p.role === 'admin' ? {} : { accountIds: [...ids] }) });
    return {
      accounts: { total: accounts.length, byTier, byState },
      equity: formatUnits('cash', loadUnits('cash', equity)),
      latestDay: latest ? { date: latest.date, snapshots: day.length, aggregateReturn: prevTotal > 0 ? gain / prevTotal : null } : null,
      topPerformers: ranked.slice(0, 5).map((s) => ({ accountId: s.accountId, dailyReturn: s.dailyReturn })),
      bottomPerformers: ranked.slice(-5).reverse().map((s) => ({ accountId: s.accountId, dailyReturn: s.dailyReturn })),
      recentAlerts: alerts.filter((a) => p.role === 'admin' || (a.accountId !== null && ids.has(a.accountId))).map((a) => ({ ...a, raisedAt: new Date(a.raisedAt).toISOString() })),
    };
  });

  r.post(
    '/api/v1/performance/compare',
    { schema: { body: z.strictObject({ accountIds: z.array(accountIdSchema).min(2).max(10), period: z.enum(PERIODS).default('inception') }), response: { 200: loose, ...errors } } },
    async (req) => {
      const p = principalOf(req);
      for (const id of req.body.accountIds) requireAccess(p, await deps.stores.accounts.get(id), 'read');
      const reports = await Promise.all(req.body.accountIds.map((id) => report(id, req.body.period, false)));
      const series = await Promise.all(req.body.accountIds.map(memberSeries));
      const returnsOf = (m: MemberSeries) => m.points.filter((x) => x.dailyReturn !== null && (!reports[0]!.from || x.date >= reports[0]!.from)).map((x) => x.dailyReturn!);
      const pairs = [];
      for (let i = 0; i < series.length; i++) {
        for (let j = i + 1; j < series.length; j++) {
          const test = welchTest(returnsOf(series[i]!), returnsOf(series[j]!));
          pairs.push({ a: series[i]!.accountId, b: series[j]!.accountId, welch: test, significantAt5pct: test ? test.pValue < 0.05 : null });
        }
      }
      return { period: req.body.period, accounts: reports, differences: pairs, correlation: correlationMatrix(series) };
    },
  );

  r.get('/api/v1/performance/hierarchy', { schema: { querystring: z.strictObject({ rootId: accountIdSchema }), response: { 200: loose, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireAccess(p, await deps.stores.accounts.get(req.query.rootId), 'read');
    const ids: string[] = [];
    for (let level = [req.query.rootId]; level.length > 0 && ids.length < SUBTREE_MAX; ) {
      ids.push(...level.slice(0, SUBTREE_MAX - ids.length));
      // A tree has one owner; a child of another (data from before that rule) is not walked into.
      level = (await Promise.all(level.map((id) => deps.stores.accounts.children(id, SUBTREE_MAX)))).flat().filter((a) => mayRead(p, a)).map((a) => a._id);
    }
    const members = await Promise.all(ids.map(memberSeries));
    const sub = valueWeightedReturns(members);
    const reports = await Promise.all(ids.map((id) => report(id, 'inception', false)));
    const ranking = reports
      .map((x) => ({ accountId: x.accountId, annualReturn: x.metrics.cagr, totalReturn: x.metrics.totalReturn }))
      .sort((a, b) => (b.annualReturn ?? -Infinity) - (a.annualReturn ?? -Infinity));
    const forkAbove = Number(deps.config.fork.highPerformerAnnualReturn);
    const consolidateBelow = Number(deps.config.consolidation.underperformanceAnnualReturn);
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    return {
      rootId: req.query.rootId,
      members: ids,
      subtree: { days: sub.length, totalReturn: sub.length ? sub.reduce((acc, d) => acc * (1 + d.r), 1) - 1 : null },
      contributions: contributions(members),
      correlation: correlationMatrix(members),
      ranking,
      recommendations: ranking.flatMap((x) =>
        x.annualReturn === null ? []
        : x.annualReturn > forkAbove ? [{ accountId: x.accountId, action: 'fork-candidate', reason: `annualised ${pct(x.annualReturn)}, above ${pct(forkAbove)}` }]
        : x.annualReturn < consolidateBelow ? [{ accountId: x.accountId, action: 'consolidation-candidate', reason: `annualised ${pct(x.annualReturn)}, below ${pct(consolidateBelow)}` }]
        : [],
      ),
    };
  });

  r.get('/api/v1/alerts', { schema: { querystring: z.strictObject({ accountId: accountIdSchema.optional(), rule: z.string().regex(/^[a-z0-9-]{1,64}$/).optional(), limit: z.coerce.number().int().min(1).max(500).default(100) }), response: { 200: loose, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    if (req.query.accountId) requireAccess(p, await deps.stores.accounts.get(req.query.accountId), 'read');
    else requireRole(p, 'admin'); // fleet-wide alerts are for admins; others ask per account
    const items = await perf.alerts.list({ limit: req.query.limit, ...(req.query.accountId ? { accountId: req.query.accountId } : {}), ...(req.query.rule ? { rule: req.query.rule } : {}) });
    return { items: items.map((a) => ({ ...a, raisedAt: new Date(a.raisedAt).toISOString() })) };
  });
};
