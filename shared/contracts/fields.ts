import { z } from 'zod';
import { MoneyParseError, parseUnitsString } from '../money/parse.js';
import type { UnitKind } from '../money/units.js';
import { TIER_NAMES } from '../domain/tiers.js';

/**
 * Field schemas shared by every contract. Ids and keys are restricted to characters that are safe
 * in Redis keys, BullMQ job ids, URLs and MongoDB queries, which also shuts out operator injection.
 */
export const id = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1-128 letters, digits, "_" or "-"');
export const accountId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
/** A client's key for one operation (a UUID fits); it becomes part of a job id, so no '.' or ':'. */
export const idempotencyKey = z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, 'must be 8-128 letters, digits, "_" or "-"');
/** Who asked: an API key id, 'admin', 'system' or a service name. */
export const actor = z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/, 'must be 1-64 safe characters');
export const tier = z.enum(TIER_NAMES);
export const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), 'must be a real calendar date');
export const symbol = z.string().regex(/^[A-Z][A-Z0-9.-]{0,14}$/, 'must be an upper-case ticker such as "SPY"');

/** A decimal string of the given kind: plain notation, at most the kind's places, storable. */
function unitsString(kind: UnitKind, sign: 'positive' | 'nonNegative') {
  return z
    .string()
    .max(40)
    .superRefine((text, ctx) => {
      try {
        const d = parseUnitsString(kind, text);
        if (sign === 'positive' ? !d.greaterThan(0) : d.isNegative()) {
          ctx.addIssue({ code: 'custom', message: `must be ${sign === 'positive' ? 'greater than zero' : 'zero or more'}` });
        }
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof MoneyParseError || err instanceof Error ? err.message : 'invalid' });
      }
    });
}

export const cashAmount = unitsString('cash', 'positive');
export const cashAmountOrZero = unitsString('cash', 'nonNegative');
export const quantity = unitsString('quantity', 'positive');
export const price = unitsString('price', 'positive');
