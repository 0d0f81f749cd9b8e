import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { id } from '../../../shared/contracts/fields.js';
import { KeyError, createKey, listKeys, revokeKey, rotateKey } from '../../../shared/auth/key-lifecycle.js';
import { requireRole } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { apiKeyBody, apiKeyView, apiKeyWithSecret, errorResponse, keyIdParams } from '../schemas.js';

/** Key lifecycle (admin only): create, list, revoke, rotate. Secrets are answered once, never listed. */
export const keyRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 422: errorResponse };
  const ka = deps.keyAdmin;
  const asApiError = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      if (err instanceof KeyError) throw new ApiError(err.status, err.code, err.message);
      throw err;
    }
  };

  r.post('/api/v1/keys', { schema: { body: apiKeyBody, response: { 201: apiKeyWithSecret, ...errors } } }, async (req, reply) => {
    const p = principalOf(req);
    requireRole(p, 'admin');
    const b = req.body;
    const made = await asApiError(() => createKey(ka, { role: b.role, ownerId: b.ownerId ?? null, expiresAt: b.expiresAt ? new Date(b.expiresAt) : null, label: b.label ?? null }, p.id));
    return reply.status(201).send({ ...made.view, key: made.key });
  });

  r.get(
    '/api/v1/keys',
    { schema: { querystring: z.strictObject({ ownerId: id.optional(), cursor: z.string().regex(/^[a-f0-9]{16}$/).optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }), response: { 200: z.object({ items: z.array(apiKeyView), nextCursor: z.string().nullable() }), ...errors } } },
    async (req) => {
      requireRole(principalOf(req), 'admin');
      return listKeys(ka, { ownerId: req.query.ownerId }, { afterId: req.query.cursor, limit: req.query.limit });
    },
  );

  r.delete('/api/v1/keys/:keyId', { schema: { params: keyIdParams, response: { 200: apiKeyView, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'admin');
    try {
      return await asApiError(() => revokeKey(ka, req.params.keyId, p.id));
    } finally {
      ka.forget(req.params.keyId); // this replica, before the answer (even if the publish failed); the others through the publish
    }
  });

  r.post('/api/v1/keys/:keyId/rotate', { schema: { params: keyIdParams, response: { 200: apiKeyWithSecret, ...errors } } }, async (req) => {
    const p = principalOf(req);
    requireRole(p, 'admin');
    try {
      const made = await asApiError(() => rotateKey(ka, req.params.keyId, deps.config.api.keyRotationGraceMs, p.id));
      return { ...made.view, key: made.key };
    } finally {
      ka.forget(req.params.keyId);
    }
  });
};
