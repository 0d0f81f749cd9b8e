import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountId as accountIdSchema } from '../../../shared/contracts/fields.js';
import { scenarioNamed, stressScenario } from '../../../shared/contracts/stress-scenario.js';
import type { StoredAccount } from '../../../shared/db/account-repository.js';
import { stressTest, stressView } from '../../../shared/ledger/stress.js';
import { walkSubtree } from '../../../shared/ledger/subtree.js';
import { mayRead, requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse } from '../schemas.js';

const SUBTREE_DEPTH_MAX = 6;

/** Which accounts (a list, or a subtree), and how prices move: a named scenario or one given inline. */
const stressBody = z
  .looseObject({
    accountIds: z.array(accountIdSchema).min(1).max(500).optional(),
    rootId: accountIdSchema.optional(),
    scenario: z.string().regex(/^[a-z0-9-]{1,64}$/).optional(),
  })
  .refine((b) => (b.accountIds === undefined) !== (b.rootId === undefined), { message: 'give exactly one of accountIds or rootId' });

export const riskRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 422: errorResponse };
  const risk = deps.config.risk;

  r.post('/api/v1/risk/stress', { schema: { body: stressBody, response: { 200: z.looseObject({ asOf: z.string(), total: z.looseObject({ pnl: z.string() }) }), ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const { accountIds, rootId, scenario: name, ...inline } = req.body;
    // A named scenario from config/, or exactly one of shocks, market or window in the body.
    const named = name === undefined ? null : scenarioNamed(risk.scenarios, name);
    if (name !== undefined && !named) throw new ApiError(422, 'unknown_scenario', `no scenario named ${name}; configured: ${Object.keys(risk.scenarios).join(', ')}`);
    const parsed = stressScenario.safeParse(named ?? inline);
    if (!parsed.success || (named && Object.keys(inline).length > 0)) {
      throw new ApiError(400, 'invalid_request', 'give a scenario name, or exactly one of shocks ({"ACME": "-0.25"}), market ("-0.30") or window ({"from", "to"})', parsed.success ? null : { issues: parsed.error.issues });
    }
    const accounts: StoredAccount[] = [];
    if (rootId) {
      const root = await deps.stores.accounts.get(rootId);
      requireAccess(p, root, 'read');
      const walk = await walkSubtree(deps.stores.accounts, root, { depthMax: SUBTREE_DEPTH_MAX, nodesMax: risk.stressAccountsMax + 1, keep: (a) => mayRead(p, a) });
      accounts.push(...walk.nodes.map((n) => n.account));
    } else {
      for (const id of new Set(accountIds)) {
        const account = await deps.stores.accounts.get(id);
        requireAccess(p, account, 'read');
        accounts.push(account);
      }
    }
    if (accounts.length > risk.stressAccountsMax) throw new ApiError(422, 'too_many_accounts', `a stress test revalues at most ${risk.stressAccountsMax} accounts`);
    const result = await stressTest({ consolidation: deps.consolidation, config: deps.config }, accounts, parsed.data);
    return { scenario: name ?? null, definition: parsed.data, ...stressView(result) };
  });
};
