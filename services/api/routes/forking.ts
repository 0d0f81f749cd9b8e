import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountId as accountIdSchema, symbol } from '../../../shared/contracts/fields.js';
import { jobId } from '../../../shared/contracts/jobs.js';
import { QUEUE } from '../../../shared/contracts/queues.js';
import { FORK_DONE, type StoredFork } from '../../../shared/db/fork-repository.js';
import { loadBalances } from '../../../shared/db/stored-balances.js';
import { FORK_MODES, forkEligibility } from '../../../shared/domain/fork.js';
import { TIER_NAMES, tierRules } from '../../../shared/domain/tiers.js';
import { valuate } from '../../../shared/domain/valuation.js';
import { assessFork } from '../../../shared/ledger/fork-assessment.js';
import { forkIdOf, forkPrerequisite, requestFork } from '../../../shared/ledger/fork-saga.js';
import { formatUnits } from '../../../shared/money/units.js';
import { type Principal, ownerScope, requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, auditAction, ownedAccountIds, principalOf, waitForEnd } from '../context.js';
import { ApiError } from '../errors.js';
import { decisionSchema, errorResponse, forkStatusSchema, forkViewSchema, opportunitiesSchema, waitQuery } from '../schemas.js';

const OPPORTUNITIES_MAX = 200;

export const forkView = (f: StoredFork) => ({
  id: f._id,
  parentId: f.parentId,
  childId: f.phase === 'COMPLETED' || f.phase === 'MOVED' || f.phase === 'POSTED' ? f.childId : null,
  state: f.phase,
  mode: f.mode,
  requestedAt: new Date(f.requestedAt).toISOString(),
  startedAt: f.startedAt ? new Date(f.startedAt).toISOString() : null,
  completedAt: f.completedAt ? new Date(f.completedAt).toISOString() : null,
  error: f.error,
});

/**
 * A decision as the caller may see it: its system-load factor and inputs count the forks of the
 * whole fleet, which only admins see; others get the factor's score without those figures.
 */
function forCaller<D extends { inputs?: unknown; factors: { systemLoad: { detail?: unknown } } }>(p: Principal, d: D): D {
  if (p.role === 'admin') return d;
  const { inFlight: _f, backlog: _b, ...inputs } = (d.inputs ?? {}) as Record<string, unknown>;
  return { ...d, inputs, factors: { ...d.factors, systemLoad: { ...d.factors.systemLoad, detail: {} } } };
}

export const forkingRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse };
  const fk = deps.forking;

  r.get('/api/v1/forking/opportunities', { schema: { querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(OPPORTUNITIES_MAX).default(50) }), response: { 200: opportunitiesSchema, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const items = [];
    for (const tier of TIER_NAMES) {
      const rules = tierRules(deps.config, tier);
      if (!rules.forkThreshold) continue;
      const query: Record<string, unknown> = { tier, state: 'ACTIVE', forkCandidate: true };
      if (p.role !== 'admin') query['ownerId'] = ownerScope(p);
      const candidates = await deps.stores.accounts.model.find(query).sort({ _id: 1 }).limit(req.query.limit).lean();
      for (const a of candidates) {
        // The projection finds candidates; the journal head decides.
        const head = loadBalances((await deps.stores.journal.head(a._id))!.after);
        const prices = await deps.stores.prices.lastCloses(head.positions.map((x) => x.symbol), deps.clock.today());
        const e = forkEligibility(tierRules(deps.config, tier, a.config), valuate(head, prices).equity);
        if (!e.eligible) continue;
        const d = await fk.decisions.latestFor(a._id);
        const annual = d?.factors.performance.detail['annualReturn'];
        items.push({
          accountId: a._id,
          type: tier,
          equity: formatUnits('cash', e.equity),
          forkAmount: formatUnits('cash', e.forkAmount),
          childType: e.childTier,
          highPerformer: typeof annual === 'number' ? annual > Number(deps.config.fork.highPerformerAnnualReturn) : null,
          latestDecision: d ? { id: d._id, at: new Date(d.at).toISOString(), seq: d.seq, confidence: d.confidence, outcome: d.outcome, factors: forCaller(p, d).factors } : null,
        });
      }
    }
    return { items: items.slice(0, req.query.limit) };
  });

  r.post('/api/v1/forking/assess', { schema: { body: z.strictObject({ accountId: accountIdSchema }), response: { 200: decisionSchema, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireAccess(p, await deps.stores.accounts.get(req.body.accountId), 'operate');
    const a = await assessFork(fk, req.body.accountId, 'assess');
    if (a.status === 'skipped') throw new ApiError(422, 'not_assessable', a.reason);
    return { ...forCaller(p, a.decision), id: a.decision._id };
  });

  r.post(
    '/api/v1/forking/execute',
    { schema: { body: z.strictObject({ accountId: accountIdSchema, mode: z.enum(FORK_MODES).optional(), symbols: z.array(symbol).max(50).optional() }), querystring: waitQuery, response: { 200: forkViewSchema, 201: forkViewSchema, 202: forkViewSchema, ...errors } } },
    async (req, reply) => {
      const p = principalOf(req);
      const account = await deps.stores.accounts.get(req.body.accountId);
      requireAccess(p, account, 'operate');
      const mode = req.body.mode ?? deps.config.fork.defaultMode;
      if (mode === 'partial' && !req.body.symbols?.length) throw new ApiError(400, 'validation_failed', 'partial forks name the positions to move in symbols');
      const head = await deps.stores.journal.head(account._id);
      const forkId = forkIdOf(account._id, head!.seq);
      // A second execute on the same head answers the fork it already started: never a second child.
      const existing = await fk.forks.get(forkId);
      if (existing) return reply.status(200).send(forkView(existing));
      const problem = await forkPrerequisite(fk, { _id: forkId, parentId: account._id, mode, symbols: req.body.symbols ?? [] });
      if (problem) throw new ApiError(problem.status, problem.code, problem.message);
      // The operator's approval stands in for the confidence threshold, not for eligibility or cooldown.
      const { fork, created } = await requestFork(fk, { parentId: account._id, parentSeq: head!.seq, mode, symbols: req.body.symbols ?? [], requestedBy: p.id, decisionId: null });
      if (!created) return reply.status(200).send(forkView(fork)); // a concurrent execute got there first
      await auditAction(deps, { chain: account._id, actor: p.id, action: 'fork-execute', before: { seq: head!.seq }, after: { forkId, mode }, outcome: 'requested' });
      await deps.producer.enqueue(QUEUE.fork, 'execute', { forkId, accountId: account._id, parentSeq: head!.seq, mode, symbols: req.body.symbols ?? [], requestedBy: p.id, decisionId: null }, { jobId: jobId('fork', account._id, head!.seq) });
      if (req.query.wait !== 'true') return reply.status(202).send({ ...forkView(fork), statusUrl: '/api/v1/forking/status' });
      const [current] = await waitForEnd(deps, async () => [(await fk.forks.get(forkId)) ?? fork], FORK_DONE);
      return reply.status(current!.phase === 'COMPLETED' ? 201 : current!.phase === 'REJECTED' || current!.phase === 'ROLLED_BACK' ? 422 : 202).send(forkView(current!));
    },
  );

  r.get('/api/v1/forking/status', { schema: { querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(200).default(20) }), response: { 200: forkStatusSchema, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    // Fleet-wide counts for admins; an owner sees the forks of their own accounts only.
    const own = await ownedAccountIds(deps, p);
    const [inFlight, recent] = await Promise.all([fk.forks.inFlight(own), fk.forks.recent(req.query.limit, own)]);
    return { inFlight, limit: deps.config.fork.maxInFlight, recent: recent.map(forkView) };
  });
};
