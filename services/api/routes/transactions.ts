import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { entryView } from '../../../shared/ledger/views.js';
import { requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, answer, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { Submitted } from '../operations.js';
import { accountParams, accepted, entryView as entrySchema, errorResponse, journalQuery, transactionBody, waitQuery, type TransactionBody } from '../schemas.js';

export const transactionRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse };

  r.post(
    '/api/v1/accounts/:id/transactions',
    { schema: { params: accountParams, body: transactionBody, querystring: waitQuery, response: { 201: z.object({ operationId: z.string(), status: z.literal('applied'), transferId: z.string().optional(), entry: entrySchema.nullable() }), 202: accepted, ...errors } } },
    async (req, reply) => {
      const p = principalOf(req);
      const accountId = req.params.id;
      const source = await deps.stores.accounts.get(accountId);
      requireAccess(p, source, 'operate');
      const b = req.body;
      // Dividends and fees come from the platform, not from the account's operator.
      if (b.kind === 'dividend' || b.kind === 'fee') requireRole(p, 'admin');
      if (b.kind === 'transfer') {
        const destination = await deps.stores.accounts.get(b.toAccountId);
        requireAccess(p, destination, 'operate');
        // Money stays with its owner: each side's journal would otherwise name the other owner's account.
        if (destination.ownerId !== source.ownerId) throw new ApiError(422, 'owner_mismatch', 'a transfer moves money between accounts of one owner');
      }
      const submitted = await submit(deps, accountId, p.id, b, req.query.wait === 'true');
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

function submit(deps: ApiDeps, accountId: string, actor: string, b: TransactionBody, wait: boolean): Promise<Submitted> {
  const base = { accountId, idempotencyKey: b.idempotencyKey, actor };
  switch (b.kind) {
    case 'deposit':
      return deps.operations.submit('deposit', { ...base, amount: b.amount }, wait);
    case 'withdrawal':
      return deps.operations.submit('withdrawal', { ...base, amount: b.amount, close: b.close }, wait);
    case 'transfer':
      return deps.operations.submit('transfer', { ...base, amount: b.amount, toAccountId: b.toAccountId }, wait);
    case 'trade':
      return deps.operations.submit('trade', { ...base, side: b.side, symbol: b.symbol, quantity: b.quantity, price: b.price, fees: b.fees ?? '0.00' }, wait);
    case 'dividend':
      return deps.operations.submit('dividend', { ...base, amount: b.amount, symbol: b.symbol }, wait);
    case 'fee':
      return deps.operations.submit('fee', { ...base, amount: b.amount, reason: b.reason }, wait);
  }
}
