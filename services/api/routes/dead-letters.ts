import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QUEUE_NAMES } from '../../../shared/contracts/queues.js';
import { DEAD_LETTER_STATES } from '../../../shared/db/dead-letter-repository.js';
import { type DeadLetterActionDeps, DeadLetterError, deadLetterDetail, deadLetterView, discardDeadLetter, replayDeadLetter } from '../../../shared/ledger/dead-letter-actions.js';
import { requireRole } from '../auth.js';
import { principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, when, whenAsDate } from '../schemas.js';

const idParams = z.strictObject({ id: z.string().regex(/^[a-f0-9]{32}$/, 'a dead letter id: 32 hex digits') });
const cursorPattern = /^(\d{1,15})\.([a-f0-9]{32})$/;
const listQuery = z.strictObject({
  queue: z.enum(QUEUE_NAMES).optional(),
  name: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'a job name').optional(),
  /** Failed at or after: a day or an instant. */
  since: when.optional(),
  state: z.enum(DEAD_LETTER_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().regex(cursorPattern, 'a cursor from a previous page').optional(),
});
const letterView = z.object({
  id: z.string(),
  queue: z.string(),
  jobId: z.string(),
  name: z.string(),
  failedReason: z.enum(['invalid', 'permanent', 'exhausted', 'stalled']),
  reason: z.string(),
  attemptsMade: z.number().int(),
  failedAt: z.string(),
  recordedAt: z.string(),
  state: z.enum(DEAD_LETTER_STATES),
  stateAt: z.string().nullable(),
  stateBy: z.string().nullable(),
  discardReason: z.string().nullable(),
  replayCount: z.number().int(),
  url: z.string(),
});
const letterDetail = letterView.extend({ data: z.unknown().describe('the payload, or null when it was not kept whole'), dataJson: z.string() });

/** A refusal of the shared actions, as the API's error. */
async function asApi<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof DeadLetterError) throw new ApiError(err.status, err.code, err.message);
    throw err;
  }
}

/**
 * Jobs that failed for good, for admins: listed and read, replayed under their original job id, or
 * discarded with a reason. Replays and discards are recorded in the `dead-letters` audit chain.
 */
export const deadLetterRoutes = (deps: { deadLetters: DeadLetterActionDeps }): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse, 503: errorResponse };
  const letters = deps.deadLetters.letters;

  r.get('/api/v1/dead-letters', { schema: { querystring: listQuery, response: { 200: z.object({ items: z.array(letterView), nextCursor: z.string().nullable() }), ...errors } } }, async (req) => {
    requireRole(principalOf(req), 'admin');
    const q = req.query;
    const c = q.cursor ? cursorPattern.exec(q.cursor) : null;
    const page = await letters.list({ queue: q.queue, name: q.name, since: q.since ? whenAsDate(q.since) : undefined, state: q.state }, { after: c ? { recordedAt: new Date(Number(c[1])), id: c[2]! } : undefined, limit: q.limit });
    const last = page.at(-1);
    return { items: page.map(deadLetterView), nextCursor: last && page.length === q.limit ? `${new Date(last.recordedAt).getTime()}.${last.id}` : null };
  });

  r.get('/api/v1/dead-letters/:id', { schema: { params: idParams, response: { 200: letterDetail, ...errors } } }, async (req) => {
    requireRole(principalOf(req), 'admin');
    const letter = await letters.get(req.params.id);
    if (!letter) throw new ApiError(404, 'not_found', 'no such dead letter');
    return deadLetterDetail(letter);
  });

  r.post(
    '/api/v1/dead-letters/:id/replay',
    { schema: { params: idParams, response: { 200: z.object({ id: z.string(), outcome: z.enum(['requeued', 'already_succeeded', 'already_queued']), state: z.enum(DEAD_LETTER_STATES), letter: letterView }), ...errors } } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'admin');
      const { letter, outcome } = await asApi(() => replayDeadLetter(deps.deadLetters, req.params.id, p.id));
      return { id: letter.id, outcome, state: letter.state, letter: deadLetterView(letter) };
    },
  );

  r.delete('/api/v1/dead-letters/:id', { schema: { params: idParams, body: z.strictObject({ reason: z.string().trim().min(1).max(500) }), response: { 200: letterView, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'admin');
    return deadLetterView(await asApi(() => discardDeadLetter(deps.deadLetters, req.params.id, p.id, req.body.reason)));
  });
};
