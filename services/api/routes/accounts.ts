import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mayRead, ownerScope, requireAccess, requireRole } from '../auth.js';
import { walkSubtree } from '../../../shared/ledger/subtree.js';
import { planOpenAccount, planStateChange, profilePatch } from '../plans.js';
import { type ApiDeps, answer, generatedKey, updateProfile, loadAccountView, loadAccountViewAfterWrite, principalOf, viewOf } from '../context.js';
import { accountParams, accountView, accepted, hierarchyView, createAccountBody, errorResponse, listAccountsQuery, updateAccountBody, waitQuery } from '../schemas.js';

const HIERARCHY_DEPTH_MAX = 6;
const HIERARCHY_NODES_MAX = 500;

export const accountRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse };

  r.get('/api/v1/accounts', { schema: { querystring: listAccountsQuery, response: { 200: z.object({ items: z.array(accountView), nextCursor: z.string().nullable() }), ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const q = req.query;
    const page = await deps.stores.accounts.list(
      { tier: q.type, state: q.state, parentId: q.parentId, ownerId: ownerScope(p) },
      { afterId: q.cursor, limit: q.limit },
    );
    const views = await Promise.all(page.map((a) => viewOf(deps, a)));
    return { items: views, nextCursor: page.length === q.limit ? page[page.length - 1]!._id : null };
  });

  r.post('/api/v1/accounts', { schema: { body: createAccountBody, querystring: waitQuery, response: { 201: accountView, 202: accepted, ...errors, 409: errorResponse, 422: errorResponse } } }, async (req, reply) => {
    const p = principalOf(req);
    const plan = await planOpenAccount(p, req.body, req.body.idempotencyKey ?? generatedKey(), (id) => deps.stores.accounts.get(id));
    const { accountId } = plan.data;
    const submitted = await deps.operations.submit(plan, req.query.wait === 'true');
    await answer(reply, submitted, accountId, async () => reply.status(201).send((await loadAccountViewAfterWrite(deps, accountId))!));
  });

  r.get('/api/v1/accounts/:id', { schema: { params: accountParams, response: { 200: accountView, ...errors } } }, async (req) => {
    const loaded = await loadAccountView(deps, req.params.id);
    requireAccess(principalOf(req), loaded?.account ?? null, 'read');
    return loaded!.view;
  });

  r.put('/api/v1/accounts/:id', { schema: { params: accountParams, body: updateAccountBody, querystring: waitQuery, response: { 200: accountView, 202: accepted, ...errors, 409: errorResponse, 422: errorResponse } } }, async (req, reply) => {
    const p = principalOf(req);
    const account = await deps.stores.accounts.get(req.params.id);
    requireAccess(p, account, 'operate');
    const b = req.body;
    const patch = profilePatch(b);
    if (patch) await updateProfile(deps, p, account, patch);
    if (b.state === undefined) return (await loadAccountViewAfterWrite(deps, account._id))!;
    const submitted = await deps.operations.submit(planStateChange(p, account, b.state, b.idempotencyKey ?? generatedKey(), b.reason), req.query.wait === 'true');
    await answer(reply, submitted, account._id, async () => reply.status(200).send((await loadAccountViewAfterWrite(deps, account._id))!));
  });

  r.delete('/api/v1/accounts/:id', { schema: { params: accountParams, querystring: waitQuery, response: { 200: accountView, 202: accepted, ...errors, 409: errorResponse, 422: errorResponse } } }, async (req, reply) => {
    const p = principalOf(req);
    const account = await deps.stores.accounts.get(req.params.id);
    requireAccess(p, account, 'operate');
    const submitted = await deps.operations.submit(planStateChange(p, account, 'CLOSED', generatedKey(), `closed by ${p.id}`), req.query.wait === 'true');
    await answer(reply, submitted, account._id, async () => reply.status(200).send((await loadAccountViewAfterWrite(deps, account._id))!));
  });

  r.get('/api/v1/accounts/:id/hierarchy', { schema: { params: accountParams, response: { 200: hierarchyView, ...errors } } }, async (req) => {
    const p = principalOf(req);
    const account = await deps.stores.accounts.get(req.params.id);
    requireAccess(p, account, 'read');
    const ancestors: Array<{ id: string; type: string; name: string }> = [];
    let parentId = account.parentId;
    for (let depth = 0; parentId && depth < HIERARCHY_DEPTH_MAX; depth++) {
      const parent = await deps.stores.accounts.get(parentId);
      if (!parent || !mayRead(p, parent)) break;
      ancestors.push({ id: parent._id, type: parent.tier, name: parent.name });
      parentId = parent.parentId;
    }
    // Breadth first, bounded in depth and size: a subtree as a flat list, each node naming its parent.
    const walk = await walkSubtree(deps.stores.accounts, account, { depthMax: HIERARCHY_DEPTH_MAX, nodesMax: HIERARCHY_NODES_MAX, keep: (c) => mayRead(p, c) });
    const nodes = walk.nodes.map(({ account: a, depth }) => ({ id: a._id, parentId: a.parentId, depth, type: a.tier, state: a.state, name: a.name }));
    return { ancestors, nodes, truncated: walk.truncated };
  });
};
