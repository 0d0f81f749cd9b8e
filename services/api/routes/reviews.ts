import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { jobId } from '../../../shared/contracts/jobs.js';
import { QUEUE } from '../../../shared/contracts/queues.js';
import { requestFork } from '../../../shared/ledger/fork-saga.js';
import { scopedKey } from '../../../shared/ledger/operation.js';
import { enqueueMerge, orderOf, requestMerges } from '../../../shared/ledger/consolidation.js';
import { REVIEW_STATES } from '../../../shared/db/review-repository.js';
import { mayRead, ownerScope, requireRole } from '../auth.js';
import { type ApiDeps, auditAction, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, reviewSchema } from '../schemas.js';

const reviewParams = z.strictObject({ id: z.string().regex(/^rev_[A-Za-z0-9_-]{1,200}$/) });

export const reviewRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse };
  const fk = deps.forking;
  type Review = NonNullable<Awaited<ReturnType<typeof fk.reviews.get>>>;
  const view = (x: Review) => {
    const { _id, ...rest } = x;
    const iso = (t: Date | null) => (t ? new Date(t).toISOString() : null);
    return { ...rest, id: _id, createdAt: new Date(x.createdAt).toISOString(), refreshedAt: iso(x.refreshedAt ?? null), decidedAt: iso(x.decidedAt) };
  };

  const decisionOf = async (review: Review): Promise<Record<string, unknown> | null> => {
    if (review.kind === 'merge') {
      const o = await deps.consolidation.opportunities.get(review.decisionId);
      return o && { id: o._id, confidence: o.confidence, action: o.action, fired: o.fired, strategy: o.strategy, targetId: o.targetId, sourceIds: o.sourceIds, amount: o.amount, urgency: o.urgency, assessment: o.assessment, inputs: o.inputs };
    }
    if (review.kind === 'reactivate') {
      const breach = await deps.stores.journal.byKey(scopedKey(review.accountId, review.decisionId));
      return breach && { id: review.decisionId, seq: breach.seq, kind: breach.kind, op: breach.op };
    }
    const d = await fk.decisions.get(review.decisionId);
    return d && { id: d._id, seq: d.seq, confidence: d.confidence, outcome: d.outcome, equity: d.equity, forkAmount: d.forkAmount, childTier: d.childTier, factors: d.factors, weights: d.weights, inputs: d.inputs };
  };

  r.get('/api/v1/reviews', { schema: { querystring: z.strictObject({ state: z.enum(REVIEW_STATES).optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }), response: { 200: z.object({ items: z.array(reviewSchema) }), ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const items = await fk.reviews.list({ state: req.query.state, ownerId: ownerScope(p) }, req.query.limit);
    return { items: items.map(view) };
  });

  // One review with what it asks a person to decide on: the fork decision's factors and inputs, the
  // merge opportunity's assessment, or the limit breach to reactivate from.
  r.get('/api/v1/reviews/:id', { schema: { params: reviewParams, response: { 200: reviewSchema, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const review = await fk.reviews.get(req.params.id);
    if (!review || !mayRead(p, review)) throw new ApiError(404, 'not_found', 'no such review');
    return { ...view(review), decision: await decisionOf(review) };
  });

  r.post(
    '/api/v1/reviews/:id/:decision',
    { schema: { params: reviewParams.extend({ decision: z.enum(['approve', 'reject']) }), body: z.strictObject({ note: z.string().max(500).optional() }).nullish(), response: { 200: reviewSchema, ...errors } } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'operator');
      const review = await fk.reviews.get(req.params.id);
      // A missing review and another owner's answer alike: review ids are predictable, so this says nothing.
      const account = review ? await deps.stores.accounts.get(review.accountId) : null;
      if (!review || !account || !mayRead(p, account)) throw new ApiError(404, 'not_found', 'no such review');
      const state = req.params.decision === 'approve' ? 'APPROVED' : 'REJECTED';
      // The same person deciding again the same way (a reply lost, or a crash before the follow-up job
      // was queued): the decision stands and its keyed follow-up is queued again, at most once in effect.
      const again = review.state === state && review.decidedBy === p.id;
      if (review.state !== 'PENDING' && !again) throw new ApiError(409, 'already_decided', `the review was already ${review.state.toLowerCase()}`);
      const decided = again ? review : (await fk.reviews.decide(review._id, state, p.id, req.body?.note ?? null, deps.clock.now()))!;
      if (decided.decidedBy !== p.id || decided.state !== state) throw new ApiError(409, 'already_decided', 'someone else decided this review first');
      if (!again) fk.onReview?.(review.kind, 'decided');
      await auditAction(deps, { chain: review.accountId, actor: p.id, action: `review-${req.params.decision}`, before: { reviewId: review._id, kind: review.kind, state: review.state }, after: { state, note: req.body?.note ?? null }, outcome: 'applied' });
      if (state === 'APPROVED' && review.kind === 'merge') {
        // The opportunity's proposal, on the accounts' current states; the saga re-checks every prerequisite.
        const opportunity = await deps.consolidation.opportunities.get(review.decisionId);
        const ids = opportunity ? await requestMerges(deps.consolidation, orderOf(opportunity, p.id)) : [];
        for (const id of ids) await enqueueMerge(deps.producer, { _id: id, scheduledFor: null }, deps.clock.now());
        if (opportunity) await deps.consolidation.opportunities.setOutcome(opportunity._id, { mergeIds: ids });
      } else if (state === 'APPROVED' && review.kind === 'reactivate') {
        // Back to trading from the state the breach set (the journal says which), keyed by the review.
        const breach = await deps.stores.journal.byKey(scopedKey(review.accountId, review.decisionId));
        const from = breach?.kind === 'state-change' ? breach.op.toState : undefined;
        if (from !== 'SAFE' && from !== 'SUSPENDED') throw new ApiError(409, 'invalid_state', `no limit breach ${review.decisionId} on the account to reactivate from`);
        const reason = `review ${review._id} approved${req.body?.note ? `: ${req.body.note}` : ''}`;
        await deps.producer.enqueue(QUEUE.accountOps, 'reactivate', { accountId: review.accountId, idempotencyKey: `reactivate-${review._id}`, actor: p.id, from, reason }, { jobId: jobId('reactivate', review._id) });
      } else if (state === 'APPROVED' && review.forkId) {
        const decision = await fk.decisions.model.findById(review.decisionId).lean();
        const parentSeq = decision!.seq;
        const mode = deps.config.fork.defaultMode;
        // Approval replaces the confidence threshold; the saga still checks eligibility, prerequisites and cooldown.
        await requestFork(fk, { parentId: review.accountId, parentSeq, mode, symbols: [], requestedBy: p.id, decisionId: review.decisionId });
        await deps.producer.enqueue(QUEUE.fork, 'execute', { forkId: review.forkId, accountId: review.accountId, parentSeq, mode, symbols: [], requestedBy: p.id, decisionId: review.decisionId }, { jobId: jobId('fork', review.accountId, parentSeq) });
      }
      return view(decided);
    },
  );
};
