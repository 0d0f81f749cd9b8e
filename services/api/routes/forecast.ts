import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ForecastInputError } from '../../../shared/analytics/forecast.js';
import { accountId as accountIdSchema } from '../../../shared/contracts/fields.js';
import { accountForecast } from '../../../shared/ledger/forecast.js';
import { requireAccess } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse } from '../schemas.js';

/** A fixed default seed: the same question asked twice gets the same answer. */
const DEFAULT_SEED = 1;

const forecastQuery = z.strictObject({
  horizon: z.coerce.number().int().min(1).max(252).default(21),
  paths: z.coerce.number().int().min(100).max(20_000).default(2000),
  seed: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(DEFAULT_SEED),
});

export const forecastRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 422: errorResponse };

  /** The account's value `horizon` trading days ahead, by a seeded block bootstrap of its returns (docs/risk.md). */
  r.get('/api/v1/accounts/:id/forecast', { schema: { params: z.strictObject({ id: accountIdSchema }), querystring: forecastQuery, response: { 200: z.looseObject({}), ...errors } } }, async (req) => {
    const account = await deps.stores.accounts.get(req.params.id);
    requireAccess(principalOf(req), account, 'read');
    try {
      return await accountForecast({ snapshots: deps.performance.snapshots, config: deps.config }, account, req.query);
    } catch (err) {
      if (err instanceof ForecastInputError) throw new ApiError(422, err.code, err.message);
      throw err;
    }
  });
};
