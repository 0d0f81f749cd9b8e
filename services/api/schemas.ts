import { z } from 'zod';
import { accountConfig } from '../../shared/contracts/account-config.js';
import { accountId, cashAmount, cashAmountOrZero, id, idempotencyKey, isoDate, price, quantity, symbol, tier } from '../../shared/contracts/fields.js';
import { ACCOUNT_STATES, MANUAL_TARGET_STATES } from '../../shared/domain/states.js';
import { ROLES } from '../../shared/auth/api-keys.js';

/** Request and response schemas of the API; the OpenAPI document is generated from these. */
/** A day (`2026-12-01`) or an instant with its offset. */
export const when = z.union([isoDate, z.iso.datetime({ offset: true })]);
const DAY_MS = 86_400_000;
/** A `when` as an instant; a day given as an (exclusive) upper bound includes that whole day. */
export function whenAsDate(w: string, bound: 'from' | 'to' = 'from'): Date {
  return new Date(new Date(w).getTime() + (bound === 'to' && w.length === 10 ? DAY_MS : 0));
}

export const accountParams = z.strictObject({ id: accountId });
export const waitQuery = z.strictObject({ wait: z.enum(['true', 'false']).optional() });

export const listAccountsQuery = z.strictObject({
  type: tier.optional(),
  state: z.enum(ACCOUNT_STATES).optional(),
  parentId: accountId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: accountId.optional(),
});

export const createAccountBody = z.strictObject({
  type: tier,
  name: z.string().trim().min(1).max(120),
  ownerId: id.optional(),
  parentId: accountId.optional(),
  initialDeposit: cashAmount.optional(),
  config: accountConfig.optional(),
  idempotencyKey: idempotencyKey.optional(),
});

export type CreateAccountBody = z.infer<typeof createAccountBody>;

const updateAccountFields = z.strictObject({
  name: z.string().trim().min(1).max(120).optional(),
  config: accountConfig.optional(),
  state: z.enum(MANUAL_TARGET_STATES).optional(),
  reason: z.string().min(1).max(500).optional(),
  idempotencyKey: idempotencyKey.optional(),
});
const changesSomething = (b: { name?: unknown; config?: unknown; state?: unknown }) => b.name !== undefined || b.config !== undefined || b.state !== undefined;
const GIVE_A_CHANGE = 'give at least one of name, config, state';
export const updateAccountBody = updateAccountFields.refine(changesSomething, GIVE_A_CHANGE);
export type UpdateAccountBody = z.infer<typeof updateAccountBody>;

const withKey = { idempotencyKey };
const transactionKinds = [
  z.strictObject({ kind: z.literal('deposit'), amount: cashAmount, ...withKey }),
  z.strictObject({ kind: z.literal('withdrawal'), amount: cashAmount, close: z.boolean().default(false), ...withKey }),
  z.strictObject({ kind: z.literal('transfer'), amount: cashAmount, toAccountId: accountId, ...withKey }),
  z.strictObject({ kind: z.literal('trade'), side: z.enum(['buy', 'sell']), symbol, quantity, price: price.optional(), fees: cashAmountOrZero.optional(), ...withKey }),
  z.strictObject({ kind: z.literal('dividend'), amount: cashAmount, symbol, ...withKey }),
  z.strictObject({ kind: z.literal('fee'), amount: cashAmount, reason: z.string().min(1).max(200), ...withKey }),
] as const;
export const transactionBody = z.discriminatedUnion('kind', transactionKinds);
export type TransactionBody = z.infer<typeof transactionBody>;

/**
 * Items of the bulk endpoints: the single-item bodies, with the account a path would name and a key
 * that is required (a batch is replayed as a whole, and only keys make its items recognisable).
 */
export const bulkAccountItem = createAccountBody.extend({ idempotencyKey });
const [deposit, withdrawal, transfer, trade, dividend, fee] = transactionKinds;
const onAccount = { accountId };
export const bulkTransactionItem = z.discriminatedUnion('kind', [
  deposit.extend(onAccount),
  withdrawal.extend(onAccount),
  transfer.extend(onAccount),
  trade.extend(onAccount),
  dividend.extend(onAccount),
  fee.extend(onAccount),
]);
export const bulkUpdateItem = updateAccountFields.extend({ accountId, idempotencyKey }).refine(changesSomething, GIVE_A_CHANGE);

export const journalQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.coerce.number().int().min(1).optional(),
});

const onePrice = z.strictObject({ symbol, date: isoDate, close: price });
export const pricesBody = z.union([onePrice, z.array(onePrice).min(1).max(1000)]);

export const operationParams = z.strictObject({ operationId: z.string().regex(/^op\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{8,128}$/, 'not an operation id') });

export const apiKeyBody = z.strictObject({
  role: z.enum(ROLES),
  ownerId: id.optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  label: z.string().trim().min(1).max(120).optional(),
});
export const keyIdParams = z.strictObject({ keyId: z.string().regex(/^[a-f0-9]{16}$/, 'a key id: 16 hex digits') });
export const apiKeyView = z.object({
  keyId: z.string(),
  role: z.enum(ROLES),
  ownerId: z.string().nullable(),
  label: z.string().nullable(),
  state: z.enum(['active', 'expired', 'revoked']),
  createdAt: z.string(),
  createdBy: z.string().nullable(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  rotatedAt: z.string().nullable(),
  previousSecretValidUntil: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
/** A key with its secret: answered once, by create and rotate, and never stored or shown again. */
export const apiKeyWithSecret = apiKeyView.extend({ key: z.string() });

const money = z.string().describe('decimal string, 2 places');
export const accountView = z.object({
  id: z.string(),
  type: tier,
  state: z.enum(ACCOUNT_STATES),
  name: z.string(),
  ownerId: z.string().nullable(),
  parentId: z.string().nullable(),
  mergedInto: z.string().nullable(),
  cash: money,
  reservedCash: money,
  availableCash: money,
  positionsValue: money,
  equity: money,
  positions: z.array(z.object({ symbol: z.string(), quantity: z.string(), costBasis: money, marketValue: money })),
  config: z.record(z.string(), z.unknown()),
  seq: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export const entryView = z.object({
  seq: z.number().int(),
  kind: z.string(),
  at: z.string(),
  actor: z.string(),
  details: z.record(z.string(), z.union([z.string(), z.boolean()])),
  realisedPnl: money,
  cash: money,
  reservedCash: money,
  state: z.string(),
});
export const accepted = z.object({
  operationId: z.string(),
  status: z.enum(['queued', 'running']),
  statusUrl: z.string(),
  accountId: z.string(),
});
export const errorResponse = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown() }) });
export const hierarchyView = z.object({
  ancestors: z.array(z.object({ id: z.string(), type: z.string(), name: z.string() })),
  nodes: z.array(z.object({ id: z.string(), parentId: z.string().nullable(), depth: z.number().int(), type: z.string(), state: z.string(), name: z.string() })),
  truncated: z.boolean(),
});
export const operationStatus = z.object({
  operationId: z.string(),
  status: z.enum(['queued', 'running', 'applied', 'refused', 'failed']),
  outcome: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
});
export const forkViewSchema = z.object({
  id: z.string(),
  parentId: z.string(),
  childId: z.string().nullable(),
  state: z.string(),
  mode: z.string(),
  requestedAt: z.string(),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  statusUrl: z.string().optional(),
});
const factor = z.object({ score: z.number(), detail: z.record(z.string(), z.unknown()) });
export const decisionSchema = z.looseObject({
  accountId: z.string(),
  seq: z.number().int(),
  confidence: z.number(),
  outcome: z.enum(['execute', 'scheduled', 'review']),
  factors: z.object({ market: factor, performance: factor, systemLoad: factor, timing: factor }),
});
export const opportunitiesSchema = z.object({
  items: z.array(
    z.object({
      accountId: z.string(),
      type: z.string(),
      equity: z.string(),
      forkAmount: z.string(),
      childType: z.string(),
      highPerformer: z.boolean().nullable(),
      latestDecision: z.looseObject({ id: z.string(), confidence: z.number(), outcome: z.string() }).nullable(),
    }),
  ),
});
export const forkStatusSchema = z.object({ inFlight: z.number().int(), limit: z.number().int(), recent: z.array(forkViewSchema) });
export const reviewSchema = z.looseObject({ id: z.string(), kind: z.string(), accountId: z.string(), state: z.string(), forkId: z.string().nullable() });
export const mergeViewSchema = z.object({
  id: z.string(),
  groupId: z.string().nullable(),
  sourceId: z.string(),
  targetId: z.string(),
  strategy: z.string(),
  state: z.string(),
  partial: z.object({ amount: z.string().nullable(), symbols: z.array(z.string()) }).nullable(),
  lineage: z.array(z.object({ symbol: z.string(), quantity: z.string(), costBasis: z.string(), fromAccountId: z.string() })),
  requestedAt: z.string(),
  scheduledFor: z.string().nullable(),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
