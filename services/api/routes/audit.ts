import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountId as accountIdSchema, id } from '../../../shared/contracts/fields.js';
import type { AuditFilter, StoredAudit } from '../../../shared/db/audit-repository.js';
import { type Principal, requireAccess } from '../auth.js';
import { type ApiDeps, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, when, whenAsDate } from '../schemas.js';

const NDJSON = 'application/x-ndjson';
/** `from` and `to` are days or instants; `to` is exclusive, and a day given as `to` includes that whole day. */
const filterFields = {
  accountId: accountIdSchema.optional(),
  /** Admins only: the system or security chain, or any other by name. */
  chain: id.optional(),
  actor: z.string().min(1).max(128).optional(),
  from: when.optional(),
  to: when.optional(),
};
const pageQuery = z.strictObject({ ...filterFields, cursor: z.string().regex(/^[a-f0-9]{24}$/, 'a cursor from a previous page').optional(), limit: z.coerce.number().int().min(1).max(500).default(100) });
const exportQuery = z.strictObject(filterFields);

const auditItem = z.object({
  id: z.string(),
  chain: z.string(),
  seq: z.number().int(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  jobId: z.string().nullable(),
  before: z.record(z.string(), z.unknown()).nullable(),
  after: z.record(z.string(), z.unknown()).nullable(),
  outcome: z.string(),
  prevHash: z.string(),
  hash: z.string(),
});

const itemView = (r: StoredAudit & { _id: unknown }) => ({
  id: String(r._id),
  chain: r.chain,
  seq: r.seq,
  at: new Date(r.at).toISOString(),
  actor: r.actor,
  action: r.action,
  jobId: r.jobId ?? null,
  before: r.before,
  after: r.after,
  outcome: r.outcome,
  prevHash: r.prevHash,
  hash: r.hash,
});

/**
 * The audit trail as people read it: operator actions per account (each account's own chain), the
 * system chain and the security chain (authentication failures, key changes, role refusals). Admins
 * read everything; an owner's keys read the chains of their own accounts, one account at a time.
 * Money movements themselves are the account's journal (`/accounts/{id}/transactions`).
 */
export const auditRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse };

  const filterOf = async (p: Principal, q: z.infer<typeof exportQuery>): Promise<AuditFilter> => {
    if (q.accountId && q.chain) throw new ApiError(400, 'validation_failed', 'give accountId or chain, not both');
    if (p.role !== 'admin') {
      if (q.chain) throw new ApiError(403, 'forbidden', 'the system and security chains are for admins');
      if (!q.accountId) throw new ApiError(403, 'forbidden', 'owners read the audit of their own accounts: give accountId');
    }
    if (q.accountId) requireAccess(p, await deps.stores.accounts.get(q.accountId), 'read');
    const from = q.from ? whenAsDate(q.from) : undefined;
    const to = q.to ? whenAsDate(q.to, 'to') : undefined;
    return { chain: q.accountId ?? q.chain, actor: q.actor, from, to };
  };
  const ndjson = (rows: AsyncIterable<StoredAudit & { _id: unknown }>) =>
    Readable.from((async function* lines() {
      for await (const row of rows) yield `${JSON.stringify(itemView(row))}\n`;
    })());

  r.get('/api/v1/audit', { schema: { querystring: pageQuery, response: { 200: z.object({ items: z.array(auditItem), nextCursor: z.string().nullable() }), ...errors } } }, async (req, reply) => {
    const p = principalOf(req);
    const { cursor, limit, ...q } = req.query;
    const filter = await filterOf(p, q);
    if (req.headers.accept?.includes(NDJSON)) return reply.type(NDJSON).send(ndjson(deps.stores.audit.find(filter, { afterId: cursor, limit: null })) as never);
    const items = [];
    for await (const row of deps.stores.audit.find(filter, { afterId: cursor, limit })) items.push(itemView(row));
    return { items, nextCursor: items.length === limit ? items[items.length - 1]!.id : null };
  });

  /** Every matching record as NDJSON, streamed from a database cursor (no page size, no cursor). */
  r.get('/api/v1/audit/export', { schema: { querystring: exportQuery, response: errors } }, async (req, reply) => {
    const filter = await filterOf(principalOf(req), req.query);
    return reply.type(NDJSON).send(ndjson(deps.stores.audit.find(filter, { afterId: undefined, limit: null })) as never);
  });
};
