import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountId as accountIdSchema, isoDate } from '../../../shared/contracts/fields.js';
import type { ExportPosition, StoredEntry } from '../../../shared/db/journal-repository.js';
import { loadTotals } from '../../../shared/db/stored-balances.js';
import { TOTAL_NAMES } from '../../../shared/domain/totals.js';
import { StatementTooLarge, accountStatement } from '../../../shared/ledger/statement.js';
import { entryView } from '../../../shared/ledger/views.js';
import { formatUnits } from '../../../shared/money/units.js';
import { requireAccess, requireRole } from '../auth.js';
import { type ApiDeps, ownedAccountIds, principalOf } from '../context.js';
import { ApiError } from '../errors.js';
import { errorResponse, when, whenAsDate } from '../schemas.js';

const NDJSON = 'application/x-ndjson';
/** Statements cover at most this many days (longer: several statements, or the export). */
const STATEMENT_DAYS_MAX = 3_660;
const EXPORT_LIMIT_DEFAULT = 10_000;
const EXPORT_LIMIT_MAX = 100_000;
const CSV_COLUMNS = ['date', 'seq', 'kind', 'amount', 'fees', 'counterparty', 'balance'] as const;

const statementQuery = z.strictObject({ from: isoDate.optional(), to: isoDate.optional(), format: z.enum(['json', 'csv']).default('json') });
const money = z.string().describe('decimal string, 2 places');
const statementView = z.object({
  accountId: z.string(),
  from: z.string(),
  to: z.string(),
  opening: z.object({ cash: money, equity: money }),
  closing: z.object({ cash: money, equity: money }),
  totals: z.object({ deposits: money, withdrawals: money, fees: money, dividends: money, realisedPnl: money, transfersIn: money, transfersOut: money }),
  returns: z.object({ timeWeighted: z.number().nullable(), moneyWeighted: z.number().nullable().describe('XIRR, a yearly rate; null when the period had no flows') }),
  entries: z.array(z.object({ seq: z.number().int(), date: z.string(), at: z.string(), kind: z.string(), amount: money.describe('the change of cash: in +, out −'), fees: money, counterparty: z.string(), cash: money.describe('cash after the entry') })),
});
const exportQuery = z.strictObject({
  from: when.optional(),
  to: when.optional(),
  accountId: accountIdSchema.optional(),
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,64}\.[1-9][0-9]{0,14}$/, 'the cursor of the last line of a previous page').optional().describe('`<accountId>.<seq>`: the export goes on after that entry'),
  limit: z.coerce.number().int().min(1).max(EXPORT_LIMIT_MAX).default(EXPORT_LIMIT_DEFAULT),
});

const daysBetween = (a: string, b: string) => (new Date(`${b}T00:00:00Z`).getTime() - new Date(`${a}T00:00:00Z`).getTime()) / 86_400_000;

/** Where a line's cursor resumes: after its account's entry of that seq. */
const cursorOf = (e: Pick<StoredEntry, 'accountId' | 'seq'>) => `${e.accountId}.${e.seq}`;
function positionOf(cursor: string): ExportPosition {
  const dot = cursor.lastIndexOf('.');
  return { accountId: cursor.slice(0, dot), seq: Number(cursor.slice(dot + 1)) };
}

/** One exported entry: its view, the account, the business date, the running totals, its chain link, and its cursor. */
function exportLine(e: StoredEntry): string {
  const totals = loadTotals(e.totals);
  return `${JSON.stringify({
    cursor: cursorOf(e),
    accountId: e.accountId,
    day: e.day,
    ...entryView(e),
    sagaId: e.sagaId,
    totals: Object.fromEntries(TOTAL_NAMES.map((k) => [k, formatUnits('cash', totals[k])])),
    prevHash: e.prevHash,
    hash: e.hash,
  })}\n`;
}

/**
 * Statements of an account (JSON or CSV) and the journal as NDJSON: an owner's accounts, or (admin)
 * the fleet's, in (accountId, seq) order, streamed from database cursors and paged by the cursor of the last line.
 */
export const statementRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 422: errorResponse };

  r.get('/api/v1/accounts/:id/statement', { schema: { params: z.strictObject({ id: accountIdSchema }), querystring: statementQuery, response: { 200: statementView, ...errors } } }, async (req, reply) => {
    const account = await deps.stores.accounts.get(req.params.id);
    requireAccess(principalOf(req), account, 'read');
    const from = req.query.from ?? new Date(account.createdAt).toISOString().slice(0, 10);
    const to = req.query.to ?? deps.clock.today();
    if (from > to) throw new ApiError(400, 'validation_failed', `from ${from} is after to ${to}`);
    if (daysBetween(from, to) > STATEMENT_DAYS_MAX) throw new ApiError(422, 'period_too_large', `a statement covers at most ${STATEMENT_DAYS_MAX} days`);
    let statement;
    try {
      statement = await accountStatement({ stores: deps.stores, snapshots: deps.performance.snapshots }, account._id, from, to);
    } catch (err) {
      if (err instanceof StatementTooLarge) throw new ApiError(422, 'period_too_large', err.message);
      throw err;
    }
    if (req.query.format === 'json') return statement;
    const csv = stringify(statement.entries.map((e) => ({ ...e, balance: e.cash })), { header: true, columns: [...CSV_COLUMNS] });
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="statement-${account._id}-${from}-${to}.csv"`)
      .send(csv as never);
  });

  r.get('/api/v1/export/journal', { schema: { querystring: exportQuery, response: errors } }, async (req, reply) => {
    const p = principalOf(req);
    requireRole(p, 'viewer');
    const q = req.query;
    let accountIds: string[] | undefined;
    if (q.accountId) {
      requireAccess(p, await deps.stores.accounts.get(q.accountId), 'read');
      accountIds = [q.accountId];
    } else accountIds = await ownedAccountIds(deps, p);
    const rows = deps.stores.journal.exportFrom({ accountIds, from: q.from ? whenAsDate(q.from) : undefined, to: q.to ? whenAsDate(q.to, 'to') : undefined }, { after: q.cursor ? positionOf(q.cursor) : undefined, limit: q.limit });
    const lines = Readable.from(
      (async function* stream() {
        for await (const row of rows) yield exportLine(row);
      })(),
    );
    return reply.type(NDJSON).send(lines as never);
  });
};
