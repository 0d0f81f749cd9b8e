import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { jobId } from '../../../shared/contracts/jobs.js';
import { QUEUE } from '../../../shared/contracts/queues.js';
import { Decimal } from '../../../shared/money/decimal.js';
import { requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, operationParams, operationStatus, pricesBody } from '../schemas.js';

const LIMIT_CHECK_SYMBOLS_MAX = 1000;

export const adminRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse };

  r.post('/api/v1/prices', { schema: { body: pricesBody, response: { 200: z.object({ received: z.number().int(), written: z.number().int() }), ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'admin');
    const list = Array.isArray(req.body) ? req.body : [req.body];
    const written = await deps.stores.prices.upsert(list.map((x) => ({ symbol: x.symbol, date: x.date, close: new Decimal(x.close) })));
    await deps.stores.audit.append(
      { chain: 'system', ref: `prices:${randomUUID()}`, actor: p.id, action: 'load-prices', jobId: null, before: null, after: { received: list.length, written }, outcome: 'applied' },
      deps.clock.now(),
    );
    // Loss limits act on the new closes within seconds, not at the next snapshot (one check per load).
    const symbols = [...new Set(list.map((x) => x.symbol))];
    for (let i = 0; i < symbols.length; i += LIMIT_CHECK_SYMBOLS_MAX) {
      await deps.producer.enqueue(QUEUE.snapshot, 'limits', { symbols: symbols.slice(i, i + LIMIT_CHECK_SYMBOLS_MAX) }, { jobId: jobId('limits', randomUUID()) });
    }
    return { received: list.length, written };
  });

  r.get(
    '/api/v1/audit/verify',
    { schema: { response: { 200: z.object({ ok: z.boolean(), records: z.number().int(), chains: z.number().int(), breaks: z.array(z.object({ chain: z.string(), seq: z.number().int(), problem: z.string() })) }), ...errors } } },
    async (req) => {
      requireRole(principalOf(req), 'admin');
      const report = await deps.stores.audit.verify();
      return { ok: report.breaks.length === 0, ...report };
    },
  );

  r.get('/api/v1/operations/:operationId', { schema: { params: operationParams, response: { 200: operationStatus, ...errors } } }, async (req) => {
    const p = principalOf(req);
    const accountId = req.params.operationId.split('.')[1]!;
    requireAccess(p, await deps.stores.accounts.get(accountId), 'read');
    const status = await deps.operations.status(req.params.operationId);
    if (!status) throw new ApiError(404, 'not_found', 'no such operation');
    return status;
  });
};
