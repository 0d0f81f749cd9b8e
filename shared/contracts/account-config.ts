import { z } from 'zod';
import { symbol } from './fields.js';

const fraction = z
  .string()
  .regex(/^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, 'must be a decimal string between 0 and 1, such as "0.15"');

/**
 * Per-account configuration overrides. Limits may only tighten the tier's (shared/domain/tiers.ts).
 * Allocation is a list, not a map: symbols may hold '.', which MongoDB keys must not.
 */
export const accountConfig = z.strictObject({
  maxPositions: z.number().int().min(1).max(100).optional(),
  maxCapitalPerPosition: fraction.optional(),
  drawdownLimit: fraction.optional(),
  cashBuffer: fraction.optional(),
  targetAllocation: z.array(z.strictObject({ symbol, weight: fraction })).max(50).optional(),
});
export type AccountConfig = z.infer<typeof accountConfig>;
