import { z } from 'zod';
import { symbol } from './fields.js';
import { LIMIT_ACTIONS } from '../domain/loss-limits.js';

const fraction = z
  .string()
  .regex(/^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, 'must be a decimal string between 0 and 1, such as "0.15"');

/** A loss limit: the loss (or drawdown) allowed and what a breach does. */
export const lossLimit = z.strictObject({ max: fraction, action: z.enum(LIMIT_ACTIONS) });
/** Loss limits by rule, each read from the account's flow-adjusted value index. */
export const lossLimits = z.strictObject({ 'daily-loss': lossLimit.optional(), 'weekly-loss': lossLimit.optional(), 'monthly-loss': lossLimit.optional(), drawdown: lossLimit.optional() });

/**
 * Per-account configuration overrides. Limits may only tighten the tier's (shared/domain/tiers.ts).
 * Allocation is a list, not a map: symbols may hold '.', which MongoDB keys must not.
 */
export const accountConfig = z.strictObject({
  maxPositions: z.number().int().min(1).max(100).optional(),
  maxCapitalPerPosition: fraction.optional(),
  /** Drawdown from the value index's high-water mark that takes the account out of trading (SAFE). */
  drawdownLimit: fraction.optional(),
  /** Loss limits with their actions; more specific than `drawdownLimit` and the tier's. */
  limits: lossLimits.optional(),
  cashBuffer: fraction.optional(),
  /** The account's strategy holds cash on purpose: a high cash share is not "idle cash" for consolidation. */
  holdsCash: z.boolean().optional(),
  targetAllocation: z.array(z.strictObject({ symbol, weight: fraction })).max(50).optional(),
  /** SPEC §6: reinvestment is off unless the account turns it on. */
  reinvestment: z
    .strictObject({
      enabled: z.boolean(),
      strategy: z.enum(['proportional', 'strategic', 'dynamic']).default('proportional'),
      /** Realised profit (as a share of equity) that triggers a reinvestment; the fleet default when unset. */
      profitThreshold: fraction.optional(),
      /** Symbols the dynamic strategy may buy beyond those held and allocated. */
      universe: z.array(symbol).max(50).optional(),
      /** The scheduled trigger: reinvest on the fleet's reinvestment schedule. */
      onSchedule: z.boolean().default(true),
    })
    .optional(),
});
export type AccountConfig = z.infer<typeof accountConfig>;
