import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { entryView } from '../../../shared/ledger/views.js';
import { requireAccess } from '../auth.js';
import { planTransaction } from '../plans.js';
import { type ApiDeps, answer, principalOf } from '../context.js';
import { accountParams, accepted, entryView as entrySchema, errorResponse, journalQuery, transactionBody, waitQuery } from '../schemas.js';

export const transactionRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse };

  r.post(
    '/api/v1/accounts/:id/transactions',
    { schema: { params: accountParams, body: transactionBody, querystring: waitQuery, response: { 201: z.object({ operationId: z.string(), status: z.literal('applied'), transferId: z.string().optional(), entry: entrySchema.nullable() }), 202: accepted, ...errors } } },
    async (req, reply) => {
      const accountId = req.params.id;
      const plan = await planTransaction(principalOf(req), accountId, req.body, (id) => deps.stores.accounts.get(id));
      const submitted = await deps.operations.submit(plan, req.query.wait === 'true');
      await answer(reply, submitted, accountId, async (outcome) =>
        reply.status(201).send({ operationId: submitted.operationId, status: 'applied', entry: outcome.entry, ...(outcome.transferId ? { transferId: outcome.transferId } : {}) }),
      );
    },
  );

  r.get(
    '/api/v1/accounts/:id/transactions',
    { schema: { params: accountParams, querystring: journalQuery, response: { 200: z.object({ items: z.array(entrySchema), nextCursor: z.number().int().nullable() }), ...errors } } },
    async (req) => {
      requireAccess(principalOf(req), await deps.stores.accounts.get(req.params.id), 'read');
      const page = await deps.stores.journal.pageDesc(req.params.id, { beforeSeq: req.query.cursor, limit: req.query.limit });
      return { items: page.map(entryView), nextCursor: page.length === req.query.limit ? page[page.length - 1]!.seq : null };
    },
  );
};
