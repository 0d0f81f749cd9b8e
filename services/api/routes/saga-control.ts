import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { jobId } from '../../../shared/contracts/jobs.js';
import { QUEUE } from '../../../shared/contracts/queues.js';
import { FORK_DONE } from '../../../shared/db/fork-repository.js';
import { MERGE_DONE } from '../../../shared/db/merge-repository.js';
import { abortFork } from '../../../shared/ledger/fork-saga.js';
import { abortMerge } from '../../../shared/ledger/merge-saga.js';
import { mayRead, requireRole } from '../auth.js';
import { type ApiDeps, auditAction, principalOf, waitForEnd } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, forkViewSchema, mergeViewSchema, waitQuery } from '../schemas.js';
import { forkView } from './forking.js';
import { mergeView } from './consolidation.js';

/** One saga kind as the control routes see it: its record, view, account, jobs and abort. */
interface SagaKind<T extends { _id: string; phase: string }> {
  name: 'fork' | 'merge';
  path: string;
  idPattern: RegExp;
  get: (id: string) => Promise<T | null>;
  accountOf: (s: T) => string;
  view: (s: T) => unknown;
  done: readonly string[];
  enqueueResume: (s: T, by: string) => Promise<void>;
  abort: (s: T, reason: { code: string; message: string }) => Promise<{ committed: boolean; saga: T }>;
}

/**
 * The explicit way out of a stuck saga. Resume lets it go on from its journal (forward only). Abort
 * rolls it back, and is refused (409) once anything was credited (the saga's `in` entry exists): from
 * then on the only way is forward. Both are in the account's audit chain.
 */
function sagaControl<T extends { _id: string; phase: string }>(deps: ApiDeps, kind: SagaKind<T>, schema: z.ZodType): FastifyPluginAsyncZod {
  return async (r) => {
    const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse };
    const params = z.strictObject({ id: z.string().regex(kind.idPattern) });
    const load = async (id: string, p: ReturnType<typeof principalOf>) => {
      requireRole(p, 'operator');
      const saga = await kind.get(id);
      // A missing saga and another owner's answer alike (saga ids follow from account ids and seqs).
      const account = saga ? await deps.stores.accounts.get(kind.accountOf(saga)) : null;
      if (!saga || !account || !mayRead(p, account)) throw new ApiError(404, 'not_found', `no such ${kind.name}`);
      return saga;
    };

    r.post(`${kind.path}/:id/resume`, { schema: { params, querystring: waitQuery, response: { 200: schema, 202: schema, ...errors } } }, async (req, reply) => {
      const p = principalOf(req);
      const saga = await load(req.params.id, p);
      await auditAction(deps, { chain: kind.accountOf(saga), actor: p.id, action: `${kind.name}-resume`, before: { id: saga._id, phase: saga.phase }, after: null, outcome: kind.done.includes(saga.phase) ? 'already-ended' : 'requested' });
      if (kind.done.includes(saga.phase)) return reply.status(200).send(kind.view(saga));
      await kind.enqueueResume(saga, p.id);
      if (req.query.wait !== 'true') return reply.status(202).send(kind.view(saga));
      const [now] = await waitForEnd(deps, async () => [(await kind.get(saga._id))!], kind.done);
      return reply.status(kind.done.includes(now!.phase) ? 200 : 202).send(kind.view(now!));
    });

    r.post(`${kind.path}/:id/abort`, { schema: { params, body: z.strictObject({ reason: z.string().min(1).max(500).optional() }).nullish(), response: { 200: schema, ...errors } } }, async (req) => {
      const p = principalOf(req);
      const saga = await load(req.params.id, p);
      const reason = { code: 'aborted', message: req.body?.reason ?? `aborted by ${p.id}` };
      if (saga.phase === 'COMPLETED') throw new ApiError(409, 'saga_committed', `${kind.name} ${saga._id} completed; nothing to abort`);
      const result = kind.done.includes(saga.phase) ? { committed: false, saga } : await kind.abort(saga, reason);
      await auditAction(deps, { chain: kind.accountOf(saga), actor: p.id, action: `${kind.name}-abort`, before: { id: saga._id, phase: saga.phase }, after: { phase: result.saga.phase }, outcome: result.committed ? 'refused:saga_committed' : 'applied' });
      if (result.committed) {
        throw new ApiError(409, 'saga_committed', `${kind.name} ${saga._id} has already credited its destination: it can only go forward; resume it`);
      }
      return kind.view(result.saga);
    });
  };
}

export const sagaControlRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const fk = deps.forking;
  const cd = deps.consolidation;
  await r.register(
    sagaControl(deps, {
      name: 'fork',
      path: '/api/v1/forking',
      idPattern: /^fork_[A-Za-z0-9_-]{1,160}$/,
      get: (id) => fk.forks.get(id),
      accountOf: (f) => f.parentId,
      view: forkView,
      done: FORK_DONE,
      enqueueResume: async (f, by) => {
        await deps.producer.enqueue(QUEUE.fork, 'resume', { forkId: f._id, requestedBy: by }, { jobId: jobId('fork-resume', f._id.replace(/[^A-Za-z0-9_-]/g, '-'), deps.clock.now().getTime()) });
      },
      abort: async (f, reason) => {
        const r = await abortFork(fk, f, reason, null);
        return { committed: r.committed, saga: r.fork };
      },
    }, forkViewSchema),
  );
  await r.register(
    sagaControl(deps, {
      name: 'merge',
      path: '/api/v1/consolidation',
      idPattern: /^merge_[A-Za-z0-9_-]{1,160}$/,
      get: (id) => cd.merges.get(id),
      accountOf: (m) => m.sourceId,
      view: mergeView,
      done: MERGE_DONE,
      enqueueResume: async (m, by) => {
        await deps.producer.enqueue(QUEUE.merge, 'resume', { mergeId: m._id, requestedBy: by }, { jobId: jobId('merge-resume', m._id.replace(/[^A-Za-z0-9_-]/g, '-'), deps.clock.now().getTime()) });
      },
      abort: async (m, reason) => {
        const r = await abortMerge(cd, m, reason, null);
        return { committed: r.committed, saga: r.merge };
      },
    }, mergeViewSchema),
  );
};
