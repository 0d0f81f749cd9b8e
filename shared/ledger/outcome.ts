import type { Refusal, RefusalCode } from '../domain/refusal.js';
import type { EntryView } from './views.js';

/**
 * The answer to one client operation, stored under its idempotency key and returned to every
 * replay. JSON only (decimal strings), so it travels as a job's return value and into MongoDB.
 */
export type Outcome =
  | {
      status: 'applied';
      operation: string;
      accountId: string;
      seq: number;
      entry: EntryView | null;
      transferId?: string;
    }
  | { status: 'refused'; operation: string; code: RefusalCode; message: string; httpStatus: number };

export function refusedOutcome(operation: string, r: Refusal): Outcome {
  return { status: 'refused', operation, code: r.code, message: r.message, httpStatus: r.status };
}
