import { z } from 'zod';
import { QUEUE, type QueueName } from './queues.js';
import { accountConfig } from './account-config.js';
import { REINVEST_TRIGGERS } from '../domain/reinvestment.js';
import { LIMIT_RULES } from '../domain/loss-limits.js';
import { accountId, actor, cashAmount, cashAmountOrZero, id, idempotencyKey, isoDate, price, quantity, symbol, tier } from './fields.js';

/** Every posting names the key that makes its replay a no-op (SPEC §3.4), and who asked. */
const posting = { accountId, idempotencyKey, actor };

/**
 * One zod schema per job, by queue then job name (SPEC §2). Producer and worker both import these;
 * the payloads carry ids and decimal strings, and handlers reload documents by id.
 */
export const JOBS = {
  [QUEUE.accountOps]: {
    'open-account': z.strictObject({
      ...posting,
      tier,
      name: z.string().min(1).max(120),
      ownerId: id.nullable(),
      parentId: accountId.nullable(),
      config: accountConfig.default({}),
      initialDeposit: cashAmount.optional(),
    }),
    deposit: z.strictObject({ ...posting, amount: cashAmount }),
    withdrawal: z.strictObject({ ...posting, amount: cashAmount, close: z.boolean().default(false) }),
    transfer: z.strictObject({ ...posting, toAccountId: accountId, amount: cashAmount }),
    trade: z.strictObject({
      ...posting,
      side: z.enum(['buy', 'sell']),
      symbol,
      quantity,
      price: price.optional(),
      fees: cashAmountOrZero.default('0.00'),
    }),
    dividend: z.strictObject({ ...posting, symbol, amount: cashAmount }),
    fee: z.strictObject({ ...posting, amount: cashAmount, reason: z.string().min(1).max(200) }),
    'state-change': z.strictObject({
      ...posting,
      to: z.enum(['SAFE', 'ACTIVE', 'SUSPENDED', 'CLOSED', 'ERROR']),
      reason: z.string().min(1).max(500),
    }),
    /**
     * A loss limit breached: the account leaves trading (SAFE) or is suspended, once per rule and
     * period (`idempotencyKey`); it waits for a saga that holds the account, and files a review to reactivate.
     */
    'limit-breach': z.strictObject({
      ...posting,
      to: z.enum(['SAFE', 'SUSPENDED']),
      rule: z.enum(LIMIT_RULES),
      period: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/),
      reason: z.string().min(1).max(500),
    }),
    /** An approved `reactivate` review: back to ACTIVE, only from the state the limit set (`from`). */
    reactivate: z.strictObject({ ...posting, from: z.enum(['SAFE', 'SUSPENDED']), reason: z.string().min(1).max(500) }),
    /** SPEC §6: put investable cash to work; `key` names the triggering entry or scheduled date. */
    reinvest: z.strictObject({ accountId, trigger: z.enum(REINVEST_TRIGGERS), key: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }),
    /** The scheduled trigger: one reinvest job per opted-in account for the date. */
    'reinvest-scan': z.strictObject({ date: isoDate.optional() }),
    'recover-transfers': z.strictObject({ olderThanSec: z.number().int().min(0).max(86_400) }),
    reconcile: z.strictObject({ period: z.string().max(40) }),
  },
  [QUEUE.thresholdCheck]: {
    check: z.strictObject({ accountId, seq: z.number().int().positive() }),
  },
  [QUEUE.thresholdScan]: {
    scan: z.strictObject({ tier }),
  },
  [QUEUE.fork]: {
    execute: z.strictObject({
      forkId: id.max(128),
      accountId,
      parentSeq: z.number().int().positive(),
      mode: z.enum(['full', 'partial', 'config-only']),
      symbols: z.array(symbol).max(50).default([]),
      requestedBy: actor,
      decisionId: z.string().max(160).nullable().default(null),
    }),
    recover: z.strictObject({ olderThanSec: z.number().int().min(0).max(86_400) }),
    /** An operator's resume: the saga goes on from its journal, forward only (it is never rolled back by this job). */
    resume: z.strictObject({ forkId: id.max(128), requestedBy: actor }),
  },
  [QUEUE.merge]: {
    execute: z.strictObject({ mergeId: id.max(128) }),
    recover: z.strictObject({ olderThanSec: z.number().int().min(0).max(86_400) }),
    resume: z.strictObject({ mergeId: id.max(128), requestedBy: actor }),
  },
  [QUEUE.consolidationScan]: {
    /** Without a date, the fleet clock's business date (a scheduler cannot template one). */
    scan: z.strictObject({ date: isoDate.optional() }),
    batch: z.strictObject({ date: isoDate, afterAccountId: accountId.nullable(), limit: z.number().int().min(1).max(10_000) }),
  },
  [QUEUE.snapshot]: {
    /** Without a date, the fleet clock's business date (a scheduler cannot template one). */
    day: z.strictObject({ date: isoDate.optional() }),
    /** One page of the day: a bucket of accounts (0–63), or null for every account of a small fleet. */
    batch: z.strictObject({ date: isoDate, bucket: z.number().int().min(0).max(63).nullable() }),
    /** After a price load: the loss limits of the accounts holding these symbols, on today's values. */
    limits: z.strictObject({ symbols: z.array(symbol).min(1).max(1000) }),
  },
  [QUEUE.retention]: {
    prune: z.strictObject({ date: isoDate.optional() }),
  },
  [QUEUE.alerts]: {
    raise: z.strictObject({
      rule: z.string().regex(/^[a-z][a-z0-9-]{1,63}$/),
      severity: z.enum(['info', 'warning', 'critical']),
      accountId: accountId.nullable(),
      /** The period the alert is about (a date, a week, a job id): the dedup key with account and rule. */
      period: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/),
      message: z.string().min(1).max(1000),
      details: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()])).default({}),
    }),
    /** Moves jobs BullMQ failed for good into the dead-letter store (closing a crash between the two). */
    sweep: z.strictObject({}),
  },
  [QUEUE.webhooks]: {
    deliver: z.strictObject({
      url: z.url({ protocol: /^https?$/ }),
      alert: z.strictObject({
        rule: z.string().max(64),
        severity: z.string().max(16),
        accountId: z.string().max(64).nullable(),
        period: z.string().max(128),
        message: z.string().max(1000),
        raisedAt: z.string().max(40),
      }),
    }),
  },
} as const satisfies Record<QueueName, Record<string, z.ZodType>>;

export type Jobs = typeof JOBS;
export type JobName<Q extends QueueName> = keyof Jobs[Q] & string;
/** The validated data of job N on queue Q (defaults applied). */
export type JobData<Q extends QueueName, N extends JobName<Q>> = Jobs[Q][N] extends z.ZodType ? z.output<Jobs[Q][N]> : never;
/** What a producer passes in (defaults may be omitted). */
export type JobInput<Q extends QueueName, N extends JobName<Q>> = Jobs[Q][N] extends z.ZodType ? z.input<Jobs[Q][N]> : never;

export function jobSchema<Q extends QueueName>(queue: Q, name: string): z.ZodType | undefined {
  const byName = JOBS[queue] as Record<string, z.ZodType>;
  return Object.hasOwn(byName, name) ? byName[name] : undefined;
}

/**
 * Job ids from business keys, built in one place (never random, so a replay is deduplicated).
 * BullMQ refuses ':' in custom ids and all-digit ids, so parts are joined with '.' and checked.
 */
export function jobId(...parts: Array<string | number>): string {
  const text = parts.map(String);
  for (const p of text) {
    if (!/^[A-Za-z0-9_-]+$/.test(p)) throw new Error(`job id part ${JSON.stringify(p)} must be letters, digits, "_" or "-"`);
  }
  if (text.length < 2) throw new Error('a job id needs a kind and at least one key part');
  return text.join('.');
}
