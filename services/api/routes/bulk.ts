import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { BulkKind } from '../../../shared/db/bulk-batch-repository.js';
import { requireRole } from '../auth.js';
import { BULK_ITEMS_MAX, type BulkDeps, UnreadableItem, batchView, readableBatch, submitBatch, waitForBatch } from '../bulk.js';
import { principalOf } from '../context.js';
import { errorResponse, waitQuery } from '../schemas.js';

const NDJSON = 'application/x-ndjson';
/** A thousand items of a few hundred bytes each, with room; every other route keeps the API's small limit. */
const BULK_BODY_BYTES_MAX = 4 * 1024 * 1024;

const itemsBody = (what: string) =>
  z.strictObject({
    items: z
      .array(z.unknown())
      .min(1)
      .max(BULK_ITEMS_MAX)
      .describe(`1 to ${BULK_ITEMS_MAX} items, each ${what} with its own idempotencyKey; validated one by one, so a bad item is refused alone. Or send NDJSON (${NDJSON}), one item per line.`),
  });
const itemView = z.object({
  index: z.number().int(),
  status: z.enum(['queued', 'running', 'applied', 'refused']),
  id: z.string().optional(),
  accountId: z.string().optional(),
  operationId: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
const batchSchema = z.object({
  batchId: z.string(),
  kind: z.enum(['accounts', 'transactions', 'accounts-update']),
  statusUrl: z.string(),
  createdAt: z.string(),
  done: z.boolean(),
  counts: z.object({ total: z.number().int(), queued: z.number().int(), running: z.number().int(), applied: z.number().int(), refused: z.number().int() }),
  items: z.array(itemView),
});
const batchParams = z.strictObject({ batchId: z.string().regex(/^bat_[a-f0-9]{32}$/, 'a batch id') });

/** NDJSON: one item per line; a line that is not JSON becomes an item refused on its own. */
function itemsOfNdjson(text: string): { items: unknown[] } {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return {
    items: lines.map((line, n) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        return new UnreadableItem(`line ${n + 1} is not JSON`);
      }
    }),
  };
}

/**
 * Bulk work: many accounts opened, many transactions posted, many accounts administered in one
 * request, each item exactly as its single request (see ../bulk.ts for what a replay and a crash do).
 */
export const bulkRoutes = (deps: BulkDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 413: errorResponse, 415: errorResponse };
  r.addContentTypeParser(NDJSON, { parseAs: 'string', bodyLimit: BULK_BODY_BYTES_MAX }, (_req, body, done) => done(null, itemsOfNdjson(body as string)));

  const submitRoute = (url: string, kind: BulkKind, what: string) =>
    r.post(url, { bodyLimit: BULK_BODY_BYTES_MAX, schema: { body: itemsBody(what), querystring: waitQuery, response: { 200: batchSchema, 202: batchSchema, ...errors } } }, async (req, reply) => {
      const p = principalOf(req);
      requireRole(p, 'operator');
      const batch = await submitBatch(deps, p, kind, req.body.items);
      const view = req.query.wait === 'true' ? await waitForBatch(deps, batch) : await batchView(deps, batch);
      return reply.status(req.query.wait === 'true' && view.done ? 200 : 202).send(view);
    });

  submitRoute('/api/v1/bulk/accounts', 'accounts', 'a POST /api/v1/accounts body');
  submitRoute('/api/v1/bulk/transactions', 'transactions', 'a POST /api/v1/accounts/{id}/transactions body with its accountId');
  submitRoute('/api/v1/bulk/accounts/update', 'accounts-update', 'a PUT /api/v1/accounts/{id} body with its accountId');

  r.get('/api/v1/bulk/:batchId', { schema: { params: batchParams, response: { 200: batchSchema, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    return batchView(deps, await readableBatch(deps, p, req.params.batchId));
  });
};
