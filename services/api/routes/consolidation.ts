import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountId as accountIdSchema, cashAmount, isoDate, symbol } from '../../../shared/contracts/fields.js';
import type { StoredAccount } from '../../../shared/db/account-repository.js';
import { MERGE_DONE, type StoredMerge } from '../../../shared/db/merge-repository.js';
import type { StoredOpportunity } from '../../../shared/db/opportunity-repository.js';
import { loadUnits } from '../../../shared/db/stored-units.js';
import { formatUnits } from '../../../shared/money/units.js';
import { MERGE_STRATEGIES, type MergeStrategy } from '../../../shared/domain/merge.js';
import { Decimal } from '../../../shared/money/decimal.js';
import { assessAccount, assessmentView, enqueueMerge, requestMerges } from '../../../shared/ledger/consolidation.js';
import { mergePrerequisite } from '../../../shared/ledger/merge-saga.js';
import { ownerScope, requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, auditAction, ownedAccountIds, principalOf, waitForEnd } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, mergeViewSchema, waitQuery } from '../schemas.js';


export const mergeView = (m: StoredMerge) => ({
  id: m._id,
  groupId: m.groupId,
  sourceId: m.sourceId,
  targetId: m.targetId,
  strategy: m.strategy,
  state: m.phase,
  partial: m.partial ? { amount: m.partial.amountCents === null ? null : formatUnits('cash', loadUnits('cash', m.partial.amountCents)), symbols: m.partial.symbols } : null,
  lineage: m.lineage.map((l) => ({ symbol: l.symbol, quantity: formatUnits('quantity', loadUnits('quantity', l.quantityUnits)), costBasis: formatUnits('cash', loadUnits('cash', l.costBasisCents)), fromAccountId: l.fromAccountId })),
  requestedAt: new Date(m.requestedAt).toISOString(),
  scheduledFor: m.scheduledFor ? new Date(m.scheduledFor).toISOString() : null,
  startedAt: m.startedAt ? new Date(m.startedAt).toISOString() : null,
  completedAt: m.completedAt ? new Date(m.completedAt).toISOString() : null,
  error: m.error,
});

const opportunityView = (o: StoredOpportunity) => ({
  id: o._id,
  accountId: o.accountId,
  date: o.date,
  fired: o.fired,
  strategy: o.strategy,
  targetId: o.targetId,
  sourceIds: o.sourceIds,
  amount: o.amount,
  urgency: o.urgency,
  confidence: o.confidence,
  action: o.action,
  mergeIds: o.mergeIds,
  reviewId: o.reviewId,
  assessment: o.assessment,
  inputs: o.inputs,
});

const executeBody = z
  .strictObject({
    sourceId: accountIdSchema.optional(),
    sourceIds: z.array(accountIdSchema).min(1).max(50).optional(),
    targetId: accountIdSchema.optional(),
    strategy: z.enum(MERGE_STRATEGIES).optional(),
    amount: cashAmount.optional(),
    symbols: z.array(symbol).min(1).max(50).optional(),
    /** A scheduled merge: it runs as a delayed job at this time. */
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((b) => (b.sourceId === undefined) !== (b.sourceIds === undefined), { message: 'give exactly one of sourceId or sourceIds' })
  .refine((b) => !(b.amount && b.symbols), { message: 'a partial merge moves an amount or symbols, not both' });

export const consolidationRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse };
  const cd = deps.consolidation;

  r.get(
    '/api/v1/consolidation/opportunities',
    { schema: { querystring: z.strictObject({ date: isoDate.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }), response: { 200: z.object({ items: z.array(z.looseObject({ id: z.string() })) }), ...errors } } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'viewer');
      const items = await cd.opportunities.recent({ ownerId: ownerScope(p), date: req.query.date }, req.query.limit);
      return { items: items.map(opportunityView) };
    },
  );

  r.post(
    '/api/v1/consolidation/assess',
    {
      schema: {
        body: z.strictObject({ accountId: accountIdSchema.optional(), accountIds: z.array(accountIdSchema).min(1).max(50).optional() }).refine((b) => (b.accountId === undefined) !== (b.accountIds === undefined), { message: 'give exactly one of accountId or accountIds' }),
        response: { 200: z.object({ items: z.array(z.looseObject({ accountId: z.string() })) }), ...errors },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const items = [];
      for (const id of req.body.accountIds ?? [req.body.accountId!]) {
        const account = await deps.stores.accounts.get(id);
        requireAccess(p, account, 'read');
        // Asking is the manual trigger (SPEC §5.1, 5): the assessment shows what a merge would do.
        const { inputs, assessment } = await assessAccount(cd, account, true);
        items.push({ accountId: id, ...assessmentView(assessment, inputs) });
      }
      return { items };
    },
  );

  r.post(
    '/api/v1/consolidation/execute',
    { schema: { body: executeBody, querystring: waitQuery, response: { 200: mergeBatchSchema, 201: mergeBatchSchema, 202: mergeBatchSchema, ...errors } } },
    async (req, reply) => {
      const p = principalOf(req);
      const b = req.body;
      const sourceIds = [...new Set(b.sourceIds ?? [b.sourceId!])];
      const sources: StoredAccount[] = [];
      for (const id of sourceIds) {
        const a = await deps.stores.accounts.get(id);
        requireAccess(p, a, 'operate');
        sources.push(a);
      }
      if (b.targetId) requireAccess(p, await deps.stores.accounts.get(b.targetId), 'operate');
      const partial = b.amount !== undefined || b.symbols !== undefined;
      let strategy: MergeStrategy = b.strategy ?? (partial ? 'partial' : sources.length > 1 && !b.targetId ? 'new' : b.targetId && b.targetId === sources[0]!.parentId ? 'parent' : 'sibling');
      if (strategy === 'partial' && !partial) throw new ApiError(400, 'validation_failed', 'a partial merge names an amount or symbols');
      if (partial && strategy !== 'partial') throw new ApiError(400, 'validation_failed', 'amount and symbols belong to partial merges');
      if (strategy === 'new' && b.targetId) throw new ApiError(400, 'validation_failed', 'strategy new opens its own target; do not name one');
      if (strategy === 'partial' && sources.length > 1) throw new ApiError(400, 'validation_failed', 'a partial merge has one source');

      let targetId = b.targetId ?? null;
      if (strategy !== 'new' && !targetId) {
        if (strategy === 'parent' || strategy === 'partial') targetId = sources[0]!.parentId;
        else {
          const { assessment } = await assessAccount(cd, sources[0]!, true);
          targetId = assessment.proposal.strategy === 'sibling' ? assessment.proposal.targetId : null;
          if (assessment.proposal.strategy === 'parent' && b.strategy === undefined) {
            targetId = assessment.proposal.targetId;
            strategy = 'parent';
          }
        }
        if (!targetId) throw new ApiError(422, 'no_target', `no account can take this merge (strategy ${strategy}); name a targetId`);
        requireAccess(p, await deps.stores.accounts.get(targetId), 'operate');
      }
      for (const s of sources) {
        const problem = await mergePrerequisite(cd, { sourceId: s._id, targetId: targetId ?? s._id, newTarget: strategy === 'new' ? { tier: s.tier, name: '', ownerId: s.ownerId, parentId: null } : null });
        if (problem) throw new ApiError(problem.status, problem.code, `${s._id}: ${problem.message}`);
      }

      const scheduledFor = b.at ? new Date(b.at) : null;
      const ids = await requestMerges(cd, { sourceIds, targetId, strategy, amount: b.amount ? new Decimal(b.amount) : null, symbols: b.symbols ?? [], requestedBy: p.id, opportunityId: null, scheduledFor });
      let merges = await Promise.all(ids.map(async (id) => (await cd.merges.get(id))!));
      const fresh = merges.filter((m) => m.phase === 'REQUESTED' && m.requestedBy === p.id);
      if (fresh.length === 0) return reply.status(200).send({ merges: merges.map(mergeView) }); // a repeat on the same heads
      for (const m of merges) await enqueueMerge(deps.producer, m, deps.clock.now());
      for (const s of sources) await auditAction(deps, { chain: s._id, actor: p.id, action: 'consolidation-execute', before: null, after: { mergeIds: ids, strategy, targetId }, outcome: 'requested' });
      if (req.query.wait !== 'true' || scheduledFor) return reply.status(202).send({ merges: merges.map(mergeView), statusUrl: '/api/v1/consolidation/status' });
      merges = await waitForEnd(deps, () => Promise.all(ids.map(async (id) => (await cd.merges.get(id))!)), MERGE_DONE);
      const status = merges.every((m) => m.phase === 'COMPLETED') ? 201 : merges.every((m) => MERGE_DONE.includes(m.phase)) ? 422 : 202;
      return reply.status(status).send({ merges: merges.map(mergeView), statusUrl: '/api/v1/consolidation/status' });
    },
  );

  r.get(
    '/api/v1/consolidation/status',
    { schema: { querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(200).default(20), accountId: accountIdSchema.optional() }), response: { 200: z.object({ inFlight: z.number().int(), recent: z.array(mergeViewSchema) }), ...errors } } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'viewer');
      if (req.query.accountId) requireAccess(p, await deps.stores.accounts.get(req.query.accountId), 'read');
      // Fleet-wide counts for admins; an owner sees the merges of their own accounts only.
      const own = req.query.accountId ? [req.query.accountId] : await ownedAccountIds(deps, p);
      const [inFlight, recent] = await Promise.all([cd.merges.inFlight(own), cd.merges.recent(req.query.limit, { sourceIds: own })]);
      return { inFlight, recent: recent.map(mergeView) };
    },
  );
};

const mergeBatchSchema = z.object({ merges: z.array(mergeViewSchema), statusUrl: z.string().optional() });
